"""Is swap's own output marked on every shared clip and still, not only on d18? (issue 15, first target)

For each clip: swap its first --frames frames with the model exactly as `swap` does (default encoding), then
`verify` the file: share of swapped frames carrying the mark, the clip decision, mean and p10 of the
signature z, and the mark's PSNR. Stills: swap, write PNG and JPEG 90, verify each.
Run: python bench/watermark_clips.py --model MODEL [--frames 30]. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch
from common import DATA, OUT, save

from masquerade.evaluate.metrics import psnr
from masquerade.media import VideoWriter, probe, read_frames, read_image, write_image
from masquerade.provenance.verify import read_frame, verify_analyzer, verify_frames
from masquerade.swap.pipeline import SwapOptions, Swapper
from masquerade.train.losses import ssim_map


class Recording(Swapper):
    """A Swapper that also keeps, per face, the mark's PSNR over the frame, the SSIM of the marked face against
    the same face unmarked, and the first face's crops (unmarked | marked, 3x zoom)."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.psnr: list[float] = []
        self.ssim: list[float] = []
        self.crops: np.ndarray | None = None

    def _mark(self, roi, frame, box, lms, region, at, still=False):
        out = super()._mark(roi, frame, box, lms, region, at, still)  # on the face's region (`box` in its pixels)
        spread = 10 * np.log10(frame.shape[0] * frame.shape[1] / (roi.shape[0] * roi.shape[1]))
        self.psnr.append(psnr(out, roi, peak=255) + spread)  # over the whole frame, as the mark's cap counts it
        x0, y0, x1, y1 = np.round(box).astype(int).clip(0)
        a, b = roi[y0:y1, x0:x1], out[y0:y1, x0:x1]
        t = [torch.from_numpy(np.ascontiguousarray(v)).permute(2, 0, 1)[None].float() / 255 for v in (a, b)]
        self.ssim.append(float(ssim_map(*t).mean()))
        if self.crops is None:
            zoom = [cv2.resize(v, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST) for v in (a, b)]
            self.crops = np.hstack(zoom)
        return out


def clip_row(model, path, frames: int, work, fa) -> dict:
    sw = Recording(model, SwapOptions(to="b", swap_all=True))
    info = probe(path)
    src = [f.image for _, f in zip(range(frames), read_frames(path), strict=False)]
    out = sw.swap_frames(src)
    swapped = [k for k, (a, b) in enumerate(zip(src, out, strict=True)) if not np.array_equal(a, b)]
    dst = work / f"{path.stem}.mp4"
    with VideoWriter(dst, info.rate or info.fps, (info.width, info.height), crf=18) as vw:
        for f in out:
            vw.write(f)
    back = [f.image for f in read_frames(dst)]
    per = [max((r.z_signature for r in read_frame(back[k], fa)[1]), default=0.0) for k in swapped]  # as verify reads
    res = verify_frames(dst, (back[k] for k in swapped), fa)
    return {
        "frames": len(src),
        "swapped": len(swapped),
        "marked_share": res.frames_marked / len(swapped) if swapped else None,  # searched ones too, as verify counts
        "clip_marked": res.marked if swapped else None,
        "model_id": res.model_code,  # named only when certain (`verify.MODEL_ID_Z`)
        "model_id_z": res.model_code_z,
        "z_mean": float(np.mean(per)) if per else None,
        "z_p10": float(np.percentile(per, 10)) if per else None,
        "psnr_min": float(min(sw.psnr)) if sw.psnr else None,
        "face_ssim_min": float(min(sw.ssim)) if sw.ssim else None,
    } | ({"crops": write_crops(sw.crops, work / f"crops_{path.stem}.png")} if sw.crops is not None else {})


def write_crops(crops: np.ndarray, path) -> str:
    write_image(path, crops)
    return str(path)


def still_row(model, path, work, fa) -> dict:
    sw = Swapper(model, SwapOptions(to="b", swap_all=True))
    img = read_image(path)
    out = sw.swap_frame(img, still=True)
    if np.array_equal(img, out):
        return {"swapped": 0}
    row = {"swapped": 1}
    for ext, q in ((".png", 95), (".jpg", 90)):
        dst = work / f"{path.stem}{ext}"
        write_image(dst, out, quality=q)
        r = verify_frames(dst, [read_image(dst)], fa, still=True)  # a picture: read in the ring tier too
        row[f"marked{ext}"] = r.marked
        row[f"z{ext}"] = round(r.mean_z, 2)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--only", help="comma-separated clip and still names (default: all)")
    args = ap.parse_args()
    keep = set(args.only.split(",")) if args.only else None
    work = OUT / "watermark_clips"
    work.mkdir(parents=True, exist_ok=True)
    fa = verify_analyzer()
    t = time.perf_counter()
    clips = {
        p.stem: clip_row(args.model, p, args.frames, work, fa)
        for p in sorted((DATA / "clips").glob("*.mp4"))
        if keep is None or p.stem in keep
    }
    for name, r in clips.items():
        print(name, r, flush=True)
    stills = {
        p.stem: still_row(args.model, p, work, fa)
        for p in sorted((DATA / "stills").glob("*.jpg"))
        if keep is None or p.stem in keep
    }
    for name, r in stills.items():
        print(name, r, flush=True)
    save("watermark_clips", {"clips": clips, "stills": stills, "seconds": time.perf_counter() - t})


if __name__ == "__main__":
    main()
