"""Faces on real media: detection on the stills, identity same/different, pose, quality."""

import numpy as np
import pytest

from masquerade.faces import FaceAnalyzer, same_person
from masquerade.faces.identity import distance, main_person
from masquerade.media import read_frames, read_image

from .conftest import STILLS, need

PEOPLE = ["d19", "d8", "d9", "d30", "s42", "s0", "s3", "s9", "s10"]  # photos and paintings of people
ANIMALS = ["s22", "s25", "s33", "s39"]


@pytest.fixture(scope="module")
def analyzer():
    return FaceAnalyzer(crop_size=256, embeddings=True, quality=True)


def _embeddings(clip, analyzer, every=40):
    return [analyzer(f.image)[0].embedding for f in read_frames(clip, every=every)]


def test_identity_same_and_different_on_real_faces(d18, d19, analyzer):
    a, b = _embeddings(d18, analyzer), _embeddings(d19, analyzer)
    assert all(same_person(a[0], x) for x in a[1:])
    assert all(same_person(b[0], x) for x in b[1:])
    assert not any(same_person(x, y) for x in a for y in b)
    assert distance(np.mean(a, 0), np.mean(b, 0)) > 0.6


def test_a_face_in_every_photo_of_a_person_and_none_in_animals(analyzer):
    need(STILLS)
    for name in PEOPLE:
        assert len(analyzer(read_image(STILLS / f"{name}.jpg"))) >= 1, name
    for name in ANIMALS:
        assert analyzer(read_image(STILLS / f"{name}.jpg")) == [], name


def test_frontal_face_pose_and_quality(d18, analyzer):
    face = analyzer(next(read_frames(d18)).image)[0]
    yaw, pitch, roll = face.pose
    assert abs(yaw) < 20 and abs(pitch) < 20 and abs(roll) < 10
    assert face.blur > 10 and face.crop.shape == (256, 256, 3) and face.size > 150


def test_a_smiling_upright_head_is_not_posed_upside_down():
    # d0 grins at the camera in frames 24-64; the solver left to its own start put his head upside down
    # (roll 180, pitch +20), and evaluate reported a 70-degree pose error for a swap that kept his pose.
    d0 = need(STILLS.parent / "clips" / "d0.mp4")
    analyzer = FaceAnalyzer(quality=True)
    for frame in read_frames(d0, wanted=lambda i: i in (24, 32, 40), stop=41):
        yaw, pitch, roll = analyzer(frame.image)[0].pose
        assert abs(yaw) < 20 and abs(pitch) < 20 and abs(roll) < 10, (frame.index, yaw, pitch, roll)


def test_the_main_person_leaves_out_a_second_person_and_a_false_face_and_keeps_all_of_one_person():
    rng = np.random.default_rng(0)

    def person(n, spread=0.25):
        centre = rng.normal(0, 1, 128)
        centre *= 0.5 / np.linalg.norm(centre)
        noise = rng.normal(0, 1, (n, 128))
        return centre + noise * spread / np.linalg.norm(noise, axis=1, keepdims=True)

    main, other, false = person(40), person(15), person(3, 0.0)  # people's means lie about 0.7 apart
    e = np.concatenate([other[:7], main, false, other[7:]]).astype(np.float32)
    keep = main_person(e)
    assert keep.tolist() == [False] * 7 + [True] * 40 + [False] * 3 + [False] * 8
    assert main_person(main).all() and main_person(main[:2]).all() and main_person(np.zeros((0, 128))).shape == (0,)


def test_every_analyzer_shares_one_detector_and_two_threads_detecting_at_once_find_what_one_finds(d18):
    """dlib's HOG detector takes up to a second to build and keeps the image it scans inside itself (dlib lets
    other threads run meanwhile): built once per process, called by one thread at a time."""
    from concurrent.futures import ThreadPoolExecutor

    frames = [f.image for f in read_frames(d18, every=20)][:6]
    one, other = FaceAnalyzer(), FaceAnalyzer(min_face=80)
    assert one._det._hog._det is other._det._hog._det
    alone = [[f.bbox.tolist() for f in one.detect(x)] for x in frames]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda x: [f.bbox.tolist() for f in one.detect(x)], frames * 2))
    assert together == alone * 2
