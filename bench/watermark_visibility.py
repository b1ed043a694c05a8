"""How visible is the mark, and what does it keep when made fainter? (issue 15: "invisible" against "survives")

For each CLIP:SIDE (the side the model renders): swap its first --frames frames as `swap` does, once with
today's mark and once per forced share of it (--fades: the whole mark, the face's own reading of the patterns
cancelled with it, scaled as `watermark._unseen` scales it), keeping each face just before and after its mark.
Per run:
- face SSIM (luma, marked against unmarked, over the landmarks' box) and its 1st-percentile local SSIM;
- the mark's rms in that box, in grey levels;
- dlib's distance to the model's target (every third frame);
- frames read as marked / by the colour tier alone (mean z), as verify reads each frame, written clean (CRF 18)
  and after each --crf (28h: halved in size, then CRF 28);
- the rms CIE76 colour difference in that box (dE: the colour mark does not show in luma SSIM).
A strip per clip (face of frame --frame at 1.5x: unmarked | today's | each fade) is what to look at: SSIM
passes faces that plainly show the mark (docs/watermark.md).
Run: python bench/watermark_visibility.py --model MODEL [--clips d6:b,d3:a,s29:b,d18:b] [--fades 1,0.5,0.35].
Figures only; nothing is asserted. The forced fades are for diagnosis only, never an output.
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager

import cv2
import numpy as np
from common import OUT, clip, save

from masquerade.faces.analyze import FaceAnalyzer
from masquerade.faces.identity import distance
from masquerade.media import VideoWriter, read_frames, write_image
from masquerade.provenance import watermark as wm
from masquerade.provenance.verify import read_frame, verify_analyzer
from masquerade.swap.pipeline import SwapOptions, Swapper


class Recording(Swapper):
    """A Swapper that keeps each frame's first face just before and after its mark: (before, after, landmarks in
    the frame, the region's corner)."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.faces: list[tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]] = []

    def _mark(self, roi, frame, box, lms, region, at, still=False):
        out = super()._mark(roi, frame, box, lms, region, at, still)
        self.faces.append((roi.copy(), out.copy(), lms + np.asarray(at, np.float32), at))
        return out


@contextmanager
def forced_fade(share: float | None):
    """Every video face keeps this share of its mark (None: today's rule). Bench-only."""
    rule = wm._unseen
    if share is not None:
        wm._unseen = lambda *_: share
    try:
        yield
    finally:
        wm._unseen = rule


def label(share: float | None) -> str:
    return "today" if share is None else f"{share:g}"


def marked_frames(frames: list[np.ndarray], attack: str, path, fps: float, fa) -> dict:
    """Write at this CRF (`attack` "28", or "28h": halved in size first), read back as verify reads each frame:
    frames marked, mean z, and frames the colour tier alone reads as marked."""
    crf, half = int(attack.rstrip("h")), attack.endswith("h")
    h, w = frames[0].shape[:2]
    size = ((w // 4) * 2, (h // 4) * 2) if half else (w, h)
    with VideoWriter(path, fps, size, crf=crf) as vw:
        for f in frames:
            vw.write(cv2.resize(f, size, interpolation=cv2.INTER_AREA) if half else f)
    zs, colour = [], 0
    for fr in read_frames(path):
        faces, reads = read_frame(fr.image, fa)
        zs.append(max((r.z_signature for r in reads), default=0.0))
        colour += any(wm.read_mark(fr.image, lm, wm.COLOUR_TIERS).marked for lm in faces)
    return {"marked": sum(z > wm.THRESHOLD for z in zs), "z_mean": float(np.mean(zs)), "colour_marked": colour}


def cell(r: dict) -> str:
    """Frames marked / by the colour tier alone (mean z)."""
    return f"{r['marked']}/{r['colour_marked']} ({r['z_mean']:.1f})"


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """rms CIE76 colour difference of two RGB images (OpenCV's 8-bit Lab, L rescaled to 0-100)."""
    la, lb = (cv2.cvtColor(v, cv2.COLOR_RGB2LAB).astype(np.float32) * [100 / 255, 1, 1] for v in (a, b))
    return float(np.sqrt(((la - lb) ** 2).sum(-1).mean()))


def run(model, path, side: str, frames: int, share: float | None, crfs, fa, ids, work) -> tuple[dict, list]:
    sw = Recording(model, SwapOptions(to=side, swap_all=True))
    target = sw.identity.get(side)
    out, faces, dist = [], [], []
    with forced_fade(share):
        for fr in read_frames(path):
            if fr.index >= frames:
                break
            sw.faces.clear()
            out.append(sw.swap_frames([fr.image])[0])
            faces.append(sw.faces[0] if sw.faces else None)
            if fr.index % 3 == 0 and target is not None and sw.faces:
                found = ids(out[-1])
                dist += [distance(found[0].embedding, target)] if found else []
    ssim, p1, rms, de = [], [], [], []
    for face in faces:
        if face is None:
            continue
        before, after, lms, (ax, ay) = face
        x0, y0, x1, y1 = wm.face_box(lms)  # as `_unseen` judges it
        ra, rb = (v[y0 - ay : y1 - ay, x0 - ax : x1 - ax] for v in (before, after))
        de.append(delta_e(ra, rb))
        a, b = (cv2.cvtColor(v, cv2.COLOR_RGB2GRAY) for v in (ra, rb))
        m = wm.ssim_map(a, b)
        ssim.append(float(m.mean()))
        p1.append(float(np.percentile(m, 1)))
        rms.append(float(np.sqrt(np.mean((b.astype(np.float32) - a) ** 2))))
    row = {
        "face_ssim": float(np.mean(ssim)),
        "local_ssim_p1": float(np.mean(p1)),
        "rms": float(np.mean(rms)),
        "delta_e": float(np.mean(de)),
        "dist_target": float(np.mean(dist)) if dist else None,
        "faces": len(ssim),
    }
    for attack in ("18", *crfs):
        row[f"crf{attack}"] = marked_frames(out, attack, work / f"{path.stem}_{label(share)}_crf{attack}.mp4", 30.0, fa)
    return row, faces


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--clips", default="d6:b,d3:a,s29:b,d18:b", help="CLIP:SIDE, comma-separated")
    ap.add_argument("--frames", type=int, default=45)
    ap.add_argument("--fades", default="1,0.5,0.35", help="shares of the whole mark to force, beside today's")
    ap.add_argument("--crf", default="28,35,28h", help="CRFs to write at; 28h: halved in size, then CRF 28")
    ap.add_argument("--frame", type=int, default=30, help="the frame whose face the strip shows")
    args = ap.parse_args()
    work = OUT / "watermark_visibility"
    work.mkdir(parents=True, exist_ok=True)
    crfs = args.crf.split(",")
    fa, ids = verify_analyzer(), FaceAnalyzer("hog", embeddings=True)
    results = {}
    for item in args.clips.split(","):
        name, side = item.split(":")
        path, rows, strip = clip(name), {}, []
        for share in (None, *(float(f) for f in args.fades.split(",") if f)):
            row, faces = run(args.model, path, side, args.frames, share, crfs, fa, ids, work)
            rows[label(share)] = row
            face = faces[min(args.frame, len(faces) - 1)]
            if face is not None:
                before, after, lms, (ax, ay) = face
                x0, y0, x1, y1 = wm.face_box(lms - np.asarray((ax, ay), np.float32))
                x0, y0, x1, y1 = max(x0 - 10, 0), max(y0 - 10, 0), x1 + 10, y1 + 10
                strip += [before[y0:y1, x0:x1]] if not strip else []
                strip.append(after[y0:y1, x0:x1])
            clean = row["crf18"]
            print(
                f"{name} {label(share)}: face SSIM {row['face_ssim']:.4f} "
                f"p1 {row['local_ssim_p1']:.3f} rms {row['rms']:.2f} dE {row['delta_e']:.2f} "
                f"dist {row['dist_target'] or 0:.3f} | clean {cell(clean)} "
                + " ".join(f"CRF {c} {cell(row[f'crf{c}'])}" for c in crfs)
                + f" of {args.frames}",
                flush=True,
            )
        if strip:
            h = min(s.shape[0] for s in strip)
            w = min(s.shape[1] for s in strip)
            img = cv2.resize(np.hstack([s[:h, :w] for s in strip]), None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
            write_image(work / f"strip_{name}.png", img)
        results[name] = {"side": side, "runs": rows}
    print("saved", save("watermark_visibility", {"frames": args.frames, "clips": results}))


if __name__ == "__main__":
    main()
