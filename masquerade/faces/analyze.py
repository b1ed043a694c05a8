"""`analyze(frame) -> list[Face]`: detection, landmarks, alignment, identity and quality in one call."""

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
    """Finds and describes faces. Build once (loads models), call on many frames."""

    detector: str = "auto"
    min_face: int = 40
    size: int = 256
    padding: float = DEFAULT_PADDING
    embeddings: bool = True
    max_faces: int = 0  # 0: all faces, else the largest N

    def __post_init__(self) -> None:
        self._det: Detector = make_detector(self.detector, self.min_face)

    def __call__(self, image_bgr: np.ndarray) -> list[Face]:
        rgb = np.ascontiguousarray(image_bgr[..., ::-1])
        dets = [d for d in self._det.detect(rgb) if max(d.box[2] - d.box[0], d.box[3] - d.box[1]) >= self.min_face]
        dets.sort(key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
        if self.max_faces:
            dets = dets[: self.max_faces]
        faces = []
        for d in dets:
            lms = landmarks68(rgb, d.box)
            m = estimate_matrix(lms, self.size, self.padding)
            crop = crop_face(image_bgr, m, self.size)
            face = Face(bbox=d.box, score=d.score, landmarks=lms, matrix=m, crop_size=self.size, crop=crop)
            face.blur = blur_score(crop)
            face.pose = head_pose(lms, image_bgr.shape[:2])
            if self.embeddings:
                face.embedding = embed(rgb, lms)
            faces.append(face)
        return faces


def analyze(image_bgr: np.ndarray, **options) -> list[Face]:
    """One-off convenience: analyze a single BGR frame (builds a FaceAnalyzer each call)."""
    return FaceAnalyzer(**options)(image_bgr)
