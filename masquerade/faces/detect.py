"""Face detectors behind one small interface: `detect(rgb) -> list[Detection]`.

dlib's detectors find faces of about 80 px and larger, so the image is resized by 80 / min_face before
detection (up for small faces, down for speed when only large faces are wanted) and boxes scaled back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from masquerade.core.errors import InputError
from masquerade.faces import dlib_models

DLIB_WINDOW = 80  # smallest face, in pixels, that dlib's HOG and MMOD detectors reliably find
MAX_DETECT_SIDE = 2400  # never detect on an image whose longer side exceeds this (time and memory)


@dataclass
class Detection:
    box: np.ndarray  # (4,) x0, y0, x1, y1 in the input image's pixels
    score: float


class Detector(Protocol):
    name: str

    def detect(self, rgb: np.ndarray) -> list[Detection]: ...


def _scale_for(shape: tuple[int, ...], min_face: int) -> float:
    scale = DLIB_WINDOW / max(min_face, 1)
    longest = max(shape[:2])
    return min(scale, MAX_DETECT_SIDE / longest)


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    if abs(scale - 1.0) < 1e-3:
        return rgb
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=interp)


class HogDetector:
    """dlib's HOG + linear SVM: fast on a CPU, frontal and near-frontal faces."""

    name = "hog"

    def __init__(self, min_face: int = 40, threshold: float = 0.0):
        self._det = dlib_models.load(dlib_models.BUILT_IN)
        self.min_face = min_face
        self.threshold = threshold

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        scale = _scale_for(rgb.shape, self.min_face)
        rects, scores, _ = self._det.run(_resize(rgb, scale), 0, self.threshold)
        return [
            Detection(np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32) / scale, float(s))
            for r, s in zip(rects, scores, strict=True)
        ]


class CnnDetector:
    """dlib's MMOD CNN: more accurate across pose and lighting, several times slower on a CPU."""

    name = "cnn"

    def __init__(self, min_face: int = 40, threshold: float = 0.0):
        self._det = dlib_models.load("cnn_detector")
        self.min_face = min_face
        self.threshold = threshold

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        scale = _scale_for(rgb.shape, self.min_face)
        out = []
        for d in self._det(_resize(rgb, scale), 0):
            if d.confidence < self.threshold:
                continue
            r = d.rect
            out.append(
                Detection(
                    np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32) / scale,
                    float(d.confidence),
                )
            )
        return out


class AutoDetector:
    """HOG on every image; where HOG finds nothing, the CNN (at no more than native scale, confidence >= 0.5).

    HOG misses tilted or expressive faces (a frown, glasses) that the CNN finds, while a lower HOG threshold
    starts finding faces in animals; the fallback costs CNN time only on frames HOG found empty.
    """

    name = "auto"
    cnn_threshold = 0.5

    def __init__(self, min_face: int = 40):
        self._hog = HogDetector(min_face)
        self._cnn: CnnDetector | None = None
        self.min_face = min_face

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        found = self._hog.detect(rgb)
        if found:
            return found
        if self._cnn is None:
            self._cnn = CnnDetector(max(self.min_face, DLIB_WINDOW), self.cnn_threshold)
        return self._cnn.detect(rgb)


DETECTORS = {"auto": AutoDetector, "hog": HogDetector, "cnn": CnnDetector}


def make_detector(name: str = "auto", min_face: int = 40, threshold: float | None = None) -> Detector:
    """A detector by name; `threshold` overrides the score threshold of `hog` and `cnn`."""
    if name not in DETECTORS:
        raise InputError("--detector", f"unknown detector {name!r} (choose from {', '.join(DETECTORS)})")
    if threshold is None or name == "auto":
        return DETECTORS[name](min_face=min_face)
    return DETECTORS[name](min_face=min_face, threshold=threshold)


def landmarks68(rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
    """68 landmark points (dlib shape predictor) for a face box, as a (68, 2) float32 array."""
    import dlib

    rect = dlib.rectangle(*[int(round(v)) for v in box])
    shape = dlib_models.load("landmarks68")(rgb, rect)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
