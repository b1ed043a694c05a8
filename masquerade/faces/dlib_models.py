"""Locate the dlib model files shipped by `face-recognition-models`, without importing pkg_resources.

The package's own helpers import pkg_resources (gone from recent setuptools), so we find its folder with
importlib's spec machinery, which does not execute the package.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from masquerade.core.errors import MasqueradeError

FILES = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "cnn_detector": "mmod_human_face_detector.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
}


def model_path(name: str) -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MasqueradeError("face-recognition-models is not installed (pip install face-recognition-models)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / FILES[name]
    if not path.is_file():
        raise MasqueradeError(f"dlib model file missing: {path}")
    return path


@cache
def load(name: str):
    """Load a dlib model once per process (they are read-only and thread-safe to share)."""
    import dlib

    path = str(model_path(name))
    if name == "landmarks68":
        return dlib.shape_predictor(path)
    if name == "cnn_detector":
        return dlib.cnn_face_detection_model_v1(path)
    if name == "recognition":
        return dlib.face_recognition_model_v1(path)
    raise KeyError(name)
