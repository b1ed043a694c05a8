"""The swap pipeline: frame -> faces -> model -> colour match -> blend back -> watermark -> frame.

`Swapper(model_dir).swap_frame(frame)` is the whole API. Marking is part of `swap_frames`, the only
function that returns swapped pixels: there is no way to get a swapped frame without the watermark.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from masquerade.core.errors import InputError
from masquerade.core.types import Face
from masquerade.faces.align import crop_face, estimate_matrix, transform_points, uncrop
from masquerade.faces.analyze import FaceAnalyzer
from masquerade.faces.detect import landmarks68
from masquerade.faces.identity import SAME_PERSON_DISTANCE, distance, nearer_side
from masquerade.faces.mask import face_mask, feather, not_skin
from masquerade.models.io import LoadedModel, load_model
from masquerade.provenance import watermark
from masquerade.provenance.verify import verify_analyzer
from masquerade.swap.blend import blend
from masquerade.swap.color import match_color
from masquerade.swap.smooth import LandmarkSmoother


@dataclass
class SwapOptions:
    to: str = "auto"  # a | b | auto: the side NOT matching the input's faces
    color: str = "lab-transfer"
    blend: str = "alpha"
    mask: str = "skin"  # skin: the hull less hair/background reaching into it (input or rendered); hull
    erode: int = 0  # px in the frame; negative grows the mask
    blur: int = -1  # px in the frame; -1: 4% of the face size
    smooth: float = 1.0  # landmark smoothing strength, 0 = off
    detector: str = "hog"
    min_face: int = 40
    swap_all: bool = False  # swap every face, not only those of the model's source identity
    batch_size: int = 16
    device: str = "auto"
    fps: float = 30.0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _footprint(size: int) -> np.ndarray:
    """The crop's square with a soft inner border, so a mask reaching past the crop fades instead of cutting."""
    edge = max(2, size // 12)
    sq = np.zeros((size, size), np.float32)
    sq[edge:-edge, edge:-edge] = 1.0
    return cv2.GaussianBlur(sq, (0, 0), edge / 2)


class Swapper:
    """Swaps faces frame by frame. Keep one per video: it carries the landmark smoothing state."""

    def __init__(self, model: str | Path | LoadedModel, options: SwapOptions | None = None):
        self.opts = options or SwapOptions()
        self.model = model if isinstance(model, LoadedModel) else load_model(model, self.opts.device)
        if self.opts.to not in ("a", "b", "auto"):
            raise InputError("--to", "must be a, b or auto")
        if self.opts.mask not in ("skin", "hull"):
            raise InputError("--mask", "must be skin or hull")
        self.to: str | None = None if self.opts.to == "auto" else self.opts.to
        self.chosen_by = "" if self.to is None else "--to"
        self.size = self.model.config.size
        self.padding = self.model.config.padding
        self.identity = self.model.identity
        need_emb = not self.opts.swap_all or self.to is None
        self.analyzer = FaceAnalyzer(
            self.opts.detector, self.opts.min_face, embeddings=need_emb and bool(self.identity)
        )
        self.smoother = LandmarkSmoother(self.opts.fps, self.opts.smooth)
        self.mark_finder = verify_analyzer()  # finds faces exactly as `verify` will (and swap's read-back)

    # -- identity -------------------------------------------------------------------------------------
    @property
    def source_side(self) -> str | None:
        return None if self.to is None else ("a" if self.to == "b" else "b")

    def choose_side(self, faces: list[Face]) -> None:
        """Pick the side to render: the one the faces are NOT of (by mean identity embedding)."""
        embs = [f.embedding for f in faces if f.embedding is not None]
        if self.to is not None or not embs or not self.identity:
            return
        side, da, db = nearer_side(np.mean(embs, 0), self.identity)
        self.to = "b" if side == "a" else "a"
        self.chosen_by = f"faces are nearer identity {side} ({min(da, db):.2f} vs {max(da, db):.2f})"

    def _is_source(self, face: Face) -> bool:
        if self.opts.swap_all or face.embedding is None or not self.identity or self.source_side is None:
            return True
        d_src = distance(face.embedding, self.identity[self.source_side])
        d_tgt = distance(face.embedding, self.identity[self.to])
        return d_src < SAME_PERSON_DISTANCE and d_src <= d_tgt

    # -- swapping -------------------------------------------------------------------------------------
    def swap_frame(self, frame: np.ndarray) -> np.ndarray:
        return self.swap_frames([frame])[0]

    def swap_frames(self, frames: list[np.ndarray], faces: list[list[Face]] | None = None) -> list[np.ndarray]:
        """Swap a batch of consecutive RGB frames; the model runs once over all their faces."""
        faces = faces if faces is not None else [self.analyzer(f) for f in frames]
        if self.to is None:
            self.choose_side([f for fs in faces for f in fs])
            if self.to is None:
                self.to = "b"
                self.chosen_by = "default (no identity information)"
        jobs = []  # (frame index, detection box, smoothed landmarks, matrix, crop)
        for i, (frame, fs) in enumerate(zip(frames, faces, strict=True)):
            chosen = [f for f in fs if self._is_source(f)]
            smoothed = self.smoother([f.landmarks for f in chosen])
            for f, lms in zip(chosen, smoothed, strict=True):
                m = estimate_matrix(lms, self.size, self.padding)
                jobs.append((i, f.bbox, lms, m, crop_face(frame, m, self.size)))
        out = [f.copy() for f in frames]
        if not jobs:
            return out
        preds = self._run_model(np.stack([j[4] for j in jobs]))
        for (i, box, lms, m, crop), pred in zip(jobs, preds, strict=True):
            swapped, region = self._put_back(out[i], lms, m, crop, pred)
            out[i] = self._mark(swapped, box, region)
        return out

    @torch.no_grad()
    def _run_model(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) RGB uint8 crops -> (N, S, S, 3 or 4) float32 RGB[, mask] in [0, 1]."""
        net, dev = self.model.net, self.model.device
        outs = []
        for k in range(0, len(crops), self.opts.batch_size):
            x = torch.from_numpy(crops[k : k + self.opts.batch_size]).to(dev)
            x = x.permute(0, 3, 1, 2).float() / 255
            with torch.autocast(dev.type, enabled=dev.type == "cuda"):
                y = net(x, self.to).float()
            outs.append(y.permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(outs)

    def _put_back(
        self, frame: np.ndarray, lms: np.ndarray, m: np.ndarray, crop: np.ndarray, pred: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Colour-match the generated face, warp it into the frame and blend; returns (frame, blend mask)."""
        s = self.size
        crop_lms = transform_points(m, lms)
        crop_mask = face_mask((s, s), crop_lms)
        face = match_color(pred[..., :3] * 255.0, crop.astype(np.float32), crop_mask, self.opts.color)
        h, w = frame.shape[:2]
        face_full = uncrop(face.astype(np.float32), m, frame.shape)
        # The mask in frame pixels: landmark hull (or the model's mask), limited to the crop's footprint.
        inside = cv2.warpAffine(_footprint(s), m, (w, h), borderValue=0, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        if pred.shape[-1] > 3:  # the model's own mask head
            mask = cv2.warpAffine(
                np.ascontiguousarray(pred[..., 3]),
                m,
                (w, h),
                borderValue=0,
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            )
        else:
            mask = face_mask((h, w), lms, blur=0)
        if self.opts.mask == "skin":  # keep the input's own hair where it covers the face; never paste B's
            cut = np.maximum(not_skin(crop, crop_lms), not_skin(face.clip(0, 255).astype(np.uint8), crop_lms))
            if cut.any():
                cut = cv2.warpAffine(cut, m, (w, h), borderValue=0, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
                mask = mask * (1 - cut)
        face_px = float(np.ptp(lms[:, 0]))
        blur = self.opts.blur if self.opts.blur >= 0 else max(1, int(round(0.04 * face_px)))
        erode = self.opts.erode if self.opts.erode else blur // 2
        mask = feather(mask, erode=erode, blur=blur) * np.clip(inside, 0, 1)
        return blend(frame, face_full, mask, self.opts.blend), mask

    def _mark(self, frame: np.ndarray, box: np.ndarray, region: np.ndarray) -> np.ndarray:
        """Embed the watermark on a swapped face, aligned exactly as `verify` will align it: the face verify's
        finder sees on the swapped pixels (landmarks from another box can differ by several pixels, enough to
        lose most of the mark). Limited to the blend mask."""
        seen = self.mark_finder(frame)
        best = max(seen, key=lambda f: _iou(f.bbox, box), default=None)
        found = best is not None and _iou(best.bbox, box) > 0.3
        lms = best.landmarks if found else landmarks68(frame, box)  # else: verify will not find it as it is
        return watermark.embed(frame, lms, self.model.model_id, region=region)
