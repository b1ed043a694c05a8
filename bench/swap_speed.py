"""Swap throughput: frames/s for a 480p clip with each model (detection, model, blending, watermark, encoding).

Makes a briefly trained model of each architecture (200 iterations: enough for the swapped face to be found
again, which marking and swap's read-back of the mark need; speed does not otherwise depend on the weights).
Run: python bench/swap_speed.py [--models lite,original] [--frames 60]. Never asserted.
"""

from __future__ import annotations

import argparse
import time

from common import OUT, clip, save

from masquerade.faceset.extract import ExtractOptions, extract
from masquerade.swap.pipeline import SwapOptions, Swapper
from masquerade.swap.run import VideoOptions, swap_video
from masquerade.train.loop import TrainConfig, train


def model_for(name: str):
    out = OUT / f"speed_model_{name}_200"
    if not (out / "model.safetensors").exists():
        fa, fb = OUT / "speed_faces_a", OUT / "speed_faces_b"
        extract([clip("d18")], fa, ExtractOptions(every=20))
        extract([clip("d19")], fb, ExtractOptions(every=20))
        train([fa], [fb], out, TrainConfig(model=name, iterations=200))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lite,original")
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    res = {}
    for name in args.models.split(","):
        sw = Swapper(model_for(name), SwapOptions(to="b"))
        t = time.perf_counter()
        rep = swap_video(sw, clip("d18"), OUT / f"swap_speed_{name}.mp4", VideoOptions(end=f"{args.frames}f"))
        fps = rep.frames / (time.perf_counter() - t)
        res[f"480x480 d18 {name}"] = round(fps, 2)
        print(f"{name:9s} 480x480: {fps:5.2f} frames/s", flush=True)
    save("swap_speed", {"frames_per_s": res})


if __name__ == "__main__":
    main()
