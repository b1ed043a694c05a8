"""Training data: every face of a side's face sets cached in memory as tensors, sampled in batches.

Faces are cached at twice the model's size (so rotation and zoom resample from more pixels than they
output) and at the face set's wide padding (so shifts never run out of picture). With the whole set in
memory, a batch is one vectorised `grid_sample`: no worker processes are needed for the model not to wait.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from masquerade.core.errors import InputError
from masquerade.faces.align import mouth_opening, transform_points
from masquerade.faces.mask import face_mask, feature_mask
from masquerade.faceset.store import FaceSet, is_holdout, main_person_records
from masquerade.train.augment import AugmentConfig, make_pair

FEATURE_BOOST = 2.0  # eyes and mouth weigh 1 + this in the loss
# Expression-and-pose bins (see `uncovered`): the inner lips' opening over the inter-ocular distance (closed,
# parted, open, wide open) and the head's yaw in degrees. Drawing faces evenly over them (1/sqrt(count)) was
# tried and did not win: mouth error unchanged on d6:d3 and s29:s20 at 10 CPU-minutes, held-out SSIM lower.
MOUTH_EDGES = (0.04, 0.12, 0.25)
YAW_EDGES = (-25.0, -10.0, 10.0, 25.0)
MOUTH_NAMES = ("mouth closed", "mouth parted", "mouth open", "mouth wide open")
YAW_NAMES = ("yaw below -25 deg", "yaw -25 to -10 deg", "frontal", "yaw 10 to 25 deg", "yaw above 25 deg")


@dataclass
class SideData:
    images: torch.Tensor  # (N, 3, W, W) uint8 RGB
    weights: torch.Tensor  # (N, 2, W, W) uint8: loss weight (scaled to 255 = 1 + boost), face mask
    padding: float
    embedding: np.ndarray  # mean identity embedding of the side
    bins: np.ndarray | None = None  # (N,) int: each face's mouth-opening x yaw bin (see `expression_bins`)
    others: int = 0  # faces of the side's sets left out as not its main person (both splits)
    openings: np.ndarray | None = None  # (N,) each face's mouth opening (`faces.align.mouth_opening`)

    def __len__(self) -> int:
        return self.images.shape[0]


def expression_bins(openings: np.ndarray, yaws: np.ndarray) -> np.ndarray:
    """Each face's bin: mouth opening (`MOUTH_EDGES`) x yaw (`YAW_EDGES`), as one int."""
    return np.digitize(openings, MOUTH_EDGES) * (len(YAW_EDGES) + 1) + np.digitize(yaws, YAW_EDGES)


def mirror_bins(bins: np.ndarray) -> np.ndarray:
    """The bins of the same faces flipped left to right: same mouth, yaw of the opposite sign."""
    mouth, yaw = np.divmod(bins, len(YAW_EDGES) + 1)
    return mouth * (len(YAW_EDGES) + 1) + len(YAW_EDGES) - yaw


def uncovered(src: SideData, dst: SideData, at_least: float = 0.05, mirrored: bool = False) -> list[tuple[str, float]]:
    """The expressions and poses (bins holding at least `at_least` of `src`'s faces) that `dst`'s faces never
    show, with src's share of each: dst's decoder never sees them, so a swap of src to dst cannot render them
    (a smile comes out as a closed mouth). What to film more of, said before the training starts.
    `mirrored`: training flips faces, so a head dst turns one way also shows dst's decoder the other way (on
    d18:d19, who face opposite sides, 76% and 57% of the faces were named as never shown without it)."""
    if src.bins is None or dst.bins is None:
        return []
    have = set(np.unique(dst.bins).tolist())
    if mirrored:
        have |= set(np.unique(mirror_bins(dst.bins)).tolist())
    ids, counts = np.unique(src.bins, return_counts=True)
    out = []
    for b, n in zip(ids.tolist(), counts.tolist(), strict=True):
        if b not in have and n >= at_least * len(src.bins):
            mouth, yaw = divmod(b, len(YAW_EDGES) + 1)
            out.append((f"{MOUTH_NAMES[mouth]}, {YAW_NAMES[yaw]}", n / len(src.bins)))
    return sorted(out, key=lambda x: -x[1])


def load_side(paths: list[str | Path], work_size: int, holdout_every: int = 0, split: str = "train") -> SideData:
    """Load every face of the given face sets (the train or holdout split) into memory."""
    imgs, wts, embs, openings, yaws = [], [], [], [], []
    with contextlib.ExitStack() as stack:
        sets = [stack.enter_context(FaceSet.open(path)) for path in paths]
        for path, fs in zip(paths, sets, strict=True):
            if abs(fs.padding - sets[0].padding) > 1e-9:
                raise InputError(path, "face sets of one side must share one crop padding")
        records, others = main_person_records(sets)
        for fs, rec in records:
            if is_holdout(rec.id, holdout_every) != (split == "holdout"):
                continue
            crop = fs.load_crop(rec)
            img = cv2.resize(crop, (work_size, work_size), interpolation=cv2.INTER_AREA)
            lms = transform_points(rec.face.matrix, rec.face.landmarks) * (work_size / fs.size)
            shape = (work_size, work_size)
            mask = face_mask(shape, lms)
            w = mask * (1 + FEATURE_BOOST * feature_mask(shape, lms)) / (1 + FEATURE_BOOST)
            imgs.append(np.ascontiguousarray(img))
            wts.append(np.stack([w, mask]))
            openings.append(mouth_opening(rec.face.landmarks))
            yaws.append(rec.face.pose[0] if rec.face.pose is not None else 0.0)
            if rec.face.embedding is not None:
                embs.append(rec.face.embedding)
        padding = sets[0].padding if sets else 0.0
    if not imgs:
        raise InputError(", ".join(map(str, paths)), f"no faces in the {split} split of these face sets")
    images = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    weights = torch.from_numpy((np.stack(wts) * 255 + 0.5).astype(np.uint8))
    emb = np.mean(embs, 0) if embs else np.zeros(128, np.float32)
    bins = expression_bins(np.array(openings), np.array(yaws, np.float64))
    return SideData(images, weights, float(padding), emb.astype(np.float32), bins, others, np.array(openings))


def mouth_range(data: SideData) -> list[float]:
    """The mouth openings a side's faces show, from the 2nd to the 98th percentile: what its decoder learns to
    paint (a stray frame or a landmark's slip does not widen it)."""
    if data.openings is None or not len(data.openings):
        return [0.0, 0.0]
    return [round(float(v), 4) for v in np.percentile(data.openings, [2, 98])]


def sample_batch(
    data: SideData,
    n: int,
    size: int,
    model_padding: float,
    cfg: AugmentConfig,
    gen: torch.Generator,
    device: torch.device,
    lift: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(warped input, target, loss weight, mask) for n random faces, each (n, C, size, size) on `device`;
    the model's crop has `model_padding` and `lift` (see `faces.align.crop_frame_matrix`)."""
    idx = torch.randint(len(data), (n,), generator=gen)
    src = data.images[idx].to(device, non_blocking=True).float() / 255
    wts = data.weights[idx].to(device, non_blocking=True).float() / 255
    scale, shift = _placement(data, model_padding, lift)
    warped, target, w = make_pair(src, wts, size, scale, cfg, gen if device.type == "cpu" else None, shift)
    return warped, target, w[:, :1] * (1 + FEATURE_BOOST), w[:, 1:2]


def _placement(data: SideData, model_padding: float, lift: float) -> tuple[float, float]:
    """Where the model's crop lies in the cached one: (its width over the cached width, its centre's offset
    in grid_sample's units, negative when lifted)."""
    return (1 + 2 * model_padding) / (1 + 2 * data.padding), -2 * lift / (1 + 2 * data.padding)


def fixed_batch(
    data: SideData, n: int, size: int, model_padding: float, lift: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """n evenly spaced faces, unaugmented, at the model's crop, and their loss weights (for previews, the
    held-out loss and evaluation)."""
    idx = torch.linspace(0, len(data) - 1, min(n, len(data))).long()
    src = torch.cat([data.images[idx], data.weights[idx, :1]], 1).float() / 255
    scale, shift = _placement(data, model_padding, lift)
    grid = F.affine_grid(
        torch.tensor([[scale, 0, 0], [0, scale, shift]]).expand(len(idx), 2, 3), (len(idx), 4, size, size), False
    )
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[:, :3].contiguous(), out[:, 3:] * (1 + FEATURE_BOOST)
