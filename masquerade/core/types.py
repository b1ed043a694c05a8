"""The Face record that flows from detection to the face set, training and swapping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Face:
    """One face found in one frame, in that frame's pixel coordinates.

    `matrix` maps frame pixels to the aligned crop (2x3, similarity); `crop` is that crop when made.
    """

    bbox: np.ndarray  # (4,) x0, y0, x1, y1
    score: float
    landmarks: np.ndarray  # (68, 2) float32
    matrix: np.ndarray | None = None  # (2, 3) frame -> aligned crop
    crop_size: int = 0
    crop: np.ndarray | None = None  # (S, S, 3) uint8 RGB
    embedding: np.ndarray | None = None  # (128,) float32
    blur: float = 0.0
    pose: tuple[float, float, float] = (0.0, 0.0, 0.0)  # yaw, pitch, roll in degrees

    @property
    def size(self) -> float:
        """Face size in pixels: the larger side of its detection box."""
        x0, y0, x1, y1 = self.bbox
        return float(max(x1 - x0, y1 - y0))


# The one progress-callback shape of every long stage (extract, train, swap, verify):
# progress(done, total or None when open-ended, info) where info holds the stage's live figures.
Progress = Callable[[int, "int | None", dict], None]
