"""Device choice in one place so every stage treats `auto|cpu|cuda` the same way."""

from __future__ import annotations

import torch

from masquerade.core.errors import InputError

# torch's own choice of CPU threads for this process (its physical cores, or OMP_NUM_THREADS), read once when
# masquerade is imported, before any stage changes it: what "all cores" means (see `train`'s --threads 0)
START_THREADS = torch.get_num_threads()


def pick_device(name: str = "auto") -> torch.device:
    """`auto` takes CUDA when present, else the CPU; asking for CUDA without one is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device", "CUDA was asked for but no CUDA device is available")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise InputError("--device", f"unknown device {name!r} (use auto, cpu or cuda)")
    return torch.device(name)
