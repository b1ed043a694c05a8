"""A line where the model's crop ends inside the pasted face: does swap leave one?

The model paints a square crop; the face's mask (forehead, chin) can reach past it, and the composite must fade
the painting out before the crop's edge rather than stop on it. Per face: the change swap makes to the luma
(output less input, the mark left off), sampled along the crop's four edges, half a model pixel outside them and
1.5 either side, where the face's region covers them; the line is the edge's change less its neighbours' mean (0: no
line; negative: darker). Figures per clip: median, 10th percentile and most negative over faces.
Run: python bench/crop_edge.py MODEL:CLIP [...] [--frames 60]. Figures only. Results: bench/out/crop_edge.json.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
from common import OUT, clip, save
from quality_vs_time import UnmarkedSwapper

from masquerade.media import read_frames
from masquerade.swap.pipeline import SwapOptions

# Model pixels along the crop's inward normal: the line is read half a pixel outside the edge (the reach of a cubic
# warp's border), its neighbours 1.5 pixels either side.
EDGE, BESIDE = -0.5, 1.5


def edge_line(change: np.ndarray, region: np.ndarray, m: np.ndarray, size: int, samples: int = 64) -> float | None:
    """Mean line along the crop's edges (`m`: frame -> crop) in `change` (luma, output less input), where
    `region` (the face's blend region) covers the edge's inner side; None where it covers none of it."""
    inv = cv2.invertAffineTransform(m)
    h, w = change.shape
    t = np.linspace(0, size, samples)
    zero, full = np.zeros_like(t), np.full_like(t, float(size))
    points = np.concatenate([np.stack(p, 1) for p in ((t, zero), (t, full), (zero, t), (full, t))])
    normals = np.repeat([[0, 1], [0, -1], [1, 0], [-1, 0]], samples, axis=0)  # inward, per edge

    def at(offset: float) -> tuple[np.ndarray, np.ndarray]:
        """`change` and `region` at `offset` model px along the inward normal (NaN and 0 outside the frame)."""
        xy = np.rint((points + offset * normals) @ inv[:, :2].T + inv[:, 2]).astype(int)
        ok = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
        x, y = np.where(ok, xy[:, 0], 0), np.where(ok, xy[:, 1], 0)
        return np.where(ok, change[y, x], np.nan), np.where(ok, region[y, x], 0.0)

    (edge, _), (out, _), (inn, cover) = at(EDGE), at(-BESIDE), at(BESIDE)
    line = edge - 0.5 * (out + inn)
    keep = (cover > 0.05) & np.isfinite(line)
    return float(line[keep].mean()) if keep.any() else None


def measure(model: str, path, frames: int) -> dict:
    sw = UnmarkedSwapper(model, SwapOptions(to="b", swap_all=True))
    lines: list[float] = []
    put_back = sw._put_back

    def spy(frame, lms, m, crop, pred, kept):
        out, region = put_back(frame, lms, m, crop, pred, kept)
        grey = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32) for x in (out, frame)]
        line = edge_line(grey[0] - grey[1], region, m, sw.size)
        lines.extend([] if line is None else [line])
        return out, region

    sw._put_back = spy
    batch = []
    for fr in read_frames(path):
        if fr.index >= frames:
            break
        batch.append(fr.image)
        if len(batch) == 8:
            sw.swap_frames(batch)
            batch = []
    if batch:
        sw.swap_frames(batch)
    a = np.array(lines)
    return {"faces": len(a), "median": float(np.median(a)), "p10": float(np.percentile(a, 10)), "min": float(a.min())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", nargs="+", metavar="MODEL:CLIP")
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    results = {}
    for pair in args.pairs:
        model, name = pair.rsplit(":", 1)
        results[name] = r = measure(model, clip(name), args.frames)
        line = f"{r['median']:+.1f} (p10 {r['p10']:+.1f}, min {r['min']:+.1f})"
        print(f"{name}: {r['faces']} faces, line {line} grey levels")
    save(OUT / "crop_edge.json", results)


if __name__ == "__main__":
    main()
