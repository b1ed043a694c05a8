"""Training augmentation as pure batched tensor functions.

A sample is drawn from a cached face by one `grid_sample`: a random similarity (rotation, zoom, shift, flip)
gives the target; the same transform after the seed's random grid warp gives the input. The warp (a 5x5
grid of control points jittered by noise, interpolated to a smooth field) is applied to inputs only: it is
what forces the shared encoder to learn a face code instead of copying pixels, so the decoders can swap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from masquerade.core.tensor_color import lab_to_rgb, rgb_to_lab


@dataclass
class AugmentConfig:
    rotation: float = 10.0  # degrees, +-
    zoom: float = 0.05  # +-
    shift: float = 0.05  # fraction of the crop, +-
    flip: float = 0.5  # probability
    warp: float = 1.0  # strength of the grid warp (1.0: the seed's)
    warp_grid: int = 5
    lab_l: float = 0.10  # +- relative change of lightness contrast, and +-10 L units offset scale
    lab_ab: float = 6.0  # +- shift of a and b


def random_affine(n: int, cfg: AugmentConfig, gen: torch.Generator, device=None) -> torch.Tensor:
    """(n, 2, 3) matrices in grid_sample's normalised coordinates: output -> source."""
    u = torch.rand(n, 5, generator=gen, device=device) * 2 - 1
    ang = u[:, 0] * math.radians(cfg.rotation)
    zoom = 1 + u[:, 1] * cfg.zoom
    sx = torch.where(torch.rand(n, generator=gen, device=device) < cfg.flip, -1.0, 1.0)
    cos, sin = torch.cos(ang) / zoom, torch.sin(ang) / zoom
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0] = cos * sx
    theta[:, 0, 1] = -sin
    theta[:, 1, 0] = sin * sx
    theta[:, 1, 1] = cos
    theta[:, :, 2] = u[:, 2:4] * cfg.shift * 2
    return theta


def warp_field(n: int, size: int, cfg: AugmentConfig, gen: torch.Generator, device=None) -> torch.Tensor:
    """(n, size, size, 2) smooth displacement in normalised units: a jittered control grid, interpolated.

    The seed jitters a 5x5 grid spanning the face by Gaussian noise of 5/80 of its half-width.
    """
    g = cfg.warp_grid
    noise = torch.randn(n, 2, g, g, generator=gen, device=device) * (5 / 80) * cfg.warp
    noise[:, :, [0, -1], :] = 0  # keep the border fixed so the warp stays inside the crop
    noise[:, :, :, [0, -1]] = 0
    field = F.interpolate(noise, size=(size, size), mode="bicubic", align_corners=True)
    return field.permute(0, 2, 3, 1)


def base_grid(n: int, size: int, device=None) -> torch.Tensor:
    eye = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], device=device).expand(n, 2, 3)
    return F.affine_grid(eye, (n, 1, size, size), align_corners=False)


def apply_affine(grid: torch.Tensor, theta: torch.Tensor, scale: float, shift: float = 0.0) -> torch.Tensor:
    """Map output grid points through `scale` (model crop -> cached crop), the random affine (about the model
    crop's centre), and `shift`, where the model crop's centre lies below the cached crop's (normalised units)."""
    pts = torch.einsum("nij,nhwj->nhwi", theta[:, :, :2], grid * scale) + theta[:, None, None, :, 2]
    return pts + torch.tensor([0.0, shift], device=pts.device) if shift else pts


def color_jitter(rgb: torch.Tensor, u: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """Lightness contrast/offset and a, b shifts in L*a*b*; `u` (N, 4) in [-1, 1] sets them per sample."""
    u = u.view(-1, 4, 1, 1)
    lab = rgb_to_lab(rgb)
    mean_l = lab[:, :1].mean((2, 3), keepdim=True)
    lum = (lab[:, :1] - mean_l) * (1 + u[:, :1] * cfg.lab_l) + mean_l + u[:, 1:2] * cfg.lab_l * 100
    ab = lab[:, 1:] + u[:, 2:4] * cfg.lab_ab
    return lab_to_rgb(torch.cat([lum, ab], 1))


def make_pair(
    src: torch.Tensor,
    weight: torch.Tensor,
    size: int,
    scale: float,
    cfg: AugmentConfig,
    gen: torch.Generator,
    shift: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """From cached faces (N, 3, H, W) in [0, 1] and their loss weights (N, C, H, W), make
    (warped input, target, target weights) at `size`; `scale` = model crop width / cached crop width, `shift`:
    the model crop's centre below the cached one's, in grid_sample's units (negative: above).

    Input and target share the affine and the colour jitter; only the input is grid-warped. Without the warp
    (`cfg.warp == 0`, the late phase) the input is the target itself, sampled and jittered once.
    """
    n = src.shape[0]
    theta = random_affine(n, cfg, gen, src.device)
    grid = base_grid(n, size, src.device)
    tgt_grid = apply_affine(grid, theta, scale, shift)
    sample = dict(mode="bilinear", align_corners=False)
    target = F.grid_sample(src, tgt_grid, padding_mode="border", **sample)
    w = F.grid_sample(weight, tgt_grid, padding_mode="zeros", **sample)
    if not cfg.warp:
        target = color_jitter(target, torch.rand(n, 4, generator=gen, device=src.device) * 2 - 1, cfg)
        return target, target, w
    in_grid = apply_affine(grid + warp_field(n, size, cfg, gen, src.device), theta, scale, shift)
    warped = F.grid_sample(src, in_grid, padding_mode="border", **sample)
    u = torch.rand(n, 4, generator=gen, device=src.device) * 2 - 1
    both = color_jitter(torch.cat([warped, target]), torch.cat([u, u]), cfg)
    return both[:n], both[n:], w
