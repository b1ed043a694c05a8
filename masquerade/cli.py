"""The `masquerade` command: one sub-command per stage; thin (parse, call the library, show progress).

Errors the user can fix print as one line `masquerade: error: FILE: reason` and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from masquerade import __version__
from masquerade.core.errors import InputError, MasqueradeError

POLICY = (
    "Use only faces you have consent for. Every output of `swap` carries an invisible watermark and a "
    "metadata label saying it is synthetic; `masquerade verify FILE` shows it."
)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _nonneg(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


# -- extract ---------------------------------------------------------------------------------------------
def add_extract(sub) -> None:
    p = sub.add_parser(
        "extract",
        help="find, align and index the faces in videos, images or folders",
        description="Find every face in SRC (videos, images, folders of images), align it to a square crop "
        "and index it in FACESET/faceset.db. Re-running on the same SRC resumes where it stopped.",
    )
    p.add_argument("src", nargs="+", metavar="SRC", help="videos, images or folders of images")
    p.add_argument("-o", "--output", required=True, metavar="FACESET", help="face set folder (created or resumed)")
    p.add_argument("--every", type=_positive, default=1, metavar="N", help="use every Nth frame (default 1)")
    p.add_argument("--size", type=_positive, default=256, help="side of the aligned crops in pixels (default 256)")
    p.add_argument(
        "--detector",
        choices=["auto", "hog", "cnn"],
        default="auto",
        help="auto: HOG, then the CNN where HOG finds nothing (default); hog: fast; cnn: accurate, slow",
    )
    p.add_argument(
        "--min-face",
        type=_positive,
        default=40,
        metavar="PX",
        help="smallest face to find and keep, in pixels (default 40; larger is faster)",
    )
    p.add_argument(
        "--max-faces-per-frame",
        type=_nonneg,
        default=0,
        metavar="N",
        help="keep at most the N largest faces of a frame (default 0: all)",
    )
    p.add_argument("--identity", metavar="REF", help="keep only faces of this person: an image of them or a face set")
    p.add_argument(
        "--min-blur",
        type=float,
        default=0.0,
        metavar="V",
        help="drop crops whose sharpness (variance of the Laplacian) is below V (default 0: keep all)",
    )
    p.add_argument("--workers", type=_nonneg, default=0, help="analysis processes (default 0: one per core, max 4)")
    p.set_defaults(run=run_extract)


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
    bar = tqdm(desc="extract", unit="frame", dynamic_ncols=True, disable=None)

    def progress(done: int, total: int, summary) -> None:
        bar.total = total
        bar.update(done - bar.n)
        bar.set_postfix(faces=summary.faces_kept, refresh=False)

    try:
        summary = extract(args.src, args.output, opts, progress)
    finally:
        bar.close()
    for line in summary.lines():
        print(line)
    print(f"face set: {args.output}")
    return 0


# -- train -----------------------------------------------------------------------------------------------
def add_train(sub) -> None:
    from masquerade.models import list_models, model_entry
    from masquerade.train.loop import TrainConfig

    d = TrainConfig()  # the defaults live in one place
    p = sub.add_parser(
        "train",
        help="train a face-swap model for two identities",
        description="Train the shared-encoder / two-decoder autoencoder on face sets of identity A and B. "
        "If MODEL exists, training resumes from its last save (weights, optimizer, iteration). Without "
        "--iterations or --minutes it runs until Ctrl-C, which saves before exiting.",
    )
    p.add_argument("faceset_a", metavar="FACESET_A", help="face set of identity A (several: join with commas)")
    p.add_argument("faceset_b", metavar="FACESET_B", help="face set of identity B (several: join with commas)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model folder (created or resumed)")
    p.add_argument(
        "--model",
        default=d.model,
        choices=list_models(),
        help="architecture: lite (CPU-friendly, default) or original (the seed's 82 M network)",
    )
    p.add_argument("--size", type=_positive, default=d.size, help=f"model input/output size in pixels ({d.size})")
    p.add_argument("--mask", action="store_true", help="also learn a face mask (a 4th output channel)")
    own = {m: model_entry(m) for m in list_models()}
    p.add_argument(
        "--batch-size",
        type=_positive,
        help="faces per side per step (default: the model's own: "
        + ", ".join(f"{m} {e.batch_size}" for m, e in own.items())
        + ")",
    )
    p.add_argument(
        "--lr",
        type=float,
        help="Adam learning rate (default: the model's own: "
        + ", ".join(f"{m} {e.lr:g}" for m, e in own.items())
        + ")",
    )
    p.add_argument(
        "--anneal",
        type=_fraction,
        default=d.anneal,
        metavar="F",
        help="with --minutes or --iterations, lower the learning rate along a cosine over the last F of the run "
        f"(default {d.anneal:g}: constant)",
    )
    p.add_argument("--iterations", type=_positive, metavar="N", help="stop at iteration N (counted across resumes)")
    p.add_argument("--minutes", type=float, metavar="M", help="stop after M minutes of this run")
    p.add_argument(
        "--save-every",
        type=_positive,
        default=d.save_every,
        metavar="N",
        help=f"save every N iterations ({d.save_every})",
    )
    p.add_argument(
        "--preview-every",
        type=_positive,
        default=d.preview_every,
        metavar="N",
        help=f"write previews/NNNNNNN.png every N iterations ({d.preview_every})",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="insist on resuming: fail if MODEL holds no saved model (resuming is the default when it does)",
    )
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed ({d.seed})")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda[:N]")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA; slow to start)")
    p.add_argument("--threads", type=_nonneg, default=0, help="CPU threads (default 0: all cores)")
    p.set_defaults(run=run_train)


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
        iterations=args.iterations,
        minutes=args.minutes,
        save_every=args.save_every,
        preview_every=args.preview_every,
        seed=args.seed,
        device=args.device,
        compile=args.compile,
        threads=args.threads,
    )
    total = args.iterations
    bar = tqdm(desc="train", unit="it", total=total, dynamic_ncols=True, disable=None)

    def progress(it: int, info: dict) -> None:
        if bar.n == 0 and it > 1:
            bar.n = it - 1
        bar.update(it - bar.n)
        extra = {}
        if info["deadline"] != float("inf"):  # --minutes: show the time left (the bar's ETA covers --iterations)
            extra["left"] = f"{max(info['deadline'] - time.monotonic(), 0) / 60:.1f}min"
        bar.set_postfix(
            loss_a=f"{info['loss_a']:.4f}",
            loss_b=f"{info['loss_b']:.4f}",
            samples_s=f"{info['samples_per_s']:.0f}",
            **extra,
            refresh=False,
        )

    try:
        res = train(args.faceset_a.split(","), args.faceset_b.split(","), args.output, cfg, progress)
    finally:
        bar.close()
    why = {
        "interrupt": "interrupted (saved)",
        "iterations": "reached --iterations",
        "minutes": "reached --minutes",
    }
    print(
        f"{why.get(res.stopped_by, 'stopped')}: iteration {res.iteration}, loss A {res.loss_a:.4f}, "
        f"loss B {res.loss_b:.4f}, {res.samples_per_s:.0f} samples/s; model: {args.output}"
    )
    return 130 if res.interrupted else 0


# -- swap ------------------------------------------------------------------------------------------------
def add_swap(sub) -> None:
    from masquerade.swap.blend import MODES as BLENDS
    from masquerade.swap.color import MODES as COLORS

    p = sub.add_parser(
        "swap",
        help="swap the faces in a video, image or folder with a trained model",
        description="Replace every face of the model's source identity in INPUT with the other identity, "
        "colour-matched and blended, and write OUTPUT (a video keeps the input's size, fps and audio). "
        "Every output carries an invisible watermark and a metadata label marking it as synthetic.",
    )
    p.add_argument("input", metavar="INPUT", help="a video, an image, or a folder of images")
    p.add_argument("-m", "--model", required=True, metavar="MODEL", help="a model folder made by `train`")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="video file, image file (.png/.jpg) or folder (for a folder INPUT)",
    )
    p.add_argument(
        "--to",
        choices=["a", "b", "auto"],
        default="auto",
        help="identity to render (default auto: the one the input's faces are NOT of)",
    )
    p.add_argument(
        "--color",
        choices=COLORS,
        default="lab-transfer",
        help="colour matching (default lab-transfer, Reinhard's L*a*b* mean/std transfer)",
    )
    p.add_argument("--blend", choices=BLENDS, default="alpha", help="alpha (default) or poisson (seamless clone)")
    p.add_argument("--erode", type=int, default=0, metavar="PX", help="shrink the mask by PX (default: blur/2)")
    p.add_argument("--blur", type=int, default=-1, metavar="PX", help="feather the mask edge (default: 4%% of face)")
    p.add_argument(
        "--smooth",
        type=float,
        default=1.0,
        help="temporal landmark smoothing strength (default 1; 0 turns it off)",
    )
    p.add_argument("--all-faces", action="store_true", help="swap every face, not only the source identity's")
    p.add_argument("--start", help="start time: seconds (12.5), min:s (1:02.5) or frame (300f)")
    p.add_argument("--end", help="end time, same forms as --start")
    p.add_argument(
        "--preview",
        type=_nonneg,
        default=0,
        metavar="N",
        help="write N before|after stills beside OUTPUT and stop",
    )
    p.add_argument("--crf", type=_nonneg, default=18, help="H.264 quality, lower is better (default 18)")
    p.add_argument("--codec", default="libx264", help="video codec (default libx264)")
    p.add_argument("--label", action="store_true", help="also draw a visible 'SYNTHETIC' tag in a corner")
    p.add_argument("--min-face", type=_positive, default=40, metavar="PX", help="smallest face to swap (40)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.set_defaults(run=run_swap)


def run_swap(args) -> int:
    from masquerade.swap.pipeline import SwapOptions, Swapper
    from masquerade.swap.run import swap_file

    opts = SwapOptions(
        to=args.to,
        color=args.color,
        blend=args.blend,
        erode=args.erode,
        blur=args.blur,
        smooth=args.smooth,
        min_face=args.min_face,
        swap_all=args.all_faces,
        device=args.device,
    )
    swapper = Swapper(args.model, opts)
    bar = tqdm(desc="swap", unit="frame", dynamic_ncols=True, disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        report = swap_file(
            swapper,
            args.input,
            args.output,
            label=args.label,
            progress=progress,
            crf=args.crf,
            codec=args.codec,
            start=args.start,
            end=args.end,
            preview=args.preview,
        )
    finally:
        bar.close()
    print(f"rendered identity {report.rendered} ({report.chosen_by})")
    for w in report.warnings or []:
        print(f"warning: {w}", file=sys.stderr)
    if report.previews:
        print("previews: " + ", ".join(report.previews))
    else:
        print(
            f"{report.frames} frames, {report.frames_swapped} with a swapped face -> {report.output} "
            "(watermarked and labelled as synthetic)"
        )
        if report.reused_frames:
            print(f"faces of {report.reused_frames} frames were taken from the face set's index (no detection)")
    return 0


# -- verify ----------------------------------------------------------------------------------------------
def add_verify(sub) -> None:
    p = sub.add_parser(
        "verify",
        help="tell whether files carry masquerade's synthetic-media mark",
        description="Check each FILE for masquerade's invisible watermark (it survives re-encoding, "
        "downscaling, JPEG and cropping) and its metadata label. Exit code 0 when every file is marked, "
        "1 when one is not, 2 on bad input.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print one JSON object per file")
    p.add_argument("--max-frames", type=_positive, default=300, help="frames checked per video, spread evenly")
    p.set_defaults(run=run_verify)


def run_verify(args) -> int:
    import json

    from masquerade.faces.analyze import FaceAnalyzer
    from masquerade.provenance import watermark as wm
    from masquerade.provenance.verify import verify_file

    fa = FaceAnalyzer(detector=wm.DETECTOR[0], min_face=wm.DETECTOR[1], embeddings=False)
    code = 0
    for f in args.files:
        try:
            res = verify_file(f, max_frames=args.max_frames, analyzer=fa)
        except MasqueradeError as exc:
            print(
                json.dumps({"path": f, "error": str(exc)}) if args.json else f"masquerade: error: {exc}",
                file=sys.stdout if args.json else sys.stderr,
            )
            code = 2
            continue
        print(json.dumps(res.to_dict()) if args.json else "\n".join(res.lines()))
        if not res.marked:
            code = max(code, 1)
    return code


# -- demo ------------------------------------------------------------------------------------------------
def add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole pipeline on two clips: extract, train, swap, verify",
        description="Extract faces from VIDEO_A and VIDEO_B (default: ../shared/data/clips/d18.mp4 and d19.mp4), "
        "train a `lite` model for --minutes, swap A's clip to B's face, and write OUT/swapped.mp4, "
        "OUT/side_by_side.mp4, the training previews and the `verify` result. About 10 minutes on 2 CPU cores.",
    )
    p.add_argument("videos", nargs="*", metavar="VIDEO", help="VIDEO_A VIDEO_B (default: d18 and d19 sample clips)")
    p.add_argument("-o", "--output", default="demo_out", metavar="DIR", help="output folder (default demo_out)")
    p.add_argument("--minutes", type=float, default=5.0, help="training time in minutes (default 5)")
    p.add_argument("--iterations", type=_positive, help="stop training at this iteration instead (for quick tries)")
    p.add_argument("--swap-end", metavar="TIME", help="swap only up to TIME (seconds or 300f)")
    p.set_defaults(run=run_demo)


def run_demo(args) -> int:
    from masquerade.demo import DEFAULT_CLIPS, DemoOptions
    from masquerade.demo import run_demo as demo

    if len(args.videos) not in (0, 2):
        raise MasqueradeError("demo takes two videos (A and B) or none")
    a, b = args.videos or DEFAULT_CLIPS
    bars: list = []

    def factory(desc: str, unit: str):
        bar = tqdm(desc=desc, unit=unit, dynamic_ncols=True, disable=None, leave=True)
        bars.append(bar)

        def update(done, total_or_info=None, *_):
            if isinstance(total_or_info, int):
                bar.total = total_or_info
            elif isinstance(total_or_info, dict) and total_or_info.get("deadline"):
                bar.set_postfix(
                    loss_a=f"{total_or_info['loss_a']:.3f}",
                    loss_b=f"{total_or_info['loss_b']:.3f}",
                    refresh=False,
                )
            bar.update(done - bar.n)

        return update

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
        for bar in bars:
            bar.close()
    return 0 if summary["verify"]["marked"] else 1


# -- evaluate --------------------------------------------------------------------------------------------
def add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a swap: identity won, expression and pose kept, flicker, seams; and the model's reconstructions",
        description="Compare SWAPPED with its ORIGINAL frame by frame: identity distance to the rendered and the "
        "original identity (ID win rate, top-1 retrieval), landmark error (normalised by the inter-ocular "
        "distance), head-pose error, face detection rate, flicker and seam strength, as mean/median/p10/p90. "
        "With -m MODEL also SSIM/PSNR of A->A and B->B on the held-out faces.",
    )
    p.add_argument("swapped", metavar="SWAPPED", help="the swapped video or image")
    p.add_argument("-i", "--original", required=True, metavar="ORIGINAL", help="the input it was made from")
    p.add_argument("-m", "--model", metavar="MODEL", help="the model that made it (identities, held-out faces)")
    p.add_argument("--source-faces", metavar="FACESET", help="a face set of the rendered identity (without -m)")
    p.add_argument("--max-frames", type=_positive, default=300, help="frames scored, spread evenly (300)")
    p.add_argument("--json", action="store_true", help="print the JSON report to stdout")
    p.add_argument("-o", "--output", metavar="DIR", help="write report.json, summary.png and index.html here")
    p.set_defaults(run=run_evaluate)


def run_evaluate(args) -> int:
    import json

    from masquerade.evaluate.report import evaluate_swap, reconstruction, write_report

    report = evaluate_swap(args.swapped, args.original, args.model, args.source_faces, args.max_frames)
    if args.model:
        report["reconstruction"] = reconstruction(args.model)
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
        ("pose_error", "pose error (deg)"),
        ("detected", "face detected"),
        ("flicker", "flicker (output/input)"),
        ("seam", "seam"),
    ):
        print(f"  {name:24s} {fmt(key)}")
    for side, r in report.get("reconstruction", {}).items():
        if r.get("n"):
            print(f"  held-out {side}->{side}: SSIM {r['ssim']:.3f}, PSNR {r['psnr']:.2f} dB ({r['n']} faces)")
    if args.output:
        print(f"report: {args.output}/report.json, {args.output}/index.html")
    return 0


COMMANDS: list[Callable] = [add_extract, add_train, add_swap, add_verify, add_evaluate, add_demo]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="masquerade",
        description="Face swapping with a shared encoder and one decoder per identity: extract faces, train a "
        "model, swap. " + POLICY,
    )
    parser.add_argument("--version", action="version", version=f"masquerade {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except MasqueradeError as exc:
        print(f"masquerade: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("masquerade: interrupted; work done so far is kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
