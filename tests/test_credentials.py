"""C2PA content credentials: every swap output carries a signed manifest, verify validates it and sees tampering."""

import json
import os
import stat
import subprocess
import sys

import pytest

from masquerade.provenance.credentials import SIGNER_FILE, _make_local_pem, _split_pem, read_manifest
from masquerade.provenance.verify import verify_file


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "masquerade", *map(str, args)], capture_output=True, text=True)


def _mdat(data: bytes) -> tuple[int, int]:
    """(start, end) of the first top-level `mdat` box of an MP4: the coded pictures and sound."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        if kind == b"mdat":
            return pos + 16, pos + size
        pos += size
    raise AssertionError("no mdat box")


def test_a_swapped_video_carries_a_valid_manifest_naming_masquerade_and_the_model(swapped_clip, model_dir):
    m = read_manifest(swapped_clip)
    assert m.present and m.valid and m.binding_ok and not m.trusted  # a local key is on no trust list
    assert m.actions == ["c2pa.created"] and m.source_type == "compositeWithTrainedAlgorithmicMedia"
    assert m.model_id == json.loads((model_dir / "config.json").read_text())["model_id"]
    assert m.signer.startswith("masquerade on ") and m.issuer == "masquerade"
    p = run_cli("verify", swapped_clip, "--max-frames", "10")
    assert p.returncode == 0 and "content credentials: C2PA manifest valid" in p.stdout, p.stdout


def test_the_local_key_is_made_once_private_to_the_user(swapped_clip, own_config_folder):
    path = own_config_folder / "masquerade" / "c2pa" / SIGNER_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    first = path.read_bytes()
    from masquerade.provenance.credentials import local_credentials

    assert local_credentials().chain in first and path.read_bytes() == first  # reused, not remade


def test_changing_the_pictures_after_signing_breaks_the_binding_and_verify_says_so(swapped_clip, tmp_path):
    data = bytearray(swapped_clip.read_bytes())
    start, end = _mdat(bytes(data))
    mid = (start + end) // 2
    data[mid : mid + 64] = bytes(b ^ 0x5A for b in data[mid : mid + 64])
    bad = tmp_path / "edited.mp4"
    bad.write_bytes(bytes(data))
    m = read_manifest(bad)
    assert m.present and not m.binding_ok and not m.valid
    assert "hash binding is broken" in verify_file(bad, max_frames=5).lines()[-1]


def test_a_swapped_image_is_signed_and_an_edited_copy_is_caught(model_dir, d18, tmp_path):
    from masquerade.media import read_frames, write_image

    frame = next(read_frames(d18)).image
    write_image(tmp_path / "in.png", frame)
    p = run_cli("swap", tmp_path / "in.png", "-m", model_dir, "-o", tmp_path / "out.jpg")
    assert p.returncode == 0, p.stderr
    assert "content credentials: C2PA manifest signed" in p.stdout
    assert read_manifest(tmp_path / "out.jpg").valid
    data = bytearray((tmp_path / "out.jpg").read_bytes())
    data[-200:-100] = bytes(b ^ 0x21 for b in data[-200:-100])  # inside the coded picture, before EOI
    (tmp_path / "edited.jpg").write_bytes(bytes(data))
    assert not read_manifest(tmp_path / "edited.jpg").binding_ok


def test_a_users_own_certificate_signs_and_bad_ones_are_refused_in_one_line(model_dir, d18, tmp_path):
    pem = _make_local_pem()
    creds = _split_pem(pem)
    (tmp_path / "chain.pem").write_bytes(creds.chain)
    (tmp_path / "key.pem").write_bytes(creds.key)
    args = ["swap", d18, "-m", model_dir, "--end", "4f"]
    p = run_cli(
        *args, "-o", tmp_path / "o.mp4", "--sign-cert", tmp_path / "chain.pem", "--sign-key", tmp_path / "key.pem"
    )
    assert p.returncode == 0, p.stderr
    m = read_manifest(tmp_path / "o.mp4")
    assert m.valid and m.signer.startswith("masquerade on ")
    for extra, reason in (
        (["--sign-cert", tmp_path / "chain.pem"], "give both"),
        (["--sign-cert", tmp_path / "key.pem", "--sign-key", tmp_path / "key.pem"], "not a PEM certificate"),
        (["--sign-cert", tmp_path / "chain.pem", "--sign-key", tmp_path / "missing.pem"], "cannot read"),
    ):
        p = run_cli(*args, "-o", tmp_path / "x.mp4", *extra)
        assert p.returncode == 2 and reason in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert not (tmp_path / "x.mp4").exists()


def test_a_container_c2pa_cannot_hold_says_so_and_keeps_the_mark(model_dir, d18, tmp_path):
    p = run_cli("swap", d18, "-m", model_dir, "-o", tmp_path / "o.mkv", "--end", "6f")
    assert p.returncode == 0, p.stderr
    assert ".mkv files cannot carry C2PA content credentials" in p.stderr
    r = verify_file(tmp_path / "o.mkv")
    assert r.marked and not r.credentials.present


@pytest.mark.parametrize("name", ["d19.jpg"])
def test_an_unsigned_file_has_no_manifest(name):
    from .conftest import STILLS, need

    m = read_manifest(need(STILLS / name))
    assert not m.present and m.error == ""
