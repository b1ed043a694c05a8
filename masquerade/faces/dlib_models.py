"""Locate the dlib model files shipped by `face-recognition-models`, without importing pkg_resources.

The package's own helpers import pkg_resources (gone from recent setuptools), so we find its folder with
importlib's spec machinery, which does not execute the package.
"""

from __future__ import annotations

import importlib.util
import threading
from functools import cache
from pathlib import Path

from masquerade.core.errors import MasqueradeError

BUILT_IN = "hog"  # dlib's HOG face detector: in dlib itself, no file (building it takes 0.5-0.8 s)
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


class OneAtATime:
    """A dlib detector shared by every caller in the process, called by one thread at a time: a detector keeps
    the image it is scanning inside itself, and dlib lets other threads run while it scans."""

    def __init__(self, model):
        self._model, self._lock = model, threading.Lock()

    def __call__(self, *args):
        with self._lock:
            return self._model(*args)

    def run(self, *args):
        with self._lock:
            return self._model.run(*args)


@cache
def load(name: str):
    """Load a dlib model once per process (building one takes up to a second; all are shared: the shape
    predictor and the recogniser only read themselves, the detectors go `OneAtATime`)."""
    import dlib

    if name == BUILT_IN:
        return OneAtATime(dlib.get_frontal_face_detector())
    path = str(model_path(name))
    if name == "landmarks68":
        return dlib.shape_predictor(path)
    if name == "cnn_detector":
        return OneAtATime(dlib.cnn_face_detection_model_v1(path))
    if name == "recognition":
        return dlib.face_recognition_model_v1(path)
    raise KeyError(name)
