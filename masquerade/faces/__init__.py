"""Faces: detect, landmarks, align, mask, identity and quality; `analyze(frame)` ties them together."""

from masquerade.faces.align import crop_face, estimate_matrix, uncrop
from masquerade.faces.analyze import FaceAnalyzer, analyze
from masquerade.faces.identity import same_person

__all__ = ["FaceAnalyzer", "analyze", "crop_face", "estimate_matrix", "same_person", "uncrop"]
