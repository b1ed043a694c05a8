"""A side's own faces kept beside its model: the fine detail a 64 px decoder cannot paint.

Why: at a CPU's budgets a 64 px decoder paints eyes as soft dark blobs, lips and brows as smears, and the
input's own fine band (`swap --detail`) can only sharpen what agrees with the input, so it is withheld just where
the target differs from the input: eyes, brows, mouth. The target's real faces hold exactly that detail, the
target's own lashes, lid lines, brow hairs and lip edges. `train` keeps them here (luma only, in the model's crop);
swap takes the nearest one to what the model painted, warps it onto the painting and adds its fine band where
the two agree (`swap.exemplar`).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from masquerade.core.errors import InputError
from masquerade.faces.align import recrop_matrix
from masquerade.faceset.store import FaceSet, is_holdout, main_person_records
from masquerade.models.io import ModelConfig, save_tensors

BANK_SIZE = 256  # px a side: the face sets' 256 px crops hold about 210 px of the model's crop
MAX_FACES = 240  # evenly spaced over the side's training faces (about 16 MB); more only adds near-twins
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def bank_file(side: str) -> str:
    return f"detail_{side}.safetensors"


@dataclass(frozen=True)
class DetailBank:
    """(N, S, S) uint8 luma faces in the model's crop (its padding and lift), with where each came from."""

    faces: np.ndarray
    sources: tuple[str, ...]  # one per face
    frames: np.ndarray  # (N,) the frame index of each face in its source

    def __len__(self) -> int:
        return len(self.faces)

    def without(self, source: str, frame: int, radius: int) -> DetailBank:
        """The bank less the faces within `radius` frames of `frame` of `source`: so that a face is not rebuilt
        from its own neighbours (evaluation)."""
        near = np.array([s == source for s in self.sources]) & (np.abs(self.frames - frame) <= radius)
        return DetailBank(self.faces[~near], tuple(np.array(self.sources, object)[~near]), self.frames[~near])


def build_bank(
    facesets: list[str | Path],
    padding: float,
    lift: float,
    holdout_every: int,
    size: int = BANK_SIZE,
    max_faces: int = MAX_FACES,
) -> DetailBank | None:
    """The main person's training faces (never the held-out ones) of these face sets, evenly spaced, re-cropped
    as the model crops (`padding`, `lift`), luma only. None when there are none."""
    with contextlib.ExitStack() as stack:
        sets = [stack.enter_context(FaceSet.open(p)) for p in facesets]
        records = [(fs, r) for fs, r in main_person_records(sets)[0] if not is_holdout(r.id, holdout_every)]
        if not records:
            return None
        picked = [records[int(k)] for k in np.unique(np.linspace(0, len(records) - 1, max_faces).round())]
        faces = []
        for fs, rec in picked:
            m = recrop_matrix(fs.size, fs.padding, size, padding, 0.0, lift)
            crop = cv2.warpAffine(fs.load_crop(rec), m, (size, size), borderMode=cv2.BORDER_REFLECT)
            faces.append(np.clip(crop.astype(np.float32) @ LUMA + 0.5, 0, 255).astype(np.uint8))
    return DetailBank(np.stack(faces), tuple(r.source for _, r in picked), np.array([r.frame_index for _, r in picked]))


def save_bank(model_dir: Path, side: str, bank: DetailBank) -> None:
    """Atomically, as safetensors: the faces, each face's frame and the index of its source (names in the
    metadata, JSON)."""
    names = list(dict.fromkeys(bank.sources))
    tensors = {
        "faces": torch.from_numpy(np.ascontiguousarray(bank.faces)),
        "frames": torch.from_numpy(bank.frames.astype(np.int64)),
        "source": torch.tensor([names.index(s) for s in bank.sources], dtype=torch.int64),
    }
    save_tensors(Path(model_dir) / bank_file(side), tensors, {"sources": json.dumps(names)})


def load_bank(model_dir: str | Path, side: str) -> DetailBank | None:
    """The side's bank, or None when the model has none (trained before banks were kept)."""
    path = Path(model_dir) / bank_file(side)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as fh:
            names = json.loads((fh.metadata() or {})["sources"])
        t = load_file(str(path))
        faces, frames, source = t["faces"].numpy(), t["frames"].numpy(), t["source"].numpy()
        if faces.dtype != np.uint8 or faces.ndim != 3 or not len(faces) == len(frames) == len(source):
            raise ValueError("unexpected shapes")
        return DetailBank(faces, tuple(names[int(k)] for k in source), frames)
    except (SafetensorError, OSError, ValueError, KeyError, IndexError) as exc:
        raise InputError(path, f"unreadable detail bank ({exc})") from None


def write_banks(model_dir: str | Path, config: ModelConfig) -> list[str]:
    """Keep each side's faces beside the model (`build_bank` from the face sets it was trained on), unless
    already kept; the sides written. A side whose face sets are gone is skipped: its swaps use the input's
    detail alone."""
    written = []
    for side, paths in config.facesets.items():
        path = Path(model_dir) / bank_file(side)
        if path.is_file() or not paths or not all((Path(p) / "faceset.db").is_file() for p in paths):
            continue
        bank = build_bank(paths, config.padding, config.lift, config.holdout_every)
        if bank is not None:
            save_bank(Path(model_dir), side, bank)
            written.append(side)
    return written
