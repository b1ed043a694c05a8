"""`evaluate`: score a swapped video or image against its original, and a model on held-out faces.

Identity is judged by dlib's embedding (the swapped face should be nearer the rendered identity than the
original one), expression and pose by landmarks and head pose (they should match the original's),
realism and stability by face detection, flicker and seams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from masquerade.core.atomic import make_folder, write_bytes, write_json
from masquerade.core.errors import InputError
from masquerade.evaluate import metrics as M
from masquerade.faces.align import crop_face, estimate_matrix, transform_points
from masquerade.faces.analyze import FaceAnalyzer
from masquerade.faces.identity import distance, embed, nearer_side
from masquerade.faces.mask import face_mask
from masquerade.faceset.store import FaceSet
from masquerade.media import probe, read_frames, write_image
from masquerade.models.detail import load_bank
from masquerade.models.io import load_config, load_model
from masquerade.swap.pipeline import SwapOptions, Swapper
from masquerade.train.data import fixed_batch, is_holdout, load_side
from masquerade.train.losses import ssim_map

CROP = 96  # aligned crop side used for flicker


@dataclass
class Identities:
    target: np.ndarray
    original: np.ndarray | None
    all: dict[str, np.ndarray]
    target_name: str


def _identities(model_dir: Path | None, source_faces: Path | None, first_original: np.ndarray | None) -> Identities:
    if model_dir is not None:
        ids = load_config(model_dir).identities()
        if not ids or first_original is None:
            raise InputError(model_dir, "model has no identity embeddings to evaluate against")
        src = nearer_side(first_original, ids)[0]
        tgt = "b" if src == "a" else "a"
        return Identities(ids[tgt], ids[src], ids, tgt)
    if source_faces is not None:
        with FaceSet.open(source_faces) as fs:
            tgt = fs.mean_embedding()
        return Identities(tgt, None, {"target": tgt}, "target")
    raise InputError("evaluate", "give the model (-m MODEL) or the target face set (--source-faces FACESET)")


def evaluate_swap(
    swapped: str | Path,
    original: str | Path,
    model_dir: str | Path | None = None,
    source_faces: str | Path | None = None,
    max_frames: int = 300,
    analyzer: FaceAnalyzer | None = None,
) -> dict:
    """Per-frame metrics of SWAPPED against ORIGINAL (frame i against frame i) and their summaries."""
    swapped, original = Path(swapped), Path(original)
    s_info, o_info = probe(swapped), probe(original)
    if (s_info.width, s_info.height) != (o_info.width, o_info.height):
        raise InputError(
            swapped,
            f"is {s_info.width}x{s_info.height} but the original is {o_info.width}x{o_info.height}: "
            "evaluate compares a swap with the very input it was made from",
        )
    n = min(s_info.frames, o_info.frames) or 1
    every = max(1, math.ceil(n / max_frames))
    fa = analyzer or FaceAnalyzer(detector="hog", embeddings=True, quality=True)
    rows: list[dict] = []
    prev: tuple[np.ndarray, np.ndarray] | None = None  # the previous (swapped, original) frames
    ids: Identities | None = None
    orig_embs: list[np.ndarray] = []
    examples: list[np.ndarray] = []
    pairs = zip(read_frames(swapped), read_frames(original), strict=False)
    for k, (fs, fo) in enumerate(pairs):
        if k >= n:
            break
        if k % every:
            prev = (fs.image, fo.image)
            continue
        row: dict = {"frame": k}
        faces_o = fa(fo.image)
        if not faces_o:
            prev = (fs.image, fo.image)
            continue
        o = faces_o[0]
        orig_embs.append(o.embedding)
        if ids is None:
            ids = _identities(
                Path(model_dir) if model_dir else None, Path(source_faces) if source_faces else None, o.embedding
            )
        faces_s = fa(fs.image)
        row["detected"] = float(bool(faces_s))
        # the swapped face is the detection nearest the original face's position
        if faces_s:
            c = o.landmarks.mean(0)
            s = min(faces_s, key=lambda f: float(np.linalg.norm(f.landmarks.mean(0) - c)))
            original_id = ids.original if ids.original is not None else np.mean(orig_embs, 0)
            row.update(M.identity_scores(s.embedding, ids.target, original_id, ids.all, ids.target_name))
            row["landmark_error"] = M.landmark_error(s.landmarks, o.landmarks)
            row["mouth_error"] = M.mouth_error(s.landmarks, o.landmarks)
            row["sharpness"] = M.sharpness_ratio(fs.image, s.landmarks, fo.image, o.landmarks)
            row["pose_error"] = M.pose_error(s.pose, o.pose)
        mask = face_mask(fo.image.shape[:2], o.landmarks)
        row["seam"] = M.seam_strength(fs.image, fo.image, mask)
        row["edge_color"] = M.edge_color_error(fs.image, fo.image, o.landmarks)
        m = estimate_matrix(o.landmarks, CROP, 0.1)
        crop_s, crop_o = crop_face(fs.image, m, CROP), crop_face(fo.image, m, CROP)
        cmask = face_mask((CROP, CROP), transform_points(m, o.landmarks))
        if prev is not None:  # change since the previous frame, in this frame's face region, output vs input
            d_out = M.face_change(crop_face(prev[0], m, CROP), crop_s, cmask)
            d_in = M.face_change(crop_face(prev[1], m, CROP), crop_o, cmask)
            row["flicker"] = (d_out + 0.5) / (d_in + 0.5)  # +0.5: a still face does not divide by ~0
        prev = (fs.image, fo.image)
        if len(examples) < 6 and k % max(1, n // 6) == 0:
            examples.append(np.hstack([crop_face(fo.image, m, 128), crop_face(fs.image, m, 128)]))
        rows.append(row)
    if not rows:
        raise InputError(original, "no face found in the original: nothing to evaluate")
    keys = [
        "dist_target",
        "dist_original",
        "win",
        "top1",
        "landmark_error",
        "mouth_error",
        "pose_error",
        "sharpness",
        "edge_color",
        "detected",
        "flicker",
        "seam",
    ]
    summary = {k: M.summarize([r.get(k) for r in rows]) for k in keys}
    report = {
        "swapped": str(swapped),
        "original": str(original),
        "frames_scored": len(rows),
        "target_identity": ids.target_name if ids else None,
        "id_win_rate": summary["win"].get("mean"),
        "top1_retrieval": summary["top1"].get("mean"),
        "summary": summary,
        "frames": rows,
    }
    report["_examples"] = examples
    return report


@torch.no_grad()
def reconstruction(model_dir: str | Path, max_faces: int = 64) -> dict:
    """SSIM and PSNR of A->A and B->B on the held-out faces (every Nth face id, never trained on)."""
    lm = load_model(model_dir, "cpu")
    cfg = lm.config
    out = {}
    for side in ("a", "b"):
        try:
            data = load_side(cfg.facesets.get(side, []), 2 * cfg.size, cfg.holdout_every, split="holdout")
        except InputError:
            out[side] = {"n": 0}
            continue
        x = fixed_batch(data, max_faces, cfg.size, cfg.padding, cfg.lift)[0]
        y = lm.net(x, side)[:, :3]
        ssim = ssim_map(y, x).mean((1, 2, 3))
        psnr = [M.psnr(a, b) for a, b in zip(y.numpy(), x.numpy(), strict=True)]
        out[side] = {"n": int(len(x)), "ssim": float(ssim.mean()), "psnr": float(np.mean(psnr))}
    return out


def _region_scores(out: np.ndarray, real: np.ndarray, landmarks: np.ndarray) -> tuple[float, float]:
    """SSIM and PSNR of `out` against `real` inside the face hull's bounding box, at the frame's resolution."""
    x0, y0 = np.floor(landmarks.min(0)).astype(int).clip(0)
    x1, y1 = np.ceil(landmarks.max(0)).astype(int) + 1
    a, b = (torch.from_numpy(im[y0:y1, x0:x1]).permute(2, 0, 1)[None].float() / 255 for im in (out, real))
    inside = face_mask(real.shape[:2], landmarks, blur=0)[y0:y1, x0:x1] > 0.5
    ssim = float(ssim_map(a, b)[0, 0].numpy()[inside].mean())
    return ssim, M.psnr(a[0].permute(1, 2, 0).numpy()[inside], b[0].permute(1, 2, 0).numpy()[inside])


OWN_RADIUS = 60  # frames: a face is not rebuilt with detail from its own neighbours (2 s at 30 fps)


@torch.no_grad()
def rebuild(model_dir: str | Path, side: str = "b", max_faces: int = 12) -> dict:
    """Native-resolution rebuild: held-out faces of `side` rendered by its own decoder and put back into their
    own frames by the swap path (colour match, blend, mark), scored against the real frame inside the face.

    Unlike the reconstruction score at the model's pixels, blur at the frame's resolution, invented noise
    and compositing artefacts all cost here, so sharpness cannot be bought with noise unnoticed.

    Also the identity floor: the rebuilt faces' and the real faces' distance to the side's mean identity. A
    swap cannot come nearer the target than its own decoder's rebuild of the target's faces (d6:d3 at 10
    minutes: 0.43 rebuilt, 0.30 real), so a distance above the 0.40 line is told apart from a transfer gap.
    """
    lm = load_model(model_dir, "cpu")
    cfg = lm.config
    held: list = []
    for path in cfg.facesets.get(side, []):
        with FaceSet.open(path) as fs:
            held += [r for r in fs if is_holdout(r.id, cfg.holdout_every)]
    held = [held[int(i)] for i in np.linspace(0, len(held) - 1, min(max_faces, len(held)))] if held else []
    wanted: dict[str, dict[int, list]] = {}
    for r in held:
        wanted.setdefault(r.source, {}).setdefault(r.frame_index, []).append(r.face)
    # detail 0 and the model's own mouth: the model's own rendering is scored; the input's band or mouth, taken
    # from the very frame being rebuilt, would be the truth itself. With the side's own faces kept beside the
    # model, also scored with their detail ("own_"), none taken from within OWN_RADIUS frames of the face rebuilt.
    swapper = Swapper(lm, SwapOptions(to=side, swap_all=True, smooth=0, detail=0, mouth="model", eyes="model"))
    bank = load_bank(lm.path, side)
    own = (
        Swapper(lm, SwapOptions(to=side, swap_all=True, smooth=0, detail_from="target", mouth="model", eyes="model"))
        if bank
        else None
    )
    ssim, psnr, dist, dist_real, own_ssim, own_psnr, own_dist = [], [], [], [], [], [], []
    target = lm.identity.get(side)
    for source, frames in wanted.items():
        if not Path(source).exists():
            continue
        for fr in read_frames(source):
            for face in frames.get(fr.index, []):
                out = swapper.swap_frames([fr.image], [[face]])[0]
                s, p = _region_scores(out, fr.image, face.landmarks)
                ssim.append(s)
                psnr.append(p)
                if target is not None:  # the rebuilt face keeps the real one's pose: embedded at its landmarks
                    dist.append(distance(embed(out, face.landmarks), target))
                    real = face.embedding if face.embedding is not None else embed(fr.image, face.landmarks)
                    dist_real.append(distance(real, target))
                if own is not None and bank is not None:
                    own.use_bank(side, bank.without(source, fr.index, OWN_RADIUS))
                    out = own.swap_frames([fr.image], [[face]])[0]
                    s, p = _region_scores(out, fr.image, face.landmarks)
                    own_ssim.append(s)
                    own_psnr.append(p)
                    if target is not None:
                        own_dist.append(distance(embed(out, face.landmarks), target))
            if fr.index >= max(frames):
                break
    if not ssim:
        return {"n": 0}
    res = {"n": len(ssim), "ssim": float(np.mean(ssim)), "psnr": float(np.mean(psnr))}
    if dist:
        res.update(dist_target=float(np.mean(dist)), dist_target_real=float(np.mean(dist_real)))
    if own_ssim:
        res.update(own_ssim=float(np.mean(own_ssim)), own_psnr=float(np.mean(own_psnr)))
    if own_dist:
        res.update(own_dist_target=float(np.mean(own_dist)))
    return res


def write_report(report: dict, out_dir: str | Path) -> Path:
    """report.json, summary.png (before|after crops and per-frame identity distance) and index.html."""
    out = Path(out_dir)
    make_folder(out)
    examples = report.pop("_examples", [])
    write_json(out / "report.json", report)
    panels = []
    if examples:
        panels.append(np.vstack(examples))
    plot = _plot([r.get("dist_target") for r in report["frames"]], [r.get("dist_original") for r in report["frames"]])
    if panels:
        h = panels[0].shape[0]
        plot = cv2.resize(plot, (int(plot.shape[1] * h / plot.shape[0]), h))
        panels.append(plot)
        write_image(out / "summary.png", np.hstack(panels))
    else:
        write_image(out / "summary.png", plot)
    stats = ("mean", "median", "p10", "p90")
    rows = "".join(
        f"<tr><td>{k}</td>" + "".join(f"<td>{v[s]:.3f}</td>" for s in stats) + "</tr>"
        for k, v in report["summary"].items()
        if v.get("n")
    )
    write_bytes(
        out / "index.html",
        (
            "<!doctype html><meta charset=utf-8><title>masquerade evaluation</title>"
            f"<h1>Evaluation of {report['swapped']}</h1><p>ID win rate: {report.get('id_win_rate')}; top-1: "
            f"{report.get('top1_retrieval')}; frames: {report['frames_scored']}</p>"
            "<table border=1><tr><th>metric</th><th>mean</th><th>median</th><th>p10</th><th>p90</th></tr>"
            f"{rows}</table><p>Left: original | swapped crops. Right: identity distance per frame "
            "(green: to the target, red: to the original).</p><img src=summary.png>"
        ).encode(),
    )
    return out


def _plot(target: list, original: list, w: int = 400, h: int = 300) -> np.ndarray:
    img = np.full((h, w, 3), 255, np.uint8)
    vals = [v for v in target + original if v is not None]
    if not vals:
        return img
    top = max(1.0, max(vals))
    cv2.line(img, (0, int(h - 0.6 / top * h)), (w, int(h - 0.6 / top * h)), (200, 200, 200), 1)
    for series, color in ((target, (0, 160, 0)), (original, (200, 0, 0))):  # RGB: green, red
        pts = [
            (int(i * (w - 1) / max(len(series) - 1, 1)), int(h - v / top * h))
            for i, v in enumerate(series)
            if v is not None
        ]
        if len(pts) > 1:
            cv2.polylines(img, [np.array(pts, np.int32)], False, color, 2)
    return img
