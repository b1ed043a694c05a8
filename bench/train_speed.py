"""Training throughput: samples/s (A and B counted) for each model and batch size on this machine.

Times the trainer's own step (`sample_batches` + `train_step`: augmentation, forward, loss, backward,
Adam) on real faces when a face set is at hand (bench/out/faces_d18, made by quality_vs_time.py or extract),
else on random tensors, and prints the model FLOPs per sample and the MFU beside it.
Run: python bench/train_speed.py [--models original,lite,lite-d] [--batches 16,64] [--steps 5] [--nproc 1,2]
`--nproc` adds a column: the whole `train` command under torchrun with N processes (gloo here, NCCL on GPUs),
samples/s of all processes together from its log. On a 2-core CPU 2 processes are not faster (they share the
cores); the figure is there for GPU machines.
Targets (issue 3, 2-core CPU): original >= 8 samples/s, lite >= 120 and >= 10x original. Never asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
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


def nproc_speed(n: int, name: str, batch: int, iterations: int = 60) -> float:
    """samples/s of `masquerade train` under torchrun with n processes (batch per process), from its log."""
    from swap_speed import clip

    from masquerade.faceset.extract import ExtractOptions, extract

    fa, fb = OUT / "speed_faces_a", OUT / "speed_faces_b"
    if not (fb / "faceset.db").exists():
        extract([clip("d18")], fa, ExtractOptions(every=20))
        extract([clip("d19")], fb, ExtractOptions(every=20))
    out = OUT / f"nproc_{n}_{name}_{batch}"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", "-m"]
    cmd += ["masquerade", "train", str(fa), str(fb), "-o", str(out), "--model", name]
    cmd += ["--batch-size", str(batch), "--iterations", str(iterations), "--preview-every", "100000"]
    subprocess.run(cmd, check=True, capture_output=True)
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    return float(log[-1]["samples_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="original,lite")
    ap.add_argument("--batches", default="16,64")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--nproc", default="", help="also time `train` under torchrun with these process counts")
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
    nproc: dict = {}
    for n in [int(x) for x in args.nproc.split(",") if x]:
        for name in args.models.split(","):
            for b in map(int, args.batches.split(",")):
                nproc[f"{name} batch {b} per process, {n} processes"] = sps = nproc_speed(n, name, b)
                print(f"{name:9s} batch {b:3d} x {n} processes (torchrun): {sps:7.1f} samples/s", flush=True)
    save("train_speed", {"samples_per_s": res, "mfu": mfu, "peak_flops": peak, "speedup": ratios, "nproc": nproc})


if __name__ == "__main__":
    main()
