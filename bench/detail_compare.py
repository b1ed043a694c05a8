"""Swap's fine detail compared on trained models: the input's band alone against the target's own detail.

For each MODEL:CLIP, the model's sides keep their faces (`models.detail.write_banks`, as `train` now does),
then the clip's first frames are swapped to B with each `--detail-from` and evaluated as
`bench/quality_vs_time.py` evaluates a point (identity, mouth, sharpness, edges, flicker, the rebuild with and
without B's own detail), with a still of the middle frame per setting.
Run: python bench/detail_compare.py bench/out/qvt_d6_d3_curve/model:d6 [...] [--frames 60]
Figures only; nothing is asserted. Results: bench/out/detail_compare.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import OUT, clip, save
from quality_vs_time import point

from masquerade.models.detail import write_banks
from masquerade.models.io import load_config

KEYS = ("dist_target", "dist_target_unmarked", "mouth_error", "landmark_error", "sharpness", "edge_color", "flicker")
REBUILD = ("rebuild_ssim", "rebuild_psnr", "rebuild_own_ssim", "rebuild_own_psnr", "rebuild_dist_target")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="+", help="MODEL_DIR:CLIP (the clip is swapped to the model's B)")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--sources", default="input,both", help="the --detail-from settings compared")
    ap.add_argument("--mask", default="skin")
    args = ap.parse_args()
    results: dict = {"settings": vars(args), "runs": {}}
    for pair in args.pairs:
        model, name = pair.rsplit(":", 1)
        write_banks(model, load_config(Path(model)))
        work = OUT / "detail_compare" / name
        work.mkdir(parents=True, exist_ok=True)
        for source in args.sources.split(","):
            row = point(Path(model), clip(name), args.frames, work, source, args.mask, 1.0, source)
            results["runs"][f"{name} {source}"] = row
            save("detail_compare", results)
            print(
                f"{name:4s} {source:6s} " + "  ".join(f"{k} {row[k] or 0:.3f}" for k in KEYS + REBUILD),
                flush=True,
            )
    print(f"saved {save('detail_compare', results)}")


if __name__ == "__main__":
    main()
