"""Read frames, in order, from a video file, an image or a folder of images.

Every failure a user can cause (missing file, not media, truncated video, decompression bomb) becomes an
`InputError` naming the file; unusual but valid images (grayscale, RGBA, 16-bit) are converted to 8-bit RGB,
the one colour order frames have in memory (BGR exists only inside the cv2 calls that need it).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from masquerade.core.errors import InputError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_EXTS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".ts", ".gif"}
MAX_IMAGE_PIXELS = 100_000_000  # larger images are refused as possible decompression bombs


@dataclass
class MediaInfo:
    """What a source is: kind (`video`, `image`, `folder`), size after rotation, rate and length."""

    path: str
    kind: str
    width: int
    height: int
    fps: float
    frames: int
    has_audio: bool = False
    rotation: int = 0  # clockwise degrees applied to decoded frames
    rate: Fraction | None = None


@dataclass
class Frame:
    index: int
    time: float
    image: np.ndarray  # (H, W, 3) uint8 RGB
    source: str = ""


@dataclass
class ReadStats:
    """Counts a reader fills in while it runs; corrupt frames are skipped and counted, not fatal."""

    read: int = 0
    corrupt: int = 0
    notes: list[str] = field(default_factory=list)


def _natural_key(p: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def list_sources(paths: list[str | Path]) -> list[Path]:
    """Expand the user's SRC arguments: files stay, folders become their media files in natural order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise InputError(p, "no such file or folder")
        if p.is_dir():
            found = sorted(
                (c for c in p.iterdir() if c.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS and c.is_file()),
                key=_natural_key,
            )
            if not found:
                raise InputError(p, "folder holds no images or videos")
            out.extend(found)
        else:
            out.append(p)
    return out


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def _to_rgb8(im: Image.Image, path: Path) -> np.ndarray:
    """Convert any Pillow mode to 8-bit RGB: gray is replicated, alpha composited on black, 16-bit scaled."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        if im.mode == "F" and arr.max(initial=0) <= 1.0:
            top = 1.0
        gray = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32)
        rgb = rgba[..., :3] * (rgba[..., 3:] / 255.0)
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    try:
        return np.array(im.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot convert image mode {im.mode}: {exc}") from None


def read_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode one image to 8-bit RGB, honouring EXIF orientation, refusing decompression bombs."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise InputError(
                        path,
                        f"image is {w}x{h} ({w * h / 1e6:.0f} MP), over the {max_pixels / 1e6:.0f} MP "
                        "limit (possible decompression bomb)",
                    )
                im.load()
                im = ImageOps.exif_transpose(im)
                return _to_rgb8(im, path)
    except Image.DecompressionBombError:
        raise InputError(path, "image is too large (possible decompression bomb)") from None
    except UnidentifiedImageError:
        raise InputError(path, "not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"corrupt or truncated image ({exc})") from None


def _looks_like_video(path: Path) -> bool:
    """Container magic numbers: MP4/MOV (ftyp), Matroska/WebM, AVI, MPEG-TS/PS, FLV, GIF."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    return (
        head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free")
        or head.startswith(b"\x1a\x45\xdf\xa3")
        or head.startswith(b"RIFF")
        or head[:1] == b"\x47"
        or head.startswith(b"\x00\x00\x01\xba")
        or head.startswith(b"FLV")
        or head.startswith(b"GIF8")
    )


def _open_video(path: Path):
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        if _looks_like_video(path):
            raise InputError(path, f"truncated or corrupt video ({exc.__class__.__name__})") from None
        raise InputError(path, "not a readable video or image") from None
    if not container.streams.video:
        container.close()
        raise InputError(path, "holds no video stream")
    return container


def _rotate(img: np.ndarray, cw_degrees: int) -> np.ndarray:
    """Rotate an image clockwise by a multiple of 90 degrees (display-matrix rotation)."""
    k = (cw_degrees // 90) % 4
    return np.ascontiguousarray(np.rot90(img, k=-k)) if k else img


def _frame_rotation(frame) -> int:
    """Clockwise degrees to apply so the frame displays upright (FFmpeg's display matrix is counter-clockwise)."""
    rot = int(round(getattr(frame, "rotation", 0) or 0))
    return (-rot) % 360


def probe(path: str | Path) -> MediaInfo:
    """Describe a source without reading all of it. Raises InputError for anything that is not media."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_dir():
        files = [p for p in list_sources([path]) if is_image_path(p)]
        if not files:
            raise InputError(path, "folder holds no images")
        first = read_image(files[0])
        return MediaInfo(str(path), "folder", first.shape[1], first.shape[0], 0.0, len(files))
    if is_image_path(path):
        img = read_image(path)
        return MediaInfo(str(path), "image", img.shape[1], img.shape[0], 0.0, 1)
    container = _open_video(path)
    try:
        vs = container.streams.video[0]
        rate = vs.average_rate or vs.guessed_rate or Fraction(25)
        fps = float(rate)
        frames = int(vs.frames or 0)
        if frames <= 0 and vs.duration and vs.time_base:
            frames = int(round(float(vs.duration * vs.time_base) * fps))
        if frames <= 0 and container.duration:
            frames = int(round(container.duration / 1e6 * fps))
        rotation = 0
        w, h = vs.codec_context.width, vs.codec_context.height
        try:
            first = next(container.decode(vs))
            rotation = _frame_rotation(first)
            w, h = first.width, first.height
        except (StopIteration, av.error.FFmpegError):
            raise InputError(path, "truncated or corrupt video: no frame could be decoded") from None
        if rotation in (90, 270):
            w, h = h, w
        return MediaInfo(str(path), "video", w, h, fps, frames, bool(container.streams.audio), rotation, rate)
    finally:
        container.close()


def _iter_video(
    path: Path, stats: ReadStats, wanted: Callable[[int], bool] = lambda i: True, stop: int | None = None
) -> Iterator[Frame]:
    """Decode every frame (H.264 needs them all) but convert to RGB only those `wanted` by index: the
    conversion costs about as much as the decoding. Decoding ends before frame `stop`."""
    container = _open_video(path)
    try:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        fps = float(vs.average_rate or vs.guessed_rate or 25)
        index = 0
        for packet in container.demux(vs):
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:
                stats.corrupt += 1
                continue
            for fr in decoded:
                if stop is not None and index >= stop:
                    return
                i, index = index, index + 1  # every decoded frame keeps its place, converted or not
                if not wanted(i):
                    stats.read += 1
                    continue
                try:
                    img = fr.to_ndarray(format="rgb24")
                except (av.error.FFmpegError, ValueError):
                    stats.corrupt += 1
                    continue
                t = float(fr.time) if fr.time is not None else i / fps
                stats.read += 1
                yield Frame(i, t, _rotate(img, _frame_rotation(fr)), str(path))
        if index == 0:
            raise InputError(path, "truncated or corrupt video: no frame could be decoded")
        declared = int(vs.frames or 0)
        if declared and index < 0.98 * declared - 1:  # the index says more (a truncated "faststart" file)
            stats.notes.append(f"{path}: ended after {index} of the {declared} frames its index lists (truncated?)")
    except av.error.FFmpegError as exc:
        stats.notes.append(f"{path}: stopped early after {stats.read} frames ({exc.__class__.__name__})")
    finally:
        container.close()


def _spread_order(n: int) -> list[int]:
    """0..n-1 in bit-reversed order: every prefix is spread over the whole range (coarse to fine)."""
    bits = max(1, (n - 1).bit_length())
    keys = [int(f"{i:0{bits}b}"[::-1], 2) for i in range(1 << bits)]
    return [k for k in keys if k < n]


def sample_keyframes(path: str | Path, count: int) -> Iterator[Frame]:
    """About `count` frames spread over a long video, coarse to fine (any prefix covers the whole video),
    each reached by seeking to the keyframe at or before its time and decoding that one frame only.

    Decoding a 10-minute file to look at a few hundred of its frames costs more than checking them; a
    keyframe is found by a seek and decoded alone. Targets that fall on one keyframe give one frame.
    """
    path = Path(path)
    container = _open_video(path)
    try:
        vs = container.streams.video[0]
        fps = float(vs.average_rate or vs.guessed_rate or 25)
        if vs.duration and vs.time_base:
            seconds = float(vs.duration * vs.time_base)
        else:
            seconds = (container.duration or 0) / 1e6
        seen: set[int] = set()
        for k in _spread_order(count):
            t = seconds * (k + 0.5) / count
            try:
                container.seek(int(t / vs.time_base), stream=vs, backward=True, any_frame=False)
                fr = next(container.decode(vs), None)
            except av.error.FFmpegError:
                continue
            if fr is None or fr.pts in seen:
                continue
            seen.add(fr.pts)
            ft = float(fr.time) if fr.time is not None else t
            img = _rotate(fr.to_ndarray(format="rgb24"), _frame_rotation(fr))
            yield Frame(int(round(ft * fps)), ft, img, str(path))
    finally:
        container.close()


def read_frames(
    path: str | Path,
    every: int = 1,
    stats: ReadStats | None = None,
    skip: set[int] | None = None,
    wanted: Callable[[int], bool] | None = None,
    stop: int | None = None,
) -> Iterator[Frame]:
    """Yield frames of one source in order; `every` keeps every Nth, `skip` drops indices already done,
    `wanted(index)` keeps only the indices it accepts, and reading ends before index `stop`.

    For a video, frames are decoded sequentially (skipped ones too, since H.264 needs them); images in a
    folder that are skipped are never decoded.
    """
    path = Path(path)
    stats = stats if stats is not None else ReadStats()
    skip = skip or set()
    keep = wanted or (lambda i: True)
    if path.is_dir() or is_image_path(path):
        files = [p for p in list_sources([path]) if is_image_path(p)] if path.is_dir() else [path]
        for i, f in enumerate(files[:stop]):
            if i % every or i in skip or not keep(i):
                continue
            img = read_image(f)
            stats.read += 1
            yield Frame(i, 0.0, img, str(f))
        return
    yield from _iter_video(path, stats, lambda i: not (i % every or i in skip) and keep(i), stop)
