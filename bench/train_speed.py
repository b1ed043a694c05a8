"""Training throughput: samples/s (A and B counted) for each model at batch 16 and 64 on this machine.

Times full training steps (augmentation, forward, loss, backward, Adam) on real faces when a face set is
at hand (bench/out/faces_d18, made by quality_vs_time.py or extract), else on random tensors.
Run: python bench/train_speed.py [--models original,lite] [--batches 16,64] [--steps 5]
Targets (issue 3, 2-core CPU): original >= 8 samples/s, lite >= 120 and >= 10x original. Never asserted.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import OUT, save

from masquerade.faceset.augment import AugmentConfig
from masquerade.faceset.dataset import SideData, load_side, sample_batch
from masquerade.models import create_model
from masquerade.train.loop import make_optimizer, memory_format
from masquerade.train.losses import face_loss


def side() -> SideData:
    fs = OUT / "faces_d18"
    if (fs / "faceset.db").exists():
        return load_side([fs], 128)
    g = torch.Generator().manual_seed(0)
    imgs = (torch.rand(64, 3, 128, 128, generator=g) * 255).to(torch.uint8)
    return SideData(imgs, torch.full((64, 2, 128, 128), 255, dtype=torch.uint8), 0.3, None)


def speed(name: str, batch: int, steps: int, data: SideData) -> float:
    gen, cfg, dev = torch.Generator().manual_seed(0), AugmentConfig(), torch.device("cpu")
    model = create_model(name)
    layout = memory_format(model, dev)  # as the training loop does
    model = model.to(dev, memory_format=layout)
    opt = make_optimizer(model, 2e-4, dev)
    t = 0.0
    for i in range(steps + 1):
        if i == 1:
            t = time.perf_counter()  # the first step warms up allocators and kernels
        loss = 0
        for s in ("a", "b"):
            x, y, w, _ = sample_batch(data, batch, 64, 0.15, cfg, gen, dev)
            x = x.contiguous(memory_format=layout)
            loss = loss + face_loss(model(x, s), y, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return 2 * batch * steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="original,lite")
    ap.add_argument("--batches", default="16,64")
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    data = side()
    res: dict = {}
    for name in args.models.split(","):
        for b in map(int, args.batches.split(",")):
            res[f"{name} batch {b}"] = round(speed(name, b, args.steps, data), 1)
            print(f"{name:9s} batch {b:3d}: {res[f'{name} batch {b}']:7.1f} samples/s", flush=True)
    ratios = {}
    for b in map(int, args.batches.split(",")):
        if f"lite batch {b}" in res and f"original batch {b}" in res:
            ratios[f"lite / original, batch {b}"] = round(res[f"lite batch {b}"] / res[f"original batch {b}"], 1)
            print(f"lite / original at batch {b}: {ratios[f'lite / original, batch {b}']}x")
    save("train_speed", {"samples_per_s": res, "speedup": ratios})


if __name__ == "__main__":
    main()
