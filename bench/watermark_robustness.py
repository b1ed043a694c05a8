"""Watermark robustness, invisibility, false alarms and cost.

1. Swap --clip (d18; all frames, or --frames) with a model, recording each frame before and after marking: PSNR.
2. Attack the swapped clip, and a second swapped clip (d6 by default), with what platforms and people do to a
   video: H.264 CRF 28 and 35; 75% downscale + CRF 30; 50% downscale + CRF 28; 10% crop per border; a screen
   recording (1.5x upscale, crop to 16:9, CRF 28); rotation +-3 degrees; horizontal flip; Gaussian blur
   sigma 1; brightness, contrast, gamma and saturation changes; noise sigma 3; 30 -> 24 fps; a logo over 10%
   of the frame; JPEG 50 and WebP 50 per frame. Per attack: share of frames carrying the mark, the clip
   decision, the signature and the model id read.
3. False alarms: every frame of every clip in ../shared/data and of its CRF 28 re-encode, and every still:
   frames and files flagged, against the per-face false-positive rate the threshold implies.
4. Time to embed and to read the mark per 480p frame.
Run: python bench/watermark_robustness.py [--model-dir DIR] [--clip d18] [--frames N] [--second CLIP:MODEL]
[--second-frames N] [--attacks "CRF 35,JPG"] [--model-id-reads N] [--fp-every N] [--skip-fp | --only-fp].
Figures only.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
from common import DATA, OUT, clip, save

from masquerade.evaluate.metrics import psnr
from masquerade.media import VideoWriter, read_frames, write_image
from masquerade.provenance import watermark as wm
from masquerade.provenance.verify import verify_analyzer, verify_file, verify_frames
from masquerade.swap.pipeline import SwapOptions, Swapper


class RecordingSwapper(Swapper):
    """A Swapper that also keeps each frame as it was just before marking (to measure the mark's PSNR)."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.psnr: list[float] = []
        self.embed_s: list[float] = []

    def _mark(self, roi, frame, *rest):
        t = time.perf_counter()
        out = super()._mark(roi, frame, *rest)  # on the face's region of `frame`
        self.embed_s.append(time.perf_counter() - t)
        spread = 10 * np.log10(frame.shape[0] * frame.shape[1] / (roi.shape[0] * roi.shape[1]))
        self.psnr.append(psnr(out, roi, peak=255) + spread)  # over the whole frame, as the mark's cap counts it
        return out


def encode(frames, path, crf=28, scale=1.0, crop=0.0, transform=None, keep=None):
    """Re-encode frames after an attack: `transform` per frame, `scale`, a `crop` of each border, then H.264."""
    h, w = frames[0].shape[:2]
    dy, dx = int(h * crop), int(w * crop)
    writer = None
    for k, f in enumerate(frames):
        if keep is not None and not keep(k):
            continue
        f = f[dy : h - dy, dx : w - dx]
        if transform is not None:
            f = transform(f)
        if scale != 1.0:
            f = cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        f = np.ascontiguousarray(f[: f.shape[0] // 2 * 2, : f.shape[1] // 2 * 2])
        if writer is None:
            writer = VideoWriter(path, 30, (f.shape[1], f.shape[0]), crf=crf)
        writer.write(f)
    writer.close()
    return path


def rotate(deg: float):
    def f(img):
        h, w = img.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
        return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    return f


def tone(gain=1.0, offset=0.0, gamma=1.0, saturation=1.0):
    """Colour grading: brightness (offset), contrast (gain about mid-grey), gamma, saturation."""

    def f(img):
        x = img.astype(np.float32) / 255
        x = np.clip((x - 0.5) * gain + 0.5 + offset, 0, 1) ** gamma
        grey = x.mean(2, keepdims=True)
        x = np.clip(grey + (x - grey) * saturation, 0, 1)
        return (x * 255 + 0.5).astype(np.uint8)

    return f


def noise(sigma: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    return lambda img: np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def screen_recording(img):
    """1.5x upscale, then cropped to 16:9 around the centre (a player window captured at a larger size). A
    portrait frame is shown pillarboxed, as players show it (cropped to 16:9, s29 kept only her chin)."""
    h, w = img.shape[:2]
    if h > w:
        side = (h * 16 // 9 - w) // 2
        img = cv2.copyMakeBorder(img, 0, 0, side, side, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    big = cv2.resize(img, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
    h, w = big.shape[:2]
    nh = min(h, int(w * 9 / 16))
    y = (h - nh) // 2
    return big[y : y + nh]


def logo(img):
    """An opaque caption box with text over 10% of the frame, at the bottom (a channel logo or subtitle)."""
    out = img.copy()
    h, w = out.shape[:2]
    bh = int(0.1 * h)
    out[h - bh :] = (20, 20, 20)
    cv2.putText(out, "CHANNEL 7 NEWS", (10, h - bh // 3), cv2.FONT_HERSHEY_SIMPLEX, bh / 40, (255, 255, 255), 2)
    return out


ATTACKS = {
    "none (CRF 18 output)": {"crf": 18},
    "H.264 CRF 28": {},
    "H.264 CRF 35": {"crf": 35},
    "75% downscale + CRF 30": {"scale": 0.75, "crf": 30},
    "50% downscale + CRF 28": {"scale": 0.5},
    "10% crop per border + CRF 28": {"crop": 0.1},
    "screen recording (1.5x, 16:9) + CRF 28": {"transform": screen_recording},
    "rotation +3 deg + CRF 28": {"transform": rotate(3)},
    "rotation -3 deg + CRF 28": {"transform": rotate(-3)},
    "horizontal flip + CRF 28": {"transform": lambda f: np.ascontiguousarray(f[:, ::-1])},
    "Gaussian blur sigma 1 + CRF 28": {"transform": lambda f: cv2.GaussianBlur(f, (0, 0), 1.0)},
    "brightness +20% + CRF 28": {"transform": tone(offset=0.2 * 0.5)},
    "brightness -20% + CRF 28": {"transform": tone(offset=-0.2 * 0.5)},
    "contrast +20% + CRF 28": {"transform": tone(gain=1.2)},
    "contrast -20% + CRF 28": {"transform": tone(gain=0.8)},
    "gamma 0.8 + CRF 28": {"transform": tone(gamma=0.8)},
    "gamma 1.2 + CRF 28": {"transform": tone(gamma=1.2)},
    "saturation +30% + CRF 28": {"transform": tone(saturation=1.3)},
    "saturation -30% + CRF 28": {"transform": tone(saturation=0.7)},
    "noise sigma 3 + CRF 28": {"transform": noise(3)},
    "30 -> 24 fps + CRF 28": {"keep": lambda k: (k * 24) // 30 != ((k - 1) * 24) // 30 or k == 0},
    "logo over 10% + CRF 28": {"transform": logo},
}


def attack_clip(swapped: list, work, fa, code: str, only: tuple[str, ...] = ()) -> dict:
    """Every attack on one swapped clip (`only`: those whose name contains one of these): frames marked (every frame
    checked), clip decision, payload."""
    out = {}
    for k, (name, kw) in enumerate(ATTACKS.items()):
        if only and not any(o in name for o in only):
            continue
        r = verify_file(encode(swapped, work / f"attack_{k:02d}.mp4", **kw), analyzer=fa, all_frames=True)
        out[name] = {
            "frames": r.frames_checked,
            "rate": r.fraction_marked,
            "clip_marked": r.marked,
            "signature": r.signature,
            "model_code_ok": r.model_code == code,
        }
        print(f"  {name:40s} {r.frames_checked:5d} {r.fraction_marked:7.1%} {r.marked}", flush=True)
    for ext, quality in ((".jpg", 50), (".webp", 50)):
        if only and not any(o in ext.upper() for o in only):
            continue
        hits = files = 0
        for k, f in enumerate(swapped):
            p = work / f"still_{k:04d}{ext}"
            if ext == ".webp":
                cv2.imwrite(str(p), cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, quality])
            else:
                write_image(p, f, quality=quality)
            r = verify_file(p, analyzer=fa)
            hits += r.frames_marked
            files += r.marked
        name = f"{ext[1:].upper()} {quality} (each frame a file)"
        out[name] = {"frames": len(swapped), "rate": hits / len(swapped), "files_marked": files / len(swapped)}
        print(f"  {name:40s} {len(swapped):5d} {hits / len(swapped):7.1%} {files / len(swapped):.1%} of files")
    return out


def model_id_reads(paths: list, code: str, fa, reads: int = 100, frames: int = 20, seed: int = 0) -> dict:
    """Read the model id from `reads` random 20-frame stretches of the attacked clips (seeded): how often it is
    right, reported unreadable, or wrong (which must never happen)."""
    rng = np.random.default_rng(seed)
    clips = {p.name: [f.image for f in read_frames(p)] for p in paths}
    tally = {"right": 0, "unreadable": 0, "wrong": 0, "clip_not_marked": 0}
    for _ in range(reads):
        name = list(clips)[rng.integers(len(clips))]
        start = int(rng.integers(0, len(clips[name]) - frames))
        r = verify_frames(name, clips[name][start : start + frames], fa)
        if not r.marked:
            tally["clip_not_marked"] += 1
        elif r.model_code is None:
            tally["unreadable"] += 1
        else:
            tally["right" if r.model_code == code else "wrong"] += 1
    return tally


def false_alarms(work, fa, every: int = 1) -> dict:
    """Every frame of every clip in ../shared/data and of its CRF 28 re-encode (every Nth with `every`), and
    every still, read as verify reads them: frames and files flagged. Every 3rd frame of each clip is also read
    as a picture (also in the ring tiers a picture may be marked in): pictures flagged."""
    fp_frames = fp_files = checked = fp_pictures = fp_picture_frames = pictures = 0
    per_file = {}
    sources = sorted((DATA / "clips").glob("*.mp4"))
    for src in sources:
        re = encode([f.image for f in read_frames(src)], work / f"re_{src.stem}.mp4")
        for path in (src, re):
            if every == 1:
                r = verify_file(path, analyzer=fa, all_frames=True)
            else:  # every Nth frame, as one file of those frames
                r = verify_frames(path, (f.image for f in read_frames(path, every=every)), fa)
            per_file[path.name] = {"frames": r.frames_checked, "flagged": r.frames_marked, "marked": r.marked}
            fp_frames += r.frames_marked
            fp_files += r.marked
            checked += r.frames_checked
        for fr in read_frames(src, every=3):
            r = verify_frames(src, [fr.image], fa, still=True)
            fp_pictures += r.marked
            fp_picture_frames += r.frames_marked  # a face over the per-face line, whatever the decision
            pictures += 1
    for still in sorted((DATA / "stills").glob("*.jpg")):
        r = verify_file(still, analyzer=fa)
        fp_frames += r.frames_marked
        fp_files += r.marked
        checked += 1
    out = {
        "frames_checked": checked,
        "frames_flagged": fp_frames,
        "files_flagged": fp_files,
        "clip_frames_read_as_pictures": pictures,
        "pictures_flagged": fp_pictures,
        "pictures_with_a_face_over_the_line": fp_picture_frames,
        "threshold_z": wm.THRESHOLD,
        "per_face_fpr": wm.false_positive_rate(),
        "per_file": per_file,
    }
    print(
        f"false alarms: {fp_frames} of {checked} unmarked frames, {fp_files} files flagged; threshold "
        f"z > {wm.THRESHOLD} (per-face false-positive rate {wm.false_positive_rate():.1e}); {fp_pictures} of "
        f"{pictures} clip frames read as pictures flagged ({fp_picture_frames} with a face over z {wm.THRESHOLD})",
        flush=True,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", default=str(OUT / "qvt_d18_d19" / "model"))
    ap.add_argument("--fp-every", type=int, default=1, help="check every Nth frame for false alarms")
    ap.add_argument("--skip-fp", action="store_true")
    ap.add_argument("--only-fp", action="store_true", help="only the false alarms (saved as watermark_false_alarms)")
    ap.add_argument("--clip", default="d18", help="the clip to swap (all faces) and attack")
    ap.add_argument("--frames", type=int, default=0, help="its first N frames (0: all)")
    ap.add_argument("--second", default="", help="CLIP:MODEL, a second clip to swap (all faces) and attack")
    ap.add_argument("--model-id-reads", type=int, default=100, help="random 20-frame stretches to read the id from")
    ap.add_argument("--second-frames", type=int, default=216, help="the second clip's first N frames")
    ap.add_argument("--attacks", default="", help="only the attacks whose names contain one of these, comma-separated")
    args = ap.parse_args()
    work = OUT / "watermark"
    work.mkdir(parents=True, exist_ok=True)
    fa = verify_analyzer()  # exactly as `verify` finds faces
    if args.only_fp:
        print(f"saved {save('watermark_false_alarms', false_alarms(work, fa, args.fp_every))}")
        return

    sw = RecordingSwapper(args.model_dir, SwapOptions(to="b", swap_all=True))  # any model renders any clip
    frames = [f.image for f in read_frames(clip(args.clip))][: args.frames or None]
    swapped = []
    for k in range(0, len(frames), 8):
        swapped.extend(sw.swap_frames(frames[k : k + 8]))
    code = f"{wm.model_code(sw.model.model_id):04x}"
    result: dict = {
        "psnr_db": {"min": min(sw.psnr), "mean": float(np.mean(sw.psnr))},
        "embed_ms_per_face": 1000 * float(np.mean(sw.embed_s)),
        "attacks": {},
    }
    t = time.perf_counter()
    for f in swapped[:30]:
        for face in fa(f):
            wm.read_mark(f, face.landmarks)
    result["detect_ms_per_frame_incl_face_detection"] = 1000 * (time.perf_counter() - t) / 30
    t = time.perf_counter()
    lms = [fa(f)[0].landmarks for f in swapped[:30]]
    t_fa = time.perf_counter() - t
    t = time.perf_counter()
    for f, lm in zip(swapped[:30], lms, strict=True):
        wm.read_mark(f, lm)
    result["read_ms_per_face"] = 1000 * (time.perf_counter() - t) / 30
    result["face_detection_ms_per_frame"] = 1000 * t_fa / 30
    print(
        f"PSNR of the mark: min {min(sw.psnr):.1f} dB, mean {np.mean(sw.psnr):.1f} dB; embed "
        f"{result['embed_ms_per_face']:.1f} ms/face, read {result['read_ms_per_face']:.1f} ms/face "
        f"(+ face detection {result['face_detection_ms_per_frame']:.0f} ms/frame)",
        flush=True,
    )

    print(f"{args.clip}:", flush=True)
    only = tuple(a for a in args.attacks.split(",") if a)
    result["attacks"] = attack_clip(swapped, work, fa, code, only)
    names = list(ATTACKS)
    attacked = [work / f"attack_{names.index(n):02d}.mp4" for n in ("H.264 CRF 28", "50% downscale + CRF 28")]
    attacked.append(work / f"attack_{names.index('10% crop per border + CRF 28'):02d}.mp4")
    if not only and args.model_id_reads:  # the files of those three attacks, made just now
        result["model_id_reads"] = model_id_reads(attacked, code, fa, reads=args.model_id_reads)
        print(f"model id in {args.model_id_reads} attacked 20-frame reads:", result["model_id_reads"], flush=True)
    if args.second:
        name, model = args.second.split(":", 1)
        sw2 = Swapper(model, SwapOptions(to="b", swap_all=True))
        frames2 = [f.image for f in read_frames(clip(name))][: args.second_frames]
        swapped2 = [out for k in range(0, len(frames2), 8) for out in sw2.swap_frames(frames2[k : k + 8])]
        work2 = work / name
        work2.mkdir(exist_ok=True)
        print(f"{name}:", flush=True)
        code2 = f"{wm.model_code(sw2.model.model_id):04x}"
        result["attacks_second"] = {name: attack_clip(swapped2, work2, fa, code2, only)}

    if not args.skip_fp:
        result["false_alarms"] = false_alarms(work, fa, args.fp_every)
    print(f"saved {save('watermark_robustness', result)}")


if __name__ == "__main__":
    main()
