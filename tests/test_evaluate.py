"""`evaluate`: each metric orders real faces as expected."""

import json
import subprocess
import sys

import numpy as np

from masquerade.evaluate import metrics as M
from masquerade.evaluate.report import evaluate_swap, reconstruction, write_report


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


def test_swap_report_files_and_reconstruction(swapped_clip, d18, model_dir, tmp_path):
    r = evaluate_swap(swapped_clip, d18, model_dir, max_frames=10)
    assert r["frames_scored"] == 10 and 0 <= r["id_win_rate"] <= 1
    assert r["summary"]["landmark_error"]["mean"] < 0.5
    out = write_report(r, tmp_path / "ev")
    assert {"report.json", "summary.png", "index.html"} <= {p.name for p in out.iterdir()}
    rec = reconstruction(model_dir)
    assert rec["a"]["n"] > 0 and 0 < rec["a"]["ssim"] < 1 and rec["b"]["psnr"] > 5


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
    assert rep["frames_scored"] == 5 and "reconstruction" in rep
