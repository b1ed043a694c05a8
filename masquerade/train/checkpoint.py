"""Checkpoints: weights and optimizer state in safetensors, everything else in JSON; every write atomic.

Loading never unpickles. Saving is journaled (see save_checkpoint): a kill -9 at any moment leaves weights,
optimizer and state.json of one and the same iteration. Readers (swap, evaluate, a look while training runs)
never change the folder: only the trainer completes or discards an interrupted save (`recover`).
Optimizer state is flattened to tensors (`state.<param>.<name>`); its hyper-parameters go to the file's
JSON metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from masquerade.core.atomic import atomic_path, remove_stale_temps, write_json
from masquerade.core.errors import InputError

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


def load_config(model_dir: Path) -> dict:
    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        raise InputError(model_dir, "not a model folder (no config.json; make one with `masquerade train`)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, f"corrupt model config ({exc})") from None


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
    path = Path(model_dir) / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else {"iteration": 0}
