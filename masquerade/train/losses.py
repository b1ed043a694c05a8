"""Losses: mask-weighted L1 and SSIM, as pure tensor functions."""

from __future__ import annotations

import torch


def blur_matrix(n: int, window: int, sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """(n, n) matrix M with M @ v = v blurred by a Gaussian window, reflect-padded at both ends.

    SSIM's five Gaussian blurs become two small matrix products each (M @ t @ M.T), which BLAS runs
    2-3x faster than 11x11 depthwise convolutions, forward and backward, on a CPU.
    """
    r = window // 2
    x = torch.arange(window, dtype=torch.float64) - r
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    rows = torch.arange(n).repeat_interleave(window)
    cols = (torch.arange(n)[:, None] + torch.arange(-r, r + 1)).reshape(-1).abs()  # reflect at 0
    cols = torch.where(cols > n - 1, 2 * (n - 1) - cols, cols)  # reflect at n - 1
    m = torch.zeros(n, n, dtype=torch.float64).index_put_((rows, cols), g.repeat(n), accumulate=True)
    return m.to(device=device, dtype=dtype)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM (Wang et al. 2004) of (N, 3, H, W) images in [0, 1], Gaussian window, mean over channels."""
    n = x.shape[0]
    mh = blur_matrix(x.shape[2], window, sigma, x.device, x.dtype)
    mw = mh if x.shape[3] == x.shape[2] else blur_matrix(x.shape[3], window, sigma, x.device, x.dtype)
    c1, c2 = 0.01**2, 0.03**2
    stats = mh @ torch.cat([x, y, x * x, y * y, x * y]).contiguous() @ mw.T
    mx, my, xx, yy, xy = stats.split(n)
    vx = xx - mx**2
    vy = yy - my**2
    cxy = xy - mx * my
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
