"""Swap's compositing options compared on trained models: the blend mask (`hull`, the landmark hull, against
`skin`, the hull less hair or background reaching into it) or the border's colour match (`--edge-match 0`
against `1`).

For each MODEL:CLIP pair, swap the first frames of CLIP with each setting and evaluate them (edge-colour error,
sharpness, identity, landmark and mouth error, seam, flicker), and save a still of the same frame for each
setting (input | first | second, aligned face crops at 256 px) as bench/out/<option>_compare_<n>.png.
Run: python bench/composite_compare.py bench/out/qvt_s29_s20/model:s29 [...] [--option mask|edge-match]
Figures only; nothing is asserted. Results: bench/out/<option>_compare.json.
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
SETTINGS = {  # option -> {setting's name: SwapOptions fields}
    "mask": {"hull": {"mask": "hull"}, "skin": {"mask": "skin"}},
    "edge-match": {"edge0": {"edge_match": 0.0}, "edge1": {"edge_match": 1.0}},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="+", metavar="MODEL:CLIP")
    ap.add_argument("--option", choices=sorted(SETTINGS), default="mask")
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    stem = f"{args.option.replace('-', '_')}_compare"
    results: dict = {}
    for n, pair in enumerate(args.pairs):
        model, name = pair.rsplit(":", 1)
        src = clip(name)
        work = OUT / f"{stem}_{n}"
        work.mkdir(parents=True, exist_ok=True)
        row, outs = {}, {}
        for setting, fields in SETTINGS[args.option].items():
            outs[setting] = work / f"{setting}.mp4"
            opts = SwapOptions(to="b", **fields)
            swap_video(Swapper(model, opts), src, outs[setting], VideoOptions(end=f"{args.frames}f"))
            s = evaluate_swap(outs[setting], src, model, max_frames=args.frames)["summary"]
            row[setting] = {k: s[k].get("median" if k == "sharpness" else "mean") for k in KEYS}
            print(f"{pair} {setting:5s} " + "  ".join(f"{k} {row[setting][k]:.3f}" for k in KEYS), flush=True)
        results[pair] = row
        k = args.frames // 2
        frames = [next(f.image for f in read_frames(p) if f.index == k) for p in (src, *outs.values())]
        face = FaceAnalyzer("hog")(frames[0])
        if face:
            m = estimate_matrix(face[0].landmarks, 256, 0.3)
            write_image(OUT / f"{stem}_{n}.png", np.hstack([crop_face(f, m, 256) for f in frames]))
    save(stem, results)


if __name__ == "__main__":
    main()
