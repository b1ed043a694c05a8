"""The target's own fine detail laid on what the model painted: the nearest of the target's real faces
(`models.detail`), warped onto the painting by optical flow, its fine band kept where the two agree.

Why: a 64 px decoder paints the target's eyes, brows and lips as soft blobs; the target's real faces hold their
lashes, lid lines, brow hairs and lip edges. Chosen by likeness to the painting (the same gaze, mouth and pose
as far as the target's footage has them) and warped onto it, that detail follows what the model painted, not
the input. Where the two still differ after the warp (an expression the target's footage lacks) it is withheld.
Small pure functions over arrays: the swap engine composes them (`Swapper._put_back`).
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB = 32  # px a side of the thumbnails faces are matched by
BAND = 1.0  # model pixels: the band taken is finer than about this (a Gaussian's sigma)
# The band takes the place of the painting's own in that band rather than adding to it: added, the decoder's own
# faint content there, changing from frame to frame, stayed under the exemplar's. 10-minute models, 60 frames,
# `both`: flicker d6 1.045 -> 0.998, d18 1.036 -> 1.028, s29 1.155 -> 1.079; B's rebuild with its own
# detail +0.5 to +1.8 dB; distance to the target d6 0.421 -> 0.419, s29 0.509 -> 0.501, d18 0.302 -> 0.311.
GATE = 25.0  # grey levels of disagreement, at the model's scale, at which the band is mostly withheld
FLOW_BLUR = 0.8  # model pixels: the exemplar is blurred to about the painting's softness before the flow
MAX_GAIN = 1.5  # the exemplar's contrast is matched to the painting's, by at most this factor
# DIS's FAST preset: as good as MEDIUM on s29 and d18 (distance, flicker within a run's noise), 5.5 ms less a face
FLOW_PRESET = cv2.DISOPTICAL_FLOW_PRESET_FAST


def mean_spread(img: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """The mean and the standard deviation of `img` under `weight`."""
    w = weight / max(float(weight.sum()), 1e-6)
    mean = float((img * w).sum())
    return mean, float(np.sqrt((((img - mean) ** 2) * w).sum()))


def normalized(img: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """`img` less its mean, over its spread, both measured under `weight`: matching ignores brightness and
    contrast (the painting is colour-matched to the input later)."""
    mean, spread = mean_spread(img, weight)
    return (img - mean) / (spread + 1e-3)


def thumbnails(faces: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(N, THUMB * THUMB) float32: each face's thumbnail, normalized and weighted, for `nearest`. `weight`:
    (THUMB, THUMB) where faces are compared (the face's hull)."""
    small = [cv2.resize(f.astype(np.float32), (THUMB, THUMB), interpolation=cv2.INTER_AREA) for f in faces]
    return np.stack([(normalized(s, weight) * np.sqrt(weight)).ravel() for s in small]).astype(np.float32)


def nearest(thumbs: np.ndarray, painted: np.ndarray, weight: np.ndarray) -> int:
    """The index of the face most like the painted luma (any size), by weighted distance of thumbnails."""
    q = normalized(cv2.resize(painted.astype(np.float32), (THUMB, THUMB), interpolation=cv2.INTER_AREA), weight)
    q = (q * np.sqrt(weight)).ravel()
    return int(np.argmin(((thumbs - q) ** 2).sum(1)))


def own_band(exemplar: np.ndarray, painted: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(band, gate), both the exemplar's size: what makes the painted luma's fine band (finer than BAND model
    pixels) the exemplar's, warped onto the painting (the model's size, float), and where the two agree (0 to 1).
    `weight`: the face's hull at the exemplar's size, for matching brightness and contrast."""
    size = exemplar.shape[0]
    scale = size / painted.shape[0]  # exemplar pixels per model pixel
    up = cv2.resize(painted.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    ex = exemplar.astype(np.float32)
    soft = cv2.GaussianBlur(ex, (0, 0), FLOW_BLUR * scale)
    (mu_e, sd_e), (mu_p, sd_p) = mean_spread(soft, weight), mean_spread(up, weight)
    gain = min(sd_p / max(sd_e, 1e-3), MAX_GAIN)
    # where each pixel of the painting is found in the exemplar (both at the painting's softness)
    flow = cv2.DISOpticalFlow_create(FLOW_PRESET).calc(_u8(up), _u8((soft - mu_e) * gain + mu_p), None)
    gx, gy = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    warped = cv2.remap(ex, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    diff = warped * gain - up  # the band is linear: the exemplar's band less the painting's own (see BAND)
    band = diff - cv2.GaussianBlur(diff, (0, 0), BAND * scale)
    differ = cv2.GaussianBlur(diff + (mu_p - mu_e * gain), (0, 0), scale)
    return band, np.exp(-((differ / GATE) ** 2)).astype(np.float32)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)
