"""Swap speed, file to file (decode, faces, model, composite, mark, encode, audio, read-back, signing), with a
per-stage breakdown in ms per frame, for a 480p and a 720p clip, tracked and frame by frame; and the quality
figures of both paths from `evaluate` (face found, ID win rate, landmark error, flicker, frames marked).

The 480p clip is d18 (480x480); the 720p one is d18 scaled to 720x720 and widened to 1280x720 with its own
mirrored edges (a talking head in a 720p frame, audio kept). The model is `lite` trained 200 iterations
(enough for its faces to be found again, which marking needs; speed does not otherwise depend on weights).
Run alone: python bench/swap_speed.py [--models lite] [--frames 150] [--track on,off]. Never asserted.
"""

from __future__ import annotations

import argparse
import time

import cv2
from common import OUT, clip, save

from masquerade.core.device import torch_threads
from masquerade.evaluate.report import evaluate_swap
from masquerade.faceset.extract import ExtractOptions, extract
from masquerade.media import VideoWriter, read_frames
from masquerade.models.detail import write_banks
from masquerade.models.io import load_config
from masquerade.provenance.verify import verify_file
from masquerade.swap.pipeline import SwapOptions, Swapper
from masquerade.swap.run import VideoOptions, swap_video
from masquerade.train.loop import TrainConfig, train


def model_for(name: str):
    out = OUT / f"speed_model_{name}_200"
    if not (out / "model.safetensors").exists():
        fa, fb = OUT / "speed_faces_a", OUT / "speed_faces_b"
        extract([clip("d18")], fa, ExtractOptions(every=20))
        extract([clip("d19")], fb, ExtractOptions(every=20))
        train([fa], [fb], out, TrainConfig(model=name, iterations=200))
    write_banks(out, load_config(out))  # a model trained before banks were kept: its faces, as train keeps them
    return out


def clip_720p():
    """d18 as a 1280x720 clip (scaled to 720x720, edges mirrored out to 16:9), with d18's audio."""
    out = OUT / "d18_720p.mp4"
    if not out.exists():
        with VideoWriter(out, 30, (1280, 720), crf=18, audio_from=clip("d18")) as w:
            for fr in read_frames(clip("d18")):
                img = cv2.resize(fr.image, (720, 720), interpolation=cv2.INTER_CUBIC)
                w.write(cv2.copyMakeBorder(img, 0, 0, 280, 280, cv2.BORDER_REFLECT))
    return out


def clip_long(src, name: str):
    """A clip four times over (864 frames, 29 s): fixed costs (model load, the mark's read-back, signing) shared
    out as they are on real footage."""
    out = OUT / f"{name}_x4.mp4"
    if not out.exists():
        frames = [fr.image for fr in read_frames(src)]
        h, w = frames[0].shape[:2]
        with VideoWriter(out, 30, (w, h), crf=18, audio_from=clip("d18")) as writer:
            for img in frames * 4:
                writer.write(img)
    return out


def io_ms(path, frames: int) -> tuple[float, float]:
    """(decode, encode) ms per frame of this clip, each measured alone."""
    t = time.perf_counter()
    imgs = [fr.image for fr in read_frames(path, stop=frames)]
    dec = (time.perf_counter() - t) / len(imgs)
    h, w = imgs[0].shape[:2]
    t = time.perf_counter()
    with VideoWriter(OUT / "encode_only.mp4", 30, (w, h)) as wr:
        for img in imgs:
            wr.write(img)
    return 1000 * dec, 1000 * (time.perf_counter() - t) / len(imgs)


def engine_faces_per_s(model, n: int = 256) -> dict:
    """The model stage alone, faces/s through each engine (batches of 8 real-sized random crops, 1 thread)."""
    import numpy as np

    out = {}
    crops = np.random.default_rng(0).integers(0, 255, (8, 64, 64, 3), dtype=np.uint8)
    for engine in ("torch", "onnx"):
        sw = Swapper(model, SwapOptions(to="b", engine=engine))
        with torch_threads(sw._threads):  # the threads a swap runs its model with
            sw._run_model(crops)  # warm up (and export, for onnx)
            t = time.perf_counter()
            for _ in range(n // 8):
                sw._run_model(crops)
            out[engine] = round(n / (time.perf_counter() - t), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lite")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--track", default="on,off")
    ap.add_argument("--no-quality", action="store_true", help="skip evaluate and verify of each output")
    ap.add_argument("--clips", default="480p,720p", help="480p, 720p, 480p-long, 720p-long (864 frames)")
    ap.add_argument("--detail", type=float, default=SwapOptions().detail, help="swap's --detail (0: off)")
    ap.add_argument("--detail-from", default=SwapOptions().detail_from, help="swap's --detail-from")
    ap.add_argument("--edge-match", type=float, default=SwapOptions().edge_match, help="swap's --edge-match (0: off)")
    ap.add_argument("--workers", type=int, default=SwapOptions().workers, help="compositing threads (0: one per core)")
    args = ap.parse_args()
    res: dict = {}
    makers = {
        "480p": lambda: clip("d18"),
        "720p": clip_720p,
        "480p-long": lambda: clip_long(clip("d18"), "d18"),
        "720p-long": lambda: clip_long(clip_720p(), "d18_720p"),
    }
    clips = {k: makers[k]() for k in args.clips.split(",")}
    for name in args.models.split(","):
        model = model_for(name)
        res[f"{name} model stage, faces/s by engine"] = engines = engine_faces_per_s(model)
        print(f"{name} model stage alone, faces/s: {engines}", flush=True)
        for label, path in clips.items():
            dec, enc = io_ms(path, args.frames)
            for track in args.track.split(","):
                sw = Swapper(
                    model,
                    SwapOptions(
                        to="b",
                        track=track == "on",
                        detail=args.detail,
                        detail_from=args.detail_from,
                        edge_match=args.edge_match,
                        workers=args.workers,
                    ),
                )
                out = OUT / f"swap_speed_{name}_{label}_{track}.mp4"
                t = time.perf_counter()
                rep = swap_video(sw, path, out, VideoOptions(end=f"{args.frames}f"))
                fps = rep.frames / (time.perf_counter() - t)
                stages = {"decode": round(dec, 2), **sw.clock.ms_per(rep.frames), "encode": round(enc, 2)}
                row = {"frames_per_s": round(fps, 2), "ms_per_frame": stages, "frames": rep.frames}
                if not args.no_quality:
                    ev = evaluate_swap(out, path, model_dir=model)
                    s = ev["summary"]
                    v = verify_file(out, all_frames=True)
                    row["quality"] = {
                        "face_found": s["detected"].get("mean"),
                        "id_win_rate": ev["id_win_rate"],
                        "landmark_error": s["landmark_error"].get("mean"),
                        "flicker": s["flicker"].get("mean"),
                        "frames_marked": v.fraction_marked,
                        "mean_z": round(v.mean_z, 2),
                    }
                res[f"{name} {label} track {track}"] = row
                print(f"{name} {label} track={track}: {fps:5.2f} frames/s end to end; ms/frame {stages}", flush=True)
                if "quality" in row:
                    print(f"    quality {row['quality']}", flush=True)
    save("swap_speed", {"runs": res})


if __name__ == "__main__":
    main()
