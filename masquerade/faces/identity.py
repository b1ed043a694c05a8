"""Identity: dlib's 128-d face embedding and the same-person test at dlib's documented 0.6 distance."""

from __future__ import annotations

import numpy as np

from masquerade.faces import dlib_models

SAME_PERSON_DISTANCE = 0.6  # dlib: 99.38% on LFW at this Euclidean distance


def embed(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 128-d embedding of the face whose 68 landmarks are given, in the image's coordinates."""
    import dlib

    pts = [dlib.point(int(round(x)), int(round(y))) for x, y in landmarks]
    xs, ys = landmarks[:, 0], landmarks[:, 1]
    rect = dlib.rectangle(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    shape = dlib.full_object_detection(rect, pts)
    vec = dlib_models.load("recognition").compute_face_descriptor(rgb, shape)
    return np.asarray(vec, dtype=np.float32)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32)))


def same_person(a: np.ndarray, b: np.ndarray, threshold: float = SAME_PERSON_DISTANCE) -> bool:
    """True when two embeddings are nearer than dlib's documented 0.6 distance."""
    return distance(a, b) < threshold


def main_person(embeddings: np.ndarray, threshold: float = SAME_PERSON_DISTANCE, probes: int = 200) -> np.ndarray:
    """Which faces are the set's main person: a bool per embedding. The centre is the mean of the faces within
    `threshold` of the face with most such neighbours (among `probes` evenly spaced ones), so neither a second
    person nor a detector's false face (s18: a blurred plant, 0.87 away; d6: her mouth and nose found as a
    second face, 0.72) pulls it; a face is kept when within `threshold` of it (real faces of one person lie
    within 0.46 of their mean on every shared clip)."""
    if len(embeddings) < 3:
        return np.ones(len(embeddings), bool)
    e = np.asarray(embeddings, np.float32).reshape(len(embeddings), -1)
    probe = e[np.linspace(0, len(e) - 1, min(probes, len(e))).astype(int)]
    sq = (probe**2).sum(1)[:, None] + (e**2).sum(1)[None] - 2 * probe @ e.T  # (probes, n), no (probes, n, 128)
    near = sq < threshold**2
    centre = e[near[near.sum(1).argmax()]].mean(0)
    return np.linalg.norm(e - centre, axis=1) < threshold


def nearer_side(embedding: np.ndarray, identities: dict[str, np.ndarray]) -> tuple[str, float, float]:
    """Which of a model's two identities ("a", "b") a face is nearer to: (side, distance to a, to b)."""
    da, db = distance(embedding, identities["a"]), distance(embedding, identities["b"])
    return ("a" if da <= db else "b"), da, db
