"""A corpus of bad inputs against every command that reads media: no traceback, the right exit code, one line
naming the file, and nothing written where the command refused."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from masquerade.cli import main


def _png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _corpus(root, d18) -> dict:
    """name -> path of each bad input (made once per test, seeded)."""
    rng = np.random.default_rng(0)
    clip = d18.read_bytes()
    files = {
        "empty.mp4": b"",
        "text.mp4": b"this is not a video\n" * 20,
        "noise.mp4": rng.integers(0, 256, 8192, dtype=np.uint8).tobytes(),
        "head-only.mp4": clip[: len(clip) // 50],  # a download cut off in its first 2%
        "empty.png": b"",
        "text.png": b"this is not an image\n",
        "noise.jpg": b"\xff\xd8\xff" + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "cut.png": _png(64, 64)[:-40],  # its last chunks are missing
    }
    root.mkdir(exist_ok=True)
    out = {}
    for name, data in files.items():
        (root / name).write_bytes(data)
        out[name] = root / name
    (root / "folder.mp4").mkdir(exist_ok=True)
    out["folder.mp4"] = root / "folder.mp4"
    return out


BAD = ["empty.mp4", "text.mp4", "noise.mp4", "head-only.mp4", "empty.png", "text.png", "noise.jpg", "cut.png"]


def _run(capsys, *args) -> tuple[int, str]:
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse
        code = e.code
    return code, capsys.readouterr().err.strip()


def _one_line_naming(err: str, name: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert name in lines[0], err


@pytest.mark.parametrize("name", BAD)
def test_swap_and_verify_refuse_each_bad_file_in_one_line(name, tmp_path, d18, model_dir, capsys):
    bad = _corpus(tmp_path / "bad", d18)[name]
    out = tmp_path / ("o.png" if name.endswith((".png", ".jpg")) else "o.mp4")
    code, err = _run(capsys, "swap", bad, "-m", model_dir, "-o", out)
    assert code == 2 and not out.exists()
    _one_line_naming(err, name)
    code, err = _run(capsys, "verify", bad)
    assert code == 2
    _one_line_naming(err, name)


@pytest.mark.parametrize("name", BAD)
def test_extract_and_evaluate_refuse_each_bad_file_in_one_line(name, tmp_path, d18, model_dir, swapped_clip, capsys):
    bad = _corpus(tmp_path / "bad", d18)[name]
    code, err = _run(capsys, "extract", bad, "-o", tmp_path / "faces")
    assert code == 2 and not (tmp_path / "faces" / "faceset.db").exists()
    _one_line_naming(err, name)
    for swapped, original in ((bad, d18), (swapped_clip, bad)):
        code, err = _run(capsys, "evaluate", swapped, "-i", original, "-m", model_dir, "-o", tmp_path / "ev")
        assert code == 2 and not (tmp_path / "ev").exists()
        _one_line_naming(err, name)


def test_a_folder_where_a_file_is_expected_and_a_file_where_a_folder_is(tmp_path, d18, model_dir, facesets, capsys):
    bad = _corpus(tmp_path / "bad", d18)
    code, err = _run(capsys, "swap", bad["folder.mp4"], "-m", model_dir, "-o", tmp_path / "o.mp4")
    assert code == 2 and not (tmp_path / "o.mp4").exists()
    _one_line_naming(err, "folder.mp4")
    for a, b in ((bad["text.mp4"], facesets[1]), (tmp_path / "bad", facesets[1])):  # a file; a folder of no face set
        code, err = _run(capsys, "train", a, b, "-o", tmp_path / "m", "--iterations", "1")
        assert code == 2 and not (tmp_path / "m").exists()
        _one_line_naming(err, a.name)
    code, err = _run(capsys, "swap", d18, "-m", bad["text.mp4"], "-o", tmp_path / "o.mp4")
    assert code == 2 and not (tmp_path / "o.mp4").exists()
    _one_line_naming(err, "text.mp4")


def test_the_demo_refuses_a_bad_video_before_any_long_work(tmp_path, d18, capsys):
    bad = _corpus(tmp_path / "bad", d18)
    code, err = _run(capsys, "demo", bad["text.mp4"], d18, "-o", tmp_path / "demo")
    assert code == 2
    _one_line_naming(err, "text.mp4")
    assert not list((tmp_path / "demo").rglob("*.safetensors")) if (tmp_path / "demo").exists() else True
