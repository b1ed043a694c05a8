"""Per-frame swap metrics as plain functions on faces, landmarks and images."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from masquerade.core.tensor_color import rgb_to_lab
from masquerade.faces.align import interocular
from masquerade.faces.identity import distance
from masquerade.faces.mask import feather, hull_mask


def summarize(values: list[float]) -> dict:
    """mean, median, p10, p90 and count of the finite values."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    if not len(v):
        return {"n": 0}
    return {
        "n": int(len(v)),
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "p10": float(np.percentile(v, 10)),
        "p90": float(np.percentile(v, 90)),
    }


def identity_scores(
    emb: np.ndarray, target: np.ndarray, original: np.ndarray, identities: dict[str, np.ndarray], target_name: str
) -> dict:
    """Distances of a swapped face to the target and original identities, whether the target is nearer
    (an ID "win"), and whether the target is the nearest of all identities given (top-1 retrieval)."""
    d_t, d_o = distance(emb, target), distance(emb, original)
    nearest = min(identities, key=lambda k: distance(emb, identities[k])) if identities else target_name
    return {"dist_target": d_t, "dist_original": d_o, "win": float(d_t < d_o), "top1": float(nearest == target_name)}


def landmark_error(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean 68-point distance normalised by the reference's inter-ocular distance (outer eye corners)."""
    return float(np.linalg.norm(pred - ref, axis=1).mean() / max(interocular(ref), 1e-6))


def mouth_error(pred: np.ndarray, ref: np.ndarray) -> float:
    """Inner-lip opening (62-66) and mouth width (48-54) differences, averaged, over the reference's
    inter-ocular distance: the mouth's own error, which the 68-point mean dilutes among jaw and brows."""

    def shape(p: np.ndarray) -> np.ndarray:
        return np.array([np.linalg.norm(p[66] - p[62]), np.linalg.norm(p[54] - p[48])])

    return float(np.abs(shape(pred) - shape(ref)).mean() / max(interocular(ref), 1e-6))


def _grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)


def laplacian_variance(img: np.ndarray, landmarks: np.ndarray, inset: float = 0.1) -> float:
    """Variance of the Laplacian inside the 68-point hull, shrunk by `inset` x the face's width: how much fine
    detail the face shows. The inset keeps the jaw's outline and a blend seam, which are not detail, out."""
    px = max(1, int(round(inset * float(np.ptp(landmarks[:, 0])))))
    m = feather(hull_mask(img.shape[:2], landmarks), erode=px) > 0.5
    if m.sum() < 16:
        return float("nan")
    return float(cv2.Laplacian(_grey(img), cv2.CV_32F)[m].var())


def sharpness_ratio(out: np.ndarray, out_lms: np.ndarray, inp: np.ndarray, inp_lms: np.ndarray) -> float:
    """Detail of the output face over the input face's (1.0: as sharp as the real face). For scale, the real
    face shrunk to a model's pixels and scaled back scores 0.12-0.42 at 64 px, 0.43-0.81 at 128 px and
    0.81-1.0 at 256 px on d18, d6 and s29."""
    return laplacian_variance(out, out_lms) / max(laplacian_variance(inp, inp_lms), 1e-6)


def border_band(landmarks: np.ndarray, shape: tuple[int, int], width: float = 0.12) -> np.ndarray:
    """The inner band of the face hull (jaw, temples, brows) `width` x the face's width deep: where a pasted
    face meets the frame, and where a decoder's hair or background shows."""
    pts = np.asarray(landmarks, np.float32)
    hull = hull_mask(shape, pts[0:27])
    px = max(1, int(round(width * float(np.ptp(pts[:, 0])))))
    return (hull > 0.5) & (feather(hull, erode=px) <= 0.5)


def edge_color_error(swapped: np.ndarray, original: np.ndarray, landmarks: np.ndarray) -> float:
    """Mean CIE76 colour difference (Lab, 0-100 scale) between swapped and original frames in the face's
    border band: a colour seam or a smear of the other person's hair costs here."""
    band = border_band(landmarks, original.shape[:2])
    if band.sum() < 16:
        return float("nan")

    def lab(img: np.ndarray) -> torch.Tensor:
        px = torch.from_numpy(np.ascontiguousarray(img[band], np.float32) / 255)  # (K, 3)
        return rgb_to_lab(px.T[None, :, :, None])[0, :, :, 0]  # (3, K)

    return float(torch.linalg.vector_norm(lab(swapped) - lab(original), dim=0).mean())


def pose_error(pred: tuple[float, float, float], ref: tuple[float, float, float]) -> float:
    """Mean absolute yaw/pitch/roll difference in degrees."""
    return float(np.mean(np.abs(np.subtract(pred, ref))))


def face_change(prev: np.ndarray, cur: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute grey-level change between two aligned face crops inside a mask."""
    d = np.abs(_grey(cur) - _grey(prev))
    return float((d * mask).sum() / max(mask.sum(), 1e-6))


def seam_strength(frame: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """Gradient energy on the mask's border band in `frame` relative to `reference` (1.0: no visible seam)."""
    band = ((mask > 0.2) & (mask < 0.8)).astype(np.float32)
    band = cv2.dilate(band, np.ones((5, 5), np.uint8))
    if band.sum() < 10:
        return float("nan")

    def grad(img: np.ndarray) -> np.ndarray:
        g = _grey(img)
        return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))

    return float((grad(frame) * band).sum() / max((grad(reference) * band).sum(), 1e-6))


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)
