"""The `masquerade` command: one sub-command per stage; thin (parse, call the library, show progress).

Errors the user can fix print as one line `masquerade: error: FILE: reason` and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from tqdm import tqdm

from masquerade import __version__
from masquerade.core.errors import MasqueradeError

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
    p.add_argument("--detector", choices=["auto", "hog", "cnn"], default="auto",
                   help="auto: HOG, then the CNN where HOG finds nothing (default); hog: fast; cnn: accurate, slow")
    p.add_argument("--min-face", type=_positive, default=40, metavar="PX",
                   help="smallest face to find and keep, in pixels (default 40; larger is faster)")
    p.add_argument("--max-faces-per-frame", type=_nonneg, default=0, metavar="N",
                   help="keep at most the N largest faces of a frame (default 0: all)")
    p.add_argument("--identity", metavar="REF", help="keep only faces of this person: an image of them or a face set")
    p.add_argument("--min-blur", type=float, default=0.0, metavar="V",
                   help="drop crops whose sharpness (variance of the Laplacian) is below V (default 0: keep all)")
    p.add_argument("--workers", type=_nonneg, default=0, help="analysis processes (default 0: one per core, max 4)")
    p.set_defaults(run=run_extract)


def run_extract(args) -> int:
    from masquerade.faceset.extract import ExtractOptions, extract

    opts = ExtractOptions(
        size=args.size, every=args.every, detector=args.detector, min_face=args.min_face,
        max_faces=args.max_faces_per_frame, min_blur=args.min_blur, identity=args.identity, workers=args.workers,
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


COMMANDS: list[Callable] = [add_extract]


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
