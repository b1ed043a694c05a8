"""A model folder on disk: its config, weights and journaled checkpoints, and `load_model` for inference.

Weights and optimizer state are safetensors, everything else JSON; every write is atomic and loading never
unpickles. Saving is journaled (see save_checkpoint): a kill -9 at any moment leaves weights, optimizer and
state.json of one and the same iteration. Readers (swap, evaluate, a look while training runs) never change
the folder: only the trainer completes or discards an interrupted save (`recover`). Optimizer state is
flattened to tensors (`state.<param>.<name>`); its hyper-parameters go to the file's JSON metadata.

Both `train/` and `swap/` read models from here; nothing here knows how a model is trained.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from masquerade.core.atomic import atomic_path, remove_stale_temps, write_json
from masquerade.core.device import pick_device
from masquerade.core.errors import InputError
from masquerade.models.registry import create_model, list_models

MODEL_FILE = "model.safetensors"
OPTIM_FILE = "optimizer.safetensors"
CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
RUNTIME_KEYS = ("fused", "foreach", "capturable", "differentiable")


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def save_checkpoint(
    model_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict, rng: torch.Tensor
) -> None:
    """Save weights, optimizer and state so that a kill at any moment leaves one consistent checkpoint.

    A small journal: both tensor files are written as `*.next`, then state.json (the commit point) names
    their iteration, then they are renamed into place. `recover` finishes or discards an interrupted save.
    """
    it = str(state["iteration"])
    opt = optimizer.state_dict()
    tensors = {"rng": rng}
    for pid, st in opt["state"].items():
        for name, value in st.items():
            tensors[f"state.{pid}.{name}"] = value if torch.is_tensor(value) else torch.tensor(value)
    save_tensors(
        _next(model_dir / OPTIM_FILE), tensors, {"iteration": it, "param_groups": json.dumps(opt["param_groups"])}
    )
    save_tensors(_next(model_dir / MODEL_FILE), model.state_dict(), {"iteration": it})
    write_json(model_dir / STATE_FILE, state)
    recover(model_dir)


def _next(path: Path) -> Path:
    return path.with_name(path.name + ".next")


def _iteration_of(path: Path) -> str | None:
    try:
        with safe_open(str(path), framework="pt") as fh:
            return (fh.metadata() or {}).get("iteration")
    except (SafetensorError, OSError):
        return None


def recover(model_dir: Path) -> None:
    """For the trainer only: finish a save interrupted after its commit point, discard one interrupted
    before it, and delete temporary files a killed process left behind."""
    model_dir = Path(model_dir)
    committed = str(load_state(model_dir).get("iteration", ""))
    for name in (OPTIM_FILE, MODEL_FILE):
        nxt = _next(model_dir / name)
        if not nxt.is_file():
            continue
        if _iteration_of(nxt) == committed:
            os.replace(nxt, model_dir / name)
        else:
            nxt.unlink(missing_ok=True)
    for folder in (model_dir, model_dir / "previews"):
        remove_stale_temps(folder)


def _read_committed(model_dir: Path, name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read `name` as of the last commit without touching the folder: the `.next` file when a save was
    committed but its renames have not happened yet (or are happening now), else the file itself."""
    path, nxt = Path(model_dir) / name, _next(Path(model_dir) / name)
    committed = str(load_state(model_dir).get("iteration", ""))
    if nxt.is_file() and _iteration_of(nxt) == committed:
        try:
            return _read(nxt)
        except InputError:
            if nxt.exists():
                raise  # else it was renamed into place meanwhile: read that
    if not path.is_file():
        raise InputError(model_dir, f"model folder has no {name} (incomplete or never saved)")
    return _read(path)


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        return load_file(str(path)), meta
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(path, f"unreadable checkpoint ({exc})") from None


def _read_json(path: Path, what: str) -> object:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"corrupt {what} ({exc.__class__.__name__}: {str(exc).splitlines()[0][:80]})") from None
    except OSError as exc:
        raise InputError(path, f"unreadable {what} ({exc.strerror or exc})") from None


def load_config(model_dir: Path) -> ModelConfig:
    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        raise InputError(model_dir, "not a model folder (no config.json; make one with `masquerade train`)")
    return ModelConfig.from_dict(_read_json(path, "model config"), path)


def load_weights(model_dir: Path, model: torch.nn.Module) -> int:
    """Load weights into `model` (strict); returns the iteration they were saved at."""
    tensors, meta = _read_committed(model_dir, MODEL_FILE)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise InputError(
            Path(model_dir) / MODEL_FILE, f"weights do not fit the configured architecture ({str(exc).splitlines()[0]})"
        ) from None
    return int(meta.get("iteration", 0))


def load_optimizer(model_dir: Path, optimizer: torch.optim.Optimizer) -> tuple[int, torch.Tensor | None]:
    """Restore optimizer state; returns (iteration, rng state)."""
    tensors, meta = _read_committed(model_dir, OPTIM_FILE)
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    groups = json.loads(meta["param_groups"])
    for saved, live in zip(groups, optimizer.param_groups, strict=False):  # load_state_dict checks counts
        for key in RUNTIME_KEYS:  # how the step runs is this run's choice, not the file's
            if key in live:
                saved[key] = live[key]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p, {})
            for name, value in st.items():  # fused kernels read moments in the parameter's memory layout
                if torch.is_tensor(value) and value.shape == p.shape:
                    st[name] = torch.empty_like(p).copy_(value)
    return int(meta.get("iteration", 0)), tensors.get("rng")


def load_state(model_dir: Path) -> dict:
    """state.json (iteration, samples, seconds, loss history), checked: a wrong type is a one-line error."""
    path = Path(model_dir) / STATE_FILE
    if not path.is_file():
        return {"iteration": 0}
    state = _read_json(path, "training state")
    ok = isinstance(state, dict) and _is_int(state.get("iteration", 0)) and state.get("iteration", 0) >= 0
    ok = ok and all(_is_num(state.get(k, 0)) for k in ("samples", "seconds"))
    ok = ok and isinstance(state.get("loss_history", []), list)
    if not ok:
        raise InputError(path, "training state is not what `masquerade train` writes (wrong fields or types)")
    return state


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


# -- the model's config ----------------------------------------------------------------------------------
FORMAT = "masquerade-model"
ARCH_KEYS = ("model", "size", "padding", "lift", "mask")  # what the weights' shapes and the crop depend on
SIZE_RANGE = (16, 1024)  # model input/output side in pixels


@dataclass
class ModelConfig:
    """config.json: the architecture, the crop it was trained on, the identities, and how it was trained.

    `training` keeps the hyper-parameters the trainer recorded (lr, batch size, augmentation...): kept for
    the record and for resuming; inference needs none of them.
    """

    model: str
    size: int
    padding: float
    mask: bool
    model_id: str
    version: str = ""
    lift: float = 0.0  # the crop moved up (faces.align.crop_frame_matrix); 0 for models made before it existed
    holdout_every: int = 10
    facesets: dict[str, list[str]] = field(default_factory=dict)
    identity: dict[str, list[float]] = field(default_factory=dict)
    faces: dict[str, int] = field(default_factory=dict)
    # each side's mouth openings (`faces.align.mouth_opening`) as its training faces show them: the 2nd and
    # 98th percentiles; what its decoder has learnt to paint (`swap --mouth auto`). Empty in earlier models.
    mouth: dict[str, list[float]] = field(default_factory=dict)
    training: dict = field(default_factory=dict)

    def identities(self) -> dict[str, np.ndarray]:
        """The mean identity embedding of each side ("a", "b"), as float32 vectors."""
        return {k: np.asarray(v, np.float32) for k, v in self.identity.items()}

    def to_dict(self) -> dict:
        d = asdict(self)
        training = d.pop("training")
        return {"format": FORMAT, **training, **d}  # flat, as earlier versions wrote it

    @classmethod
    def from_dict(cls, d: object, path: str | Path = CONFIG_FILE) -> ModelConfig:
        """Validate a config read from disk: every field of the right type and range, else a one-line error."""

        def bad(reason: str) -> InputError:
            return InputError(path, f"model config: {reason}")

        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise InputError(path, "not a masquerade model config (no format: masquerade-model)")
        if d.get("model") not in list_models():
            raise bad(f"unknown model {d.get('model')!r} (known: {', '.join(list_models())})")
        if not _is_int(d.get("size")) or not SIZE_RANGE[0] <= d["size"] <= SIZE_RANGE[1]:
            raise bad(f"size must be an integer from {SIZE_RANGE[0]} to {SIZE_RANGE[1]}")
        if not _is_num(d.get("padding")) or not 0 <= d["padding"] <= 1:
            raise bad("padding must be a number from 0 to 1")
        if not _is_num(d.get("lift", 0.0)) or not -0.5 <= d.get("lift", 0.0) <= 0.5:
            raise bad("lift must be a number from -0.5 to 0.5")
        if not isinstance(d.get("mask"), bool):
            raise bad("mask must be true or false")
        if not isinstance(d.get("model_id"), str) or not re.fullmatch(r"[0-9a-f]{4,64}", d["model_id"]):
            raise bad("model_id must be a hex string")
        if not _is_int(d.get("holdout_every", 10)) or d.get("holdout_every", 10) < 0:
            raise bad("holdout_every must be a whole number")
        ident = d.get("identity", {})
        if not isinstance(ident, dict) or any(
            k not in ("a", "b") or not isinstance(v, list) or len(v) != 128 or not all(map(_is_num, v))
            for k, v in ident.items()
        ):
            raise bad("identity must map a and b to 128 numbers each")
        sets = d.get("facesets", {})
        if not isinstance(sets, dict) or any(
            not isinstance(v, list) or not all(isinstance(p, str) for p in v) for v in sets.values()
        ):
            raise bad("facesets must map a and b to lists of folders")
        faces = d.get("faces", {})
        if not isinstance(faces, dict) or not all(_is_int(v) for v in faces.values()):
            raise bad("faces must map a and b to counts")
        mouth = d.get("mouth", {})
        if not isinstance(mouth, dict) or any(
            k not in ("a", "b") or not isinstance(v, list) or len(v) != 2 or not all(map(_is_num, v))
            for k, v in mouth.items()
        ):
            raise bad("mouth must map a and b to two numbers each")
        if not isinstance(d.get("version", ""), str):
            raise bad("version must be a string")
        own = {f.name for f in fields(cls)} - {"training"}
        return cls(
            **{k: v for k, v in d.items() if k in own},
            training={k: v for k, v in d.items() if k not in own and k != "format"},
        )

    def save(self, model_dir: Path) -> None:
        write_json(Path(model_dir) / CONFIG_FILE, self.to_dict())


def build_model(config: ModelConfig) -> torch.nn.Module:
    """The network a config describes (untrained)."""
    return create_model(config.model, size=config.size, mask=config.mask)


@dataclass
class LoadedModel:
    """A trained model ready for inference: its folder, config, network (eval mode, on `device`)."""

    path: Path
    config: ModelConfig
    net: torch.nn.Module | None  # None for an exported ONNX renderer (see models.export)
    device: torch.device
    iteration: int = 0

    @property
    def model_id(self) -> str:
        return self.config.model_id

    @property
    def identity(self) -> dict[str, np.ndarray]:
        return self.config.identities()


def load_model(path: str | Path, device: str = "auto") -> LoadedModel:
    """Load a trained model folder for inference (weights from safetensors; no pickle anywhere)."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(path, "model folder not found")
    config = load_config(path)
    net = build_model(config)
    dev = pick_device(device)
    it = load_weights(path, net)
    net.to(dev).eval()
    return LoadedModel(path, config, net, dev, it)
