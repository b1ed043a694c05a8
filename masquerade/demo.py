"""The main job in one call: extract two clips, train `lite`, swap A's clip to B's face, verify the result."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from masquerade.core.atomic import make_folder
from masquerade.core.errors import InputError
from masquerade.faceset.extract import ExtractOptions, extract
from masquerade.provenance.verify import verify_file
from masquerade.swap.pipeline import SwapOptions, Swapper
from masquerade.swap.run import VideoOptions, swap_video
from masquerade.train.loop import TrainConfig, train

DEFAULT_CLIPS = ("../shared/data/clips/d18.mp4", "../shared/data/clips/d19.mp4")


@dataclass
class DemoOptions:
    # A fixed amount of work, not of time: a slower or busier machine shows the same face, later (the
    # progress bar shows the time left). 2500 iterations: about 5 minutes at this project's 2-core CPU's
    # 130-150 samples/s, 6.5 at a slow day's 104.
    iterations: int = 2500
    minutes: float | None = None  # instead: stop after this much training time
    every: int = 2  # extraction: every 2nd frame is plenty for a 5-minute model
    model: str = "lite"
    swap_end: str | None = None  # for tests: swap only up to this time


def run_demo(
    video_a: str | Path,
    video_b: str | Path,
    out: str | Path,
    opts: DemoOptions | None = None,
    say: Callable[[str], None] = print,
    progress_factory=None,
) -> dict:
    """Returns a summary dict (also written to OUT/demo.json)."""
    opts = opts or DemoOptions()
    out = Path(out)
    video_a, video_b = Path(video_a), Path(video_b)
    for v in (video_a, video_b):
        if not v.is_file():
            raise InputError(v, "demo clip not found (pass VIDEO_A VIDEO_B, or run from the repo beside ../shared)")
    make_folder(out)
    bar = progress_factory or (lambda desc, unit: None)
    summary: dict = {}
    for side, clip in (("a", video_a), ("b", video_b)):
        say(f"[1/4] extracting faces of {side.upper()} from {clip}")
        cb = bar(f"extract {side.upper()}", "frame")
        s = extract([clip], out / f"faceset_{side}", ExtractOptions(every=opts.every), cb)
        summary[f"faces_{side}"] = s.faces_kept + s.frames_done_before
    limit = f"{opts.minutes:g} minutes" if opts.minutes else f"{opts.iterations} iterations"
    say(f"[2/4] training {opts.model} for {limit}")
    cfg = TrainConfig(
        model=opts.model,
        minutes=opts.minutes,
        iterations=None if opts.minutes else opts.iterations,
        save_every=100,
        preview_every=100,
    )
    res = train([out / "faceset_a"], [out / "faceset_b"], out / "model", cfg, bar("train", "it"))
    summary["train"] = {
        "iteration": res.iteration,
        "seconds": round(res.seconds, 1),
        "loss_a": res.loss_a,
        "loss_b": res.loss_b,
        "samples_per_s": round(res.samples_per_s, 1),
    }
    shutil.copyfile(out / "model" / "previews" / "latest.png", out / "training_preview.png")
    say(f"[3/4] swapping {video_a.name} to B's face")
    swapper = Swapper(out / "model", SwapOptions(to="b"))
    rep = swap_video(
        swapper,
        video_a,
        out / "swapped.mp4",
        VideoOptions(end=opts.swap_end),
        side_by_side=out / "side_by_side.mp4",
        progress=bar("swap", "frame"),
    )
    summary["swap"] = {"frames": rep.frames, "frames_swapped": rep.frames_swapped}
    say("[4/4] verifying the output is marked as synthetic")
    ver = verify_file(out / "swapped.mp4")
    summary["verify"] = ver.to_dict()
    (out / "verify.txt").write_text("\n".join(ver.lines()) + "\n")
    (out / "demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    for line in ver.lines():
        say(line)
    say(f"done: {out}/swapped.mp4, side_by_side.mp4, training_preview.png, model/previews/, verify.txt")
    return summary
