"""The project's key curve: swap quality against CPU-minutes of training.

For each identity pair, extract both clips, train a model (`train`'s defaults unless told) cumulatively to
each budget (default 5, 10, 20 minutes), and at each point swap the first frames of A's clip to B's face and
evaluate: ID win rate, distances, landmark error, pose error, and SSIM/PSNR of A->A and B->B on held-out faces.
Run: python bench/quality_vs_time.py [--pairs d18:d19,d6:d3] [--minutes 5,10,20] [--frames 90]
Figures only; nothing is asserted. Results: bench/out/quality_vs_time.json.
"""

from __future__ import annotations

import argparse
import shutil
import time

import cv2
import numpy as np
from common import OUT, clip, save

from masquerade.evaluate.report import evaluate_swap, rebuild, reconstruction
from masquerade.faces.align import crop_face, estimate_matrix
from masquerade.faces.analyze import FaceAnalyzer
from masquerade.faces.identity import distance
from masquerade.faceset.extract import ExtractOptions, extract
from masquerade.media import read_frames, write_image
from masquerade.swap.pipeline import SwapOptions, Swapper
from masquerade.swap.run import VideoOptions, swap_video
from masquerade.train.loop import TrainConfig, train


def still(original, swapped, frame: int, path) -> None:
    """input | output aligned face crops at 256 px, and below them a 2x zoom of eyes, nose and mouth."""
    pair = [f.image for f in read_frames(original) if f.index == frame][:1]
    pair += [f.image for f in read_frames(swapped) if f.index == frame][:1]
    faces = FaceAnalyzer("hog")(pair[0])
    if len(pair) < 2 or not faces:
        return
    m = estimate_matrix(faces[0].landmarks, 256, 0.15)
    crops = [crop_face(img, m, 256) for img in pair]
    zooms = [cv2.resize(c[72:200, 64:192], (256, 256), interpolation=cv2.INTER_CUBIC) for c in crops]
    write_image(path, np.vstack([np.hstack(crops), np.hstack(zooms)]))


class UnmarkedSwapper(Swapper):
    """For diagnosis only, never for output: the swap without its mark. The mark (about 4.7 grey levels rms on
    d3) moves dlib's identity embedding of a face by about 0.27 (noise of the same rms: 0.04), so the distance
    to the target measured on swap's output mixes the model's identity with the mark's effect on the
    recognizer; this tells them apart."""

    def _mark(self, roi, *args, **kwargs):
        return roi


def unmarked_distance(model, a, frames: int, mask: str, detail: float, detail_from: str = "both") -> float | None:
    """Mean distance to B's identity of every third of A's first `frames` frames, swapped without the mark
    (only those frames are swapped, and none is encoded)."""
    sw = UnmarkedSwapper(model, SwapOptions(to="b", mask=mask, detail=detail, detail_from=detail_from))
    target = sw.identity.get("b")
    if target is None:
        return None
    fa = FaceAnalyzer("hog", embeddings=True)
    dist = []
    for fr in read_frames(a):
        if fr.index >= frames:
            break
        if fr.index % 3 == 0:
            found = fa(sw.swap_frame(fr.image))
            dist += [distance(found[0].embedding, target)] if found else []
    return float(np.mean(dist)) if dist else None


def point(model, a, frames: int, work, tag: str, mask: str, detail: float, detail_from: str = "both") -> dict:
    swapped = work / f"swapped_{tag}.mp4"
    opts = SwapOptions(to="b", mask=mask, detail=detail, detail_from=detail_from)
    swap_video(Swapper(model, opts), a, swapped, VideoOptions(end=f"{frames}f"))
    ev = evaluate_swap(swapped, a, model, max_frames=frames)
    still(a, swapped, frames // 2, work / f"still_{tag}.png")
    s = ev["summary"]
    rec = reconstruction(model)
    reb = rebuild(model)
    return {
        "id_win_rate": ev["id_win_rate"],
        "top1": ev["top1_retrieval"],
        "dist_target": s["dist_target"].get("mean"),
        "dist_original": s["dist_original"].get("mean"),
        "dist_target_unmarked": unmarked_distance(model, a, frames, mask, detail, detail_from),
        "landmark_error": s["landmark_error"].get("mean"),
        "mouth_error": s["mouth_error"].get("mean"),
        "pose_error": s["pose_error"].get("mean"),
        "detected": s["detected"].get("mean"),
        "flicker": s["flicker"].get("mean"),
        "sharpness": s["sharpness"].get("median"),
        "sharpness_p10": s["sharpness"].get("p10"),
        "sharpness_p90": s["sharpness"].get("p90"),
        "edge_color": s["edge_color"].get("mean"),
        "rebuild_ssim": reb.get("ssim"),
        "rebuild_psnr": reb.get("psnr"),
        "rebuild_dist_target": reb.get("dist_target"),  # the identity floor: B's decoder on B's own faces
        # the same with B's own detail from faces at least 2 s away (models.detail), when the model keeps them
        "rebuild_own_ssim": reb.get("own_ssim"),
        "rebuild_own_psnr": reb.get("own_psnr"),
        "rebuild_own_dist_target": reb.get("own_dist_target"),
        "ssim_a": rec["a"].get("ssim"),
        "ssim_b": rec["b"].get("ssim"),
        "psnr_a": rec["a"].get("psnr"),
        "psnr_b": rec["b"].get("psnr"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default="d18:d19,d6:d3,s29:s20")
    ap.add_argument("--minutes", default="5,10,20", help="cumulative training budgets")
    ap.add_argument("--frames", type=int, default=90, help="frames of A swapped and evaluated at each point")
    d = TrainConfig()
    ap.add_argument("--model", default=d.model)
    ap.add_argument("--batch-size", type=int, help="default: the model's own")
    ap.add_argument("--lr", type=float, help="default: the model's own")
    ap.add_argument("--anneal", type=float, default=d.anneal, help="share of each run with an annealed lr")
    ap.add_argument("--unwarp", type=float, default=d.unwarp, help="share of each run trained without the warp")
    ap.add_argument("--ssim-weight", type=float, default=d.ssim_weight, help="weight of DSSIM beside L1")
    ap.add_argument("--tag", default="", help="suffix for the result file (to compare settings)")
    ap.add_argument("--mask", default=SwapOptions().mask, help="swap's blend mask (skin or hull)")
    ap.add_argument("--detail", type=float, default=SwapOptions().detail, help="swap's --detail (0: off)")
    ap.add_argument("--detail-from", default=SwapOptions().detail_from, help="swap's --detail-from")
    ap.add_argument("--rate", type=float, help="iterations per second of this model alone: budgets in iterations")
    args = ap.parse_args()
    own = TrainConfig(model=args.model, batch_size=args.batch_size, lr=args.lr).with_model_defaults()
    args.lr, args.batch_size = own.lr, own.batch_size  # recorded in the results as used
    budgets = [float(m) for m in args.minutes.split(",")]
    results: dict = {"settings": vars(args), "pairs": {}}
    for pair in args.pairs.split(","):
        na, nb = pair.split(":")
        work = OUT / f"qvt_{na}_{nb}{args.tag}"
        a, b = clip(na), clip(nb)
        for name, c in ((na, a), (nb, b)):
            extract([c], OUT / f"faces_{name}", ExtractOptions(every=2))
        model = work / "model"
        if model.exists():
            shutil.rmtree(model)
        work.mkdir(parents=True, exist_ok=True)
        curve, done = [], 0.0
        for m in budgets:
            t = time.monotonic()
            res = train(
                [OUT / f"faces_{na}"],
                [OUT / f"faces_{nb}"],
                model,
                TrainConfig(
                    model=args.model,
                    minutes=None if args.rate else m - done,
                    iterations=round(m * 60 * args.rate) if args.rate else None,
                    batch_size=args.batch_size,
                    lr=args.lr,
                    anneal=args.anneal,
                    unwarp=args.unwarp,
                    ssim_weight=args.ssim_weight,
                    save_every=500,
                    preview_every=500,
                ),
            )
            done = m
            row = {
                "minutes": m,
                "iteration": res.iteration,
                "train_seconds": round(res.seconds, 1),
                "loss_a": res.loss_a,
                "loss_b": res.loss_b,
                **point(model, a, args.frames, work, f"{m:g}", args.mask, args.detail, args.detail_from),
            }
            row["wall_seconds"] = round(time.monotonic() - t, 1)  # this step: training plus evaluation
            curve.append(row)
            results["pairs"][pair] = curve
            save(f"quality_vs_time{args.tag}", results)  # after every point: a stopped run keeps what it measured
            print(
                f"{pair} {m:5.1f} min it {res.iteration:6d}  ID win {row['id_win_rate']:.2f}  "
                f"d_target {row['dist_target']:.3f} (unmarked {row['dist_target_unmarked'] or 0:.3f})  "
                f"d_orig {row['dist_original']:.3f}  "
                f"lmk {row['landmark_error']:.3f}  mouth {row['mouth_error']:.3f}  sharp {row['sharpness']:.2f}  "
                f"edge {row['edge_color']:.1f}  rebuild {row['rebuild_ssim'] or 0:.3f}/{row['rebuild_psnr'] or 0:.1f} "
                f"floor {row['rebuild_dist_target'] or 0:.3f}  "
                f"SSIM a/b {row['ssim_a']:.3f}/{row['ssim_b']:.3f}",
                flush=True,
            )
    print(f"saved {save(f'quality_vs_time{args.tag}', results)}")


if __name__ == "__main__":
    main()
