"""Putting a face back into a frame: alpha blending, or Poisson (OpenCV seamless clone)."""

from __future__ import annotations

import cv2
import numpy as np

MODES = ("alpha", "poisson")


def alpha_blend(frame: np.ndarray, face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """frame * (1 - mask) + face * mask; pixels where mask == 0 are returned unchanged, bit for bit."""
    m = np.clip(mask, 0, 1)[..., None].astype(np.float32)
    base = frame.astype(np.float32)
    out = np.nan_to_num(face.astype(np.float32) - base) * m  # 0 where the mask is 0: frame + 0.5 floors to frame
    out += base + 0.5
    return np.clip(out, 0, 255).astype(np.uint8)


def poisson_blend(frame: np.ndarray, face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Seamless clone of the face's gradients into the frame inside the mask; the mask's soft edge is then
    alpha-blended so that pixels outside the mask stay unchanged."""
    hard = (mask > 0.5).astype(np.uint8) * 255
    ys, xs = np.nonzero(hard)
    if len(xs) < 16:
        return alpha_blend(frame, face, mask)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    h, w = frame.shape[:2]
    if x0 <= 1 or y0 <= 1 or x1 >= w - 2 or y1 >= h - 2:  # seamlessClone needs the region inside the frame
        return alpha_blend(frame, face, mask)
    center = (int((x0 + x1 + 1) // 2), int((y0 + y1 + 1) // 2))
    cloned = cv2.seamlessClone(np.clip(face, 0, 255).astype(np.uint8), frame, hard, center, cv2.NORMAL_CLONE)
    return alpha_blend(frame, cloned, mask)


def blend(frame: np.ndarray, face: np.ndarray, mask: np.ndarray, mode: str = "alpha") -> np.ndarray:
    if mode == "alpha":
        return alpha_blend(frame, face, mask)
    if mode == "poisson":
        return poisson_blend(frame, face, mask)
    raise ValueError(f"unknown blend mode {mode!r}")
