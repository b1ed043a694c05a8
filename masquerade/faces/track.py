"""Faces followed from frame to frame: landmarks from the previous frame's face, a full detection now and then.

Detection (HOG over the whole frame: about 120 ms at 480p, since faces down to 40 px are looked for) and the
identity embedding (about 100 ms a face) are most of a frame-by-frame swap. A face moves little between
frames, so its new landmarks are found from a box derived from its previous ones (dlib's shape predictor, a
few ms), and its embedding is computed once per track. A full detection runs every `redetect` frames (faces
that enter), on a scene cut, and as soon as a tracked face no longer looks like itself.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from masquerade.core.clock import StageClock
from masquerade.core.types import Face
from masquerade.faces.align import ALIGN_POINTS, crop_face, estimate_matrix, invert, umeyama
from masquerade.faces.analyze import FaceAnalyzer
from masquerade.faces.detect import landmarks68
from masquerade.faces.mean_face import MEAN_FACE_68

# Where dlib's HOG puts its box, in mean-face units (the unit square of the alignment): centre x, centre y,
# side. Measured over 88 faces of d18, d6, s29 and d3 (spread 0.03, 0.04, 0.11). The shape predictor was
# trained on such boxes, so a box made from landmarks this way gives it what it expects.
HOG_BOX = (0.495, 0.401, 1.058)
THUMB = 24  # side of the aligned grey thumbnail a track is recognised by


def box_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """The (x0, y0, x1, y1) box the detector would likely give for a face with these landmarks (whole px)."""
    to_unit = umeyama(landmarks[ALIGN_POINTS], MEAN_FACE_68[ALIGN_POINTS])
    scale = float(np.sqrt(abs(np.linalg.det(to_unit[:, :2]))))
    back = invert(to_unit)
    cx, cy = back[:, :2] @ np.array(HOG_BOX[:2]) + back[:, 2]
    half = HOG_BOX[2] / scale / 2
    return np.round(np.array([cx - half, cy - half, cx + half, cy + half], np.float32))


def same_face(
    found: list[np.ndarray], landmarks: np.ndarray, within: float = 0.25, taken: Collection[int] = ()
) -> int | None:
    """Of the landmark sets `found` in an image, the index of the face with these `landmarks`: the nearest by
    centre, if within `within` of the face's width; else None. Indices in `taken` are already matched to
    another face and never chosen."""
    centre, width = landmarks.mean(0), float(np.ptp(landmarks[:, 0])) + 1e-3
    dist = [np.inf if i in taken else float(np.linalg.norm(f.mean(0) - centre)) for i, f in enumerate(found)]
    k = int(np.argmin(dist)) if dist else None
    return k if k is not None and dist[k] <= within * width else None


def refine_landmarks(rgb: np.ndarray, landmarks: np.ndarray, steps: int = 1) -> np.ndarray:
    """Landmarks found again from the box these ones imply: follows a face to the next frame, or brings
    landmarks nearer to what a detector's box on this very image would give."""
    for _ in range(steps):
        landmarks = landmarks68(rgb, box_from_landmarks(landmarks))
    return landmarks


def _thumb(rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Aligned grey thumbnail of the inner face, zero mean and unit norm (for a normalised correlation)."""
    crop = crop_face(rgb, estimate_matrix(landmarks, THUMB, 0.0), THUMB)
    g = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    g -= g.mean()
    return g / (np.linalg.norm(g) + 1e-6)


def _scene_thumb(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)


@dataclass
class _Track:
    face: Face
    ref: np.ndarray  # what the face looked like when last detected
    settled: bool = True  # its landmarks no longer moved when refined again (see FaceTracker.unsettled)


@dataclass
class FaceTracker:
    """`tracker(rgb) -> list[Face]` for consecutive frames of one video: the same faces `analyzer` would
    find, each followed from frame to frame, with its embedding (if the analyzer makes them) computed once.

    Detection only starts tracks: a face that is already followed keeps its own landmarks when a periodic
    detection finds it again (no jump), and is dropped only when it stops looking like itself. A face moving
    too fast to follow (its landmarks not settled, `unsettled`) is detected afresh in that frame. Between full
    detections at the analyzer's `min_face`, periodic ones look only for faces at least twice that size
    (4x fewer pixels) while every followed face is large, since those are the faces that matter then."""

    analyzer: FaceAnalyzer
    redetect: int = 30  # a detection at least every this many frames (new faces entering)
    full_every: int = 4  # ...at the analyzer's own smallest face size every this many periodic detections
    min_similarity: float = 0.4  # correlation of the aligned face with itself when last detected (same face:
    # 0.5-1.0 over 300 frames of d18, d6 and d3, turning and talking; another face or the background: far less)
    scene_cut: float = 30.0  # mean grey-level change of a 32x32 thumbnail that counts as a cut
    # A followed face's landmarks are refined twice from the previous frame's; when the second step still
    # moves them by more than this share of the face's width (mean over the 68 points), the head moved too
    # fast for the previous box and dlib's shape has not settled (on d12's fast turns, a jaw 40-56 px off):
    # the frame is detected afresh and the face takes the detection's landmarks. 1%: 18% of d12's frames,
    # none of d18, d3, s20 or s29, 2% of d6.
    unsettled: float = 0.01
    clock: StageClock = field(default_factory=StageClock)  # time in detect, identity and track
    tracks: list[_Track] = field(default_factory=list)
    detections: int = 0  # detections run so far (for tests and benchmarks)
    _since: int = 0
    _periodic: int = 0
    _scene: np.ndarray | None = None
    _coarse: FaceAnalyzer | None = None

    def reset(self) -> None:
        """Forget all faces: the next frame is detected afresh (e.g. an unrelated image)."""
        self.tracks, self._since, self._scene = [], 0, None

    def __call__(self, rgb: np.ndarray) -> list[Face]:
        rgb = np.ascontiguousarray(rgb)
        scene = _scene_thumb(rgb)
        cut = self._scene is None or float(np.abs(scene - self._scene).mean()) > self.scene_cut
        self._scene = scene
        self._since += 1
        if cut or not self.tracks:
            self.tracks = []
            self._find(rgb, self.analyzer)
            return [t.face for t in self.tracks]
        followed, lost = [], False
        for t in self.tracks:
            with self.clock("track"):
                first = refine_landmarks(rgb, t.face.landmarks)
                lms = refine_landmarks(rgb, first)
                settled = float(np.abs(lms - first).mean()) <= self.unsettled * (float(np.ptp(lms[:, 0])) + 1e-3)
                similar = float((_thumb(rgb, lms) * t.ref).sum())
            if similar < self.min_similarity:
                lost = True  # occluded, turned away or gone: dropped; a detection looks again
                continue
            face = replace(t.face, bbox=box_from_landmarks(lms), landmarks=lms)
            followed.append(_Track(face, t.ref, settled))
        self.tracks = followed
        if lost or not all(t.settled for t in followed):
            self._find(rgb, self.analyzer)
        elif self._since >= self.redetect:
            self._periodic += 1
            small = min(t.face.size for t in self.tracks) < 4 * self.analyzer.min_face
            full = small or self._periodic % self.full_every == 0
            self._find(rgb, self.analyzer if full else self._coarse_analyzer())
        return [t.face for t in self.tracks]

    def _coarse_analyzer(self) -> FaceAnalyzer:
        if self._coarse is None:
            self._coarse = replace(self.analyzer, min_face=2 * self.analyzer.min_face)
        return self._coarse

    def _find(self, rgb: np.ndarray, analyzer: FaceAnalyzer) -> None:
        """Detect, start a track for each face not yet followed, and confirm the followed ones found again."""
        self.detections += 1
        self._since = 0
        with self.clock("detect"):
            found = analyzer.detect(rgb)
        for face in found:
            same = _nearest(self.tracks, face)
            if same is not None:  # followed already: keep its landmarks (no jump) unless they had not settled
                if not same.settled:
                    same.face = replace(same.face, bbox=face.bbox, landmarks=face.landmarks)
                    same.settled = True
                same.ref = _thumb(rgb, same.face.landmarks)
                continue
            with self.clock("identity"):
                face = self.analyzer.describe(rgb, face)
            self.tracks.append(_Track(face, _thumb(rgb, face.landmarks)))


def _nearest(tracks: list[_Track], face: Face) -> _Track | None:
    """The track whose face centre is within a quarter face width of this one's, if any."""
    k = same_face([t.face.landmarks for t in tracks], face.landmarks)
    return None if k is None else tracks[k]
