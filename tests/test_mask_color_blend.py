"""Masks, colour matching and blending on synthetic images."""

import cv2
import numpy as np
import pytest

from masquerade.core.errors import InputError
from masquerade.faces.align import crop_frame_matrix, transform_points
from masquerade.faces.mask import face_mask, feather
from masquerade.faces.mean_face import MEAN_FACE_68
from masquerade.swap.blend import alpha_blend, poisson_blend, restore_detail
from masquerade.swap.color import MODES, match_border, match_color


@pytest.fixture
def lms():
    return transform_points(crop_frame_matrix(128, 0.3), MEAN_FACE_68)


def test_face_mask_covers_the_face_and_has_soft_edges(lms):
    m = face_mask((128, 128), lms)
    nose = lms[30].round().astype(int)
    assert m[nose[1], nose[0]] == pytest.approx(1.0, abs=1e-3)
    assert m[2, 2] == 0.0 and m[125, 2] == 0.0
    soft = ((m > 0.05) & (m < 0.95)).sum()
    assert soft > 50  # a feathered edge, not a hard one
    # forehead: the mask reaches above the brows
    brow_top = lms[17:27, 1].min()
    assert m[int(brow_top) - 8, int(lms[27, 0])] > 0.5


def test_feather_erode_shrinks():
    sq = np.zeros((50, 50), np.float32)
    sq[10:40, 10:40] = 1
    assert feather(sq, erode=3).sum() < sq.sum()
    assert feather(sq, erode=-3).sum() > sq.sum()


def _pair():
    rng = np.random.default_rng(1)
    src = np.clip(rng.normal(90, 20, (64, 64, 3)), 0, 255).astype(np.float32)
    ref = np.clip(rng.normal([150, 120, 60], [30, 10, 15], (64, 64, 3)), 0, 255).astype(np.float32)
    mask = np.zeros((64, 64), np.float32)
    mask[8:56, 8:56] = 1
    return src, ref, mask


def _masked_stats(img, mask):
    sel = img[mask > 0.5]
    return sel.mean(0), sel.std(0)


def test_mean_std_transfer_matches_the_target_statistics_inside_the_mask():
    src, ref, mask = _pair()
    out = match_color(src, ref, mask, "mean-std")
    m_out, s_out = _masked_stats(out, mask)
    m_ref, s_ref = _masked_stats(ref, mask)
    assert np.allclose(m_out, m_ref, atol=1.5) and np.allclose(s_out, s_ref, rtol=0.08)


def test_lab_transfer_matches_lab_statistics():
    src, ref, mask = _pair()
    out = match_color(src, ref, mask, "lab-transfer")
    lab = lambda im: cv2.cvtColor((im / 255).astype(np.float32), cv2.COLOR_RGB2LAB)  # noqa: E731
    m_out, s_out = _masked_stats(lab(out), mask)
    m_ref, s_ref = _masked_stats(lab(ref), mask)
    assert np.allclose(m_out, m_ref, atol=1.5) and np.allclose(s_out, s_ref, rtol=0.15, atol=0.5)


def test_lab_transfer_never_raises_a_renders_chroma_so_its_eyes_do_not_turn_green():
    # d0 before a green screen: the real face's chroma spread (a backdrop's cast on its edges, its lips) was
    # 3x the render's, and scaling the render's up to match pushed its eyes and brows to a* < 0: green.
    rng = np.random.default_rng(3)
    src = np.clip(rng.normal([205, 150, 130], 3, (64, 64, 3)), 0, 255).astype(np.float32)
    src[24:32, 16:48] = (95, 80, 76)  # eyes and brows: darker, barely red
    ref = np.clip(rng.normal([210, 160, 140], 3, (64, 64, 3)), 0, 255).astype(np.float32)
    ref[:, :14] = (160, 175, 130)  # a green cast on the face's edge
    ref[40:48, 20:44] = (150, 60, 70)  # lips
    mask = np.zeros((64, 64), np.float32)
    mask[4:60, 4:60] = 1
    lab = lambda im: cv2.cvtColor((im / 255).astype(np.float32), cv2.COLOR_RGB2LAB)  # noqa: E731
    out = lab(match_color(src, ref, mask, "lab-transfer"))
    assert out[24:32, 16:48, 1].mean() > 0  # the eyes stay grey-brown (the unclamped transfer: a* -26)
    _, s_out = _masked_stats(out, mask)
    _, s_src = _masked_stats(lab(src), mask)
    assert np.all(s_out[1:] <= s_src[1:] + 0.05)  # chroma spread may fall, never rise
    m_out, _ = _masked_stats(out, mask)
    m_ref, _ = _masked_stats(lab(ref), mask)
    assert np.allclose(m_out, m_ref, atol=1.5)  # the mean colour is still the input's


def test_hist_match_matches_quantiles():
    src, ref, mask = _pair()
    out = match_color(src, ref, mask, "hist-match")
    sel = mask > 0.5
    for c in range(3):
        q = [10, 50, 90]
        assert np.allclose(np.percentile(out[..., c][sel], q), np.percentile(ref[..., c][sel], q), atol=3)


def test_none_is_identity_and_all_modes_stay_in_range():
    src, ref, mask = _pair()
    assert np.array_equal(match_color(src, ref, mask, "none"), src)
    for mode in MODES:
        out = match_color(src, ref, mask, mode)
        assert out.min() >= 0 and out.max() <= 255


@pytest.mark.parametrize("blend", [alpha_blend, poisson_blend])
def test_blends_leave_pixels_outside_the_mask_unchanged(blend):
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    face = np.full((120, 160, 3), 200, np.float32)
    mask = np.zeros((120, 160), np.float32)
    cv2.circle(mask, (80, 60), 30, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 4)
    mask[mask < 1e-3] = 0
    out = blend(frame, face, mask)
    assert np.array_equal(out[mask == 0], frame[mask == 0])
    assert np.abs(out[60, 80].astype(int) - frame[60, 80]).max() > 20  # the inside changed


def test_alpha_blend_is_exact_at_full_mask():
    frame = np.zeros((10, 10, 3), np.uint8)
    face = np.full((10, 10, 3), 100, np.float32)
    assert (alpha_blend(frame, face, np.ones((10, 10), np.float32)) == 100).all()


def _fringe(frame: np.ndarray, lms: np.ndarray) -> np.ndarray:
    """A dark fringe falling over the left half of the forehead, from above the hull to just above the brow."""
    lock = np.zeros(frame.shape[:2], np.uint8)
    iod = float(np.linalg.norm(lms[45] - lms[36]))
    up = lms[17:27].mean(0) - lms[8]
    x0, x1 = lms[0, 0] - 0.2 * iod, lms[19, 0]  # the side of the face, the middle of the brow
    y0, y1 = (lms[19] + 0.5 * up)[1], lms[17:22, 1].min() - 0.15 * iod  # above the hull, just above the brow
    pts = np.array([(x0, y0), (x1, y0), (x1 + 0.2 * iod, y1), (x0, y1)], np.int32)
    cv2.fillConvexPoly(lock, pts, 1)
    return lock > 0


def test_hair_reaching_into_the_face_hull_is_cut_and_a_mole_or_the_features_are_not(d18):
    from masquerade.faces.analyze import FaceAnalyzer
    from masquerade.faces.mask import face_hull_points, hull_mask, not_skin
    from masquerade.media import read_frames

    frame = next(read_frames(d18)).image.copy()
    lms = FaceAnalyzer("hog")(frame)[0].landmarks
    assert not_skin(frame, lms).mean() < 0.01  # d18's hair stays above the hull
    lock = _fringe(frame, lms)
    frame[lock] = (58, 40, 30)  # dark brown
    mole = tuple(np.round(lms[2] * 0.5 + lms[30] * 0.5).astype(int))  # mid-cheek, well inside the hull
    cv2.circle(frame, mole, 4, (60, 40, 30), -1)
    cut = not_skin(frame, lms) > 0.5
    inside = lock & (hull_mask(frame.shape[:2], face_hull_points(lms)) > 0.5)
    assert inside.sum() > 500
    assert cut[inside].mean() > 0.8  # the lock, where it lies over the face
    assert not cut[mole[1], mole[0]]
    for part in (slice(17, 27), slice(36, 48), slice(48, 68)):  # brows, eyes, mouth
        x, y = np.round(lms[part].mean(0)).astype(int)
        assert not cut[y, x]


def test_swap_keeps_the_inputs_own_hair_over_the_face(model_dir, d18):
    from masquerade.faces.analyze import FaceAnalyzer
    from masquerade.faces.mask import face_hull_points, hull_mask
    from masquerade.media import read_frames
    from masquerade.swap.pipeline import SwapOptions, Swapper

    frame = next(read_frames(d18)).image.copy()
    face = FaceAnalyzer("hog")(frame)[0]
    lock = _fringe(frame, face.landmarks)
    frame[lock] = (58, 40, 30)
    over = lock & (hull_mask(frame.shape[:2], face_hull_points(face.landmarks)) > 0.5)
    core = cv2.erode(over.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0  # away from the feathered edge
    kept = {}
    for mask in ("skin", "hull"):
        out = Swapper(model_dir, SwapOptions(to="b", mask=mask, smooth=0)).swap_frames([frame], [[face]])[0]
        kept[mask] = float((np.abs(out.astype(int) - frame)[core].max(1) <= 2).mean())
    assert kept["skin"] > 0.95 and kept["hull"] < 0.75  # the hull pastes B's forehead over much of it


def _textured(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A skin-like 128 px frame (a smooth ramp plus fine seeded grain) and the same frame as a 4x coarser model
    would render it (the grain gone)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(90, 170, 128, dtype=np.float32)[None, :, None].repeat(128, 0).repeat(3, 2)
    grain = rng.normal(0, 8, (128, 128, 1)).astype(np.float32).repeat(3, 2)
    frame = np.clip(ramp + grain, 0, 255).astype(np.uint8)
    render = cv2.resize(cv2.resize(frame, (32, 32), interpolation=cv2.INTER_AREA), (128, 128))
    return frame, render


def _grain(img: np.ndarray) -> float:
    return float(cv2.Laplacian(img[..., 1].astype(np.float32), cv2.CV_32F)[40:88, 40:88].var())


def test_detail_restores_the_inputs_grain_inside_the_mask_and_leaves_the_rest_bit_for_bit():
    frame, render = _textured()
    mask = np.zeros((128, 128), np.float32)
    mask[24:104, 24:104] = 1.0
    out = restore_detail(render, frame, mask, model_px=4.0)
    assert _grain(render) < 0.3 * _grain(frame)  # the render is a smear...
    assert _grain(out) > 0.6 * _grain(frame)  # ...and gets the input's grain back
    assert np.array_equal(out[mask == 0], render[mask == 0])
    assert np.array_equal(restore_detail(render, frame, mask, 4.0, strength=0), render)


def test_detail_is_withheld_where_the_render_differs_from_the_input():
    frame, render = _textured()
    mask = np.ones((128, 128), np.float32)
    other = np.clip(render.astype(np.int16) + 80, 0, 255).astype(np.uint8)  # e.g. lips rendered where teeth show
    out = restore_detail(other, frame, mask, model_px=4.0)
    assert np.abs(out.astype(np.int16) - other)[40:88, 40:88].max() <= 2


def test_swap_restores_fine_detail_to_the_face_and_keeps_its_identity(model_dir, d18):
    from masquerade.evaluate.metrics import sharpness_ratio
    from masquerade.faces.analyze import FaceAnalyzer
    from masquerade.media import read_frames
    from masquerade.swap.pipeline import SwapOptions, Swapper

    frame = next(read_frames(d18)).image
    fa = FaceAnalyzer("hog")
    face = fa(frame)[0]
    sharp = {}
    for detail in (0.0, 1.0):
        out = Swapper(model_dir, SwapOptions(to="b", smooth=0, detail=detail)).swap_frames([frame], [[face]])[0]
        sharp[detail] = sharpness_ratio(out, face.landmarks, frame, face.landmarks)
    assert sharp[1.0] > 1.5 * sharp[0.0]
    with pytest.raises(InputError, match="--detail"):
        Swapper(model_dir, SwapOptions(detail=3))


def test_the_faces_border_takes_the_inputs_colours_and_its_middle_keeps_its_own(lms):
    mask = face_mask((128, 128), lms)
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32)
    ref = np.stack([120 + 0.4 * xx, 100 + 0.3 * yy, 90 + 0 * xx], -1)  # the input: shading across the face
    src = ref + np.array([30.0, -20.0, 10.0], np.float32)  # the render: another tone
    out = match_border(src, ref, mask)
    hull = mask > 0.5
    band = hull & ~(cv2.erode(hull.astype(np.uint8), np.ones((11, 11), np.uint8)) > 0)
    before = np.abs(src - ref)[band].mean()
    assert np.abs(out - ref)[band].mean() < 0.35 * before  # the seam's colour difference mostly gone...
    nose = lms[30].round().astype(int)
    assert np.abs(out - src)[nose[1], nose[0]].max() < 3  # ...and the face's own tone kept inside
    assert np.array_equal(match_border(src, ref, mask, strength=0), src)


def test_swap_matches_the_border_colour_to_the_input(model_dir, d18):
    from masquerade.evaluate.metrics import edge_color_error
    from masquerade.faces.analyze import FaceAnalyzer
    from masquerade.media import read_frames
    from masquerade.swap.pipeline import SwapOptions, Swapper

    frame = next(read_frames(d18)).image
    face = FaceAnalyzer("hog")(frame)[0]
    err = {}
    for edge in (0.0, 1.0):
        out = Swapper(model_dir, SwapOptions(to="b", smooth=0, edge_match=edge)).swap_frames([frame], [[face]])[0]
        err[edge] = edge_color_error(out, frame, face.landmarks)
    assert err[1.0] < 0.9 * err[0.0]
    with pytest.raises(InputError, match="--edge-match"):
        Swapper(model_dir, SwapOptions(edge_match=-1))
