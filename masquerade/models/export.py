"""ONNX: a model's renderer (the encoder and one decoder) as a file any ONNX runtime can run, and a runner.

The file takes (N, 3, S, S) float32 RGB faces in [0, 1], aligned as `extract` aligns them, and returns
(N, 3 or 4, S, S) rendered faces (plus the mask channel for models with a mask head); the batch size is free.
Its metadata carries masquerade's version, the model id, the face size, the side rendered, a synthetic-media
notice and the model's whole config (identities included), so that `swap` and `live` can run it with the
same pre- and post-processing and the same watermark, without the model folder or PyTorch's weights.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from masquerade import __version__
from masquerade.core.atomic import write_bytes
from masquerade.core.errors import InputError
from masquerade.models.io import LoadedModel, ModelConfig

OPSET = 18
NOTICE = "synthetic media: renders faces for face swapping; every output of masquerade is watermarked"


class _Renderer(nn.Module):
    def __init__(self, net: nn.Module, side: str):
        super().__init__()
        self.net, self.side = net, side

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.net(faces, self.side)


def export_bytes(model: LoadedModel, side: str) -> bytes:
    """The ONNX file of `model` rendering identity `side` ("a" or "b"), as bytes."""
    import onnx

    if side not in ("a", "b"):
        raise InputError("--to", "must be a or b")
    s = model.config.size
    renderer = _Renderer(model.net, side).to("cpu").eval()
    buf = io.BytesIO()
    # The TorchScript exporter: 0.3 s against 5 s for torch.export's (both give the same graph, within 1e-7),
    # and swap --engine onnx exports at every start. Deprecated in torch 2.9; the pinned torch has it.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            renderer,
            (torch.rand(1, 3, s, s),),
            buf,
            input_names=["faces"],
            output_names=["rendered"],
            dynamic_axes={"faces": {0: "batch"}, "rendered": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    model.net.to(model.device)
    proto = onnx.load_from_string(buf.getvalue())
    meta = {
        "masquerade.version": __version__,
        "masquerade.model_id": model.model_id,
        "masquerade.size": str(s),
        "masquerade.side": side,
        "masquerade.notice": NOTICE,
        "masquerade.config": json.dumps(model.config.to_dict()),
    }
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    proto.producer_name, proto.producer_version = "masquerade", __version__
    return proto.SerializeToString()


def export_onnx(model: LoadedModel, out: str | Path, side: str) -> Path:
    """Write the ONNX file (atomically) and return its path."""
    out = Path(out)
    if out.is_dir():
        raise InputError(out, "is a folder; give the ONNX file a name")
    if not out.parent.is_dir():
        raise InputError(out, "output folder does not exist")
    write_bytes(out, export_bytes(model, side))
    return out


@dataclass
class OnnxRenderer:
    """Runs an exported renderer with onnxruntime (CUDA where available, else the CPU)."""

    session: object
    config: ModelConfig
    side: str

    @classmethod
    def load(cls, source: str | Path | bytes, threads: int = 0) -> OnnxRenderer:
        """From a file or bytes; a file that is not masquerade's ONNX gives one line naming it."""
        import onnxruntime as ort

        name = "the exported model" if isinstance(source, bytes) else str(source)
        if not isinstance(source, bytes) and not Path(source).is_file():
            raise InputError(name, "no such file")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        try:
            sess = ort.InferenceSession(source if isinstance(source, bytes) else str(source), opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors for any bad file
            raise InputError(name, f"not a readable ONNX model ({str(exc).splitlines()[0][:100]})") from None
        meta = sess.get_modelmeta().custom_metadata_map
        if "masquerade.config" not in meta or meta.get("masquerade.side") not in ("a", "b"):
            raise InputError(name, "an ONNX model, but not one exported by `masquerade export`")
        try:
            cfg = ModelConfig.from_dict(json.loads(meta["masquerade.config"]), name)
        except json.JSONDecodeError:
            raise InputError(name, "its masquerade config is corrupt") from None
        return cls(sess, cfg, meta["masquerade.side"])

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) float32 in [0, 1] -> (N, C, S, S) float32."""
        return self.session.run(["rendered"], {"faces": np.ascontiguousarray(faces, np.float32)})[0]
