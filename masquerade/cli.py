"""The `masquerade` command: one sub-command per stage; thin (parse, call the library, show progress).

Option defaults come from the library's option dataclasses. Only the chosen sub-command's options are
built, and each imports what it needs when it runs: `verify` never loads torch.
Errors the user can fix print as one line `masquerade: error: FILE: reason` and exit with code 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from masquerade import __version__
from masquerade.core.errors import InputError, MasqueradeError, error_line
from masquerade.core.types import Progress

POLICY = (
    "Use only faces you have consent for. Every output of `swap` carries an invisible watermark and a "
    "metadata label saying it is synthetic; `masquerade verify FILE` shows it."
)
LOG_EVERY_S = 30.0  # progress lines when there is no terminal for a bar


class Parser(argparse.ArgumentParser):
    """argparse, but a rejected option is one line (naming the option and the reason), exit code 2."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {value})")
    return value


def _nonneg(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {value})")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number above 0 (got {text})")
    return value


def _nonneg_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number, 0 or more (got {text})")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (got {text})")
    return value


def progress_bar(desc: str, unit: str) -> tuple[Progress, Callable[[], None]]:
    """A tqdm bar driven by the library's one progress shape; returns (callback, close)."""
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=unit, dynamic_ncols=True, disable=None)
    last_line = [time.monotonic()]  # with no terminal (a log file, nohup, CI) the bar is off: a plain line instead
    start: list[tuple[float, int]] = []  # (when, done) at the first update: the rate excludes earlier runs' work

    def update(done: int, total: int | None, info: dict) -> None:
        if total is not None:
            bar.total = total
        if bar.n == 0 and done > 1:  # resumed work: start the bar where it is
            bar.n = done - 1
        bar.update(done - bar.n)
        shown = {}
        for key, label, fmt in (
            ("faces", "faces", "{}"),
            ("loss_a", "loss_a", "{:.4f}"),
            ("loss_b", "loss_b", "{:.4f}"),
            ("samples_per_s", "samples/s", "{:.0f}"),
            ("mfu", "MFU", "{:.1%}"),
            ("fps", "fps", "{:.1f}"),
            ("p50_ms", "p50", "{:.0f}ms"),
            ("p95_ms", "p95", "{:.0f}ms"),
            ("dropped", "dropped", "{}"),
        ):
            if key in info:
                shown[label] = fmt.format(info[key])
        now = time.monotonic()
        if not start:
            start.append((now, done))
        if info.get("deadline", math.inf) != math.inf:  # --minutes: the time left (tqdm's ETA covers a total)
            shown["left"] = f"{max(info['deadline'] - now, 0) / 60:.1f}min"
        if shown:
            bar.set_postfix(shown, refresh=False)
        if bar.disable and (now - last_line[0] >= LOG_EVERY_S or (total and done >= total)):
            last_line[0] = now
            of = f"/{total} ({done / total:.0%})" if total else ""
            if "left" not in shown:  # what tqdm's bar shows on a terminal: the time taken and the time left
                shown.update(time_taken_and_left(now - start[0][0], done - start[0][1], total and total - done))
            extra = "".join(f", {k} {v}" for k, v in shown.items())
            print(f"{desc}: {done}{of} {unit}{extra}", file=sys.stderr, flush=True)

    return update, bar.close


def time_taken_and_left(elapsed: float, done: int, remaining: int | None) -> dict[str, str]:
    """{"elapsed": "m:ss"} and, while work remains and some is done, {"left": "m:ss"} at the rate so far."""
    out = {"elapsed": _clock(elapsed)}
    if remaining and done > 0:
        out["left"] = _clock(elapsed / done * remaining)
    return out


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


# -- extract ---------------------------------------------------------------------------------------------
def add_extract(p: argparse.ArgumentParser) -> None:
    from masquerade.faceset.extract import ExtractOptions

    d = ExtractOptions()
    p.add_argument("src", nargs="+", metavar="SRC", help="videos, images or folders of images")
    p.add_argument("-o", "--output", required=True, metavar="FACESET", help="face set folder (created or resumed)")
    p.add_argument("--every", type=_positive, default=d.every, metavar="N", help=f"use every Nth frame ({d.every})")
    p.add_argument("--size", type=_positive, default=d.size, help=f"side of the aligned crops in pixels ({d.size})")
    p.add_argument(
        "--detector",
        choices=["auto", "hog", "cnn"],
        default=d.detector,
        help=f"auto: HOG, then the CNN where HOG finds nothing; hog: fast; cnn: accurate, slow ({d.detector})",
    )
    p.add_argument(
        "--min-face",
        type=_positive,
        default=d.min_face,
        metavar="PX",
        help=f"smallest face to find and keep, in pixels ({d.min_face}; larger is faster)",
    )
    p.add_argument(
        "--max-faces-per-frame",
        type=_nonneg,
        default=d.max_faces,
        metavar="N",
        help="keep at most the N largest faces of a frame (0: all)",
    )
    p.add_argument("--identity", metavar="REF", help="keep only faces of this person: an image of them or a face set")
    p.add_argument(
        "--min-blur",
        type=float,
        default=d.min_blur,
        metavar="V",
        help="drop crops whose sharpness (variance of the Laplacian) is below V (0: keep all)",
    )
    p.add_argument("--workers", type=_nonneg, default=d.workers, help="analysis processes (0: one per core, max 4)")


def run_extract(args) -> int:
    from masquerade.faceset.extract import ExtractOptions, extract

    opts = ExtractOptions(
        size=args.size,
        every=args.every,
        detector=args.detector,
        min_face=args.min_face,
        max_faces=args.max_faces_per_frame,
        min_blur=args.min_blur,
        identity=args.identity,
        workers=args.workers,
    )
    update, close = progress_bar("extract", "frame")
    try:
        summary = extract(args.src, args.output, opts, update)
    finally:
        close()
    for line in summary.lines():
        print(line)
    print(f"face set: {args.output}")
    return 0


# -- train -----------------------------------------------------------------------------------------------
def add_train(p: argparse.ArgumentParser) -> None:
    from masquerade.models import list_models, model_entry
    from masquerade.train.loop import TrainConfig

    d = TrainConfig()
    p.add_argument("faceset_a", metavar="FACESET_A", help="face set of identity A (several: join with commas)")
    p.add_argument("faceset_b", metavar="FACESET_B", help="face set of identity B (several: join with commas)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model folder (created or resumed)")
    p.add_argument(
        "--model",
        default=d.model,
        choices=list_models(),
        help="architecture: lite (CPU-friendly, 64 px), lite-d (lite's cost, renders 128 px) or original "
        f"(the seed's 82 M network) ({d.model})",
    )
    sizes = ", ".join(f"{m} {model_entry(m).size}" for m in list_models())
    p.add_argument("--size", type=_positive, help=f"model input/output side in px (default: the model's own: {sizes})")
    p.add_argument("--mask", action="store_true", help="also learn a face mask (a 4th output channel)")
    own = {m: model_entry(m) for m in list_models()}
    for flag, attr, kind, what in (
        ("--batch-size", "batch_size", _positive, "faces per side per step"),
        ("--lr", "lr", _positive_float, "Adam learning rate"),
    ):
        mine = ", ".join(f"{m} {getattr(e, attr):g}" for m, e in own.items())
        p.add_argument(flag, type=kind, help=f"{what} (default: the model's own: {mine})")
    p.add_argument(
        "--anneal",
        type=_fraction,
        default=d.anneal,
        metavar="F",
        help="with --minutes or --iterations, lower the learning rate along a cosine over the last F of the run, "
        f"so it ends on settled weights ({d.anneal:g}; 0: constant)",
    )
    p.add_argument(
        "--unwarp",
        type=_fraction,
        default=d.unwarp,
        metavar="F",
        help="with --minutes or --iterations, train the last F of the run without the random warp, so the decoders "
        f"learn the faces they will be asked to paint ({d.unwarp:g})",
    )
    p.add_argument(
        "--ssim-weight",
        type=_nonneg_float,
        default=d.ssim_weight,
        metavar="W",
        help=f"weight of the structural (DSSIM) loss beside the L1 loss; 0: L1 only ({d.ssim_weight:g})",
    )
    p.add_argument("--iterations", type=_positive, metavar="N", help="stop at iteration N (counted across resumes)")
    p.add_argument("--minutes", type=_positive_float, metavar="M", help="stop after M minutes of this run")
    for flag, attr, what in (
        ("--save-every", "save_every", "save every N iterations"),
        ("--preview-every", "preview_every", "write previews/NNNNNNN.png and the held-out loss every N iterations"),
    ):
        p.add_argument(flag, type=_positive, default=getattr(d, attr), metavar="N", help=f"{what} ({getattr(d, attr)})")
    p.add_argument(
        "--resume",
        action="store_true",
        help="insist on resuming: fail if MODEL holds no saved model (resuming is the default when it does)",
    )
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed ({d.seed})")
    p.add_argument("--device", default=d.device, help="auto (CUDA if present), cpu or cuda[:N]")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA; slow to start)")
    p.add_argument("--threads", type=_nonneg, default=d.threads, help="CPU threads (0: all cores)")


def run_train(args) -> int:
    from masquerade.train.loop import TrainConfig, train

    if args.resume and not (Path(args.output) / "config.json").is_file():
        raise InputError(args.output, "--resume given, but there is no saved model to resume")
    cfg = TrainConfig(
        model=args.model,
        size=args.size,
        mask=args.mask,
        batch_size=args.batch_size,
        lr=args.lr,
        anneal=args.anneal,
        unwarp=args.unwarp,
        ssim_weight=args.ssim_weight,
        iterations=args.iterations,
        minutes=args.minutes,
        save_every=args.save_every,
        preview_every=args.preview_every,
        seed=args.seed,
        device=args.device,
        compile=args.compile,
        threads=args.threads,
    )
    main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 alone reports
    update, close = progress_bar("train", "it") if main_rank else (None, lambda: None)
    try:
        res = train(args.faceset_a.split(","), args.faceset_b.split(","), args.output, cfg, update)
    finally:
        close()
    if not main_rank:
        return 0
    why = {
        "interrupt": "interrupted (saved)",
        "stop": "stopped (saved)",
        "iterations": "reached --iterations",
        "minutes": "reached --minutes",
    }
    print(
        f"{why.get(res.stopped_by, 'stopped')}: iteration {res.iteration}, loss A {res.loss_a:.4f}, "
        f"loss B {res.loss_b:.4f}, {res.samples_per_s:.0f} samples/s; model: {args.output}"
    )
    if res.world_size > 1:
        same = "the very same weights on every process" if res.ranks_agree else "WEIGHTS DIFFER between processes"
        print(f"{res.world_size} processes (torchrun): {same}")
        if not res.ranks_agree:
            return 1
    return 130 if res.interrupted else 0


# -- swap ------------------------------------------------------------------------------------------------
def add_engine(p: argparse.ArgumentParser) -> None:
    """The swap engine's options, shared by `swap` and `live`."""
    from masquerade.swap.blend import MODES as BLENDS
    from masquerade.swap.color import MODES as COLORS
    from masquerade.swap.pipeline import SwapOptions

    d = SwapOptions()
    p.add_argument(
        "-m",
        "--model",
        required=True,
        metavar="MODEL",
        help="a model folder made by `train`, or an ONNX file made by `export` (which renders one identity)",
    )
    p.add_argument(
        "--engine",
        choices=("auto", "torch", "onnx"),
        default=d.engine,
        help="run the model with PyTorch or with onnxruntime (the model exported in memory); auto: onnxruntime "
        f"on a CPU, where it is faster, PyTorch on a GPU ({d.engine})",
    )
    p.add_argument(
        "--to",
        choices=["a", "b", "auto"],
        default=d.to,
        help=f"identity to render (auto: the one the input's faces are NOT of) ({d.to})",
    )
    p.add_argument(
        "--color",
        choices=COLORS,
        default=d.color,
        help=f"colour matching; lab-transfer is Reinhard's L*a*b* mean/std transfer ({d.color})",
    )
    p.add_argument("--blend", choices=BLENDS, default=d.blend, help=f"alpha or poisson (seamless clone) ({d.blend})")
    p.add_argument(
        "--mask",
        choices=("skin", "hull"),
        default=d.mask,
        help="skin: the landmark hull less any hair or background reaching into it, in the input or in the "
        f"rendered face; hull: the whole landmark hull ({d.mask})",
    )
    p.add_argument(
        "--mouth",
        choices=("auto", "model", "input"),
        default=d.mouth,
        help="whose mouth the swapped face has. auto: the model's lips with the input's teeth and tongue between them "
        "as it opens (a model paints teeth as a white smear); where it opens wider than the target's training faces "
        "ever show (a smile to someone who never smiles), the input's inner mouth wholly, and where it closes "
        "further, the input's closed lips; model: always the model's; input: always the input's whole mouth. Models "
        f"trained before this option: the model's lips, the input's teeth ({d.mouth})",
    )
    p.add_argument(
        "--eyes",
        choices=("auto", "blink", "model"),
        default=d.eyes,
        help="whose eyes the swapped face has. auto: the model's lids with the middle of the input's eyeballs "
        "between them, so the face mostly looks where the input looks (a model paints an iris as a blur looking "
        "nowhere), and where the input's eye closes (a blink, a wink), which a model trained on open eyes paints "
        "open, the input's closed eye; blink: the model's eyes, but the input's closed ones; model: always the "
        f"model's ({d.eyes})",
    )
    p.add_argument("--erode", type=int, default=d.erode, metavar="PX", help="shrink the mask by PX (0: blur/2)")
    p.add_argument("--blur", type=int, default=d.blur, metavar="PX", help="feather the mask edge (-1: 4%% of face)")
    p.add_argument(
        "--detail",
        type=float,
        default=d.detail,
        metavar="S",
        help="lay fine detail on the painted face (lashes, lid lines, brow hairs, lip edges, pores), so a "
        "low-resolution face does not look smeared in a sharp frame (see --detail-from); strength 0 to 2, 0: off "
        f"({d.detail:g})",
    )
    p.add_argument(
        "--detail-from",
        choices=("both", "target", "input"),
        default=d.detail_from,
        help="target: from the target's own faces, kept beside the model by train, the nearest to what the model "
        "painted, warped onto it, where they agree; input: the input's own band finer than the model's pixels, "
        "where the painted face agrees with the input; both: the input's where it agrees, the target's where it does "
        "not (eyes, brows, mouth). With a model that keeps no faces of the target (trained by an earlier release), "
        f"or on a small face (a model pixel under 2 frame pixels): input alone ({d.detail_from})",
    )
    p.add_argument(
        "--edge-match",
        type=float,
        default=d.edge_match,
        metavar="S",
        help="move the colours and shading of the face's border to the input's own, fading inward, so the face "
        f"meets the frame without a seam; strength 0 to 1, 0: off ({d.edge_match:g})",
    )
    p.add_argument(
        "--smooth",
        type=float,
        default=d.smooth,
        help=f"temporal landmark smoothing strength; 0 turns it off ({d.smooth:g})",
    )
    p.add_argument("--all-faces", action="store_true", help="swap every face, not only the source identity's")
    p.add_argument(
        "--track",
        choices=("on", "off"),
        default="on" if d.track else "off",
        help=f"on: follow faces from frame to frame (a full detection every {d.redetect} frames, on a cut, or when "
        "a face is lost; several times faster); off: detect every frame (on)",
    )
    p.add_argument(
        "--threads",
        type=_nonneg,
        default=d.threads,
        help=f"CPU threads for the model (0: all cores; {d.threads}: leaves the others to decoding and encoding)",
    )
    p.add_argument(
        "--min-face", type=_positive, default=d.min_face, metavar="PX", help=f"smallest face to swap ({d.min_face})"
    )
    p.add_argument("--device", default=d.device, help="auto, cpu or cuda[:N]")


def swap_options(args):
    from masquerade.swap.pipeline import SwapOptions

    return SwapOptions(
        to=args.to,
        color=args.color,
        blend=args.blend,
        mask=args.mask,
        mouth=args.mouth,
        eyes=args.eyes,
        erode=args.erode,
        blur=args.blur,
        detail=args.detail,
        detail_from=args.detail_from,
        edge_match=args.edge_match,
        smooth=args.smooth,
        min_face=args.min_face,
        swap_all=args.all_faces,
        device=args.device,
        track=args.track == "on",
        threads=args.threads,
        engine=args.engine,
    )


def add_swap(p: argparse.ArgumentParser) -> None:
    from masquerade.media.writer import PRESETS
    from masquerade.swap.run import MAX_CRF, VideoOptions

    v = VideoOptions()
    p.add_argument("input", metavar="INPUT", help="a video, an image, or a folder of images")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="video file, image file (.png/.jpg) or folder (for a folder INPUT)",
    )
    add_engine(p)
    p.add_argument("--start", help="start time: seconds (12.5), min:s (1:02.5) or frame (300f)")
    p.add_argument("--end", help="end time, same forms as --start")
    p.add_argument(
        "--preview",
        type=_nonneg,
        default=0,
        metavar="N",
        help="write N before|after stills beside OUTPUT and stop",
    )
    p.add_argument(
        "--crf",
        type=_nonneg,
        default=v.crf,
        help=f"H.264 quality, lower is better ({v.crf}; at most {MAX_CRF}, above which the watermark does not survive)",
    )
    p.add_argument("--codec", default=v.codec, help=f"video codec ({v.codec})")
    p.add_argument(
        "--preset",
        default=v.preset,
        choices=PRESETS,
        help=f"x264/x265 speed preset: slower presets make smaller files at the same --crf ({v.preset}: "
        "about 2.6x faster than medium at 720p)",
    )
    p.add_argument("--label", action="store_true", help="also draw a visible 'SYNTHETIC' tag in a corner")
    p.add_argument(
        "--sign-cert",
        metavar="PEM",
        help="certificate chain (PEM) to sign the C2PA content credentials with (default: a local key and "
        "certificate made on first use in ~/.config/masquerade/c2pa)",
    )
    p.add_argument("--sign-key", metavar="PEM", help="the private key (PEM) of --sign-cert")


def run_swap(args) -> int:
    from masquerade.provenance.credentials import load_credentials
    from masquerade.swap.pipeline import Swapper
    from masquerade.swap.run import VideoOptions, swap_file

    if (args.sign_cert is None) != (args.sign_key is None):
        raise InputError("--sign-cert", "give both --sign-cert and --sign-key, or neither")
    creds = load_credentials(args.sign_cert, args.sign_key) if args.sign_cert else None
    opts = swap_options(args)
    video = VideoOptions(
        crf=args.crf, codec=args.codec, preset=args.preset, start=args.start, end=args.end, preview=args.preview
    )
    swapper = Swapper(args.model, opts)
    update, close = progress_bar("swap", "frame")
    try:
        report = swap_file(
            swapper, args.input, args.output, video, label=args.label, progress=update, credentials=creds
        )
    finally:
        close()
    print(f"rendered identity {report.rendered} ({report.chosen_by})")
    for w in report.warnings or []:
        print(f"warning: {w}", file=sys.stderr)
    if report.previews:
        print("previews: " + ", ".join(report.previews))
        return 0
    print(f"{report.frames} frames, {report.frames_swapped} with a swapped face -> {report.output}")
    if report.mark_check:
        print(f"watermark: {report.mark_check}; metadata label: synthetic")
    if report.credentials:
        print(f"content credentials: {report.credentials}")
    if report.reused_frames:
        print(f"faces of {report.reused_frames} frames were taken from the face set's index (no detection)")
    return 0


# -- live ------------------------------------------------------------------------------------------------
def add_live(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input",
        required=True,
        metavar="SRC",
        help="a camera (/dev/videoN or N), a stream (rtsp://, udp://, http://...) or a video file played at its "
        "own frame rate as if it were a camera",
    )
    p.add_argument(
        "--output",
        required=True,
        metavar="DST",
        help="udp://HOST:PORT (H.264 in MPEG-TS: OBS, ffplay, VLC), http://127.0.0.1:PORT/ (an MJPEG page for a "
        "browser), virtualcam[:/dev/videoN] (a v4l2loopback webcam for video calls), or a video file",
    )
    add_engine(p)
    p.add_argument("--loop", action="store_true", help="play a file source again from the start when it ends")
    p.add_argument("--seconds", type=_positive_float, help="stop after this many seconds (default: until Ctrl-C)")


def run_live(args) -> int:
    from masquerade.swap.live import run_live as live
    from masquerade.swap.pipeline import Swapper

    swapper = Swapper(args.model, swap_options(args))
    update, close = progress_bar("live", "frame")
    try:
        report = live(swapper, args.input, args.output, loop=args.loop, seconds=args.seconds, progress=update)
    finally:
        close()
    f = report.figures()
    print(
        f"{report.ended}: {report.frames} frames to {report.output} ({report.swapped} with a swapped, marked face), "
        f"{f['fps']} frames/s, latency p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms, {f['dropped']} dropped"
    )
    return 0


# -- export ----------------------------------------------------------------------------------------------
def add_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", required=True, metavar="MODEL", help="a model folder made by `train`")
    p.add_argument("-o", "--output", required=True, metavar="FILE.onnx", help="the ONNX file to write")
    p.add_argument("--to", choices=("a", "b"), default="b", help="the identity the exported model renders (b)")


def run_export(args) -> int:
    from masquerade.models.export import OPSET, export_onnx
    from masquerade.models.io import load_model

    model = load_model(args.model, "cpu")
    out = export_onnx(model, args.output, args.to)
    size = model.config.size
    print(
        f"{out}: renders identity {args.to} of model {model.model_id}; input 'faces' (N, 3, {size}, {size}) RGB "
        f"in [0, 1], aligned as `extract` aligns; output 'rendered'; ONNX opset {OPSET}"
    )
    return 0


# -- verify ----------------------------------------------------------------------------------------------
def add_verify(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print one JSON object per file")
    p.add_argument(
        "--max-frames",
        type=_positive,
        default=300,
        help="frames checked per video at most, spread over it; a long video is sampled at its keyframes, and "
        "checking stops once the mark and model id are certain (300)",
    )
    p.add_argument("--all-frames", action="store_true", help="check every frame, no early stop (slow on long files)")


def run_verify(args) -> int:
    import json

    from masquerade.provenance.verify import verify_analyzer, verify_file

    fa = verify_analyzer()
    code = 0
    for f in args.files:
        try:
            res = verify_file(f, max_frames=args.max_frames, analyzer=fa, all_frames=args.all_frames)
        except MasqueradeError as exc:
            print(
                json.dumps({"path": f, "error": str(exc)}) if args.json else error_line(exc),
                file=sys.stdout if args.json else sys.stderr,
            )
            code = 2
            continue
        print(json.dumps(res.to_dict()) if args.json else "\n".join(res.lines()))
        if not res.marked:
            code = max(code, 1)
    return code


# -- demo ------------------------------------------------------------------------------------------------
def add_demo(p: argparse.ArgumentParser) -> None:
    from masquerade.demo import DemoOptions

    d = DemoOptions()
    p.add_argument("videos", nargs="*", metavar="VIDEO", help="VIDEO_A VIDEO_B (default: d18 and d19 sample clips)")
    p.add_argument("-o", "--output", default="demo_out", metavar="DIR", help="output folder (demo_out)")
    p.add_argument(
        "--iterations",
        type=_positive,
        default=d.iterations,
        help=f"training iterations ({d.iterations}: about 5 minutes on 2 CPU cores; the same face on any machine)",
    )
    p.add_argument("--minutes", type=_positive_float, help="train for this long instead of --iterations")
    p.add_argument("--swap-end", metavar="TIME", help="swap only up to TIME (seconds or 300f)")


def run_demo(args) -> int:
    from masquerade.demo import DEFAULT_CLIPS, DemoOptions
    from masquerade.demo import run_demo as demo

    if len(args.videos) not in (0, 2):
        raise InputError("VIDEO", "demo takes two videos (A and B) or none")
    a, b = args.videos or DEFAULT_CLIPS
    closers: list[Callable[[], None]] = []

    def factory(desc: str, unit: str) -> Progress:
        update, close = progress_bar(desc, unit)
        closers.append(close)
        return update

    from tqdm import tqdm

    try:
        summary = demo(
            a,
            b,
            args.output,
            DemoOptions(minutes=args.minutes, iterations=args.iterations, swap_end=args.swap_end),
            say=tqdm.write,
            progress_factory=factory,
        )
    finally:
        for close in closers:
            close()
    return 0 if summary["verify"]["marked"] else 1


# -- evaluate --------------------------------------------------------------------------------------------
def add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("swapped", metavar="SWAPPED", help="the swapped video or image")
    p.add_argument("-i", "--original", required=True, metavar="ORIGINAL", help="the input it was made from")
    p.add_argument("-m", "--model", metavar="MODEL", help="the model that made it (identities, held-out faces)")
    p.add_argument("--source-faces", metavar="FACESET", help="a face set of the rendered identity (without -m)")
    p.add_argument("--max-frames", type=_positive, default=300, help="frames scored, spread evenly (300)")
    p.add_argument("--json", action="store_true", help="print the JSON report to stdout")
    p.add_argument("-o", "--output", metavar="DIR", help="write report.json, summary.png and index.html here")


def run_evaluate(args) -> int:
    import json

    from masquerade.evaluate.report import evaluate_swap, rebuild, reconstruction, write_report

    report = evaluate_swap(args.swapped, args.original, args.model, args.source_faces, args.max_frames)
    if args.model:
        report["reconstruction"] = reconstruction(args.model)
        report["rebuild"] = {side: rebuild(args.model, side) for side in ("a", "b")}
    if args.output:
        write_report(report, args.output)
    report.pop("_examples", None)
    if args.json:
        print(json.dumps(report))
        return 0
    s = report["summary"]

    def fmt(key: str) -> str:
        v = s[key]
        return f"{v['mean']:.3f} (median {v['median']:.3f})" if v.get("n") else "n/a"

    print(f"frames scored: {report['frames_scored']}, rendered identity: {report['target_identity']}")
    print(f"ID win rate: {report['id_win_rate']:.1%}, top-1 retrieval: {report['top1_retrieval']:.1%}")
    for key, name in (
        ("dist_target", "distance to target"),
        ("dist_original", "distance to original"),
        ("landmark_error", "landmark error / IOD"),
        ("mouth_error", "mouth error / IOD"),
        ("pose_error", "pose error (deg)"),
        ("detected", "face detected"),
        ("sharpness", "sharpness (output/input)"),
        ("edge_color", "edge colour error (dE)"),
        ("flicker", "flicker (output/input)"),
        ("seam", "seam"),
    ):
        print(f"  {name:24s} {fmt(key)}")
    for side, r in report.get("reconstruction", {}).items():
        if r.get("n"):
            print(f"  held-out {side}->{side}: SSIM {r['ssim']:.3f}, PSNR {r['psnr']:.2f} dB ({r['n']} faces)")
    for side, r in report.get("rebuild", {}).items():
        if r.get("n"):
            print(
                f"  rebuilt in the frame {side}->{side}: SSIM {r['ssim']:.3f}, PSNR {r['psnr']:.2f} dB ({r['n']} faces)"
            )
            if "dist_target" in r:  # the nearest a swap to this identity can come: its decoder's own rebuild
                print(
                    f"  identity floor {side}: rebuilt {r['dist_target']:.3f} from {side.upper()}'s mean "
                    f"(real faces {r['dist_target_real']:.3f})"
                )
    if args.output:
        print(f"report: {args.output}/report.json, {args.output}/index.html")
    return 0


# -- ui --------------------------------------------------------------------------------------------------
def add_ui(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=_positive, default=7860, help="port on 127.0.0.1 (7860)")
    p.add_argument(
        "--workdir",
        default="masquerade-ui",
        metavar="DIR",
        help="the folder the UI keeps its uploads, face sets, model and outputs in; start it on the same folder "
        "to carry on (masquerade-ui)",
    )
    p.add_argument("--max-upload", type=_positive, default=2048, metavar="MB", help="largest upload, in MB (2048)")
    p.add_argument(
        "--share",
        action="store_true",
        help="also publish a temporary public gradio.live link (off: the UI is reachable from this machine only)",
    )
    p.add_argument("--sign-cert", metavar="PEM", help="as swap's --sign-cert")
    p.add_argument("--sign-key", metavar="PEM", help="as swap's --sign-key")


def run_ui(args) -> int:
    from masquerade.provenance.credentials import load_credentials

    if (args.sign_cert is None) != (args.sign_key is None):
        raise InputError("--sign-cert", "give both --sign-cert and --sign-key, or neither")
    try:
        from masquerade.ui.app import launch
    except ImportError as exc:  # gradio is a dependency; a broken install should still say what to do
        raise InputError("gradio", f"cannot be imported ({exc}); pip install 'gradio>=6,<7'") from exc
    creds = load_credentials(args.sign_cert, args.sign_key) if args.sign_cert else None
    print(f"masquerade ui on http://127.0.0.1:{args.port}/ (workspace: {args.workdir}); Ctrl-C stops it")
    launch(args.workdir, args.port, args.share, args.max_upload, creds)
    return 0


# name: (one-line help, description, add the options, run)
COMMANDS: dict[str, tuple[str, str, Callable, Callable]] = {
    "extract": (
        "find, align and index the faces in videos, images or folders",
        "Find every face in SRC (videos, images, folders of images), align it to a square crop and index it in "
        "FACESET/faceset.db. Re-running on the same SRC resumes where it stopped.",
        add_extract,
        run_extract,
    ),
    "train": (
        "train a face-swap model for two identities",
        "Train the shared-encoder / two-decoder autoencoder on face sets of identity A and B. If MODEL exists, "
        "training resumes from its last save (weights, optimizer, iteration). Without --iterations or --minutes "
        "it runs until Ctrl-C, which saves before exiting. The progress bar shows the loss, samples/s and MFU "
        "(the achieved share of this machine's measured peak FLOP/s); log.jsonl adds a held-out loss.",
        add_train,
        run_train,
    ),
    "swap": (
        "swap the faces in a video, image or folder with a trained model",
        "Replace every face of the model's source identity in INPUT with the other identity, colour-matched "
        "and blended, and write OUTPUT (a video keeps the input's size, fps and audio). Every output carries "
        "an invisible watermark and a metadata label marking it as synthetic.",
        add_swap,
        run_swap,
    ),
    "live": (
        "swap faces live: a camera or stream in, a stream, page, virtual camera or file out",
        "Swap the faces of SRC as they arrive and send them to DST, newest frame first: a slow machine drops "
        "frames instead of falling behind. Every swapped face carries the watermark; streams and files carry the "
        "synthetic-media label. The bar shows frames/s, latency (capture to output, p50/p95) and dropped frames.",
        add_live,
        run_live,
    ),
    "export": (
        "export a model to ONNX (encoder plus one decoder) for onnxruntime and other runtimes",
        "Write the model's renderer for one identity as an ONNX file (dynamic batch; metadata: masquerade's "
        "version, the model id, the face size and a synthetic-media notice). `swap`/`live -m FILE.onnx` run it "
        "with onnxruntime, with the same alignment, blending and watermark.",
        add_export,
        run_export,
    ),
    "verify": (
        "tell whether files carry masquerade's synthetic-media mark",
        "Check each FILE for masquerade's invisible watermark (it survives re-encoding, downscaling, JPEG and "
        "cropping) and its metadata label. Exit code 0 when every file is marked, 1 when one is not, 2 on bad "
        "input.",
        add_verify,
        run_verify,
    ),
    "evaluate": (
        "score a swap: identity won, expression and pose kept, flicker, seams; and the model's reconstructions",
        "Compare SWAPPED with its ORIGINAL frame by frame: identity distance to the rendered and the original "
        "identity (ID win rate, top-1 retrieval), landmark error (normalised by the inter-ocular distance), "
        "head-pose error, face detection rate, flicker and seam strength, as mean/median/p10/p90. With -m MODEL "
        "also SSIM/PSNR of A->A and B->B on the held-out faces.",
        add_evaluate,
        run_evaluate,
    ),
    "demo": (
        "the whole pipeline on two clips: extract, train, swap, verify",
        "Extract faces from VIDEO_A and VIDEO_B (default: ../shared/data/clips/d18.mp4 and d19.mp4), train a "
        "`lite` model, swap A's clip to B's face, and write OUT/swapped.mp4, OUT/side_by_side.mp4, the training "
        "previews and the `verify` result. About 10 minutes on 2 CPU cores.",
        add_demo,
        run_demo,
    ),
    "ui": (
        "the whole job in a browser: faces, training with a live preview, swap, verify, webcam",
        "Start a web app on http://127.0.0.1:PORT/ with one tab per stage: upload two people's videos and "
        "extract their faces, train while watching the preview and loss, swap a video or image (marked and "
        "signed exactly as `swap` does), verify any file, and swap a webcam live.",
        add_ui,
        run_ui,
    ),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; a sub-command's options are built only when that sub-command is on the command line
    (so `masquerade verify` imports nothing of training), all of them when argv is None."""
    wanted = set(COMMANDS) if argv is None else {next((a for a in argv if not a.startswith("-")), "")}
    parser = Parser(
        prog="masquerade",
        description="Face swapping with a shared encoder and one decoder per identity: extract faces, train a "
        "model, swap. " + POLICY,
    )
    parser.add_argument("--version", action="version", version=f"masquerade {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for name, (short, description, add, run) in COMMANDS.items():
        p = sub.add_parser(name, help=short, description=description)
        if name in wanted:
            add(p)
        p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser(argv).parse_args(argv)
        return int(args.run(args) or 0)
    except MasqueradeError as exc:
        print(error_line(exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("masquerade: interrupted; work done so far is kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
