"""Write video (H.264 yuv420p by default) with the source's audio copied in, and images with a label.

Outputs are written to a temporary file beside the target and renamed into place only when complete,
so a failed or interrupted run never leaves a half-written file under the user's name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, PngImagePlugin

from masquerade.core.atomic import atomic_path, publish, remove_orphan_temps, temp_beside
from masquerade.core.errors import InputError

LABEL_KEYS = ("comment", "description")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


class VideoWriter:
    """Encode RGB frames to a video file; optionally copy (or, failing that, re-encode) an audio stream.

    Use as a context manager; the file appears at `path` only when the block exits without error.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float | Fraction,
        size: tuple[int, int],
        crf: int = 18,
        codec: str = "libx264",
        audio_from: str | Path | None = None,
        audio_window: tuple[float, float | None] = (0.0, None),
        metadata: dict[str, str] | None = None,
        preset: str = "veryfast",
    ):
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise InputError(self.path, "output folder does not exist")
        self.width, self.height = size
        remove_orphan_temps(self.path)  # a killed earlier run's half-written file
        self._tmp = temp_beside(self.path, self.path.suffix or ".mp4")
        self._audio_from = Path(audio_from) if audio_from else None
        self._audio_src = None
        self._audio_out = None
        self._audio_copy = True
        self._window = audio_window
        rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
        self._out = av.open(str(self._tmp), mode="w")
        for k, v in (metadata or {}).items():
            self._out.metadata[k] = v
        try:
            self._vs = self._out.add_stream(codec, rate=rate)
        except (av.error.FFmpegError, ValueError) as exc:
            self.abort()
            raise InputError("--codec", f"cannot encode with {codec!r}: {exc}") from None
        self._vs.width, self._vs.height = self.width, self.height
        self._vs.pix_fmt = "yuv420p"
        if codec in ("libx264", "libx265", "h264", "hevc"):
            if preset not in PRESETS:
                self.abort()
                raise InputError("--preset", f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
            self._vs.options = {"crf": str(crf), "preset": preset}
        self._count = 0
        if self._audio_from is not None:
            self._add_audio_stream()

    def _add_audio_stream(self) -> None:
        """Add the audio stream now: every stream must exist before the first packet is written."""
        src = av.open(str(self._audio_from))
        if not src.streams.audio:
            src.close()
            return
        ins = src.streams.audio[0]
        self._audio_src = src
        try:
            self._audio_out = self._out.add_stream_from_template(ins)
        except (av.error.FFmpegError, ValueError):
            # The container cannot hold this codec as is: re-encode to AAC instead.
            self._audio_out = self._out.add_stream("aac", rate=ins.rate)
            self._audio_copy = False

    def write(self, image: np.ndarray) -> None:
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame is {image.shape[1]}x{image.shape[0]}, writer is {self.width}x{self.height}")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = self._count
        self._count += 1
        for packet in self._vs.encode(frame):
            self._out.mux(packet)

    def _copy_audio(self) -> None:
        if self._audio_src is None:
            return
        src = self._audio_src
        try:
            ins = src.streams.audio[0]
            start, end = self._window
            if self._audio_copy:
                self._remux(src, ins, self._audio_out, start, end)
            else:
                self._transcode(src, ins, self._audio_out, start, end)
        finally:
            src.close()
            self._audio_src = None

    def _remux(self, src, ins, outs, start: float, end: float | None) -> None:
        offset = None
        for packet in src.demux(ins):
            if packet.dts is None or packet.pts is None:
                continue
            t = float(packet.pts * ins.time_base)
            if t < start or (end is not None and t >= end):
                continue
            if offset is None:
                offset = packet.pts
            packet.pts -= offset
            packet.dts -= offset
            packet.stream = outs
            self._out.mux(packet)

    def _transcode(self, src, ins, outs, start: float, end: float | None) -> None:
        for frame in src.decode(ins):
            t = float(frame.time or 0.0)
            if t < start or (end is not None and t >= end):
                continue
            frame.pts = None
            for packet in outs.encode(frame):
                self._out.mux(packet)
        for packet in outs.encode(None):
            self._out.mux(packet)

    def close(self, check: Callable[[Path], None] | None = None) -> None:
        """Finish the file; `check(temporary path)` may inspect it first and raise to refuse it (the
        temporary file is then removed and nothing appears under the user's name)."""
        for packet in self._vs.encode(None):
            self._out.mux(packet)
        self._copy_audio()
        self._out.close()
        try:
            if check is not None:
                check(self._tmp)
            publish(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        if self._audio_src is not None:
            self._audio_src.close()
        with contextlib.suppress(Exception):  # best effort while already failing
            self._out.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def frames_written(self) -> int:
        return self._count


def write_image(
    path: str | Path,
    image: np.ndarray,
    label: str | None = None,
    quality: int = 95,
    check: Callable[[Path], None] | None = None,
) -> None:
    """Write an RGB image as PNG (label in a text chunk) or JPEG (label in EXIF ImageDescription), atomically.

    The one image writer: outputs, face crops, previews and reports all go through it."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(path, "output folder does not exist")
    im = Image.fromarray(np.ascontiguousarray(image))
    ext = path.suffix.lower()
    with atomic_path(path) as tmp:
        if ext == ".png":
            info = PngImagePlugin.PngInfo()
            if label:
                info.add_itxt("Description", label)
                info.add_text("Software", "masquerade")
            im.save(tmp, format="PNG", pnginfo=info, compress_level=3)
        elif ext in (".jpg", ".jpeg"):
            exif = Image.Exif()
            if label:
                exif[0x010E] = label  # ImageDescription
                exif[0x0131] = "masquerade"  # Software
            im.save(tmp, format="JPEG", quality=quality, exif=exif.tobytes())
        else:
            raise InputError(path, "images are written as .png or .jpg")
        if check is not None:  # may inspect the complete file and raise to refuse it
            check(tmp)


def read_label(path: str | Path) -> str | None:
    """The synthetic-media label a file carries in its metadata, if any (video tags, PNG text, EXIF)."""
    path = Path(path)
    if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"):
        try:
            with Image.open(path) as im:
                text = im.info.get("Description") or im.getexif().get(0x010E)
                return str(text) if text else None
        except OSError:
            return None
    try:
        with av.open(str(path)) as c:
            for k in LABEL_KEYS:
                if c.metadata.get(k):
                    return c.metadata[k]
    except av.error.FFmpegError:
        return None
    return None
