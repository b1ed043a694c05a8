"""Swapping whole files: a video (audio kept, time range, previews), an image, or a folder of images."""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from masquerade.core.atomic import make_folder
from masquerade.core.errors import InputError, MasqueradeError
from masquerade.core.types import Progress
from masquerade.faceset.store import FaceSet
from masquerade.media import VideoWriter, list_sources, probe, read_frames, read_image, write_image
from masquerade.media.overlap import WriteBehind, prefetch
from masquerade.media.reader import IMAGE_EXTS, ReadStats, is_image_path
from masquerade.provenance.credentials import SOURCE_TYPE, Credentials, local_credentials, sign_file, supports
from masquerade.provenance.label import draw_tag, synthetic_label, video_metadata
from masquerade.provenance.verify import FILE_FALSE_ALARM, VerifyResult, min_marked_frames, verify_frames
from masquerade.swap.pipeline import Swapper

CHUNK = 8  # frames swapped per model call
# H.264 quality bound: at CRF 35 the mark is still read on s29's smooth swapped face (16 of 24 frames), at 40
# it is not (2 of 24). Higher values are refused up front; swap's read-back guards whatever gets through.
MAX_CRF = 35


@dataclass
class VideoOptions:
    """How a video is written and which part of it is swapped."""

    crf: int = 18  # H.264 quality, lower is better
    codec: str = "libx264"
    preset: str = "veryfast"  # x264's speed preset: medium costs 2.6x the time at 720p for a ~20% smaller file
    start: str | None = None  # seconds (12.5), min:s (1:02.5) or frame (300f)
    end: str | None = None
    preview: int = 0  # >0: write this many before|after stills and stop


@dataclass
class SwapReport:
    output: str
    frames: int = 0
    frames_swapped: int = 0
    faces_swapped: int = 0
    rendered: str = ""
    chosen_by: str = ""
    previews: list[str] | None = None
    reused_frames: int = 0  # frames whose faces came from a face set's index instead of detection
    warnings: list[str] | None = None
    mark_check: str | None = None  # what reading the mark back from the written output found
    credentials: str | None = None  # the C2PA manifest added to the output, if its format can carry one


def parse_time(text: str | None, fps: float) -> int | None:
    """A frame index from '12.5' (seconds), '1:02.5' (min:s) or '300f' (frame)."""
    if text is None or text == "":
        return None
    text = text.strip()
    try:
        if text.endswith("f"):
            return int(text[:-1])
        if re.fullmatch(r"\d+:\d+(\.\d+)?", text):
            m, s = text.split(":")
            return int(round((int(m) * 60 + float(s)) * fps))
        return int(round(float(text) * fps))
    except ValueError:
        raise InputError(text, "times are seconds (12.5), min:s (1:02.5) or frames (300f)") from None


def check_paths(inp: Path, out: Path) -> None:
    if out.resolve() == inp.resolve():
        raise InputError(out, "output is the input; refusing to overwrite it")
    if inp.is_dir():
        return
    if not out.parent.is_dir():
        raise InputError(out, "output folder does not exist")
    if out.is_dir():
        raise InputError(out, "is a folder; give the output a file name")
    if not os.access(out.parent, os.W_OK):
        raise InputError(out.parent, "cannot write here (no write permission)")


READ_BACK_FRAMES = 24  # swapped frames of an output that swap reads its mark back from, at most...
# ...and a third of them, spread over the file, first: when these make the file marked beyond doubt (at verify's
# false-alarm rate shared among all 24), the rest are not read. A frame's read (verify's own detection, every
# refinement and tier, as it is and mirrored) takes about 0.24 s at 480p: a 30-frame swap of d18 spent 5.8 of
# its 10.6 s reading 24 frames back.
READ_BACK_FIRST = 8


def _read_back(swapper: Swapper, path: Path, out: Path, swapped_at: list[int], report: SwapReport, hint: str) -> None:
    """Read the mark back from (a sample of) the swapped frames just written to `path`, the output's
    temporary file; raise, so that nothing is handed over, if `verify` would not find it."""
    if not swapped_at:
        return
    picks = sorted({swapped_at[int(i)] for i in np.linspace(0, len(swapped_at) - 1, READ_BACK_FRAMES)})

    def read(wanted: list[int]) -> VerifyResult:
        if is_image_path(out):
            frames = iter([read_image(path)])
        else:
            frames = (fr.image for fr in read_frames(path, wanted=set(wanted).__contains__, stop=wanted[-1] + 1))
        return verify_frames(out, frames, swapper.mark_finder, still=is_image_path(out))

    first = picks[:: max(1, len(picks) // READ_BACK_FIRST)]
    res = read(first)
    sure = min_marked_frames(res.frames_checked, alarm=FILE_FALSE_ALARM / READ_BACK_FRAMES)
    if len(first) < len(picks) and not (res.marked and res.frames_marked >= sure):
        res = read(picks)
    if not res.marked:
        found = f"{res.frames_marked} of {res.frames_checked} swapped frames marked"
        if res.frames_with_face < res.frames_checked / 2:  # the mark is anchored to a face verify must find
            found += f"; a face was found again in only {res.frames_with_face}"
            hint = "the model's faces are not yet face-like enough to be found again: train longer (see its previews)"
        raise MasqueradeError(
            f"{out}: the watermark could not be read back ({found}), so the output was not written; {hint}"
        )
    report.mark_check = f"{res.frames_marked} of {res.frames_checked} swapped frames read back as marked"


def credentials_for(outputs: list[Path], given: Credentials | None) -> Credentials | None:
    """The signing credentials of one swap call, loaded once: the given ones, else the local key (made on first
    use) when any output can carry a manifest."""
    if given is not None or not any(supports(o) for o in outputs):
        return given
    return local_credentials()


def sign_output(tmp: Path, out: Path, swapper: Swapper, creds: Credentials | None, report: SwapReport) -> None:
    """Add the signed C2PA manifest to a finished output (its temporary file), as the very last write.
    `creds` comes from `credentials_for`, so it is set whenever `out` can carry a manifest."""
    if not supports(out):
        report.warnings.append(
            f"{out.suffix or out.name} files cannot carry C2PA content credentials: use .mp4 or .mov"
        )
        return
    sign_file(tmp, swapper.model.model_id, creds, title=out.name)
    report.credentials = f"C2PA manifest signed ({SOURCE_TYPE.rsplit('/', 1)[-1]}, model {swapper.model.model_id})"


def indexed_faces(swapper: Swapper, inp: Path) -> dict[int, list]:
    """Faces of INPUT already in one of the model's face sets (same file), by frame index."""
    found: dict[int, list] = {}
    for side_paths in swapper.model.config.facesets.values():
        for fs_path in side_paths:
            if not (Path(fs_path) / "faceset.db").is_file():
                continue
            with FaceSet.open(fs_path) as fs:
                found.update(fs.faces_of(inp))
    return found


def swap_video(
    swapper: Swapper,
    inp: Path,
    out: Path,
    video: VideoOptions | None = None,
    label: bool = False,
    side_by_side: Path | None = None,
    progress: Progress | None = None,
    credentials: Credentials | None = None,
) -> SwapReport:
    """Swap a video file to `out` (same size, rate and length; audio copied; marked, labelled and signed with
    C2PA content credentials: `credentials`, or the local key made on first use)."""
    v = video or VideoOptions()
    crf, codec = v.crf, v.codec
    if not 0 <= crf <= MAX_CRF:
        raise InputError("--crf", f"must be from 0 to {MAX_CRF}: above it the watermark does not survive (got {crf})")
    info = probe(inp)
    if info.kind != "video":
        raise InputError(inp, "not a video")
    check_paths(inp, out)
    swapper.smoother.fps = info.fps
    f0 = parse_time(v.start, info.fps) or 0
    f1 = parse_time(v.end, info.fps)
    f1 = info.frames if f1 is None else min(f1, info.frames)
    if f1 <= f0:
        raise InputError(inp, f"empty range: --start frame {f0} is not before --end frame {f1}")
    report = SwapReport(str(out), warnings=[])
    if v.preview:
        return _previews(swapper, inp, out, f0, f1, v.preview, report)
    meta = video_metadata(swapper.model.model_id)
    credentials = credentials_for([out, *([side_by_side] if side_by_side else [])], credentials)
    window = (f0 / info.fps, f1 / info.fps)

    def open_writer(path: Path, width: int) -> VideoWriter:
        rate = info.rate or info.fps
        opts = dict(audio_from=inp, audio_window=window, metadata=meta, preset=v.preset)
        return VideoWriter(path, rate, (width, info.height), crf, codec, **opts)

    writer = open_writer(out, info.width)
    sbs = open_writer(side_by_side, 2 * info.width) if side_by_side is not None else None
    # Frames already in one of the model's face sets need no detection; a tracker needs none either.
    known = indexed_faces(swapper, inp) if swapper.tracker is None else {}
    swapped_at: list[int] = []  # output frames with a swapped face
    stats = ReadStats()

    def encode(pair: tuple[np.ndarray, np.ndarray]) -> None:
        before, after = pair
        writer.write(after)
        if sbs is not None:
            sbs.write(np.hstack([before, after]))

    encoder = WriteBehind(encode)  # x264 works while the next frames are swapped
    try:
        chunk: list[np.ndarray] = []
        chunk_idx: list[int] = []

        def flush() -> None:
            faces = [known[i] if i in known else swapper.find_faces(f) for i, f in zip(chunk_idx, chunk, strict=True)]
            report.reused_frames += sum(i in known for i in chunk_idx)
            swapped = swapper.swap_frames(chunk, faces)
            chunk_idx.clear()
            for k, (before, after) in enumerate(zip(chunk, swapped, strict=True)):
                if not np.array_equal(before, after):
                    swapped_at.append(report.frames + k)
                encoder.put((before, draw_tag(after) if label else after))
            report.frames += len(chunk)
            if progress:
                progress(report.frames, f1 - f0, {})
            chunk.clear()

        # Frames before --start are decoded (H.264 needs them) but never converted to RGB.
        for fr in prefetch(read_frames(inp, stats=stats, wanted=lambda i: f0 <= i < f1, stop=f1)):
            chunk.append(fr.image)
            chunk_idx.append(fr.index)
            if len(chunk) == CHUNK:
                flush()
        if chunk:
            flush()
        encoder.close()
    except BaseException:
        with contextlib.suppress(BaseException):
            encoder.close()
        writer.abort()
        if sbs is not None:
            sbs.abort()
        raise
    report.rendered, report.chosen_by = swapper.to or "", swapper.chosen_by
    report.frames_swapped = len(swapped_at)

    def finish(tmp: Path) -> None:
        _read_back(swapper, tmp, out, swapped_at, report, f"lower --crf (now {crf})")
        sign_output(tmp, out, swapper, credentials, report)

    try:
        writer.close(check=finish)
    except BaseException:
        if sbs is not None:
            sbs.abort()
        raise
    if sbs is not None:
        sbs.close(check=lambda tmp: sign_output(tmp, side_by_side, swapper, credentials, SwapReport(str(side_by_side))))
    report.warnings.extend(stats.notes)
    if report.frames < f1 - f0:
        report.warnings.append(f"{inp}: the video ended after {report.frames} of {f1 - f0} frames (truncated?)")
    if report.frames_swapped == 0:
        report.warnings.append("no face of the source identity was found: frames were copied through unchanged")
    return report


def _previews(swapper: Swapper, inp: Path, out: Path, f0: int, f1: int, n: int, report: SwapReport) -> SwapReport:
    """Write n before|after stills spread over the range, beside OUTPUT, and stop."""
    picks = set(np.linspace(f0, f1 - 1, n).round().astype(int).tolist())
    report.previews = []
    for fr in read_frames(inp, wanted=lambda i: i in picks, stop=f1):
        if fr.index in picks:
            swapper.reset()  # stills far apart: nothing to follow from one to the next
            after = swapper.swap_frame(fr.image)
            path = out.with_name(f"{out.stem}_preview_{len(report.previews) + 1:02d}.png")
            write_image(path, np.hstack([fr.image, after]), label=synthetic_label(swapper.model.model_id))
            report.previews.append(str(path))
            report.frames += 1
        if fr.index >= f1:
            break
    report.rendered, report.chosen_by = swapper.to or "", swapper.chosen_by
    return report


def swap_images(
    swapper: Swapper,
    inp: Path,
    out: Path,
    label: bool = False,
    progress: Progress | None = None,
    credentials: Credentials | None = None,
) -> SwapReport:
    """An image to an image file, or a folder of images to a folder (created if missing); each marked, labelled
    and signed with C2PA content credentials."""
    files = list_sources([inp]) if inp.is_dir() else [inp]
    files = [f for f in files if f.suffix.lower() in IMAGE_EXTS]
    if inp.is_dir():
        if out.exists() and not out.is_dir():
            raise InputError(out, "input is a folder, so the output must be a folder")
        if out.resolve() == inp.resolve():
            raise InputError(out, "output is the input; refusing to overwrite it")
        if not out.parent.is_dir():
            raise InputError(out, "output's parent folder does not exist")
        make_folder(out)
        targets = [
            out / (f.stem + (f.suffix.lower() if f.suffix.lower() in (".png", ".jpg", ".jpeg") else ".png"))
            for f in files
        ]
    else:
        check_paths(inp, out)
        if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise InputError(out, "an image is written as .png or .jpg")
        targets = [out]
    credentials = credentials_for(targets, credentials)
    report = SwapReport(str(out), warnings=[])
    text = synthetic_label(swapper.model.model_id)
    refused: list[tuple[Path, str]] = []  # a folder's pictures not written (their mark did not read back)
    for k, (src, dst) in enumerate(zip(files, targets, strict=True), start=1):
        hint = (
            "the swapped face is too blurry to be aligned again exactly: train longer (see its previews)"
            if dst.suffix.lower() == ".png"
            else "try a PNG output"
        )
        img = read_image(src)
        swapper.reset()  # each image on its own
        after = swapper.swap_frame(img, still=True)
        report.frames += 1
        changed = not np.array_equal(img, after)
        report.frames_swapped += int(changed)
        swapped_at = [0] if changed else []

        def check(tmp: Path, dst: Path = dst, swapped_at: list[int] = swapped_at, hint: str = hint) -> None:
            _read_back(swapper, tmp, dst, swapped_at, report, hint)
            sign_output(tmp, dst, swapper, credentials, report)

        try:
            write_image(dst, draw_tag(after) if label else after, label=text, check=check)
        except MasqueradeError as e:  # nothing was written under dst; in a folder, the other pictures go on
            if not inp.is_dir():
                raise
            refused.append((dst, str(e)))
        if progress:
            progress(k, len(files), {})
    report.rendered, report.chosen_by = swapper.to or "", swapper.chosen_by
    if refused:
        names = ", ".join(p.name for p, _ in refused[:5]) + (", ..." if len(refused) > 5 else "")
        raise MasqueradeError(
            f"{out}: {len(refused)} of {len(files)} pictures were not written ({names}), the others were; "
            f"first: {refused[0][1]}"
        )
    if report.frames_swapped == 0:
        report.warnings.append("no face of the source identity was found: images were copied through unchanged")
    elif len(files) > 1:  # each swapped image was read back on its own
        n = report.frames_swapped
        report.mark_check = f"{n} of {n} swapped images read back as marked"
    return report


def swap_file(
    swapper: Swapper,
    inp: str | Path,
    out: str | Path,
    video: VideoOptions | None = None,
    label: bool = False,
    progress: Progress | None = None,
    credentials: Credentials | None = None,
) -> SwapReport:
    """Swap a video, an image or a folder; `video` options are ignored for images."""
    inp, out = Path(inp), Path(out)
    if not inp.exists():
        raise InputError(inp, "no such file or folder")
    if inp.is_dir() or inp.suffix.lower() in IMAGE_EXTS:
        return swap_images(swapper, inp, out, label=label, progress=progress, credentials=credentials)
    return swap_video(swapper, inp, out, video, label=label, progress=progress, credentials=credentials)
