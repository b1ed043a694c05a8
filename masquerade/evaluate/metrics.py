"""Per-frame swap metrics as plain functions on faces, landmarks and images."""

from __future__ import annotations

import cv2
import numpy as np

from masquerade.faces.identity import distance


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


def interocular(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[45] - landmarks[36]))


def landmark_error(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean 68-point distance normalised by the reference's inter-ocular distance (outer eye corners)."""
    return float(np.linalg.norm(pred - ref, axis=1).mean() / max(interocular(ref), 1e-6))


def pose_error(pred: tuple[float, float, float], ref: tuple[float, float, float]) -> float:
    """Mean absolute yaw/pitch/roll difference in degrees."""
    return float(np.mean(np.abs(np.subtract(pred, ref))))


def face_change(prev: np.ndarray, cur: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute grey-level change between two aligned face crops inside a mask."""
    d = np.abs(
        cv2.cvtColor(cur, cv2.COLOR_RGB2GRAY).astype(np.float32)
        - cv2.cvtColor(prev, cv2.COLOR_RGB2GRAY).astype(np.float32)
    )
    return float((d * mask).sum() / max(mask.sum(), 1e-6))


def seam_strength(frame: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """Gradient energy on the mask's border band in `frame` relative to `reference` (1.0: no visible seam)."""
    band = ((mask > 0.2) & (mask < 0.8)).astype(np.float32)
    band = cv2.dilate(band, np.ones((5, 5), np.uint8))
    if band.sum() < 10:
        return float("nan")

    def grad(img: np.ndarray) -> np.ndarray:
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))

    return float((grad(frame) * band).sum() / max((grad(reference) * band).sum(), 1e-6))


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)
