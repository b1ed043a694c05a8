"""Alignment math: Umeyama recovers similarities; crops warp back into the frame within a pixel."""

import numpy as np
import pytest

from masquerade.faces.align import (
    compose,
    crop_face,
    estimate_matrix,
    invert,
    recrop_matrix,
    transform_points,
    umeyama,
)
from masquerade.faces.mean_face import MEAN_FACE_68


def _similarity(scale, angle_deg, tx, ty):
    a = np.radians(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (30, 2))
    m = _similarity(1.7, 23.0, 12.0, -4.0)
    dst = transform_points(m, src)
    assert np.allclose(umeyama(src, dst), m, atol=1e-4)


def test_estimate_matrix_puts_landmarks_on_the_mean_face():
    face = transform_points(_similarity(180.0, -12.0, 200.0, 150.0), MEAN_FACE_68)  # a face in a frame
    m = estimate_matrix(face, size=256, padding=0.3)
    in_crop = transform_points(m, face)
    expected = (MEAN_FACE_68 + 0.3) * 256 / 1.6
    assert np.abs(in_crop - expected).max() < 1e-3


def test_points_round_trip_is_exact():
    face = transform_points(_similarity(150.0, 30.0, 300.0, 100.0), MEAN_FACE_68)
    m = estimate_matrix(face)
    back = transform_points(invert(m), transform_points(m, face))
    assert np.abs(back - face).max() < 1e-3


def test_crop_warps_back_into_the_frame_within_one_pixel():
    # A frame with a sharp, off-centre dot; crop then uncrop must put the dot back within a pixel.
    frame = np.zeros((400, 500), np.float32)
    frame[170:173, 240:243] = 1.0
    face = transform_points(_similarity(160.0, 17.0, 160.0, 110.0), MEAN_FACE_68)
    m = estimate_matrix(face, size=256)
    crop = crop_face(frame, m, 256)
    import cv2

    back = cv2.warpAffine(crop, m, (500, 400), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
    ys, xs = np.nonzero(back > 0.3)
    assert abs(xs.mean() - 241) < 1.0 and abs(ys.mean() - 171) < 1.0


@pytest.mark.parametrize("lift", [0.0, 0.07])
def test_recrop_is_a_sub_crop(lift):
    face = transform_points(_similarity(160.0, 5.0, 220.0, 180.0), MEAN_FACE_68)
    wide = estimate_matrix(face, 256, 0.3)
    tight = estimate_matrix(face, 64, 0.15, lift=lift)
    via = compose(recrop_matrix(256, 0.3, 64, 0.15, lift_to=lift), wide)
    assert np.allclose(via, tight, atol=1e-6)
