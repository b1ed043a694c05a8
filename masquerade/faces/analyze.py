"""`analyze(frame) -> list[Face]`: detection and landmarks, then only the steps a caller asks for.

Detection and landmarks are always needed; the aligned crop, the quality scores (sharpness, head pose)
and the identity embedding (the costliest step, about 20 ms a face) are each computed only when asked:
`extract` wants them all, `swap` only the embedding (to tell who is who), `verify` none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from masquerade.core.types import Face
from masquerade.faces.align import DEFAULT_PADDING, crop_face, estimate_matrix
from masquerade.faces.detect import Detector, landmarks68, make_detector
from masquerade.faces.identity import embed
from masquerade.faces.quality import blur_score, head_pose


@dataclass
class FaceAnalyzer:
    """Finds and describes faces in RGB frames. Build once (loads models), call on many frames.

    Faces smaller than `min_face` (the detection box's longer side) are dropped here, the one place.
    """

    detector: str = "auto"
    min_face: int = 40
    crop_size: int = 0  # >0: make the aligned crop (Face.crop) at this size; quality needs it
    padding: float = DEFAULT_PADDING
    embeddings: bool = False  # the 128-d identity embedding
    quality: bool = False  # sharpness of the crop and head pose
    max_faces: int = 0  # 0: all faces, else the N most confident detections
    threshold: float | None = None  # detector score threshold (None: the detector's own default)

    def __post_init__(self) -> None:
        self._det: Detector = make_detector(self.detector, self.min_face, self.threshold)

    def __call__(self, rgb: np.ndarray) -> list[Face]:
        rgb = np.ascontiguousarray(rgb)
        return [self.describe(rgb, f) for f in self.detect(rgb)]

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Detection and landmarks only, largest face first (what a tracker needs to start tracks)."""
        rgb = np.ascontiguousarray(rgb)
        if min(rgb.shape[:2]) < self.min_face:  # no face of min_face px fits (and dlib's CNN fails on slivers)
            return []
        dets = [d for d in self._det.detect(rgb) if max(d.box[2] - d.box[0], d.box[3] - d.box[1]) >= self.min_face]
        if self.max_faces:
            dets = sorted(dets, key=lambda d: -d.score)[: self.max_faces]
        dets.sort(key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))  # largest first
        return [Face(bbox=d.box, score=d.score, landmarks=landmarks68(rgb, d.box)) for d in dets]

    def describe(self, rgb: np.ndarray, face: Face) -> Face:
        """Add the steps asked for (crop, quality, embedding) to a face found in `rgb`; returns it."""
        if self.crop_size or self.quality:
            size = self.crop_size or 256
            face.matrix = estimate_matrix(face.landmarks, size, self.padding)
            face.crop_size = size
            face.crop = crop_face(rgb, face.matrix, size)
        if self.quality:
            face.blur = blur_score(face.crop)
            face.pose = head_pose(face.landmarks, rgb.shape[:2])
        if self.embeddings:
            face.embedding = embed(rgb, face.landmarks)
        return face


def analyze(rgb: np.ndarray, **options) -> list[Face]:
    """One-off convenience: analyze a single RGB frame (builds a FaceAnalyzer each call)."""
    return FaceAnalyzer(**options)(rgb)
