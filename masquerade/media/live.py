"""Live sources (a camera, a network stream, a file played as if it were a camera) and live sinks (an MPEG-TS
stream over UDP, an MJPEG page, a virtual camera, a file). Nothing here knows about faces.

A source keeps only its newest frame: a consumer slower than the source drops frames instead of building a
backlog, so the delay from capture to output stays bounded ("latest frame wins").
"""

from __future__ import annotations

import http.server
import io
import re
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from masquerade.core.errors import InputError
from masquerade.media.reader import _frame_rotation, _rotate
from masquerade.media.writer import VideoWriter

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "udp", "tcp", "srt", "http", "https")


@dataclass
class LiveFrame:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    captured: float  # time.monotonic() when it arrived
    index: int  # its place in the source (gaps are dropped frames)


class LiveSource:
    """Reads a source on a thread of its own; `get()` returns the newest frame not yet taken, waiting for
    one; None once the source has ended (see `ended`, a reason)."""

    def __init__(self, spec: str, loop: bool = False):
        self.spec, self.loop = spec, loop
        self.container, self.realtime = _open_source(spec)
        vs = self.container.streams.video[0]
        vs.thread_type = "AUTO"
        self.fps = float(vs.average_rate or vs.guessed_rate or 30)
        self._iter = self._frames()
        try:  # the first frame, read here: its size (after any rotation) is what the sink is opened with
            first = self._rgb(next(self._iter))
        except (StopIteration, av.error.FFmpegError, OSError):
            self.container.close()
            raise InputError(spec, "gave no frame") from None
        self.height, self.width = first.shape[:2]
        self.captured = 1  # frames read from the source
        self.ended: str | None = None
        self._latest: LiveFrame | None = LiveFrame(first, time.monotonic(), 0)
        self._taken = -1
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="masquerade-capture", daemon=True)
        self._thread.start()

    def _frames(self):
        while True:
            yield from self.container.decode(video=0)
            if not self.loop or self.realtime:
                return
            self.container.seek(0)

    @staticmethod
    def _rgb(fr) -> np.ndarray:
        return _rotate(fr.to_ndarray(format="rgb24"), _frame_rotation(fr))

    def _run(self) -> None:
        start = time.monotonic() - 1 / self.fps  # the first frame was read in __init__
        try:
            for fr in self._iter:
                if self._stop.is_set():
                    return
                if not self.realtime:  # a file: play it at its own rate, as a camera would deliver it
                    due = start + self.captured / self.fps
                    time.sleep(max(0.0, due - time.monotonic()))
                img = self._rgb(fr)
                with self._cond:
                    self._latest = LiveFrame(img, time.monotonic(), self.captured)
                    self.captured += 1
                    self._cond.notify_all()
            self.ended = "the source ended"
        except (av.error.FFmpegError, OSError) as exc:
            self.ended = f"the source stopped delivering frames ({exc.__class__.__name__}: {exc})"
        finally:
            with self._cond:
                self._cond.notify_all()

    def get(self, timeout: float = 5.0) -> LiveFrame | None:
        """The newest frame not yet returned (frames in between are dropped); None when the source has ended or
        gave nothing for `timeout` seconds (then `ended` says so)."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: (self._latest is not None and self._latest.index > self._taken) or self.ended, timeout
            )
            if self._latest is not None and self._latest.index > self._taken:
                self._taken = self._latest.index
                return self._latest
            if not ok:
                self.ended = f"no frame for {timeout:g} s"
            return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.container.close()


def _open_source(spec: str):
    """(container, realtime): a camera (/dev/videoN or N), a stream URL, or a video file."""
    if re.fullmatch(r"\d+", spec):
        spec = f"/dev/video{spec}"
    if spec.startswith("/dev/video"):
        if not Path(spec).exists():
            raise InputError(spec, "no such camera device (is the camera connected? `ls /dev/video*` lists them)")
        try:
            return av.open(spec, format="v4l2"), True
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(spec, f"cannot open the camera ({exc})") from None
    scheme = spec.split("://", 1)[0].lower() if "://" in spec else ""
    if scheme in STREAM_SCHEMES:
        try:
            return av.open(spec, timeout=10), True
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(spec, f"cannot open the stream ({exc.__class__.__name__})") from None
    path = Path(spec)
    if not path.is_file():
        raise InputError(spec, "no such file, camera device or stream URL")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        raise InputError(path, "not a readable video") from None
    if not container.streams.video:
        container.close()
        raise InputError(path, "holds no video stream")
    return container, False


class UdpSink:
    """H.264 in MPEG-TS over UDP (`udp://HOST:PORT`): what ffplay, VLC and OBS's media source open."""

    def __init__(self, url: str, fps: float, size: tuple[int, int], metadata: dict[str, str]):
        self.url = url
        try:
            self._out = av.open(url + ("&" if "?" in url else "?") + "pkt_size=1316", mode="w", format="mpegts")
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(url, f"cannot send to this address ({exc})") from None
        # MPEG-TS has no free-form tags: the label goes in the service description (SDT), which VLC and OBS show
        self._out.metadata["service_provider"] = "masquerade"
        self._out.metadata["service_name"] = next(iter(metadata.values()), "synthetic")
        self._vs = self._out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self._vs.width, self._vs.height = size
        self._vs.pix_fmt = "yuv420p"
        self._vs.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "20"}
        self._count = 0

    def write(self, image: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = self._count
        self._count += 1
        for packet in self._vs.encode(frame):
            self._out.mux(packet)

    def close(self) -> None:
        for packet in self._vs.encode(None):
            self._out.mux(packet)
        self._out.close()


class MjpegSink:
    """An MJPEG page on http://127.0.0.1:PORT/ that a browser (or OBS's browser source) shows live; the newest
    frame only, as JPEG at quality 90. `/frame.jpg` serves one frame."""

    BOUNDARY = "masqueradeframe"

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self._jpeg: bytes | None = None
        self._seq = 0
        self._cond = threading.Condition()
        self._closed = False
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path.startswith("/frame.jpg"):
                    jpeg = sink.wait_frame(-1)
                    if jpeg is None:
                        self.send_error(503, "no frame yet")
                        return
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(jpeg)))
                    self.end_headers()
                    self.wfile.write(jpeg)
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={sink.BOUNDARY}")
                self.end_headers()
                seen = -1
                try:
                    while True:
                        jpeg = sink.wait_frame(seen)
                        if jpeg is None:
                            return
                        seen = sink._seq
                        head = f"--{sink.BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                        self.wfile.write(head.encode() + jpeg + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    return

        try:
            self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise InputError(f"http://{host}:{port}/", f"cannot serve here ({exc.strerror or exc})") from None
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}/"
        threading.Thread(target=self._server.serve_forever, name="masquerade-mjpeg", daemon=True).start()

    def wait_frame(self, seen: int, timeout: float = 5.0) -> bytes | None:
        with self._cond:
            self._cond.wait_for(lambda: self._closed or (self._jpeg is not None and self._seq != seen), timeout)
            return None if self._closed else self._jpeg

    def write(self, image: np.ndarray) -> None:
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=90)
        with self._cond:
            self._jpeg, self._seq = buf.getvalue(), self._seq + 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()


class VirtualCameraSink:
    """A v4l2loopback virtual camera through pyvirtualcam, which video-call apps list as a webcam."""

    HOW = (
        "needs a v4l2loopback device and pyvirtualcam: `sudo modprobe v4l2loopback devices=1 exclusive_caps=1` "
        "and `pip install pyvirtualcam` (or send to udp://127.0.0.1:PORT and open it in OBS)"
    )

    def __init__(self, fps: float, size: tuple[int, int], device: str | None = None):
        try:
            import pyvirtualcam
        except ImportError:
            raise InputError("virtualcam", self.HOW) from None
        try:
            self._cam = pyvirtualcam.Camera(width=size[0], height=size[1], fps=fps, device=device)
        except (RuntimeError, OSError) as exc:
            raise InputError("virtualcam", f"{exc}; {self.HOW}") from None

    def write(self, image: np.ndarray) -> None:
        self._cam.send(np.ascontiguousarray(image))

    def close(self) -> None:
        self._cam.close()


class FileSink:
    """A video file of the delivered frames at the source's rate (dropped frames make it shorter)."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], metadata: dict[str, str]):
        self._w = VideoWriter(path, fps, size, metadata=metadata, preset="ultrafast")
        self.path = Path(path)

    def write(self, image: np.ndarray) -> None:
        self._w.write(image)

    def close(self, check=None) -> None:
        self._w.close(check=check)

    def abort(self) -> None:
        self._w.abort()


def open_sink(spec: str, fps: float, size: tuple[int, int], metadata: dict[str, str]):
    """udp://HOST:PORT, http://127.0.0.1:PORT/ (MJPEG page), virtualcam[:/dev/videoN], or a file path."""
    if spec.startswith("udp://"):
        if not re.fullmatch(r"udp://[^:/]+:\d+(\?.*)?", spec):
            raise InputError(spec, "a UDP destination is udp://HOST:PORT")
        return UdpSink(spec, fps, size, metadata)
    m = re.fullmatch(r"https?://(127\.0\.0\.1|localhost|\[::1\]):(\d+)/?", spec)
    if m:
        return MjpegSink(int(m.group(2)), "127.0.0.1" if m.group(1) == "localhost" else m.group(1).strip("[]"))
    if spec.startswith(("http://", "https://")):
        raise InputError(spec, "the MJPEG page is served on this machine only: http://127.0.0.1:PORT/")
    if spec == "virtualcam" or spec.startswith("virtualcam:"):
        return VirtualCameraSink(fps, size, spec.split(":", 1)[1] if ":" in spec else None)
    path = Path(spec)
    if path.is_dir():
        raise InputError(path, "is a folder; give the output a file name")
    if not path.parent.is_dir():
        raise InputError(path, "output folder does not exist")
    return FileSink(path, fps, size, metadata)
