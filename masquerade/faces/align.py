"""Alignment: a similarity transform (Umeyama) from a face's landmarks to the mean face, and its inverse.

A crop is described by its 2x3 matrix (frame -> crop). `padding` widens the crop around the mean face's
unit square on each side, as a fraction of that square: 0.3 shows forehead and chin, 0.0 the inner face.
Crops at other paddings and sizes are exact sub-crops (a scale + shift), so training can re-crop a stored
256 px face to the model's coverage without going back to the frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from masquerade.faces.mean_face import MEAN_FACE_68

ALIGN_POINTS = slice(17, 68)  # brows, eyes, nose, mouth: stable across expressions; the jaw is not
DEFAULT_PADDING = 0.3


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, shift) taking src points to dst.

    Umeyama (1991), "Least-squares estimation of transformation parameters between two point patterns".
    Returns a 2x3 matrix A with dst ~= A[:, :2] @ src + A[:, 2].
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    var_s = (s0**2).sum() / len(src)
    scale = (sig * d).sum() / var_s
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def crop_frame_matrix(size: int, padding: float, lift: float = 0.0) -> np.ndarray:
    """Matrix from mean-face units (unit square) to pixels of a `size` crop with `padding`, moved up by `lift`
    (in the same units: more room above the brows, less below the chin)."""
    k = size / (1 + 2 * padding)
    return np.array([[k, 0, padding * k], [0, k, (padding + lift) * k]], np.float64)


def estimate_matrix(
    landmarks: np.ndarray, size: int = 256, padding: float = DEFAULT_PADDING, lift: float = 0.0
) -> np.ndarray:
    """The 2x3 frame -> crop matrix that puts these landmarks on the mean face, upright, centred (or `lift`ed)."""
    to_unit = umeyama(landmarks[ALIGN_POINTS], MEAN_FACE_68[ALIGN_POINTS])
    return compose(crop_frame_matrix(size, padding, lift), to_unit)


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 2x3 matrix of `a` after `b`."""
    a3 = np.vstack([a, [0, 0, 1]])
    b3 = np.vstack([b, [0, 0, 1]])
    return (a3 @ b3)[:2]


def invert(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(m, np.float64))


def recrop_matrix(
    size_from: int, pad_from: float, size_to: int, pad_to: float, lift_from: float = 0.0, lift_to: float = 0.0
) -> np.ndarray:
    """Matrix taking a crop (size_from, pad_from, lift_from) to the crop (size_to, pad_to, lift_to) of the same face."""
    return compose(
        crop_frame_matrix(size_to, pad_to, lift_to), invert(crop_frame_matrix(size_from, pad_from, lift_from))
    )


def frame_px_per_crop_px(m: np.ndarray) -> float:
    """How many frame pixels one crop pixel spans, for a frame -> crop matrix `m`."""
    return 1.0 / (float(np.sqrt(abs(np.linalg.det(np.asarray(m, np.float64)[:, :2])))) + 1e-12)


def transform_points(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64)
    return (pts @ np.asarray(m, np.float64)[:, :2].T + m[:, 2]).astype(np.float32)


def crop_face(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Warp the face into its square crop (bicubic; borders replicate so edges are not black)."""
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def uncrop(crop: np.ndarray, matrix: np.ndarray, frame_shape: tuple[int, ...], border_value=None) -> np.ndarray:
    """Warp a crop back into frame coordinates with the inverse matrix. Beyond the crop: `border_value`, or by
    default the crop's edge continued. An image must not take a constant there: the cubic warp mixes the border
    into the crop's outer frame pixel (black: a dark line wherever the crop's edge crosses the face's mask)."""
    h, w = frame_shape[:2]
    border = dict(borderMode=cv2.BORDER_REPLICATE)
    if border_value is not None:
        border = dict(borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)
    return cv2.warpAffine(crop, matrix, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, **border)


# dlib's 68 points mirrored left <-> right: jaw, brows, nose bridge, nostrils, eyes, outer and inner lips.
MIRROR_68 = np.array(
    [*range(16, -1, -1), *range(26, 21, -1), *range(21, 16, -1), 27, 28, 29, 30, *range(35, 30, -1)]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)


def mirror_landmarks(landmarks: np.ndarray, width: int) -> np.ndarray:
    """The 68 landmarks of the same face in the horizontally flipped image (each point keeps its meaning)."""
    out = np.asarray(landmarks, np.float32)[MIRROR_68].copy()
    out[:, 0] = width - 1 - out[:, 0]
    return out


def interocular(landmarks: np.ndarray) -> float:
    """Distance between the outer eye corners (points 36 and 45): the face's own unit of length."""
    return float(np.linalg.norm(landmarks[45] - landmarks[36]))


EYE_POINTS = (slice(36, 42), slice(42, 48))  # dlib's 68 points: the face's right eye (the image's left), its left


def eye_openings(landmarks: np.ndarray) -> tuple[float, float]:
    """Each eye's opening (`EYE_POINTS` order): its lids' mean distance over its width (the eye aspect ratio of
    Soukupova and Cech, 2016): about 0.25-0.35 open, under 0.15 closed."""
    out = []
    for eye in EYE_POINTS:
        p = landmarks[eye]
        lids = np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])
        out.append(float(lids / max(2 * np.linalg.norm(p[3] - p[0]), 1e-6)))
    return out[0], out[1]


def mouth_opening(landmarks: np.ndarray) -> float:
    """Inner-lip opening (points 62-66) over the inter-ocular distance: about 0 for a closed mouth."""
    return float(np.linalg.norm(landmarks[66] - landmarks[62])) / max(interocular(landmarks), 1e-6)
