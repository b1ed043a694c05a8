"""Training data: every face of a side's face sets cached in memory as tensors, sampled in batches.

Faces are cached at twice the model's size (so rotation and zoom resample from more pixels than they
output) and at the face set's wide padding (so shifts never run out of picture). With the whole set in
memory, a batch is one vectorised `grid_sample`: no worker processes are needed for the model not to wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from masquerade.core.errors import InputError
from masquerade.faces.align import transform_points
from masquerade.faces.mask import face_mask, feature_mask
from masquerade.faceset.store import FaceSet
from masquerade.train.augment import AugmentConfig, make_pair

FEATURE_BOOST = 2.0  # eyes and mouth weigh 1 + this in the loss


def is_holdout(face_id: int, every: int) -> bool:
    """Every `every`-th face (by index id) is kept out of training, for evaluation."""
    return every > 0 and face_id % every == 0


@dataclass
class SideData:
    images: torch.Tensor  # (N, 3, W, W) uint8 RGB
    weights: torch.Tensor  # (N, 2, W, W) uint8: loss weight (scaled to 255 = 1 + boost), face mask
    padding: float
    embedding: np.ndarray  # mean identity embedding of the side

    def __len__(self) -> int:
        return self.images.shape[0]


def load_side(paths: list[str | Path], work_size: int, holdout_every: int = 0, split: str = "train") -> SideData:
    """Load every face of the given face sets (the train or holdout split) into memory."""
    imgs, wts, embs = [], [], []
    padding = None
    for path in paths:
        with FaceSet.open(path) as fs:
            if padding is None:
                padding = fs.padding
            elif abs(padding - fs.padding) > 1e-9:
                raise InputError(path, "face sets of one side must share one crop padding")
            scale = work_size / fs.size
            for rec in fs:
                if is_holdout(rec.id, holdout_every) != (split == "holdout"):
                    continue
                crop = fs.load_crop(rec)
                img = cv2.resize(crop, (work_size, work_size), interpolation=cv2.INTER_AREA)
                lms = transform_points(rec.face.matrix, rec.face.landmarks) * scale
                shape = (work_size, work_size)
                mask = face_mask(shape, lms)
                w = mask * (1 + FEATURE_BOOST * feature_mask(shape, lms)) / (1 + FEATURE_BOOST)
                imgs.append(np.ascontiguousarray(img))
                wts.append(np.stack([w, mask]))
                if rec.face.embedding is not None:
                    embs.append(rec.face.embedding)
    if not imgs:
        raise InputError(", ".join(map(str, paths)), f"no faces in the {split} split of these face sets")
    images = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    weights = torch.from_numpy((np.stack(wts) * 255 + 0.5).astype(np.uint8))
    emb = np.mean(embs, 0) if embs else np.zeros(128, np.float32)
    return SideData(images, weights, float(padding), emb.astype(np.float32))


def sample_batch(
    data: SideData,
    n: int,
    size: int,
    model_padding: float,
    cfg: AugmentConfig,
    gen: torch.Generator,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(warped input, target, loss weight, mask) for n random faces, each (n, C, size, size) on `device`."""
    idx = torch.randint(len(data), (n,), generator=gen)
    src = data.images[idx].to(device, non_blocking=True).float() / 255
    wts = data.weights[idx].to(device, non_blocking=True).float() / 255
    scale = (1 + 2 * model_padding) / (1 + 2 * data.padding)
    warped, target, w = make_pair(src, wts, size, scale, cfg, gen if device.type == "cpu" else None)
    return warped, target, w[:, :1] * (1 + FEATURE_BOOST), w[:, 1:2]


def fixed_batch(data: SideData, n: int, size: int, model_padding: float) -> tuple[torch.Tensor, torch.Tensor]:
    """n evenly spaced faces, unaugmented, at the model's crop, and their loss weights (for previews, the
    held-out loss and evaluation)."""
    idx = torch.linspace(0, len(data) - 1, min(n, len(data))).long()
    src = torch.cat([data.images[idx], data.weights[idx, :1]], 1).float() / 255
    scale = (1 + 2 * model_padding) / (1 + 2 * data.padding)
    grid = F.affine_grid(
        torch.tensor([[scale, 0, 0], [0, scale, 0]]).expand(len(idx), 2, 3), (len(idx), 4, size, size), False
    )
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[:, :3].contiguous(), out[:, 3:] * (1 + FEATURE_BOOST)
