"""`live`: a source (camera, stream, file played as a camera) -> the swap engine -> a sink, latest frame wins.

Each delivered frame is the newest the source had when the engine became free, so a slow model drops frames
instead of falling behind: latency stays one frame's work plus the capture interval. Every swapped face is
watermarked by the engine itself, and the sink carries the synthetic-media label where its container has
metadata (MPEG-TS, MP4).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from masquerade.core.types import Progress
from masquerade.media.live import FileSink, LiveSource, open_sink
from masquerade.media.overlap import WriteBehind
from masquerade.provenance.label import video_metadata
from masquerade.swap.pipeline import Swapper
from masquerade.swap.run import SwapReport, credentials_for, sign_output


@dataclass
class LiveReport:
    frames: int = 0  # delivered
    captured: int = 0  # read from the source
    swapped: int = 0  # delivered with a swapped (and marked) face
    seconds: float = 0.0
    latency_ms: list[float] = field(default_factory=list)  # capture to output, per delivered frame
    ended: str = ""
    output: str = ""

    @property
    def dropped(self) -> int:
        return max(0, self.captured - self.frames)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latency_ms, q)) if self.latency_ms else 0.0

    def figures(self) -> dict:
        return {
            "fps": round(self.fps, 1),
            "p50_ms": round(self.percentile(50), 1),
            "p95_ms": round(self.percentile(95), 1),
            "max_ms": round(max(self.latency_ms, default=0.0), 1),
            "dropped": self.dropped,
        }


def run_live(
    swapper: Swapper,
    source: str,
    output: str,
    loop: bool = False,
    seconds: float | None = None,
    progress: Progress | None = None,
) -> LiveReport:
    """Swap `source` into `output` until the source ends, `seconds` pass, or Ctrl-C (a clean stop)."""
    src = LiveSource(source, loop=loop)
    report = LiveReport(output=output)
    sink = None
    finished = False
    try:
        sink = open_sink(output, src.fps, (src.width, src.height), video_metadata(swapper.model.model_id))
        report.output = getattr(sink, "url", output)
        swapper.smoother.fps = src.fps
        start = time.monotonic()

        def deliver(item: tuple[np.ndarray, float]) -> None:  # on the encoder's thread: latency to output
            image, captured = item
            sink.write(image)
            report.latency_ms.append(1000 * (time.monotonic() - captured))

        out_q = WriteBehind(deliver, depth=2)
        try:
            while seconds is None or time.monotonic() - start < seconds:
                fr = src.get()
                if fr is None:
                    report.ended = src.ended or "the source ended"
                    break
                out = swapper.swap_frame(fr.image)
                out_q.put((out, fr.captured))
                report.frames += 1
                report.swapped += int(not np.array_equal(out, fr.image))
                report.captured = fr.index + 1  # frames the source had given by then; the rest were dropped
                report.seconds = time.monotonic() - start
                if progress and report.frames % 10 == 0:
                    progress(report.frames, None, report.figures())
            else:
                report.ended = f"stopped after {seconds:g} s"
        except KeyboardInterrupt:
            report.ended = "stopped (Ctrl-C)"
        finally:
            out_q.close()
        finished = True
    finally:
        src.close()
        if isinstance(sink, FileSink):
            if finished:  # a recording is published only whole, and signed as a swap output is
                creds, rep = credentials_for([sink.path], None), SwapReport(str(sink.path), warnings=[])
                sink.close(check=lambda tmp: sign_output(tmp, sink.path, swapper, creds, rep))
            else:
                sink.abort()
        elif sink is not None:
            sink.close()
    return report
