"""Bad input gets one line and the right exit code; nothing is written where the tool refused; outputs are
only handed over when they carry the mark; killed writers leave nothing behind."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from masquerade.core.atomic import remove_orphan_temps, write_bytes
from masquerade.core.errors import InputError
from masquerade.faceset.store import FaceSet
from masquerade.media import read_frames, write_image
from masquerade.models.io import load_config, load_state


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "masquerade", *map(str, args)], capture_output=True, text=True)


def one_line_error(p, code=2, *words):
    assert p.returncode == code, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    for w in words:
        assert w in p.stderr, (w, p.stderr)


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("config.json", "{not json", "corrupt model config"),
        ("config.json", "[1, 2]", "not a masquerade model config"),
        ("config.json", "REPLACE:size:7", "size must be"),
        ("config.json", "REPLACE:lift:7", "lift must be"),
        ("config.json", "REPLACE:model:nope", "unknown model"),
        ("config.json", "REPLACE:identity:{}", None),  # an empty identity map is allowed (no auto side choice)
        ("state.json", '{"iteration": "ten"}', "training state"),
        ("state.json", "\x00\x01", "corrupt training state"),
    ],
)
def test_a_damaged_model_folder_is_one_line(model_dir, tmp_path, d18, name, content, reason):
    bad = tmp_path / "m"
    shutil.copytree(model_dir, bad)
    if content.startswith("REPLACE:"):
        _, key, value = content.split(":", 2)
        cfg = json.loads((bad / name).read_text())
        cfg[key] = json.loads(value) if value[:1] in "{[0123456789" else value
        (bad / name).write_text(json.dumps(cfg))
    else:
        (bad / name).write_text(content)
    p = run_cli("swap", d18, "-m", bad, "-o", tmp_path / "o.mp4", "--end", "2f", "--to", "b")
    if reason is None:
        assert p.returncode == 0, p.stderr
        return
    one_line_error(p, 2, reason, name)
    assert not (tmp_path / "o.mp4").exists()


def test_a_garbage_log_line_does_not_stop_a_resume(model_dir, facesets, tmp_path):
    from masquerade.train.loop import TrainConfig, train

    m = tmp_path / "m"
    shutil.copytree(model_dir, m)
    with open(m / "log.jsonl", "a") as fh:
        fh.write("garbage\n[1]\n")
    res = train([facesets[0]], [facesets[1]], m, TrainConfig(iterations=101, batch_size=2))
    assert res.iteration == 101
    lines = [json.loads(x) for x in (m / "log.jsonl").read_text().splitlines()]
    assert all(isinstance(x, dict) for x in lines)


def test_a_model_from_before_mouth_ranges_loads_and_learns_them_when_trained_on(model_dir, facesets, tmp_path):
    from masquerade.models.io import ModelConfig
    from masquerade.train.loop import TrainConfig, train

    m = tmp_path / "m"
    shutil.copytree(model_dir, m)
    cfg = json.loads((m / "config.json").read_text())
    for bad in ({"b": [0.1]}, {"c": [0, 1]}, [0, 1], {"b": ["x", 1]}):
        with pytest.raises(InputError, match="mouth must map a and b to two numbers each"):
            ModelConfig.from_dict({**cfg, "mouth": bad})
    del cfg["mouth"]  # as written by an earlier release
    (m / "config.json").write_text(json.dumps(cfg))
    assert load_config(m).mouth == {}
    train([facesets[0]], [facesets[1]], m, TrainConfig(iterations=101, batch_size=2))
    assert load_config(m).mouth == load_config(model_dir).mouth


def test_config_and_state_load_back_typed(model_dir):
    cfg = load_config(model_dir)
    assert cfg.model == "lite" and cfg.size == 64 and set(cfg.identities()) == {"a", "b"}
    assert cfg.training["lr"] > 0 and load_state(model_dir)["iteration"] == 100


def _copy_faceset(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
    return dst


def test_extract_refuses_a_foreign_corrupt_or_newer_index_and_writes_nothing(tmp_path, d18):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with sqlite3.connect(foreign / "faceset.db") as db:
        db.execute("CREATE TABLE photos (id INTEGER)")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "faceset.db").write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    for folder, reason in ((foreign, "not a masquerade face set"), (corrupt, "corrupt")):
        before = (folder / "faceset.db").read_bytes()
        p = run_cli("extract", d18, "-o", folder, "--every", "100")
        one_line_error(p, 2, reason)
        assert (folder / "faceset.db").read_bytes() == before and not (folder / "faces").exists()


def test_a_newer_face_set_schema_is_refused(facesets, tmp_path, d18):
    newer = _copy_faceset(facesets[0], tmp_path / "newer")
    with sqlite3.connect(newer / "faceset.db") as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    p = run_cli("extract", d18, "-o", newer, "--every", "100")
    one_line_error(p, 2, "newer")
    with pytest.raises(InputError, match="newer"):
        FaceSet.open(newer)


def test_stored_face_paths_must_stay_inside_the_face_set(facesets, tmp_path):
    fs_dir = _copy_faceset(facesets[0], tmp_path / "fs")
    with sqlite3.connect(fs_dir / "faceset.db") as db:
        db.execute("UPDATE faces SET file='/etc/passwd' WHERE id=1")
    with FaceSet.open(fs_dir) as fs, pytest.raises(InputError, match="outside the face set"):
        list(fs)


def test_swap_refuses_to_hand_over_an_output_whose_mark_is_gone(model_dir, d18, tmp_path, monkeypatch):
    from masquerade.core.errors import MasqueradeError
    from masquerade.provenance import watermark
    from masquerade.swap.pipeline import Swapper
    from masquerade.swap.run import VideoOptions, swap_video

    monkeypatch.setattr(watermark, "embed", lambda frame, *a, **k: frame)  # a mark lost on the way
    out = tmp_path / "o.mp4"
    with pytest.raises(MasqueradeError, match="could not be read back"):
        swap_video(Swapper(model_dir), d18, out, VideoOptions(end="12f"))
    assert not out.exists() and not list(tmp_path.glob(".*"))  # nothing under the user's name, no debris


@pytest.mark.parametrize(("name", "advice"), [("o.png", "train longer"), ("o.jpg", "try a PNG output")])
def test_a_picture_whose_mark_is_gone_is_refused_with_advice_that_fits(
    model_dir, d19, tmp_path, monkeypatch, name, advice
):
    from masquerade.core.errors import MasqueradeError
    from masquerade.media import read_frames, write_image
    from masquerade.provenance import watermark
    from masquerade.swap.pipeline import SwapOptions, Swapper
    from masquerade.swap.run import swap_images

    write_image(tmp_path / "in.png", next(read_frames(d19)).image)
    monkeypatch.setattr(watermark, "embed", lambda frame, *a, **k: frame)  # a mark verify cannot find again
    with pytest.raises(MasqueradeError, match=advice):
        swap_images(Swapper(model_dir, SwapOptions(to="b", swap_all=True)), tmp_path / "in.png", tmp_path / name)
    assert not (tmp_path / name).exists()


def test_a_picture_of_a_folder_whose_mark_is_gone_is_not_written_and_the_others_still_are(
    model_dir, d19, tmp_path, monkeypatch
):
    from masquerade.core.errors import MasqueradeError
    from masquerade.media import read_frames, write_image
    from masquerade.provenance import watermark
    from masquerade.swap.pipeline import SwapOptions, Swapper
    from masquerade.swap.run import swap_images

    (tmp_path / "in").mkdir()
    for name in ("1.png", "2.png", "3.png"):
        write_image(tmp_path / "in" / name, next(read_frames(d19)).image)
    embed, calls = watermark.embed, []

    def second_unmarked(frame, *a, **k):  # the second picture's mark cannot be found again
        calls.append(1)
        return frame if len(calls) == 2 else embed(frame, *a, **k)

    monkeypatch.setattr(watermark, "embed", second_unmarked)
    with pytest.raises(MasqueradeError, match=r"1 of 3 pictures were not written \(2.png\), the others were"):
        swap_images(Swapper(model_dir, SwapOptions(to="b", swap_all=True)), tmp_path / "in", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["1.png", "3.png"]


def test_a_crf_that_destroys_the_mark_is_refused_up_front(model_dir, d18, tmp_path):
    one_line_error(run_cli("swap", d18, "-m", model_dir, "-o", tmp_path / "o.mp4", "--crf", "51"), 2, "--crf")
    assert not (tmp_path / "o.mp4").exists()


def test_swap_says_it_read_its_mark_back(model_dir, d18, tmp_path):
    p = run_cli("swap", d18, "-m", model_dir, "-o", tmp_path / "o.mp4", "--end", "12f")
    assert p.returncode == 0, p.stderr
    assert "read back as marked" in p.stdout


@pytest.mark.parametrize("first_sure", [True, False])
def test_swap_reads_its_mark_back_from_a_third_of_the_frames_when_they_are_sure_and_from_all_when_not(
    tmp_path, monkeypatch, first_sure
):
    from masquerade.media import VideoWriter
    from masquerade.provenance.verify import VerifyResult
    from masquerade.swap import run

    video = tmp_path / "o.mp4"
    with VideoWriter(video, 30, (64, 64)) as w:
        for i in range(40):
            w.write(np.full((64, 64, 3), i, np.uint8))
    reads: list[int] = []

    def verify(path, frames, finder, still=False):
        n = len(list(frames))
        reads.append(n)
        marked = n if first_sure or len(reads) > 1 else 1  # unsure: one strong frame of the first third
        return VerifyResult(str(path), True, n, n, marked, marked / n, "4d51", None, 0.0, None, 20.0, 3)

    monkeypatch.setattr(run, "verify_frames", verify)
    report = run.SwapReport(str(video))
    run._read_back(SimpleNamespace(mark_finder=None), video, video, list(range(40)), report, "")
    assert reads == ([run.READ_BACK_FIRST] if first_sure else [run.READ_BACK_FIRST, run.READ_BACK_FRAMES])
    n = reads[-1]
    assert report.mark_check == f"{n} of {n} swapped frames read back as marked"


def test_outputs_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_image(tmp_path / "x.png", np.zeros((8, 8, 3), np.uint8))
        write_bytes(tmp_path / "y.json", b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "x.png").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "y.json").stat().st_mode & 0o777 == 0o644


def test_temporary_files_of_killed_writers_are_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "out.mp4"
    dead = tmp_path / ".out.99999999-abc.tmp.mp4"  # no such process
    live = tmp_path / f".out.{os.getpid()}-abc.tmp.mp4"
    dead.write_bytes(b"x")
    live.write_bytes(b"x")
    assert remove_orphan_temps(target) == 1
    assert not dead.exists() and live.exists()


def test_verify_says_when_a_label_contradicts_the_pixels(d18, tmp_path):
    from masquerade.provenance.label import synthetic_label

    frame = next(read_frames(d18)).image
    write_image(tmp_path / "forged.png", frame, label=synthetic_label("dead"))
    p = run_cli("verify", tmp_path / "forged.png")
    assert p.returncode == 1 and "contradicts the pixels" in p.stdout


@pytest.mark.parametrize(
    "args, reason",
    [
        (["extract", "SRC", "-o", "OUT", "--size", "7"], "--size"),
        (["extract", "SRC", "-o", "OUT", "--every", "0"], "--every"),
        (["swap", "SRC", "-m", "MODEL", "-o", "OUT", "--crf", "-3"], "--crf"),
        (["verify", "SRC", "--max-frames", "0"], "--max-frames"),
    ],
)
def test_bad_option_values_are_one_line(d18, model_dir, tmp_path, args, reason):
    subs = {"SRC": d18, "OUT": tmp_path / "out", "MODEL": model_dir}
    p = run_cli(*[subs.get(a, a) for a in args])
    one_line_error(p, 2, reason)
    assert not (tmp_path / "out").exists()


def test_a_truncated_faststart_video_says_it_ended_early(tmp_path):
    import av

    from masquerade.media import ReadStats

    path = tmp_path / "fast.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        vs = c.add_stream("libx264", rate=30)
        vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p"
        rng = np.random.default_rng(0)
        for k in range(60):
            img = rng.integers(0, 255, (64, 64, 3), np.uint8)
            fr = av.VideoFrame.from_ndarray(img, format="rgb24")
            fr.pts = k
            for pkt in vs.encode(fr):
                c.mux(pkt)
        for pkt in vs.encode(None):
            c.mux(pkt)
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # the index is at the front
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    stats = ReadStats()
    n = sum(1 for _ in read_frames(cut, stats=stats))
    assert 0 < n < 60 and any("truncated" in note for note in stats.notes), (n, stats.notes)


def test_evaluate_refuses_inputs_of_different_sizes(swapped_clip, tmp_path):
    write_image(tmp_path / "small.png", np.zeros((32, 32, 3), np.uint8))
    p = run_cli("evaluate", tmp_path / "small.png", "-i", swapped_clip, "--source-faces", tmp_path)
    one_line_error(p, 2, "evaluate compares")


def test_a_second_extractor_on_one_face_set_stops_with_a_clear_message(tmp_path, d18):
    from masquerade.core.lock import FolderBusy, FolderLock
    from masquerade.faceset.extract import ExtractOptions, extract

    out = tmp_path / "fs"
    out.mkdir()
    with FolderLock(out, "extract"), pytest.raises(FolderBusy, match="in use by process .* \\(extract\\)"):
        extract([d18], out, ExtractOptions(every=100, workers=1))
    assert extract([d18], out, ExtractOptions(every=100, workers=1)).frames_read == 3  # free again


def test_images_a_few_pixels_wide_have_no_face_and_no_traceback(tmp_path, model_dir):
    from PIL import Image

    for shape in ((1, 1, 3), (2, 3, 3), (3, 200, 3)):
        Image.fromarray(np.zeros(shape, np.uint8)).save(tmp_path / "tiny.png")
        p = run_cli("extract", tmp_path / "tiny.png", "-o", tmp_path / "fs", "--workers", "1")
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
        p = run_cli("swap", tmp_path / "tiny.png", "-m", model_dir, "-o", tmp_path / "o.png")
        assert p.returncode == 0 and "copied through unchanged" in p.stderr, p.stderr
        assert run_cli("verify", tmp_path / "tiny.png").returncode == 1


def test_outputs_that_cannot_be_written_are_one_line(model_dir, facesets, d18, tmp_path):
    folder = tmp_path / "existing_folder.mp4"
    folder.mkdir()
    one_line_error(run_cli("swap", d18, "-m", model_dir, "-o", folder, "--end", "2f"), 2, "is a folder")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):  # root ignores permissions: an existing file where a folder must go
            blocker = tmp_path / "blocker"
            blocker.write_text("x")
            one_line_error(run_cli("train", *facesets, "-o", blocker / "m"), 2, "blocker")
        else:
            one_line_error(run_cli("swap", d18, "-m", model_dir, "-o", ro / "o.mp4", "--end", "2f"), 2, "cannot write")
    finally:
        ro.chmod(0o755)


def test_a_killed_swap_leaves_no_output_and_the_next_run_clears_its_debris(model_dir, d18, tmp_path):
    from .conftest import kill_9_when

    out = tmp_path / "o.mp4"
    args = ["swap", str(d18), "-m", str(model_dir), "-o", str(out), "--end", "90f"]
    kill_9_when(args, lambda: bool(list(tmp_path.glob(".o.*.tmp.mp4"))), grace=1.0)
    assert not out.exists() and list(tmp_path.glob(".o.*.tmp.mp4"))  # killed mid-way: only its temporary file
    p = run_cli(*args[:-1], "10f")
    assert p.returncode == 0, p.stderr
    assert out.exists() and not list(tmp_path.glob(".o.*"))
