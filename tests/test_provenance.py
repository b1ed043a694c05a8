"""The watermark and `verify`: round trip, payload, invisibility, robustness to each attack, no false alarms."""

import json
import subprocess
import sys
from itertools import islice

import cv2
import numpy as np
import pytest

from masquerade.faces import FaceAnalyzer
from masquerade.faces.mask import face_mask
from masquerade.media import VideoWriter, probe, read_frames, read_image, write_image
from masquerade.provenance import watermark as wm
from masquerade.provenance.verify import (
    MODEL_ID_Z,
    _landmarks,
    min_marked_frames,
    verify_analyzer,
    verify_file,
    verify_frames,
)

from .conftest import CLIPS, STILLS, need


@pytest.fixture(scope="module")
def fa():
    return FaceAnalyzer(detector="hog", embeddings=False)


def test_embed_then_read_round_trip(d19, fa):
    frame = next(read_frames(d19)).image
    face = fa(frame)[0]
    marked = wm.embed(frame, face.landmarks, "beef0123")
    psnr = 10 * np.log10(255**2 / np.mean((marked.astype(float) - frame) ** 2))
    assert psnr >= 40
    seen = fa(marked)[0]
    r = wm.read_mark(marked, seen.landmarks)
    assert r.marked and r.z_signature > 8
    sig, code = wm.bits_to_payload(r.z_bits)
    assert sig == wm.SIGNATURE  # the model id has a quarter of the energy: one frame reads most of its bits
    assert bin(code ^ 0xBEEF).count("1") <= 3
    assert not wm.read_mark(frame, face.landmarks).marked


def test_a_video_face_is_also_marked_in_its_colour_which_alone_reads_the_payload(d19, fa):
    frame = next(read_frames(d19)).image
    lms = wm.mark_landmarks(frame, fa(frame)[0].landmarks)
    tier = wm.COLOUR_TIERS[0]
    coloured = wm._embed_colour(frame, lms, "beef0123", None, tier)
    luma = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(int) for f in (frame, coloured)]
    assert np.abs(luma[1] - luma[0]).max() <= 1  # the brightness is untouched, up to rounding
    cb = [cv2.cvtColor(f, cv2.COLOR_RGB2YCrCb)[..., 2].astype(float) for f in (frame, coloured)]
    assert 1.5 < np.sqrt(np.mean((cb[1] - cb[0])[cb[1] != cb[0]] ** 2)) < 2 * wm.COLOUR_AMP
    r = wm.read_mark(coloured, lms, wm.COLOUR_TIERS)
    assert r.z_signature > 10 and wm.bits_to_payload(r.z_bits) == (wm.SIGNATURE, 0xBEEF)
    assert not wm.read_mark(frame, lms, wm.COLOUR_TIERS).marked
    assert not wm.read_mark(coloured, lms).marked  # the luminance tiers do not see it
    whole = wm.embed(frame, fa(frame)[0].landmarks, "beef0123")  # a video face: both marks
    assert wm.read_mark(whole, fa(whole)[0].landmarks, wm.COLOUR_TIERS).z_signature > 10
    grey = cv2.cvtColor(cv2.cvtColor(whole, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    assert abs(wm.read_face(grey, lms, tier).z_signature) < 1e-3  # no colour, no colour mark: nothing to read


def test_the_colour_mark_leaves_the_eyes_and_the_face_s_average_colour_as_they_were(d19, fa):
    # The reader ignores the layout every face shares (eyes, lips, brows, the hull); a mark with a share of it there
    # only shows: the payload's share tinted d3's and d6's eyes violet (mean Cb +4.0 and +3.5 levels).
    frame = next(read_frames(d19)).image
    lms = wm.mark_landmarks(frame, fa(frame)[0].landmarks)
    for tier in wm.COLOUR_TIERS:
        delta = wm.cb_plane(wm._embed_colour(frame, lms, "e647abcd", None, tier)) - wm.cb_plane(frame)
        eyes, hull = (np.zeros(frame.shape[:2], np.uint8) for _ in range(2))
        for idx in (slice(36, 42), slice(42, 48)):
            cv2.fillPoly(eyes, [np.round(lms[idx]).astype(np.int32)], 1)
        cv2.fillConvexPoly(hull, cv2.convexHull(np.round(lms).astype(np.int32)), 1)
        assert np.sqrt(np.mean(delta[hull > 0] ** 2)) > 1.5  # marked
        assert abs(delta[eyes > 0].mean()) < 1.5 and abs(delta[hull > 0].mean()) < 0.3


def test_the_colour_reader_ignores_the_layout_every_face_shares():
    # Lips, eyes and brows differ from the skin in colour on every face; read as they are, coarse colour patterns
    # correlate with that layout and unmarked faces read a mean z of 0.95 (d3: 2.45). The reader projects it out.
    tier = wm.COLOUR_TIERS[0]
    basis, filtered = wm._feature_basis(tier), wm._filtered_patterns(tier)
    assert np.allclose(basis @ basis.T, np.eye(len(basis)), atol=1e-4)
    assert np.abs(filtered @ basis.T).max() < 1e-3 * np.abs(filtered).sum(1).max()
    layout = np.random.default_rng(3).normal(0, 50, len(basis)) @ basis  # any mix of the features, strongly
    mark = np.concatenate([wm.payload_bits("beef0123"), np.zeros(wm.N_DECOYS, np.float32)]) @ filtered
    corr = filtered @ (layout + mark)
    assert np.allclose(corr, filtered @ mark, atol=1e-2 * np.abs(filtered @ mark).max())


def test_the_luma_the_embed_reads_is_the_luma_of_the_frame_it_marks():
    # The embed reads the marked luma (`marked_luma`) instead of marking the three channels each time it checks.
    rng = np.random.default_rng(7)
    frame = rng.integers(13, 243, (90, 120, 3), dtype=np.uint8)  # no channel clips under a mark of +-12
    delta = rng.uniform(-wm.MAX_DELTA, wm.MAX_DELTA, (90, 120)).astype(np.float32)
    delta[0, :4] = [0.5, -0.5, 1.5, -1.5]  # halves round up, as the frame's own rounding does
    marked = wm.add_mark(frame, delta, pixels=10**9)  # a region of a frame so large that the PSNR cap is idle
    assert np.array_equal(marked[0, :4, 0].astype(int) - frame[0, :4, 0], [1, 0, 2, -1])
    luma = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    assert np.array_equal(wm.marked_luma(luma, delta), cv2.cvtColor(marked, cv2.COLOR_RGB2GRAY))


def test_a_marked_face_s_decoys_read_almost_nothing_where_verify_will_read_it(d18, fa, monkeypatch):
    frame = next(read_frames(d18)).image
    lms = fa(frame)[0].landmarks

    monkeypatch.setattr(wm, "VISIBLE_SSIM", 0.0)  # the whole mark, not one `_unseen` scaled down with its cancelling

    def decoys(steps: int) -> tuple[float, float]:
        """The decoys' rms read on the marked face, over the host face's own spread; the signature's z."""
        monkeypatch.setattr(wm, "SELF_NOISE_STEPS", steps)
        marked = wm.embed(frame, lms, "beef0123")
        at = wm.mark_landmarks(marked, wm.mark_landmarks(frame, lms), wm.REALIGN_REFINE)  # the embed's last look
        host, read = wm.read_face(frame, at), wm.read_face(marked, at)
        return float(np.sqrt(np.mean((read.z_decoys * read.sigma) ** 2)) / host.sigma), read.z_signature

    (before, z_before), (after, z_after) = decoys(0), decoys(2)
    assert after < 0.1 < before  # clipping and the texture weight no longer leak the mark into the decoys...
    assert z_after > 2 * z_before  # ...whose spread is the reader's null: the same mark reads far stronger


def _delta_rms(marked: np.ndarray, frame: np.ndarray) -> float:
    """The luminance mark's rms where it changed the picture (a video face's colour mark leaves the luma be)."""
    d = cv2.cvtColor(marked, cv2.COLOR_RGB2GRAY).astype(np.float32) - cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return float(np.sqrt(np.mean(d[d != 0] ** 2)))


def test_a_large_face_is_marked_in_the_finer_tier_and_more_faintly(d19, fa, monkeypatch):
    monkeypatch.setattr(wm, "VISIBLE_SSIM", 0.0)  # the strength each tier's target asks for, before `_unseen`
    frame = next(read_frames(d19)).image
    big = cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    small_face, big_face = fa(frame)[0].landmarks, fa(big)[0].landmarks
    assert wm.tier_for(small_face) == wm.TIERS[0] and wm.tier_for(big_face) == wm.TIERS[-1]
    small_marked = wm.embed(frame, small_face, "beef0123")
    big_marked = wm.embed(big, big_face, "beef0123")
    seen = fa(big_marked)[0].landmarks
    r = wm.read_mark(big_marked, seen)
    assert r.marked and r.z_signature > 8
    assert not wm.read_face(big_marked, wm.mark_landmarks(big_marked, seen), wm.TIERS[0]).marked  # not the coarse one
    # the finer mark reaches its (higher) z with well under the coarse mark's strength
    assert _delta_rms(big_marked, big) < 0.8 * _delta_rms(small_marked, frame)


def _jpeg_50(rgb: np.ndarray) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 50])
    assert ok
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def test_a_picture_is_marked_around_the_face_not_on_it_and_survives_jpeg_50(fa):
    img = read_image(need(STILLS / "d9.jpg"))  # hair against a plain wall: the ring reads z 23 before fitting
    face = fa(img)[0].landmarks
    out = wm.embed(img, face, "beef0123", still=True)
    hull = face_mask(img.shape[:2], face, blur=0) > 0.5
    inner = face_mask(img.shape[:2], face, blur=int(0.1 * np.ptp(face[:, 0]))) > 0.99  # away from the hull's edge
    delta = np.abs(out.astype(np.float32) - img).max(-1)
    # the face as it was (a face mark changes a hull by about 2 grey levels on average), the mark around it
    assert delta[inner].mean() < 0.05 and delta[hull].mean() < 0.5 and delta[~hull].max() >= 4
    assert wm.read_mark(out, face, wm.RING_TIERS).z_signature > 10 and not wm.read_mark(out, face).marked
    assert verify_frames("d9.jpg", [_jpeg_50(out)], fa, still=True).marked
    assert not verify_frames("d9.jpg", [img], fa, still=True).marked


def test_swap_gives_a_picture_s_mark_the_whole_picture_and_a_video_frame_s_only_the_face_s_region(
    model_dir, d19, monkeypatch
):
    from masquerade.swap.pipeline import SwapOptions, Swapper

    seen = []
    real = wm.embed

    def spy(frame, *args, **kwargs):
        seen.append((frame.shape, kwargs.get("still", False)))
        return real(frame, *args, **kwargs)

    frame = next(read_frames(d19)).image
    swapper = Swapper(model_dir, SwapOptions(to="b", swap_all=True))
    monkeypatch.setattr(wm, "embed", spy)
    swapper.swap_frame(frame, still=True)  # the ring lies around the face: it needs the picture around it
    swapper.reset()
    swapper.swap_frame(frame)
    (picture, as_picture), (region, as_frame) = seen
    assert picture == frame.shape and as_picture
    assert region[0] < frame.shape[0] and region[1] < frame.shape[1] and not as_frame


def test_a_picture_with_no_room_around_its_face_is_marked_on_the_face(fa):
    img = read_image(need(STILLS / "d19.jpg"))
    x0, y0, x1, y1 = fa(img)[0].bbox.astype(int)
    tight = np.ascontiguousarray(img[max(0, y0 - 20) : y1 + 20, max(0, x0 - 20) : x1 + 20])  # the ring falls outside
    face = fa(tight)[0].landmarks
    marked = wm.embed(tight, face, "beef0123", still=True)
    hull = face_mask(tight.shape[:2], face, blur=0) > 0.5
    assert np.abs(marked.astype(np.float32) - tight).max(-1)[hull].mean() > 0.3
    assert verify_frames("d19.jpg", [_jpeg_50(marked)], fa, still=True).marked


def test_a_picture_whose_ring_and_face_both_fall_short_of_the_codecs_keeps_the_stronger(monkeypatch):
    """Both at the strength ceiling: the face mark (more visible) only if it reads more than the ring."""
    img, face = np.zeros((64, 64, 3), np.uint8), np.zeros((68, 2), np.float32)
    monkeypatch.setattr(wm, "mark_landmarks", lambda frame, landmarks, steps=wm.REFINE_STEPS: landmarks)
    for ring_z, face_z, kept in ((11.8, 8.4, "ring"), (8.4, 11.8, "face"), (15.0, 20.0, "ring")):
        made = {"ring": img + 1, "face": img + 2}

        def fit(frame, landmarks, args, finder, ring_z=ring_z, face_z=face_z, made=made):
            return (made["ring"], ring_z) if args[-1] == wm.RING_TIERS else (made["face"], face_z)

        monkeypatch.setattr(wm, "_embed_picture", fit)
        assert wm.embed(img, face, "beef0123", still=True) is made[kept]


def test_verify_reads_a_face_after_each_of_several_refinements_and_counts_each_as_a_look(monkeypatch):
    """On a motion-blurred face dlib's refinement does not settle (d12 swapped by its own model: 163 of 183
    frames read as marked after 2 steps; 175 reading after 2, 3, 4 and 6)."""
    from masquerade.provenance.verify import looks_per_frame

    steps_run = []

    def refine(frame, landmarks, steps=wm.REFINE_STEPS):
        steps_run.append(steps)
        return landmarks + steps  # each refinement moves the landmarks on

    def read(frame, landmarks, tier=None, geometry=None):  # z: how many steps the landmarks have been refined
        return wm.FaceMark(np.zeros(wm.N_BITS), float(landmarks[0, 0]), np.zeros(wm.N_DECOYS), 1.0)

    monkeypatch.setattr(wm, "mark_landmarks", refine)
    monkeypatch.setattr(wm, "read_face", read)
    assert wm.read_mark(np.zeros((8, 8, 3), np.uint8), np.zeros((68, 2))).z_signature == max(wm.READ_STEPS)
    assert sum(steps_run) == max(wm.READ_STEPS) and len(steps_run) == len(wm.READ_STEPS) > 1  # each step once
    looks, steps = looks_per_frame(), len(wm.READ_STEPS)
    monkeypatch.setattr(wm, "READ_STEPS", (wm.REFINE_STEPS,))
    assert looks == steps * looks_per_frame()  # the file rule counts every read


def test_verify_takes_no_more_looks_at_a_face_once_one_reads_it_beyond_doubt(monkeypatch):
    from masquerade.provenance import verify

    looked: list[tuple[bool, int]] = []  # (mirrored, steps refined) of each read

    def refine(frame, landmarks, steps=wm.REFINE_STEPS):
        return landmarks + steps

    def read(frame, landmarks, tier=None, geometry=None):  # mirrored faces read 1; as they are, 5 a step
        mirrored = bool(frame[0, 0, 0])
        looked.append((mirrored, int(landmarks[0, 0])))
        return wm.FaceMark(np.zeros(wm.N_BITS), 1.0 if mirrored else 5.0 * landmarks[0, 0], np.zeros(wm.N_DECOYS), 1)

    monkeypatch.setattr(wm, "mark_landmarks", refine)
    monkeypatch.setattr(wm, "read_face", read)
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, -1] = 1  # the mirror image's first pixel
    sure = verify._read_sides(image, np.zeros((68, 2)), wm.TIERS)  # 10 after two steps: sure
    assert sure.z_signature == 10 and {m for m, _ in looked} == {False} and {s for _, s in looked} == {2}
    looked.clear()
    monkeypatch.setattr(verify, "SURE_Z", 100.0)
    assert verify._read_sides(image, np.zeros((68, 2)), wm.TIERS).z_signature == 5 * max(wm.READ_STEPS)
    assert {m for m, _ in looked} == {False, True}  # every step, as it is and mirrored


def test_a_mark_verify_aligns_a_few_pixels_and_percent_off_is_found_by_searching_in_a_file_already_marked(
    d18, fa, monkeypatch
):
    """Where dlib's landmarks do not settle (d12 turning fast, swapped by its own model), verify's landed 4-12%
    of scale and a pixel or two from those the mark was aligned to: 10 of 183 frames read z 1.0-4.0 (0 now).
    The luminance mark alone: the colour mark's coarser cells read at such an alignment without a search."""
    monkeypatch.setattr(wm, "_embed_colour", lambda frame, *_: frame)
    frames = [f.image for f in islice(read_frames(d18), 4)]
    marked = [wm.embed(f, fa(f)[0].landmarks, "beef0123") for f in frames]
    # a frame whose landmarks settle elsewhere on every refinement: told apart by its border
    off = cv2.copyMakeBorder(marked[0], 8, 8, 8, 8, cv2.BORDER_REPLICATE)
    settle = wm.mark_landmarks

    def elsewhere(img, lms, steps=wm.REFINE_STEPS):  # there: 8% smaller and 5 px aside
        got = settle(img, lms, steps)
        if img.shape[:2] != off.shape[:2]:
            return got
        centre = got.mean(0)
        return centre + 0.92 * (got - centre) + np.array([4.0, -3.0])

    monkeypatch.setattr(wm, "mark_landmarks", elsewhere)
    seen = verify_analyzer()(off)[0].landmarks
    assert wm.read_mark(off, seen).z_signature < wm.THRESHOLD  # every refinement lands elsewhere
    found = wm.search_mark(off, seen)
    assert found.marked and wm.signature_ok(wm.bits_to_payload(found.z_bits)[0])
    unmarked = cv2.copyMakeBorder(frames[0], 8, 8, 8, 8, cv2.BORDER_REPLICATE)
    assert not wm.search_mark(unmarked, verify_analyzer()(unmarked)[0].landmarks).marked
    # counted in a file decided marked, whether it comes before the decision or after it
    for order in ([off, *marked[1:]], [*marked[1:], off]):
        assert verify_frames("clip", order, verify_analyzer()).frames_marked == 4
    # never in a file not decided marked: an unmarked face's best of 125 alignments can read high (d18's own)
    r = verify_frames("one frame", [off], verify_analyzer())
    assert r.frames_marked == 0 and not r.marked


def test_a_face_rescaled_into_the_other_tier_s_size_is_searched_in_the_tier_it_was_marked_in(d18, fa, monkeypatch):
    """A screen recording upscales d18 1.5x: its face is then the size of the finer tier's, the mark still in the
    coarse tier's cells. 6 of its 216 frames, cut at the mouth, read under the line and were found only there."""
    frame = next(read_frames(d18)).image
    big = cv2.resize(wm.embed(frame, fa(frame)[0].landmarks, "beef0123"), None, fx=1.5, fy=1.5)
    seen = verify_analyzer()(big)[0].landmarks
    assert wm.tier_for(wm.mark_landmarks(big, seen)) != wm.TIERS[0]  # a face this size is marked in the other
    settle = wm.mark_landmarks

    def elsewhere(img, lms, steps=wm.REFINE_STEPS):  # 10 px aside (3.5 of the coarse tier's crop px), every time
        return settle(img, lms, steps) + np.array([8.0, -6.0])

    monkeypatch.setattr(wm, "mark_landmarks", elsewhere)
    assert wm.read_mark(big, seen).z_signature < wm.THRESHOLD
    found = wm.search_mark(big, seen)
    assert found.marked and wm.signature_ok(wm.bits_to_payload(found.z_bits)[0])


def test_frames_found_by_the_search_count_only_in_a_file_marked_on_all_its_frames(monkeypatch):
    """3 marked frames decide a file after 3 frames, not after 300: the frames searched meanwhile must not count."""
    from masquerade.provenance import verify as V

    code = wm.payload_bits("c738924b")
    reads = iter([5.0] * 3 + [0.0] * 297)  # the signature's z of each frame's face

    def read_frame(image, fa, still=False):
        z = next(reads)
        return [np.zeros((68, 2))], [wm.FaceMark(code * z / 2, z, np.ones(wm.N_DECOYS), 1.0)]

    monkeypatch.setattr(V, "read_frame", read_frame)
    monkeypatch.setattr(V, "_searched", lambda image, faces: True)  # as if every face were found
    r = V.verify_frames("x.mp4", [np.zeros((8, 8, 3), np.uint8)] * 300, analyzer=object())
    assert not r.marked and r.frames_marked == 3


def test_the_search_s_z_counts_the_whole_family_as_one_read():
    n = len(wm.VIDEO_TIERS) * len(wm.SEARCH_SCALES) * len(wm.SEARCH_SHIFTS) ** 2  # every alignment of every tier
    line = wm.search_threshold(n)
    assert line > wm.THRESHOLD + 1  # the best of 500 alignments must read far more than one read
    assert n * wm.false_positive_rate(line) == pytest.approx(wm.false_positive_rate(), rel=1e-3)
    assert wm.single_read_z(line, n) == pytest.approx(wm.THRESHOLD, abs=0.01)  # marked exactly when one read is
    assert wm.single_read_z(10.0, n) < 10.0 and wm.single_read_z(3.0, n) < 3.0  # a family is never worth more


def test_the_mark_is_aligned_to_the_landmarks_verify_finds_on_the_marked_face(d18, fa, monkeypatch):
    monkeypatch.setattr(wm, "VISIBLE_SSIM", 0.0)  # the whole luminance mark, which moves the landmarks most
    frames = [f.image for f in islice(read_frames(d18), 4)]
    faces = [fa(f)[0].landmarks for f in frames]

    def verify_reads(realign: int) -> float:
        monkeypatch.setattr(wm, "REALIGN_STEPS", realign)
        zs = []
        for f, lm in zip(frames, faces, strict=True):
            marked = wm.embed(f, lm, "beef0123")
            zs.append(wm.read_mark(marked, fa(marked)[0].landmarks).z_signature)  # as verify reads it
        return float(np.mean(zs))

    # the mark moves dlib's landmarks by about 1.5 px: aligned to where they were, verify read 2/3 of the z
    assert verify_reads(1) > 1.1 * verify_reads(0)


def test_a_picture_is_marked_fainter_yet_survives_jpeg_and_webp_50(fa, tmp_path, monkeypatch):
    whole = read_image(need(STILLS / "d19.jpg"))
    x0, y0, x1, y1 = fa(whole)[0].bbox.astype(int)
    img = np.ascontiguousarray(whole[max(0, y0 - 20) : y1 + 20, max(0, x0 - 20) : x1 + 20])  # no ring: a face mark
    face = fa(img)[0].landmarks
    faint = wm.embed(img, face, "beef0123", still=True)
    monkeypatch.setattr(wm, "STILL_FIT_STEPS", 0)
    full = wm.embed(img, face, "beef0123", still=True)  # the strength a frame of a video gets
    assert _delta_rms(faint, img) < 0.8 * _delta_rms(full, img)
    for name, flag in (("d19.jpg", cv2.IMWRITE_JPEG_QUALITY), ("d19.webp", cv2.IMWRITE_WEBP_QUALITY)):
        cv2.imwrite(str(tmp_path / name), np.ascontiguousarray(faint[..., ::-1]), [flag, 50])
        assert verify_file(tmp_path / name, analyzer=fa).marked


def test_a_small_face_is_marked_through_h264_because_its_own_texture_is_cancelled(fa, tmp_path, monkeypatch):
    frames = [f.image for f in islice(read_frames(need(CLIPS / "s13.mp4")), 8)]  # a face 77 px wide
    face = fa(frames[0])[0]
    with monkeypatch.context() as m:
        m.setattr(wm, "VISIBLE_SSIM", 0.0)  # the whole luminance mark: `_unseen` scales its cancelling with it
        whole = wm.embed(frames[0], face.landmarks, "beef0123")
    host = wm.read_face(frames[0], wm.mark_landmarks(frames[0], face.landmarks))
    after = wm.read_face(whole, wm.mark_landmarks(whole, face.landmarks))
    assert after.sigma < 0.5 * host.sigma  # the decoys no longer read the face's own texture
    marked = [wm.embed(f, face.landmarks, "beef0123") for f in frames]
    h, w = frames[0].shape[:2]
    with VideoWriter(tmp_path / "s13.mp4", 30, (w, h)) as vw:  # swap's own default encoding
        for f in marked:
            vw.write(f)
    r = verify_frames(tmp_path / "s13.mp4", (f.image for f in read_frames(tmp_path / "s13.mp4")), analyzer=fa)
    assert r.marked and r.frames_marked >= 6  # 3 of 30 swapped frames and z 3.7 when the texture was left in


def test_a_video_face_s_mark_is_made_fainter_until_it_does_not_show_but_never_below_a_sure_read(fa, monkeypatch):
    frame = next(read_frames(need(CLIPS / "s29.mp4"))).image  # smooth, bright skin: the mark showed as a mottle
    lms = fa(frame)[0].landmarks
    (x0, y0), (x1, y1) = lms.min(0).astype(int), lms.max(0).astype(int) + 1

    def marked(visible_ssim: float, sure_z: float) -> tuple[float, float, float]:
        """(face SSIM of marked against unmarked, the luminance mark's z, the face's z as verify reads a video's)."""
        monkeypatch.setattr(wm, "VISIBLE_SSIM", visible_ssim)
        monkeypatch.setattr(wm, "SURE_Z", sure_z)
        out = wm.embed(frame, lms, "beef0123")
        gray = [cv2.cvtColor(f[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY) for f in (frame, out)]
        seen = fa(out)[0].landmarks
        return (
            wm.mean_ssim(*gray),
            wm.read_mark(out, seen).z_signature,
            wm.read_mark(out, seen, wm.VIDEO_TIERS).z_signature,
        )

    visible = wm.VISIBLE_SSIM
    (s_any, z_any, _), (s_unseen, z_unseen, z_video) = marked(0.0, 5.0), marked(visible, 5.0)
    assert s_any < 0.965 and s_unseen > 0.99  # at the strength the z target alone asks for it showed; made fainter
    assert z_unseen < z_any and z_video > 2 * wm.THRESHOLD  # fainter, and read beyond doubt (the colour mark)
    assert marked(visible, 1e9)[:2] == (s_any, z_any)  # a face that would not read sure when fainter keeps it all
    assert wm.mean_ssim(frame[..., 0], frame[..., 0]) == pytest.approx(1.0)


def test_marks_are_aligned_alike_from_the_different_boxes_swap_and_verify_start_from(d19, fa):
    frame = next(read_frames(d19)).image
    lms = fa(frame)[0].landmarks
    centre = lms.mean(0)
    other = (lms - centre) * 1.03 + centre + np.float32([3, -2])  # another box: 3% larger, 3 px off
    assert np.abs(other - lms).mean() > 2.5
    a, b = wm.mark_landmarks(frame, lms), wm.mark_landmarks(frame, other)
    assert np.abs(a - b).mean() < 1.0


def test_a_face_cut_by_the_frame_edge_is_found_whole_and_its_mark_read(swapped_clip, monkeypatch):
    fa = verify_analyzer()  # as verify finds faces
    monkeypatch.setattr(wm, "VIDEO_TIERS", wm.TIERS)  # the luminance mark (the colour one's coarse cells read anyway)
    src = islice(read_frames(swapped_clip), 0, 30, 3)
    frames = [np.ascontiguousarray(f.image[: f.image.shape[0] * 3 // 4]) for f in src]  # the chin cut away
    whole = verify_frames("recording", frames, fa).frames_marked
    monkeypatch.setattr(wm, "edge_pad", lambda shape, landmarks: 0)  # the face as found in the cut frame
    cut = verify_frames("recording", frames, fa).frames_marked
    assert whole >= 9 and whole > cut, (whole, cut)


def _screen_recording(image: np.ndarray) -> np.ndarray:
    """Scaled 1.5x and cut to 16:9 about its centre, as a screen recording of a square clip is: chin and mouth go."""
    big = cv2.resize(image, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
    keep = big.shape[1] * 9 // 16 // 2 * 2
    top = (big.shape[0] - keep) // 2
    return np.ascontiguousarray(big[top : top + keep])


def test_the_crop_of_a_face_inside_the_frame_is_all_read_and_one_cut_by_the_edge_only_inside():
    m = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # the crop is the frame's top-left 128 px
    assert wm.in_frame((480, 640, 3), m, 128) is None
    inside = wm.in_frame((64, 640, 3), m, 128)  # the frame ends halfway down the crop
    assert inside[:60].min() == 1.0 and inside[68:].max() == 0.0


def test_a_face_cut_by_a_screen_recording_is_read_on_its_part_inside_the_frame(swapped_clip, tmp_path, monkeypatch):
    # The crop's part outside the frame is the frame reflected at its edge: a mirror image of the face whose
    # texture and mark only add noise. d18's screen recording (CRF 28, the attack bench): 95.8% -> 100% of frames.
    fa = verify_analyzer()
    recorded = [_screen_recording(f.image) for f in read_frames(swapped_clip)]  # all 30: every 3rd read 1.02-1.03x
    frames = [f.image for f in read_frames(_reencode(recorded, tmp_path / "recording.mp4"))]

    def mean_z() -> float:
        return float(np.mean([max(wm.read_mark(f, lm).z_signature for lm in _landmarks(fa, f)) for f in frames]))

    inside = mean_z()
    monkeypatch.setattr(wm, "in_frame", lambda shape, m, size: None)  # the whole crop, reflected part and all
    whole = mean_z()
    assert inside > 1.03 * whole, (inside, whole)  # 1.07 here; 1.23 on the bench's recording of the demo's swap


def test_unmarked_faces_cut_by_the_frame_edge_score_low(fa):
    zs = []
    for clip in sorted(CLIPS.glob("*.mp4"))[::3]:
        for fr in read_frames(clip, every=90):
            for cut in (_screen_recording(fr.image), np.ascontiguousarray(fr.image[: fr.image.shape[0] * 3 // 4])):
                zs += [wm.read_mark(cut, lm, wm.VIDEO_TIERS).z_signature for lm in _landmarks(fa, cut)]
    assert len(zs) > 10 and max(zs) < wm.THRESHOLD


def test_unmarked_faces_of_every_clip_score_low_in_brightness_and_in_colour(fa):
    zs, colour = [], []
    for clip in sorted(CLIPS.glob("*.mp4")):
        for fr in read_frames(clip, every=60):
            for f in fa(fr.image):
                zs.append(wm.read_mark(fr.image, f.landmarks, wm.VIDEO_TIERS).z_signature)
                at = wm.mark_landmarks(fr.image, f.landmarks)
                colour.append([wm.read_face(fr.image, at, tier).z_signature for tier in wm.COLOUR_TIERS])
    assert len(zs) > 40 and max(zs) < wm.THRESHOLD
    # near zero (every clip and still, 1073 faces: 96 px -0.29, 72 px -0.46); 96 px read 0.95 with the faces' shared
    # layout left in its patterns (d3 2.45)
    assert np.all(np.abs(np.mean(colour, axis=0)) < 1.0), np.mean(colour, axis=0)


def test_false_positive_rate_and_clip_rule():
    assert wm.false_positive_rate() < 1e-4
    # 5 when verify read each face after 2 refinements only (a third of the looks), 7 before the colour tiers
    assert min_marked_frames(300) <= 9


def _reencode(frames, path, crf=28, scale=1.0, crop=0.0):
    h, w = frames[0].shape[:2]
    dy, dx = int(h * crop), int(w * crop)
    out = []
    for f in frames:
        f = f[dy : h - dy, dx : w - dx]
        if scale != 1.0:
            f = cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        out.append(np.ascontiguousarray(f[: f.shape[0] // 2 * 2, : f.shape[1] // 2 * 2]))
    with VideoWriter(path, 30, (out[0].shape[1], out[0].shape[0]), crf=crf) as vw:
        for f in out:
            vw.write(f)
    return path


def test_a_model_id_bit_that_repeats_one_error_in_every_frame_is_unreadable_not_wrong(monkeypatch):
    # After CRF 28, d18 swapped by the tests' model read one model-id bit at -1 to -2 in frame after frame (the
    # host's texture the embed's cancellation misses at verify's alignment); summed over 30 frames against
    # sqrt(30) it looked certain, and verify named a wrong model. The decoys carry the same repeated error.
    from masquerade.provenance import verify as V

    code = wm.payload_bits("c738924b")
    rng = np.random.default_rng(0)

    def verdict(repeat: float, wrong_bit: bool) -> V.VerifyResult:
        bias = rng.normal(0, repeat, wm.N_BITS + wm.N_DECOYS)  # the same in every frame
        if wrong_bit:
            bias[wm.N_SIG + 7] = -4.0 * code[wm.N_SIG + 7]
        reads = iter(
            wm.FaceMark(z[: wm.N_BITS], 10.0, z[wm.N_BITS :], 1.0)
            for z in (
                np.concatenate([2.5 * code, np.zeros(wm.N_DECOYS)]) + bias + rng.normal(0, 1, bias.shape)
                for _ in range(30)
            )
        )
        monkeypatch.setattr(V, "read_frame", lambda image, fa, still=False: ([np.zeros((68, 2))], [next(reads)]))
        return V.verify_frames("x.mp4", [np.zeros((8, 8, 3), np.uint8)] * 30, analyzer=object())

    wrong = verdict(0.5, wrong_bit=True)
    assert wrong.marked and wrong.model_code is None and wrong.model_code_z < MODEL_ID_Z  # the old rule: "c638"
    right = verdict(0.0, wrong_bit=False)  # frames that err independently: the id is read
    assert right.model_code == f"{wm.model_code('c738924b'):04x}"


@pytest.mark.parametrize("attack", ["crf28", "half_crf28", "crop10_crf28", "jpeg50"])
def test_mark_survives_attacks(swapped_clip, model_dir, tmp_path, attack, fa):
    frames = [f.image for f in read_frames(swapped_clip)]
    if attack == "jpeg50":
        for k, f in enumerate(frames):
            write_image(tmp_path / f"{k:03d}.jpg", f, quality=50)
        results = [verify_file(p, analyzer=fa) for p in sorted(tmp_path.glob("*.jpg"))]
        rate = np.mean([r.frames_marked for r in results])
        assert rate >= 0.9 and np.mean([r.marked for r in results]) >= 0.9
        return
    kw = {"crf28": {}, "half_crf28": {"scale": 0.5}, "crop10_crf28": {"crop": 0.1}}[attack]
    res = verify_file(_reencode(frames, tmp_path / "a.mp4", **kw), analyzer=fa)
    assert res.marked and res.fraction_marked >= 0.9, res
    assert wm.signature_ok(int(res.signature, 16))
    # the model id is read only when every one of its bits is certain: right, or reported as unreadable
    expected = f"{wm.model_code(json.loads((model_dir / 'config.json').read_text())['model_id']):04x}"
    assert res.model_code in (None, expected)
    assert res.model_code is not None or res.model_code_z < MODEL_ID_Z


def test_verify_cli_exit_codes_and_json(swapped_clip, d18, tmp_path):
    def run(*a):
        return subprocess.run(
            [sys.executable, "-m", "masquerade", "verify", *map(str, a)], capture_output=True, text=True
        )

    p = run(swapped_clip, "--json")
    assert p.returncode == 0
    res = json.loads(p.stdout)
    assert res["marked"] and res["signature"] == "4d51"
    # It stops as soon as the mark and the model id are certain. 30 frames of this briefly trained model are
    # at the edge of what the id needs (its weakest bit read z 2.3 to 4.4 over runs whose training differed
    # only in float summation order), so the id is either read early or reported unreadable, never wrong.
    if res["model_code"] is not None:
        assert res["frames_checked"] <= 30
    else:
        assert res["frames_checked"] == 30 and res["model_code_z"] < MODEL_ID_Z
    assert json.loads(run(swapped_clip, "--json", "--all-frames").stdout)["frames_checked"] == 30
    assert res["label"].startswith("synthetic:")
    p = run(d18, "--max-frames", "10")
    assert p.returncode == 1 and "no masquerade mark found" in p.stdout
    p = run(tmp_path / "missing.mp4")
    assert p.returncode == 2 and "no such file" in p.stderr
    assert run(swapped_clip, d18, "--max-frames", "10").returncode == 1


def test_marked_png_is_verified(model_dir, d18, tmp_path, fa):
    from masquerade.swap.pipeline import Swapper

    frame = next(read_frames(d18)).image
    write_image(tmp_path / "x.png", Swapper(model_dir).swap_frame(frame))
    r = verify_file(tmp_path / "x.png", analyzer=fa)
    assert r.marked and r.frames_checked == 1
    assert probe(tmp_path / "x.png").kind == "image"


def test_keyframe_samples_are_spread_coarse_to_fine():
    from masquerade.media.reader import _spread_order

    order = _spread_order(10)
    assert sorted(order) == list(range(10)) and order[:2] == [0, 8]
    assert max(order[:4]) - min(order[:4]) >= 6  # the first few already span the range


def test_a_long_video_is_decided_from_a_few_keyframes_and_every_frame_on_request(swapped_clip, tmp_path):
    """30 copies of the swapped clip, one keyframe every 30 frames: verify seeks to keyframes, coarse to fine,
    and stops once the mark and model id are certain."""
    import av

    from masquerade.media import sample_keyframes

    frames = [f.image for f in read_frames(swapped_clip)]
    long = tmp_path / "long.mp4"
    with av.open(str(long), "w") as out:
        vs = out.add_stream("libx264", rate=30)
        vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        vs.options = {"crf": "18", "g": "30", "preset": "ultrafast"}
        for k in range(30 * len(frames)):
            for packet in vs.encode(av.VideoFrame.from_ndarray(frames[k % len(frames)], format="rgb24")):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    keys = list(sample_keyframes(long, 300))
    assert len(keys) == 30 and all(f.index % 30 == 0 for f in keys)
    r = verify_file(long, max_frames=30)
    assert r.marked and r.frames_checked <= 30
    assert r.frames_checked == 30 or r.model_code is not None  # it stops early only once the model id is read
    assert verify_file(swapped_clip, max_frames=5, all_frames=True).frames_checked == 30


def test_reading_every_nth_frame_gives_the_same_pictures_as_reading_all(d18):
    every = {f.index: f.image for f in read_frames(d18, every=7)}
    all_ = {f.index: f.image for f in read_frames(d18) if f.index % 7 == 0}
    assert every.keys() == all_.keys() and all(np.array_equal(every[k], all_[k]) for k in every)


def test_mirrored_landmarks_keep_their_meaning():
    from masquerade.faces.align import mirror_landmarks
    from masquerade.faces.mean_face import MEAN_FACE_68

    pts = MEAN_FACE_68 * 100 + 50
    width = int(round(2 * pts[27:31, 0].mean())) + 1  # mirror about the nose bridge
    m = mirror_landmarks(pts, width)
    assert np.abs(m - pts).max() < 4  # the mean face is nearly symmetric: mirrored, each point lands on itself
    assert m[36, 0] < m[45, 0] == pytest.approx(width - 1 - pts[36, 0])  # point 36 stays the outer corner on the left


def test_a_horizontally_flipped_swap_is_still_marked(swapped_clip, tmp_path, fa):
    frames = [np.ascontiguousarray(f.image[:, ::-1]) for f in read_frames(swapped_clip)]
    res = verify_file(_reencode(frames, tmp_path / "flipped.mp4"), analyzer=fa, all_frames=True)
    assert res.marked and res.fraction_marked >= 0.9, res
