"""Media I/O: reading clips and images, writing video with audio and labels, and every bad input."""

import subprocess
import sys

import av
import numpy as np
import pytest
from PIL import Image

from masquerade.core.errors import InputError
from masquerade.media import VideoWriter, probe, read_frames, read_image, read_label, write_image
from masquerade.media.reader import ReadStats, _rotate


def test_probe_and_read_a_clip(d18):
    info = probe(d18)
    assert (info.kind, info.width, info.height, info.frames, info.has_audio) == ("video", 480, 480, 216, True)
    assert info.fps == pytest.approx(30.0)
    stats = ReadStats()
    frames = list(read_frames(d18, every=10, stats=stats))
    assert [f.index for f in frames] == list(range(0, 216, 10))
    assert frames[1].time == pytest.approx(10 / 30, abs=1e-3)
    assert frames[0].image.shape == (480, 480, 3) and frames[0].image.dtype == np.uint8
    assert stats.read == 216 and stats.corrupt == 0


def test_skip_set_is_honoured(d18):
    got = [f.index for f in read_frames(d18, every=50, skip={50, 100})]
    assert got == [0, 150, 200]


def test_rotation_helper_turns_clockwise():
    img = np.arange(6).reshape(2, 3)
    assert _rotate(img, 90).shape == (3, 2)
    assert _rotate(img, 90)[0, 0] == img[1, 0]  # bottom-left comes to the top-left
    assert np.array_equal(_rotate(img, 0), img)


def test_write_video_keeps_fps_size_audio_and_label(tmp_path, d18):
    info = probe(d18)
    out = tmp_path / "o.mp4"
    frames = [f.image for f in read_frames(d18)][:15]
    with VideoWriter(
        out,
        info.rate,
        (480, 480),
        crf=20,
        audio_from=d18,
        audio_window=(0, 0.5),
        metadata={"comment": "synthetic: test"},
    ) as w:
        for f in frames:
            w.write(f)
    got = probe(out)
    assert (got.width, got.height, got.frames, got.has_audio) == (480, 480, 15, True)
    assert got.fps == pytest.approx(30.0)
    assert read_label(out) == "synthetic: test"
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"
        assert c.streams.audio[0].codec_context.name == "aac"  # copied, not re-encoded to something else


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "o.mp4"
    with pytest.raises(RuntimeError), VideoWriter(out, 25, (64, 64)) as w:
        w.write(np.zeros((64, 64, 3), np.uint8))
        raise RuntimeError("boom")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_image_labels_round_trip(tmp_path):
    img = np.zeros((20, 30, 3), np.uint8)
    for name in ("a.png", "a.jpg"):
        write_image(tmp_path / name, img, label="synthetic: x")
        assert read_label(tmp_path / name) == "synthetic: x"
        assert read_image(tmp_path / name).shape == (20, 30, 3)


def test_grayscale_rgba_and_16bit_images_become_8bit_rgb(tmp_path):
    Image.fromarray(np.full((10, 12), 77, np.uint8), "L").save(tmp_path / "g.png")
    Image.fromarray(np.full((10, 12, 4), [10, 20, 30, 255], np.uint8), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.full((10, 12), 65535 // 2, np.uint16)).save(tmp_path / "g16.png")
    g = read_image(tmp_path / "g.png")
    assert g.shape == (10, 12, 3) and (g == 77).all()
    assert tuple(read_image(tmp_path / "rgba.png")[0, 0]) == (10, 20, 30)  # RGB
    g16 = read_image(tmp_path / "g16.png")
    assert g16.dtype == np.uint8 and abs(int(g16[0, 0, 0]) - 127) <= 1


# -- bad input: one line naming the file and the reason, exit code 2, no traceback ----------------------
def _bad_inputs(tmp_path, d18):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(d18.read_bytes()[:40_000])
    bomb = tmp_path / "bomb.png"
    Image.new("1", (12_000, 10_000)).save(bomb)  # 120 MP, a few kB on disk
    junk_png = tmp_path / "junk.png"
    junk_png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    return {
        "missing": (tmp_path / "nope.mp4", "no such file"),
        "not media": (text, "not a readable video"),
        "truncated video": (truncated, "truncated or corrupt"),
        "decompression bomb": (bomb, "decompression bomb"),
        "corrupt image": (junk_png, "image"),
    }


def test_bad_inputs_raise_input_errors(tmp_path, d18):
    for what, (path, reason) in _bad_inputs(tmp_path, d18).items():
        with pytest.raises(InputError) as exc:
            probe(path)
            list(read_frames(path))
        assert str(path) in str(exc.value) and reason in str(exc.value), what


def test_bad_inputs_exit_2_with_one_line(tmp_path, d18):
    for what, (path, reason) in _bad_inputs(tmp_path, d18).items():
        proc = subprocess.run(
            [sys.executable, "-m", "masquerade", "extract", str(path), "-o", str(tmp_path / "fs")],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 2, (what, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, (what, proc.stderr)
        assert str(path) in lines[0] and reason in lines[0], (what, lines[0])


def test_corrupt_frames_mid_video_are_skipped_and_counted(tmp_path, d18):
    data = bytearray(d18.read_bytes())
    rng = np.random.default_rng(0)
    n = len(data)
    for k in range(20):
        off = n // 4 + k * (n // 60)
        data[off : off + 400] = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    stats = ReadStats()
    frames = list(read_frames(bad, stats=stats))
    assert len(frames) > 150 and stats.corrupt > 0
    assert stats.read + stats.corrupt >= 200
