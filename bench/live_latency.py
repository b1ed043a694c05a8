"""Live latency: d18 fed as a 30 frames/s live source (a file played at its own rate, looped) through the live
loop into a file, measuring per frame the capture-to-output latency (p50, p95, max), delivered frames/s and
dropped frames, for the swap engine with tracking (and, for comparison, frame by frame).

Run alone: python bench/live_latency.py [--seconds 20] [--track on,off]. Never asserted.
"""

from __future__ import annotations

import argparse

from common import OUT, clip, save
from swap_speed import clip_720p, model_for

from masquerade.swap.live import run_live
from masquerade.swap.pipeline import SwapOptions, Swapper


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lite")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--track", default="on,off")
    ap.add_argument("--sizes", default="480p,720p")
    args = ap.parse_args()
    model = model_for(args.model)
    sources = {"480p": clip("d18"), "720p": clip_720p()}
    res = {}
    for size in args.sizes.split(","):
        for track in args.track.split(","):
            sw = Swapper(model, SwapOptions(to="b", track=track == "on"))
            rep = run_live(
                sw, str(sources[size]), str(OUT / f"live_{size}_{track}.mp4"), loop=True, seconds=args.seconds
            )
            f = rep.figures()
            res[f"{args.model} {size} track {track}"] = {**f, "frames": rep.frames, "captured": rep.captured}
            print(f"{args.model} {size} track={track}: {f}", flush=True)
    save("live_latency", {"runs": res, "seconds": args.seconds})


if __name__ == "__main__":
    main()
