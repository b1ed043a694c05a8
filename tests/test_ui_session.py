"""The UI's functions without a browser: they call the library as the CLI does, and stop and resume cleanly."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

from masquerade.core.errors import InputError
from masquerade.provenance import watermark as wm
from masquerade.provenance.verify import verify_analyzer
from masquerade.ui import session as S


def test_an_upload_is_kept_once_and_a_different_file_of_the_same_name_gets_a_new_name(tmp_path):
    ws = S.Workspace(tmp_path / "ws")
    one = tmp_path / "up1" / "clip.mp4"
    two = tmp_path / "up2" / "clip.mp4"
    for p, data in ((one, b"first"), (two, b"second")):
        p.parent.mkdir()
        p.write_bytes(data)
    a = ws.keep(one, "a")
    assert ws.keep(one, "a") == a
    b = ws.keep(two, "a")
    assert b != a and b.read_bytes() == b"second" and a.read_bytes() == b"first"
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        ws.keep(empty, "a")


def test_training_from_the_ui_stops_when_asked_saves_and_resumes(tmp_path, facesets):
    ws = S.Workspace(tmp_path / "ws")
    for side, fs in zip(S.SIDES, facesets, strict=True):
        shutil.copytree(fs, ws.faceset(side))
    run = S.TrainRun(ws, "lite", 100_000)
    run.start()
    while run.wait(0.2) and run.info.get("iteration", 0) < 12:  # past the first log line
        pass
    run.stop()
    while run.wait(1):
        pass
    assert run.error is None
    assert run.result.stopped_by == "stop" and 12 <= run.result.iteration < 100_000
    assert "iteration" in S.model_lines(ws.model)[0]
    assert S.latest_preview(ws.model) is not None
    assert {r["series"] for r in S.loss_rows(ws.model)} >= {"A", "B"}
    again = S.TrainRun(ws, "lite", run.result.iteration + 10)
    again.start()
    while again.wait(1):
        pass
    assert again.error is None and again.result.iteration == run.result.iteration + 10


def test_training_without_faces_says_which_identity_is_missing(tmp_path):
    with pytest.raises(InputError, match="identity A"):
        S.TrainRun(S.Workspace(tmp_path)).start()


def test_the_webcam_engine_swaps_and_marks_a_frame_and_reports_its_latency(tmp_path, model_dir, d18):
    from masquerade.media.reader import read_frames

    ws = S.Workspace(tmp_path / "ws")
    shutil.copytree(model_dir, ws.model)
    frame = next(iter(read_frames(d18))).image
    live = S.LiveSwapper(ws, time.perf_counter)
    out, ms = live(frame)
    assert out.shape == frame.shape and ms > 0
    assert np.abs(out.astype(int) - frame).mean() > 1  # the face was replaced
    faces = verify_analyzer()(out)
    assert faces and wm.read_mark(out, faces[0].landmarks).marked
    with pytest.raises(InputError, match="no trained model"):
        S.LiveSwapper(S.Workspace(tmp_path / "none"), time.perf_counter)(frame)
