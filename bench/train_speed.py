"""Training throughput: samples/s (A and B counted) for each model and batch size on this machine.

Times the trainer's own step (`sample_batches` + `train_step`: augmentation, forward, loss, backward,
Adam) on real faces when a face set is at hand (bench/out/faces_d18, made by quality_vs_time.py or extract),
else on random tensors, and prints the model FLOPs per sample and the MFU beside it.
Run: python bench/train_speed.py [--models original,lite,lite-d] [--batches 16,64] [--steps 5]
Targets (issue 3, 2-core CPU): original >= 8 samples/s, lite >= 120 and >= 10x original. Never asserted.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import OUT, save

from masquerade.models import create_model
from masquerade.train.data import SideData, load_side
from masquerade.train.loop import (
    TrainConfig,
    flops_per_sample,
    make_optimizer,
    memory_format,
    peak_flops,
    sample_batches,
    train_step,
)


def side(work: int) -> SideData:
    """Faces cached at `work` px (twice the model's side, as the trainer does)."""
    fs = OUT / "faces_d18"
    if (fs / "faceset.db").exists():
        return load_side([fs], work)
    g = torch.Generator().manual_seed(0)
    imgs = (torch.rand(64, 3, work, work, generator=g) * 255).to(torch.uint8)
    return SideData(imgs, torch.full((64, 2, work, work), 255, dtype=torch.uint8), 0.3, None)


def speed(name: str, batch: int, steps: int) -> tuple[float, float]:
    """(samples/s, flops per sample)."""
    gen, dev = torch.Generator().manual_seed(0), torch.device("cpu")
    cfg = TrainConfig(model=name, batch_size=batch, lr=2e-4).with_model_defaults()
    data = side(2 * cfg.size)
    model = create_model(name, size=cfg.size)
    layout = memory_format(model, dev)  # as the training loop does
    model = model.to(dev, memory_format=layout)
    opt = make_optimizer(model, cfg.lr, dev)
    t = 0.0
    for i in range(steps + 1):
        if i == 1:
            t = time.perf_counter()  # the first step warms up allocators and kernels
        train_step(model, opt, sample_batches({"a": data, "b": data}, cfg, gen, dev, layout), cfg)
    return 2 * batch * steps / (time.perf_counter() - t), flops_per_sample(model, cfg.size, dev)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="original,lite")
    ap.add_argument("--batches", default="16,64")
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    peak = peak_flops(torch.device("cpu"))
    print(f"measured peak: {peak / 1e9:.1f} GFLOP/s (float32 matrix product)")
    res: dict = {}
    mfu: dict = {}
    for name in args.models.split(","):
        for b in map(int, args.batches.split(",")):
            sps, fps = speed(name, b, args.steps)
            res[f"{name} batch {b}"] = round(sps, 1)
            mfu[f"{name} batch {b}"] = round(sps * fps / peak, 4)
            print(
                f"{name:9s} batch {b:3d}: {sps:7.1f} samples/s, {fps / 1e6:.0f} MFLOP/sample, "
                f"MFU {sps * fps / peak:.1%}",
                flush=True,
            )
    ratios = {}
    for b in map(int, args.batches.split(",")):
        if f"lite batch {b}" in res and f"original batch {b}" in res:
            ratios[f"lite / original, batch {b}"] = round(res[f"lite batch {b}"] / res[f"original batch {b}"], 1)
            print(f"lite / original at batch {b}: {ratios[f'lite / original, batch {b}']}x")
    save("train_speed", {"samples_per_s": res, "mfu": mfu, "peak_flops": peak, "speedup": ratios})


if __name__ == "__main__":
    main()
