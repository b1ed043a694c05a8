"""Device choice in one place so every stage treats `auto|cpu|cuda` the same way; torch's CPU threads, scoped."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's CPU threads set to `n` (0: left as they are) for a block, then put back as they were.

    Why a block: the setting belongs to the whole process, so a stage that set it for good (a swap's 1 thread)
    slowed whatever ran after it in the same process (a training run at half speed, a script's evaluation)."""
    before = torch.get_num_threads()
    if n <= 0 or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
