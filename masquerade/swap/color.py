"""Colour matching of a generated face to the face it replaces, using statistics inside the face mask.

Each function takes float32 RGB images in [0, 255] and a mask in [0, 1], and returns the adjusted `src`.
"""

from __future__ import annotations

import numpy as np
import torch

from masquerade.core.tensor_color import lab_to_rgb, rgb_to_lab

MODES = ("none", "mean-std", "lab-transfer", "hist-match")


def _stats(img: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = mask.reshape(-1, 1).astype(np.float64)
    px = img.reshape(-1, img.shape[-1]).astype(np.float64)
    total = max(w.sum(), 1e-6)
    mean = (px * w).sum(0) / total
    std = np.sqrt(((px - mean) ** 2 * w).sum(0) / total)
    return mean, std


def mean_std_transfer(src: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-channel shift and scale so src's masked mean and std equal ref's."""
    ms, ss = _stats(src, mask)
    mr, sr = _stats(ref, mask)
    return ((src - ms) * (sr / np.maximum(ss, 1e-6)) + mr).astype(np.float32)


def lab_transfer(src: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard et al. (2001) colour transfer in L*a*b* ("RCT"): mean/std transfer per L*a*b* channel."""
    out = mean_std_transfer(_to_lab(src), _to_lab(ref), mask)
    out[..., 0] = np.clip(out[..., 0], 0, 100)
    lab = torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1)[None]
    return lab_to_rgb(lab)[0].permute(1, 2, 0).numpy() * 255.0


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB in [0, 255] -> L*a*b*, through the same tensor conversion the trainer jitters colour in."""
    t = torch.from_numpy(np.clip(rgb / 255.0, 0, 1).astype(np.float32)).permute(2, 0, 1)[None]
    return rgb_to_lab(t)[0].permute(1, 2, 0).numpy()


def hist_match(src: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-channel histogram matching of the masked pixels (mask > 0.5), applied to the whole image."""
    sel = mask > 0.5
    if sel.sum() < 16:
        return src.astype(np.float32)
    out = np.empty_like(src, dtype=np.float32)
    q = np.linspace(0, 1, 257)
    for c in range(src.shape[-1]):
        s_q = np.quantile(src[..., c][sel], q)
        r_q = np.quantile(ref[..., c][sel], q)
        s_q = np.maximum.accumulate(s_q + np.arange(257) * 1e-6)  # strictly increasing for interp
        out[..., c] = np.interp(src[..., c], s_q, r_q)
    return out


def match_color(src: np.ndarray, ref: np.ndarray, mask: np.ndarray, mode: str = "lab-transfer") -> np.ndarray:
    src = src.astype(np.float32)
    if mode == "none":
        out = src
    elif mode == "mean-std":
        out = mean_std_transfer(src, ref, mask)
    elif mode == "lab-transfer":
        out = lab_transfer(src, ref, mask)
    elif mode == "hist-match":
        out = hist_match(src, ref, mask)
    else:
        raise ValueError(f"unknown colour mode {mode!r}")
    return np.clip(out, 0, 255)
