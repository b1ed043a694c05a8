"""Checkpoints: weights and optimizer state in safetensors, everything else in JSON; every write atomic.

Loading never unpickles. Saving is journaled (see save_checkpoint): a kill -9 at any moment leaves weights,
optimizer and state.json of one and the same iteration. Optimizer state is flattened to tensors
(`state.<param>.<name>`) and its hyper-parameters go to the file's JSON metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from masquerade.core.atomic import atomic_path, write_json
from masquerade.core.errors import InputError

MODEL_FILE = "model.safetensors"
OPTIM_FILE = "optimizer.safetensors"
CONFIG_FILE = "config.json"
STATE_FILE = "state.json"


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


def recover(model_dir: Path) -> None:
    """Finish a save that was interrupted after its commit point, or discard one interrupted before it."""
    model_dir = Path(model_dir)
    committed = str(load_state(model_dir).get("iteration", ""))
    for name in (OPTIM_FILE, MODEL_FILE):
        nxt = _next(model_dir / name)
        if not nxt.is_file():
            continue
        try:
            with safe_open(str(nxt), framework="pt") as fh:
                it = (fh.metadata() or {}).get("iteration")
        except (SafetensorError, OSError):
            it = None
        if it == committed:
            os.replace(nxt, model_dir / name)
        else:
            nxt.unlink(missing_ok=True)


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
    recover(model_dir)
    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise InputError(model_dir, "model folder has no model.safetensors (incomplete or never saved)")
    tensors, meta = _read(path)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise InputError(path, f"weights do not fit the configured architecture ({str(exc).splitlines()[0]})") from None
    return int(meta.get("iteration", 0))


def load_optimizer(model_dir: Path, optimizer: torch.optim.Optimizer) -> tuple[int, torch.Tensor | None]:
    """Restore optimizer state; returns (iteration, rng state)."""
    recover(model_dir)
    tensors, meta = _read(Path(model_dir) / OPTIM_FILE)
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    groups = json.loads(meta["param_groups"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    return int(meta.get("iteration", 0)), tensors.get("rng")


def load_state(model_dir: Path) -> dict:
    path = Path(model_dir) / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else {"iteration": 0}
