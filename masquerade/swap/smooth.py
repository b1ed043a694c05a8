"""Temporal smoothing of landmarks so a swapped face does not jitter: a One Euro filter per tracked face.

Casiez, Roussel, Vogel (2012), "1 Euro Filter": a low-pass whose cutoff rises with speed, so slow jitter is
removed while fast head motion is followed without lag. The speed is the face's own (its landmarks' mean
motion, in face widths per second), shared by all 68 points: every point of a moving head is followed alike.
"""

from __future__ import annotations

import math

import numpy as np

from masquerade.faces.track import same_face

# Cutoff (Hz) per face width per second of motion. With 0.5 (the earlier rule, per landmark coordinate), a
# talking head turning fast (d12: 14 px a frame) had its swapped face trail the real one by 15 px on
# average, 37 at most, and s29's by 6: a face sliding over the head, its brows doubled. With 20, the trail is
# 0.6-1.5% of the eyes' distance on seven shared clips, and jitter is a third to two thirds of the raw
# landmarks' (measured on their tracked landmarks against a centred smoothing).
BETA = 20.0


def matches(previous: list[np.ndarray], landmarks: list[np.ndarray]) -> list[int | None]:
    """For each face of this frame (its landmarks), the index of the same face in `previous`, or None: each
    earlier face is given to one face at most."""
    out: list[int | None] = []
    for lms in landmarks:
        k = same_face(previous, lms, taken={j for j in out if j is not None})
        out.append(k)
    return out


class OneEuro:
    def __init__(self, fps: float, min_cutoff: float = 1.0, beta: float = BETA, d_cutoff: float = 1.0):
        self.dt = 1.0 / max(fps, 1e-3)
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.speed = 0.0  # face widths per second, itself low-passed at d_cutoff

    def _alpha(self, cutoff: float) -> float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / self.dt)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(N, 2) landmarks of this frame -> the smoothed ones."""
        x = np.asarray(x, np.float64)
        if self.x is None:
            self.x = x
            return x.astype(np.float32)
        width = float(np.ptp(x[:, 0])) + 1e-3
        speed = float(np.linalg.norm((x - self.x).mean(0))) / self.dt / width
        a_d = self._alpha(self.d_cutoff)
        self.speed = a_d * speed + (1 - a_d) * self.speed
        a = self._alpha(self.min_cutoff + self.beta * self.speed)
        self.x = a * x + (1 - a) * self.x
        return self.x.astype(np.float32)


class LandmarkSmoother:
    """Tracks faces across frames by landmark centre (`same_face`) and smooths each track's 68 landmarks.

    `strength` 0 turns smoothing off; larger values smooth more (lower cutoff), scaled to the face size
    so the filter behaves the same for small and large faces.
    """

    def __init__(self, fps: float, strength: float = 1.0):
        self.fps = fps or 30.0
        self.strength = strength
        self.tracks: list[tuple[np.ndarray, OneEuro]] = []  # (last landmarks, filter) per face

    def __call__(self, landmarks: list[np.ndarray]) -> list[np.ndarray]:
        if self.strength <= 0:
            return landmarks
        out, new_tracks = [], []
        for lms, k in zip(landmarks, matches([t[0] for t in self.tracks], landmarks), strict=True):
            filt = OneEuro(self.fps, min_cutoff=1.5 / self.strength) if k is None else self.tracks[k][1]
            out.append(filt(lms))
            new_tracks.append((lms, filt))
        self.tracks = new_tracks
        return out


class Hold:
    """A per-face value that rises at once and falls by at most `release` a frame: so that a choice made on the
    frames that need it (the input's own mouth, while it opens wider than the model can paint) is not undone
    and redone with every syllable, which shows as the mouth flickering between two people's."""

    def __init__(self, release: float):
        self.release = release
        self.tracks: list[tuple[np.ndarray, float]] = []  # (last landmarks, value) per face

    def __call__(self, landmarks: list[np.ndarray], values: list[float]) -> list[float]:
        out, new_tracks = [], []
        for lms, v, k in zip(landmarks, values, matches([t[0] for t in self.tracks], landmarks), strict=True):
            v = v if k is None else max(v, self.tracks[k][1] - self.release)
            out.append(v)
            new_tracks.append((lms, v))
        self.tracks = new_tracks
        return out
