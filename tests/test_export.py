"""ONNX export and the onnxruntime engine: same faces as PyTorch, same swap, one-line errors for bad files."""

import subprocess
import sys

import numpy as np
import onnx
import torch

from masquerade.faces import FaceAnalyzer
from masquerade.faces.align import crop_face, estimate_matrix
from masquerade.media import read_frames
from masquerade.models.export import OnnxRenderer, export_onnx
from masquerade.models.io import load_model
from masquerade.provenance.verify import verify_frames
from masquerade.swap.pipeline import SwapOptions, Swapper


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "masquerade", *map(str, args)], capture_output=True, text=True)


def real_faces(model, clip, n=6):
    fa = FaceAnalyzer("hog")
    crops = []
    for fr in read_frames(clip, every=9, stop=9 * n):
        f = fa(fr.image)[0]
        m = estimate_matrix(f.landmarks, model.config.size, model.config.padding)
        crops.append(crop_face(fr.image, m, model.config.size))
    return np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32) / 255


def test_onnxruntime_renders_what_torch_renders_on_real_faces(model_dir, d18, tmp_path):
    model = load_model(model_dir, "cpu")
    path = export_onnx(model, tmp_path / "face.onnx", "b")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["masquerade.model_id"] == model.model_id and meta["masquerade.side"] == "b"
    assert meta["masquerade.size"] == str(model.config.size) and "synthetic" in meta["masquerade.notice"]
    x = real_faces(model, d18)
    ort_out = OnnxRenderer.load(path)(x)  # a batch of 6 through a file exported with batch 1: dynamic batch
    with torch.no_grad():
        ref = model.net(torch.from_numpy(x), "b").numpy()
    assert ort_out.shape == ref.shape
    assert np.abs(ort_out - ref).max() <= 1e-4


class UnmarkedSwapper(Swapper):
    """The swap without its mark. The mark is aligned to landmarks dlib finds on the swapped face, and one pixel
    rounded the other way can move those by a pixel and so the whole mark: the engines are compared before it."""

    def _mark(self, roi, *args, **kwargs):
        return roi


def test_a_swap_through_each_engine_gives_the_same_frames_and_marks_them(model_dir, d18, tmp_path):
    frames = [fr.image for fr in read_frames(d18, stop=8)]
    export_onnx(load_model(model_dir, "cpu"), tmp_path / "b.onnx", "b")
    engines = {
        "torch": (model_dir, SwapOptions(to="b", engine="torch")),
        "onnx": (model_dir, SwapOptions(to="b", engine="onnx")),
        "file": (tmp_path / "b.onnx", None),
        # an exported file carries no faces of the target (`models.detail`): the input's detail alone
        "torch, input's detail": (model_dir, SwapOptions(to="b", engine="torch", detail_from="input")),
    }
    plain = {name: UnmarkedSwapper(*args).swap_frames(frames) for name, args in engines.items()}
    for name, ref in (("onnx", "torch"), ("file", "torch, input's detail")):
        for a, b in zip(plain[ref], plain[name], strict=True):
            d = np.abs(a.astype(int) - b.astype(int))
            assert d.mean() < 0.001 and d.max() <= 1, (name, d.mean(), d.max())
        marked = Swapper(*engines[name]).swap_frames(frames)
        assert verify_frames(tmp_path / "x.mp4", iter(marked)).marked


def test_export_cli_and_bad_onnx_files_are_one_line_errors(model_dir, d18, tmp_path):
    out = tmp_path / "m.onnx"
    r = run_cli("export", "-m", model_dir, "-o", out, "--to", "a")
    assert r.returncode == 0 and out.is_file() and "renders identity a" in r.stdout, r.stderr
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(out.read_bytes()[:5000])
    foreign = tmp_path / "foreign.onnx"
    proto = onnx.load(str(out))
    del proto.metadata_props[:]
    onnx.save(proto, str(foreign))
    for bad, why in ((corrupt, "not a readable ONNX model"), (foreign, "not one exported by")):
        r = run_cli("swap", d18, "-m", bad, "-o", tmp_path / "o.mp4", "--end", "3f")
        assert r.returncode == 2 and str(bad) in r.stderr and why in r.stderr, r.stderr
        assert r.stderr.strip().count("\n") == 0
    r = run_cli("swap", d18, "-m", out, "--to", "b", "-o", tmp_path / "o.mp4", "--end", "3f")
    assert r.returncode == 2 and "renders identity a only" in r.stderr
    assert not (tmp_path / "o.mp4").exists()
