"""Swap's blend masks compared on trained models: `hull` (the landmark hull) against `skin` (the hull less hair
or background reaching into it, in the input or the rendered face).

For each MODEL:CLIP pair, swap the first frames of CLIP with each mask and evaluate them (edge-colour error,
sharpness, identity, landmark and mouth error, seam), and save a still of the same frame for each mask
(input | hull | skin, aligned face crops at 256 px) as bench/out/mask_compare_<n>.png.
Run: python bench/mask_compare.py bench/out/qvt_s29_s20_lite/model:s29 [...] [--frames 60]
Figures only; nothing is asserted. Results: bench/out/mask_compare.json.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import OUT, clip, save

from masquerade.evaluate.report import evaluate_swap
from masquerade.faces.align import crop_face, estimate_matrix
from masquerade.faces.analyze import FaceAnalyzer
from masquerade.media import read_frames, write_image
from masquerade.swap.pipeline import SwapOptions, Swapper
from masquerade.swap.run import VideoOptions, swap_video

KEYS = ("edge_color", "sharpness", "dist_target", "win", "landmark_error", "mouth_error", "seam", "flicker")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="+", metavar="MODEL:CLIP")
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    results: dict = {}
    for n, pair in enumerate(args.pairs):
        model, name = pair.rsplit(":", 1)
        src = clip(name)
        work = OUT / f"mask_compare_{n}"
        work.mkdir(parents=True, exist_ok=True)
        row, outs = {}, {}
        for mask in ("hull", "skin"):
            outs[mask] = work / f"{mask}.mp4"
            swap_video(
                Swapper(model, SwapOptions(to="b", mask=mask)), src, outs[mask], VideoOptions(end=f"{args.frames}f")
            )
            s = evaluate_swap(outs[mask], src, model, max_frames=args.frames)["summary"]
            row[mask] = {k: s[k].get("median" if k == "sharpness" else "mean") for k in KEYS}
            print(f"{pair} {mask:4s} " + "  ".join(f"{k} {row[mask][k]:.3f}" for k in KEYS), flush=True)
        results[pair] = row
        k = args.frames // 2
        frames = [next(f.image for f in read_frames(p) if f.index == k) for p in (src, outs["hull"], outs["skin"])]
        face = FaceAnalyzer("hog")(frames[0])
        if face:
            m = estimate_matrix(face[0].landmarks, 256, 0.3)
            write_image(OUT / f"mask_compare_{n}.png", np.hstack([crop_face(f, m, 256) for f in frames]))
    save("mask_compare", results)


if __name__ == "__main__":
    main()
