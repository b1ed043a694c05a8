"""`extract`: the SQLite index, resuming without duplicates, surviving kill -9, and the options."""

import sqlite3
import subprocess
import sys

import numpy as np

from masquerade.faceset import FaceSet
from masquerade.faceset.extract import ExtractOptions, extract

from .conftest import kill_9_when


def test_schema_and_records(facesets):
    fs_path = facesets[0]
    db = sqlite3.connect(fs_path / "faceset.db")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"meta", "sources", "frames", "faces"} <= tables
    cols = {r[1] for r in db.execute("PRAGMA table_info(faces)")}
    assert {
        "source_id",
        "frame_index",
        "time",
        "file",
        "x0",
        "y0",
        "x1",
        "y1",
        "score",
        "landmarks",
        "matrix",
        "embedding",
        "blur",
        "yaw",
        "pitch",
        "roll",
    } <= cols
    src_cols = {r[1] for r in db.execute("PRAGMA table_info(sources)")}
    assert {"path", "width", "height", "fps", "frames"} <= src_cols
    with FaceSet.open(fs_path) as fs:
        recs = list(fs)
        assert len(recs) == len(fs) == 36  # every 6th of 216 frames, one face each
        r = recs[1]
        assert r.frame_index == 6 and abs(r.time - 0.2) < 1e-3
        f = r.face
        assert f.landmarks.shape == (68, 2) and f.matrix.shape == (2, 3) and f.embedding.shape == (128,)
        assert fs.load_crop(r).shape == (256, 256, 3)
        assert fs.sources()[0]["frames"] == 216


def test_rerun_resumes_without_duplicates(tmp_path, d18):
    out = tmp_path / "fs"
    first = extract([d18], out, ExtractOptions(every=40, workers=1))
    again = extract([d18], out, ExtractOptions(every=40, workers=1))
    assert first.frames_read == 6 and again.frames_read == 0 and again.frames_done_before == 6
    with FaceSet.open(out) as fs:
        assert len(fs) == 6


def test_kill_9_leaves_a_consistent_index_and_resume_completes(tmp_path, d18):
    out = tmp_path / "fs"
    db_path = out / "faceset.db"

    def five_frames_done() -> bool:
        try:
            with sqlite3.connect(db_path) as db:
                return db.execute("SELECT COUNT(*) FROM frames").fetchone()[0] >= 5
        except sqlite3.OperationalError:  # not created yet, or locked
            return False

    kill_9_when(["extract", str(d18), "-o", str(out), "--every", "4", "--workers", "1"], five_frames_done)
    with FaceSet.open(out) as fs:  # consistent: every indexed frame has its faces and their crops
        partial = len(fs)
        assert 0 < partial < 54
        assert all(r.file.exists() for r in fs)
    (out / "faces" / ".0001_0000999_0.4242-x.tmp.png").write_bytes(b"half a crop")  # as a kill leaves it
    extract([d18], out, ExtractOptions(every=4, workers=1))
    with FaceSet.open(out) as fs:
        keys = [(r.source, r.frame_index, r.face_index) for r in fs]
        assert len(keys) == len(set(keys)) == 54
    assert not [p for p in (out / "faces").iterdir() if ".tmp" in p.name]  # the killed run's debris is gone


def test_identity_filter_keeps_only_that_person(tmp_path, d18, d19, facesets):
    out = tmp_path / "fs"
    s = extract([d18, d19], out, ExtractOptions(every=50, identity=str(facesets[1]), workers=1))
    with FaceSet.open(out) as fs:
        sources = {r.source for r in fs}
    assert sources == {str(d19.resolve())}
    assert s.skipped["other identity"] == 5


def test_a_face_set_of_two_people_says_how_many_faces_are_not_its_main_person_and_its_mean_is_the_main_one(
    tmp_path, d18, d19
):
    s = extract([d18, d19], tmp_path / "fs", ExtractOptions(every=40, workers=1))  # 6 faces and 7
    with FaceSet.open(tmp_path / "fs") as fs:
        d18_faces = sum(r.source == str(d18.resolve()) for r in fs)
        d19_mean = np.mean([r.face.embedding for r in fs if r.source == str(d19.resolve())], 0)
        mean = fs.mean_embedding()
    assert 0 < d18_faces < s.faces_kept - d18_faces  # d19 is the main person: more faces
    assert any(n.startswith(f"{d18_faces} of {s.faces_kept} faces do not look like") for n in s.notes), s.notes
    assert np.linalg.norm(mean - d19_mean) < 1e-5  # the other man does not pull the mean


def test_min_blur_and_max_faces(tmp_path, d18):
    s = extract([d18], tmp_path / "a", ExtractOptions(every=100, min_blur=1e9, workers=1))
    assert s.faces_kept == 0 and s.skipped["blurry"] == 3
    s = extract([d18], tmp_path / "b", ExtractOptions(every=100, max_faces=1, workers=1))
    assert s.faces_kept == 3


def test_folder_of_images_and_summary(tmp_path):
    from .conftest import STILLS, need

    need(STILLS)
    s = extract([STILLS / "d19.jpg", STILLS / "s25.jpg"], tmp_path / "fs", ExtractOptions(workers=1))
    assert s.faces_kept == 1 and s.skipped["frames with no face"] == 1
    text = "\n".join(s.lines())
    assert "faces kept: 1" in text and "frames read: 2" in text
    with FaceSet.open(tmp_path / "fs") as fs:
        assert np.isfinite(fs.mean_embedding()).all()


def test_a_worker_process_that_dies_stops_extract_with_a_clear_error_instead_of_hanging(tmp_path, d18):
    # Spawned workers re-import a script's main module; without a main guard each one dies starting up. A
    # multiprocessing.Pool replaced them forever and extract hung with no output.
    script = tmp_path / "no_guard.py"
    script.write_text(
        "from masquerade.faceset.extract import ExtractOptions, extract\n"
        f"extract([{str(d18)!r}], {str(tmp_path / 'fs')!r}, ExtractOptions(every=50, workers=2))\n"
    )
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "worker process died" in run.stderr and "__main__" in run.stderr


def test_without_a_terminal_the_progress_bar_becomes_plain_lines_ending_with_the_total(tmp_path, d18):
    proc = subprocess.run(
        [sys.executable, "-m", "masquerade", "extract", str(d18), "-o", str(tmp_path / "fs"), "--every", "50"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert any(line.startswith("extract: 5/5 (100%) frame, faces 5, elapsed 0:") for line in proc.stderr.splitlines())


def test_progress_lines_say_the_time_taken_and_the_time_left_at_the_rate_so_far():
    from masquerade.cli import time_taken_and_left

    assert time_taken_and_left(30.0, 10, 20) == {"elapsed": "0:30", "left": "1:00"}
    assert time_taken_and_left(3700.0, 5, 0) == {"elapsed": "1:01:40"}  # done: nothing left to say
    assert time_taken_and_left(5.0, 0, 10) == {"elapsed": "0:05"}  # no rate yet
    assert time_taken_and_left(5.0, 3, None) == {"elapsed": "0:05"}  # no total (a live stream)
