"""`evaluate`: each metric orders real faces as expected."""

import json
import subprocess
import sys

import numpy as np

from masquerade.evaluate import metrics as M
from masquerade.evaluate.report import evaluate_swap, rebuild, reconstruction, write_report


def test_the_original_against_itself_is_perfect_and_unswapped(d18, model_dir):
    r = evaluate_swap(d18, d18, model_dir, max_frames=6)
    s = r["summary"]
    assert s["landmark_error"]["mean"] == 0 and s["pose_error"]["mean"] == 0
    assert s["dist_original"]["mean"] < 0.45  # the clip is its own identity
    assert r["id_win_rate"] == 0  # ...so it never reads as the other person
    assert s["detected"]["mean"] == 1 and abs(s["flicker"]["mean"] - 1) < 1e-6


def test_d19_faces_score_as_not_d18(d18, d19, model_dir):
    r = evaluate_swap(d19, d18, model_dir, max_frames=6)  # as if d18 had been swapped to d19's face perfectly
    assert r["target_identity"] == "b" and r["id_win_rate"] == 1 and r["top1_retrieval"] == 1
    assert r["summary"]["dist_original"]["mean"] > 0.6


def test_metric_functions():
    lms = np.random.default_rng(0).uniform(0, 100, (68, 2)).astype(np.float32)
    assert M.landmark_error(lms, lms) == 0
    assert M.landmark_error(lms + 1, lms) > 0
    assert M.pose_error((1, 2, 3), (1, 2, 3)) == 0
    assert M.psnr(np.zeros(4), np.zeros(4)) == float("inf")
    assert M.summarize([1, 2, 3, float("nan")])["n"] == 3


def _face(clip):
    from masquerade.faces.analyze import FaceAnalyzer
    from masquerade.media import read_frames

    frame = next(read_frames(clip)).image
    return frame, FaceAnalyzer("hog")(frame)[0].landmarks


def test_a_blurred_face_scores_less_sharp_in_proportion_to_the_blur(d18):
    import cv2

    frame, lms = _face(d18)
    assert M.sharpness_ratio(frame, lms, frame, lms) == 1
    ratios = [M.sharpness_ratio(cv2.GaussianBlur(frame, (0, 0), s), lms, frame, lms) for s in (0.7, 1.5, 3)]
    assert 1 > ratios[0] > ratios[1] > ratios[2] > 0
    small = cv2.resize(cv2.resize(frame, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA), frame.shape[1::-1])
    assert M.sharpness_ratio(small, lms, frame, lms) < 0.3  # a quarter of the pixels, scaled back: soft


def test_the_mouth_error_sees_an_opened_mouth_that_the_68_point_error_dilutes(d18):
    _, lms = _face(d18)
    opened = lms.copy()
    opened[[56, 57, 58, 65, 66, 67]] += (0, 0.15 * M.interocular(lms))  # the lower lip drops
    assert M.mouth_error(lms, lms) == 0
    assert M.mouth_error(opened, lms) > 0.04 > M.landmark_error(opened, lms) * 2


def test_the_edge_colour_error_sees_a_tint_on_the_face_border_and_not_inside(d18):
    frame, lms = _face(d18)
    band = M.border_band(lms, frame.shape[:2])
    assert M.edge_color_error(frame, frame, lms) == 0
    tinted = frame.copy()
    tinted[band] = (tinted[band] * [0.7, 0.6, 0.9]).astype(np.uint8)  # dark violet streaks at the temples
    inside = frame.copy()
    centre = np.zeros_like(band)
    c = lms[27:36].mean(0).astype(int)  # the nose
    centre[c[1] - 10 : c[1] + 10, c[0] - 10 : c[0] + 10] = True
    inside[centre & ~band] = 0
    assert M.edge_color_error(tinted, frame, lms) > 5 > M.edge_color_error(inside, frame, lms)


def test_swap_report_files_and_reconstruction(swapped_clip, d18, model_dir, tmp_path):
    r = evaluate_swap(swapped_clip, d18, model_dir, max_frames=10)
    assert r["frames_scored"] == 10 and 0 <= r["id_win_rate"] <= 1
    assert r["summary"]["landmark_error"]["mean"] < 0.5
    out = write_report(r, tmp_path / "ev")
    assert {"report.json", "summary.png", "index.html"} <= {p.name for p in out.iterdir()}
    rec = reconstruction(model_dir)
    assert rec["a"]["n"] > 0 and 0 < rec["a"]["ssim"] < 1 and rec["b"]["psnr"] > 5
    for k in ("sharpness", "mouth_error", "edge_color"):
        assert r["summary"][k]["n"] == 10, k
    reb = rebuild(model_dir, max_faces=3)  # B's held-out faces, put back into their own frames
    assert reb["n"] == 3 and 0.3 < reb["ssim"] < 1 and 15 < reb["psnr"] < 60
    assert reb["dist_target_real"] < 0.6 and reb["dist_target_real"] < reb["dist_target"]  # the real B is B


def test_cli_json(swapped_clip, d18, model_dir):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "masquerade",
            "evaluate",
            str(swapped_clip),
            "-i",
            str(d18),
            "-m",
            str(model_dir),
            "--json",
            "--max-frames",
            "5",
        ],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["frames_scored"] == 5 and "reconstruction" in rep and rep["rebuild"]["b"]["n"] > 0
