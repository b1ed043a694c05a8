"""The target's own fine detail: faces kept beside the model by train, matched and warped onto the painting."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from masquerade.core.errors import InputError
from masquerade.models.detail import BANK_SIZE, DetailBank, bank_file, load_bank, save_bank
from masquerade.swap import exemplar


def _texture(size: int, seed: int) -> np.ndarray:
    """Fine random texture, 0-mean, about 12 grey levels rms."""
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.normal(0, 30, (size, size)).astype(np.float32), (0, 0), 1.0)


def _face(size: int) -> np.ndarray:
    """A smooth face-like luma: a bright oval with two dark eyes and a mouth."""
    img = np.full((size, size), 60, np.float32)
    k = size / 64
    cv2.ellipse(img, (size // 2, size // 2), (int(22 * k), int(28 * k)), 0, 0, 360, 170, -1)
    for x in (24, 40):
        cv2.circle(img, (int(x * k), int(26 * k)), int(4 * k), 70, -1)
    cv2.ellipse(img, (size // 2, int(44 * k)), (int(8 * k), int(3 * k)), 0, 0, 360, 110, -1)
    return cv2.GaussianBlur(img, (0, 0), 1.5 * k)


def test_the_nearest_face_is_the_one_most_like_the_painting_whatever_its_brightness():
    weight = np.ones((exemplar.THUMB, exemplar.THUMB), np.float32)
    base = _face(128)  # every face a little different: moved, and with its own texture
    shifted = np.stack([np.clip(np.roll(base, 4 * s - 14, axis=1) + _texture(128, s), 0, 255) for s in range(8)])
    thumbs = exemplar.thumbnails(shifted, weight)
    painted = cv2.resize(shifted[5], (64, 64), interpolation=cv2.INTER_AREA) * 0.7 + 30  # darker, flatter
    assert exemplar.nearest(thumbs, painted, weight) == 5


def test_the_targets_band_is_warped_onto_the_painting_and_withheld_where_they_differ():
    size = BANK_SIZE
    fine = _texture(size, 1)
    fine -= cv2.GaussianBlur(fine, (0, 0), exemplar.BAND * size / 64)  # only the band the exemplar gives
    real = _face(size) + fine  # the target's real face: what the painting should look like, with its detail
    shift = 5  # px at the exemplar's size: the exemplar shows the face a little to the right of the painting
    ex = np.clip(np.roll(real, shift, axis=1), 0, 255).astype(np.uint8)
    painted = cv2.resize(_face(size), (64, 64), interpolation=cv2.INTER_AREA)  # soft, no detail
    weight = np.ones((size, size), np.float32)
    band, gate = exemplar.own_band(ex, painted, weight)
    inner = (slice(48, -48), slice(48, -48))
    assert gate[inner].mean() > 0.9
    aligned = np.corrcoef(band[inner].ravel(), fine[inner].ravel())[0, 1]
    unwarped = np.corrcoef(np.roll(fine, shift, axis=1)[inner].ravel(), fine[inner].ravel())[0, 1]
    assert aligned > 0.45 > unwarped + 0.3  # the detail lands where the painting has its features
    other = np.clip(255 - ex.astype(np.int16), 0, 255).astype(np.uint8)  # a face that does not agree at all
    assert exemplar.own_band(other, painted, weight)[1][inner].mean() < 0.5


def test_the_targets_band_takes_the_place_of_the_paintings_own_so_a_painting_laid_on_itself_is_unchanged():
    size = BANK_SIZE
    painted = cv2.resize(_face(size), (64, 64), interpolation=cv2.INTER_AREA) + _texture(64, 3) / 2  # its own band
    up = cv2.resize(painted, (size, size), interpolation=cv2.INTER_CUBIC)
    ex = np.clip(up + 0.5, 0, 255).astype(np.uint8)  # the target's real face is exactly what was painted
    band, gate = exemplar.own_band(ex, painted, np.ones((size, size), np.float32))
    inner = (slice(48, -48), slice(48, -48))
    assert gate[inner].mean() > 0.9
    own = up - cv2.GaussianBlur(up, (0, 0), exemplar.BAND * size / 64)  # the painting's own band
    assert np.sqrt(np.mean(band[inner] ** 2)) < 0.25 * np.sqrt(np.mean(own[inner] ** 2))  # added, it would double


def test_a_bank_round_trips_and_leaves_out_a_faces_own_neighbours(tmp_path):
    faces = np.arange(5 * 8 * 8, dtype=np.uint8).reshape(5, 8, 8)
    bank = DetailBank(faces, ("x.mp4", "x.mp4", "y.mp4", "x.mp4", "y.mp4"), np.array([0, 30, 30, 100, 200]))
    save_bank(tmp_path, "b", bank)
    back = load_bank(tmp_path, "b")
    assert np.array_equal(back.faces, faces) and back.sources == bank.sources
    assert np.array_equal(back.frames, bank.frames)
    near = back.without("x.mp4", 20, 60)  # x's frames 0 and 30 are within 60 frames of 20; y's are another clip
    assert near.sources == ("y.mp4", "x.mp4", "y.mp4") and list(near.frames) == [30, 100, 200]
    assert load_bank(tmp_path, "a") is None
    (tmp_path / bank_file("a")).write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="detail_a"):
        load_bank(tmp_path, "a")


def test_train_keeps_each_sides_training_faces_beside_the_model(model_dir):
    from masquerade.faceset.store import FaceSet, is_holdout
    from masquerade.models.io import load_config

    cfg = load_config(model_dir)
    for side in ("a", "b"):
        bank = load_bank(model_dir, side)
        with FaceSet.open(cfg.facesets[side][0]) as fs:
            training = [r for r in fs if not is_holdout(r.id, cfg.holdout_every)]
            held = {(r.source, r.frame_index) for r in fs if is_holdout(r.id, cfg.holdout_every)}
        assert bank.faces.dtype == np.uint8 and bank.faces.shape[1:] == (BANK_SIZE, BANK_SIZE)
        assert 0 < len(bank) <= len(training)
        assert not held & set(zip(bank.sources, bank.frames.tolist(), strict=True))  # never a held-out face


def test_swap_lays_the_targets_own_detail_on_the_face_and_nothing_outside_it(model_dir, d18, tmp_path):
    from masquerade.evaluate.metrics import sharpness_ratio
    from masquerade.faces.analyze import FaceAnalyzer
    from masquerade.media import read_frames
    from masquerade.swap.pipeline import SwapOptions, Swapper

    frame = next(read_frames(d18)).image
    face = FaceAnalyzer("hog")(frame)[0]

    def swap(model, source: str, detail: float = 1.0) -> np.ndarray:
        opts = SwapOptions(to="b", smooth=0, detail=detail, detail_from=source)
        return Swapper(model, opts).swap_frames([frame], [[face]])[0]

    out = {s: swap(model_dir, s) for s in ("input", "target", "both")}
    out["none"] = swap(model_dir, "both", detail=0.0)
    changed = np.abs(out["both"].astype(np.int16) - out["input"]).max(2) > 0
    assert changed.sum() > 500  # the target's detail is laid on the face...
    x0, y0 = face.landmarks.min(0) - 0.3 * np.ptp(face.landmarks, 0)
    x1, y1 = face.landmarks.max(0) + 0.3 * np.ptp(face.landmarks, 0)
    ys, xs = np.nonzero(changed)
    assert xs.min() >= x0 and xs.max() <= x1 and ys.min() >= y0 and ys.max() <= y1  # ...and nowhere else
    sharp = {s: sharpness_ratio(o, face.landmarks, frame, face.landmarks) for s, o in out.items()}
    assert sharp["target"] > 1.3 * sharp["none"]  # the model's soft painting gets the target's own detail
    bare = tmp_path / "m"  # a model trained before banks were kept: the input's detail alone, bit for bit
    shutil.copytree(model_dir, bare)
    for side in ("a", "b"):
        (bare / bank_file(side)).unlink()
    assert np.array_equal(swap(bare, "both"), out["input"])
    assert np.array_equal(swap(bare, "target"), out["input"])  # as --help says: not a face left with no detail
    with pytest.raises(InputError, match="--detail-from"):
        Swapper(model_dir, SwapOptions(detail_from="model"))


def test_a_face_whose_model_pixels_are_under_two_frame_pixels_gets_none_of_the_targets_detail(model_dir, d18):
    from masquerade.faces.align import estimate_matrix, frame_px_per_crop_px
    from masquerade.faces.analyze import FaceAnalyzer
    from masquerade.media import read_frames
    from masquerade.swap.pipeline import OWN_MIN_MODEL_PX, SwapOptions, Swapper

    small = cv2.resize(next(read_frames(d18)).image, None, fx=0.36, fy=0.36, interpolation=cv2.INTER_AREA)
    face = FaceAnalyzer("hog")(small)[0]
    swapper = {s: Swapper(model_dir, SwapOptions(to="b", smooth=0, detail_from=s)) for s in ("input", "both", "target")}
    sw = swapper["both"]
    m = estimate_matrix(face.landmarks, sw.size, sw.padding, sw.lift)  # as swap crops it
    assert frame_px_per_crop_px(m) < OWN_MIN_MODEL_PX  # a face like s13's: 77 px wide, 1.6 frame px a model px
    out = {s: sw.swap_frames([small], [[face]])[0] for s, sw in swapper.items()}
    assert np.array_equal(out["both"], out["input"])
    assert np.array_equal(out["target"], out["input"])  # the input's band stands in, rather than none


def test_the_inputs_band_goes_where_the_painting_agrees_with_the_input_and_the_targets_where_it_does_not():
    from masquerade.swap.blend import restore_detail

    rng = np.random.default_rng(3)
    frame = np.clip(128 + rng.normal(0, 12, (96, 128, 1)).repeat(3, 2), 0, 255).astype(np.uint8)  # fine grain
    render = np.full_like(frame, 128)  # a smear: agrees with the input at the model's scale...
    render[:, 64:] = 208  # ...on the left; differs (the target's own eye, say) on the right
    own = np.full((96, 128), 6.0, np.float32)  # the target's band, already gated
    out = restore_detail(render, frame, np.ones((96, 128), np.float32), 2.0, own=own).astype(np.float32)
    grain = out - render
    assert np.corrcoef(grain[20:76, 8:48, 0].ravel(), frame[20:76, 8:48, 0].ravel())[0, 1] > 0.7  # the input's
    assert np.abs(grain[20:76, 80:120] - 6).max() <= 1  # the target's, not the input's grain
    alone = restore_detail(render, frame, np.ones((96, 128), np.float32), 2.0, own=own, from_input=False)
    assert np.abs(alone.astype(np.float32) - render - 6).max() <= 1
