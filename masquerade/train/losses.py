"""Losses: mask-weighted L1 and SSIM, as pure tensor functions."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _gauss(window: int, sigma: float, device, dtype) -> torch.Tensor:
    x = torch.arange(window, device=device, dtype=dtype) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, window, window).contiguous()


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM (Wang et al. 2004) of (N, 3, H, W) images in [0, 1], Gaussian window, mean over channels."""
    k = _gauss(window, sigma, x.device, x.dtype)
    pad = window // 2
    c1, c2 = 0.01**2, 0.03**2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, (pad,) * 4, mode="reflect"), k, groups=3)

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx**2
    vy = blur(y * y) - my**2
    cxy = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean(1, keepdim=True)


def weighted_mean(t: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (t * w).sum() / w.sum().clamp_min(1e-6) / (t.shape[1] if t.dim() == 4 else 1)


def face_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    ssim_weight: float = 1.0,
    mask_target: torch.Tensor | None = None,
) -> torch.Tensor:
    """L1 + ssim_weight * DSSIM inside the (eyes/mouth-boosted) face weight map; plus mask L1 if a mask head."""
    rgb = pred[:, :3]
    loss = weighted_mean((rgb - target).abs(), weight)
    if ssim_weight:
        loss = loss + ssim_weight * weighted_mean((1 - ssim_map(rgb, target)) / 2, weight)
    if mask_target is not None and pred.shape[1] > 3:
        loss = loss + (pred[:, 3:4] - mask_target).abs().mean()
    return loss
