"""Training on several processes with PyTorch's own engine: `torchrun` starts them (on one machine or many,
through its rendezvous) and DistributedDataParallel averages the gradients: NCCL on CUDA, gloo on a CPU.

Each process trains both sides every step (loss A + loss B through one module, so no parameter goes unused),
samples its own faces (seeded by rank), and holds identical weights and optimizer moments; only rank 0
writes checkpoints, previews and logs. A run of one process is the same code with `Dist()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as tdist
from torch import nn

TIMEOUT = timedelta(minutes=5)  # a rank that died leaves the others waiting at most this long, then they stop


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def from_env() -> Dist:
    """What torchrun told this process (WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE); one process if unset."""
    env = os.environ
    return Dist(
        int(env.get("RANK", 0)),
        int(env.get("WORLD_SIZE", 1)),
        int(env.get("LOCAL_RANK", 0)),
        int(env.get("LOCAL_WORLD_SIZE", env.get("WORLD_SIZE", 1))),
    )


def start(d: Dist, device: torch.device) -> None:
    if d.enabled and not tdist.is_initialized():
        tdist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)


def stop(d: Dist) -> None:
    if d.enabled and tdist.is_initialized():
        tdist.destroy_process_group()


def device_name(d: Dist, wanted: str) -> str:
    """Each process on its own GPU: `cuda` becomes `cuda:LOCAL_RANK`."""
    if d.enabled and wanted in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{d.local_rank}"
    return wanted


def barrier(d: Dist) -> None:
    if d.enabled:
        tdist.barrier()


def any_rank(d: Dist, flag: bool, device: torch.device) -> bool:
    """True on every rank when it is true on any: decisions (stop, loss not finite) all ranks must share."""
    if not d.enabled:
        return flag
    t = torch.tensor([float(flag)], device=device)
    tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
    return bool(t.item())


def same_weights(d: Dist, model: nn.Module) -> bool:
    """Whether every rank holds the very same weights (a checksum of each, gathered)."""
    if not d.enabled:
        return True
    with torch.no_grad():
        s = torch.stack([p.double().sum() + (p.double() ** 2).sum() for p in model.parameters()]).sum()
    out = [torch.zeros_like(s) for _ in range(d.world)]
    tdist.all_gather(out, s)
    return all(bool(o == out[0]) for o in out)


class BothSides(nn.Module):
    """Renders side A's batch with decoder A and side B's with decoder B in one forward, so that one backward
    (loss A + loss B) uses every parameter: what DistributedDataParallel needs to average all gradients."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, xa: torch.Tensor, xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(xa, "a"), self.model(xb, "b")


def wrap(d: Dist, model: nn.Module, device: torch.device) -> nn.Module:
    """The module a training step calls: BothSides, inside DistributedDataParallel when there are ranks."""
    both = BothSides(model)
    if not d.enabled:
        return both
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(both, device_ids=ids)
