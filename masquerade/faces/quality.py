"""Quality measures of a face: sharpness and head pose."""

from __future__ import annotations

import cv2
import numpy as np

# A generic 3-D head (millimetres, x right, y up, z towards the camera) at six stable landmarks.
_MODEL_3D = np.array(
    [
        (0.0, 0.0, 0.0),  # 30 nose tip
        (0.0, -63.0, -12.0),  # 8 chin
        (-43.0, 32.0, -26.0),  # 36 left eye, outer corner
        (43.0, 32.0, -26.0),  # 45 right eye, outer corner
        (-28.0, -28.0, -24.0),  # 48 mouth, left corner
        (28.0, -28.0, -24.0),  # 54 mouth, right corner
    ],
    dtype=np.float64,
)
_MODEL_IDX = [30, 8, 36, 45, 48, 54]


def blur_score(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the aligned crop: low means blurry. Comparable across same-size crops."""
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def head_pose(landmarks: np.ndarray, image_size: tuple[int, int]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from landmarks, by PnP against a generic head and a pinhole camera."""
    h, w = image_size
    f = float(max(h, w))
    cam = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], np.float64)
    img_pts = np.asarray(landmarks, np.float64)[_MODEL_IDX]
    # The camera looks along +z with y down: turn the model (y up, z towards camera) 180 degrees about x.
    model = _MODEL_3D * np.array([1, -1, -1])
    # Started from an upright head at the nose tip, at the distance its eyes' width implies (86 mm apart in
    # the model). Left to its own start, the solver settled on a head turned upside down for d0's smile
    # (roll 180, pitch +20 instead of 0 and -7), about as well fitting, in 6 of 10 sampled frames.
    eyes = float(np.linalg.norm(img_pts[3] - img_pts[2])) + 1e-6
    tvec = np.array([[img_pts[0, 0] - w / 2], [img_pts[0, 1] - h / 2], [f]]) * (86.0 / eyes)
    ok, rvec, _ = cv2.solvePnP(model, img_pts, cam, None, np.zeros((3, 1)), tvec, True, cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return (0.0, 0.0, 0.0)
    r, _ = cv2.Rodrigues(rvec)
    # Euler angles (x: pitch, y: yaw, z: roll) from the rotation matrix.
    sy = np.hypot(r[0, 0], r[1, 0])
    pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    yaw = np.degrees(np.arctan2(-r[2, 0], sy))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return (float(yaw), float(pitch), float(roll))
