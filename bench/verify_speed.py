"""`verify` on a long file: seconds to decide a 10-minute 720p video, marked and unmarked.

Builds (once, in bench/out/verify_speed/) d18 placed on a 1280x720 canvas, swaps it with the 200-iteration
`lite` model of swap_speed.py, and loops each of the two 216-frame clips 84 times by remuxing (no re-encode)
into 10-minute files. Then times `verify_file` on both, as `masquerade verify` runs it.
Run: python bench/verify_speed.py [--minutes 10]. Target (issue 15): under a minute. Never asserted.
"""

from __future__ import annotations

import argparse
import math
import time

import av
import numpy as np
from common import OUT, clip, save
from swap_speed import model_for

from masquerade.media import VideoWriter, read_frames
from masquerade.provenance.verify import verify_file
from masquerade.swap.pipeline import SwapOptions, Swapper
from masquerade.swap.run import swap_video

WORK = OUT / "verify_speed"


def canvas_720p(src, dst) -> None:
    with VideoWriter(dst, 30, (1280, 720), crf=18) as vw:
        for fr in read_frames(src):
            frame = np.zeros((720, 1280, 3), np.uint8)
            h, w = fr.image.shape[:2]
            y, x = (720 - h) // 2, (1280 - w) // 2
            frame[y : y + h, x : x + w] = fr.image
            vw.write(frame)


def loop(src, dst, times: int) -> None:
    """`times` copies of src's video packets back to back, timestamps shifted (a stream copy)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        packets = [p for p in inp.demux(vin) if p.dts is not None]
        span = max(p.pts + (p.duration or 0) for p in packets) - min(p.pts for p in packets)
        for k in range(times):
            for p in packets:
                q = av.Packet(bytes(p))
                q.pts, q.dts, q.duration = p.pts + k * span, p.dts + k * span, p.duration
                q.is_keyframe = p.is_keyframe
                q.stream = vout
                q.time_base = p.time_base
                out.mux(q)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10)
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    plain, swapped = WORK / "d18_720p.mp4", WORK / "d18_720p_swapped.mp4"
    if not plain.exists():
        canvas_720p(clip("d18"), plain)
    if not swapped.exists():
        swap_video(Swapper(model_for("lite"), SwapOptions(to="b")), plain, swapped)
    times = math.ceil(args.minutes * 60 * 30 / 216)
    res = {}
    for name, src in (("marked", swapped), ("unmarked", plain)):
        long = WORK / f"{name}_{args.minutes:g}min.mp4"
        if not long.exists():
            loop(src, long, times)
        t = time.perf_counter()
        r = verify_file(long)
        s = time.perf_counter() - t
        res[name] = {"seconds": round(s, 1), "marked": r.marked, "frames_checked": r.frames_checked}
        print(f"{name:8s} {args.minutes:g} min 720p: {s:6.1f} s, marked {r.marked}, {r.frames_checked} frames checked")
    save("verify_speed", res)


if __name__ == "__main__":
    main()
