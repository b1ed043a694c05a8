"""Putting a face back into a frame: alpha blending, or Poisson (OpenCV seamless clone), and the input's
finest detail restored where the rendered face agrees with it."""

from __future__ import annotations

import cv2
import numpy as np

MODES = ("alpha", "poisson")
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
DETAIL_SIGMA = 0.3  # model pixels: the band restored is finer than about 3 of them across, what a model cannot render
DETAIL_GATE = 25.0  # grey levels of disagreement, at the model's scale, at which the band is mostly withheld


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


def restore_detail(
    out: np.ndarray,
    frame: np.ndarray,
    mask: np.ndarray,
    model_px: float,
    strength: float = 1.0,
    own: np.ndarray | None = None,
    from_input: bool = True,
) -> np.ndarray:
    """`out` (the frame with the face blended in) plus fine detail inside `mask`: the input frame's luma band
    finer than the model's pixels (`from_input`; `model_px`: frame pixels per model pixel) where render and
    input agree at the model's scale, and where they do not, the target's own (`own`: in frame pixels, what makes
    the painting's band the target's, already withheld where they differ; see `swap.exemplar`).

    Why the input's band: a 64 px model painted onto a 250 px face has nothing finer than about 8 frame pixels,
    and reads as a smear in a sharp frame. That band is grain, pores and the finest edges of the very frame, which
    carry little identity and move exactly with the face. Where the render differs from the input (a smile
    rendered closed, the target's eyes and brows) the input's edges would show as ghosts, so the band is withheld
    there: just where the target's own detail is wanted. Pixels outside the mask are returned unchanged, bit
    for bit.
    """
    if strength <= 0 or (own is None and not from_input):
        return out
    add = np.zeros(mask.shape, np.float32) if own is None else own
    if from_input:
        y_in = frame.astype(np.float32) @ LUMA
        band = y_in - cv2.GaussianBlur(y_in, (0, 0), DETAIL_SIGMA * model_px)
        differ = np.abs(cv2.GaussianBlur(out.astype(np.float32) @ LUMA - y_in, (0, 0), model_px))
        agree = np.exp(-((differ / DETAIL_GATE) ** 2))
        add = agree * band + (1 - agree) * add
    res = out.astype(np.float32) + 0.5
    res += (strength * np.clip(mask, 0, 1) * add)[..., None]
    return np.clip(res, 0, 255).astype(np.uint8)
