"""The swap engine: frame -> tracked faces -> model -> colour match -> blend back -> watermark -> frame.

`Swapper(model_dir).swap_frame(frame)` is the whole API. Marking is part of `swap_frames`, the only
function that returns swapped pixels: there is no way to get a swapped frame without the watermark.

Speed: faces are tracked (`faces.track`: a full detection every 30 frames or on a cut, the embedding once
per track), and everything after the model works on the face's own region of the frame, never the whole
frame. With `track=False` every frame is detected afresh and each mark is aligned to the face `verify`'s
finder sees, as in earlier releases.
"""

from __future__ import annotations

import os
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from masquerade.core.clock import StageClock
from masquerade.core.device import torch_threads
from masquerade.core.errors import InputError
from masquerade.core.types import Face
from masquerade.faces.align import (
    crop_face,
    crop_frame_matrix,
    estimate_matrix,
    eye_openings,
    frame_px_per_crop_px,
    invert,
    mouth_opening,
    transform_points,
    uncrop,
)
from masquerade.faces.analyze import FaceAnalyzer
from masquerade.faces.identity import SAME_PERSON_DISTANCE, distance, nearer_side
from masquerade.faces.mask import eye_mask, eyeball_mask, face_mask, feather, mouth_mask, not_skin
from masquerade.faces.mean_face import MEAN_FACE_68
from masquerade.faces.track import FaceTracker, box_from_landmarks, same_face
from masquerade.models.detail import DetailBank, load_bank
from masquerade.models.export import OnnxRenderer, export_bytes
from masquerade.models.io import LoadedModel, load_model
from masquerade.provenance import watermark
from masquerade.provenance.verify import verify_analyzer
from masquerade.swap import exemplar
from masquerade.swap.blend import LUMA, blend, restore_detail
from masquerade.swap.color import match_border, match_color
from masquerade.swap.smooth import Hold, LandmarkSmoother


@dataclass
class SwapOptions:
    to: str = "auto"  # a | b | auto: the side NOT matching the input's faces
    color: str = "lab-transfer"
    blend: str = "alpha"
    detail: float = 1.0  # strength of the fine detail laid on the painted face (`detail_from`); 0: off
    # both: the input's own band where the painting agrees with the input, and the target's own detail (its real
    # faces kept beside the model, `swap.exemplar`) where it does not (eyes, brows, mouth); target or input: alone
    detail_from: str = "both"
    edge_match: float = 1.0  # the face's border takes the input's colours and shading, fading inward; 0: off
    mask: str = "skin"  # skin: the hull less hair/background reaching into it (input or rendered); hull
    # whose mouth: auto: the model's lips, the input's teeth as it opens (`input_teeth`), and the input's whole
    # mouth where it opens or closes beyond what the target's faces show (`input_mouth`); model: always the model's;
    # input: always the input's
    mouth: str = "auto"
    # whose eyes: auto: the model's lids, the input's eyeballs (its gaze, `Kept.gaze`), and the input's whole eye
    # where it closes (`input_eyes`); blink: the model's, but the input's closed eyes; model: always the model's
    eyes: str = "auto"
    erode: int = 0  # px in the frame; negative grows the mask
    blur: int = -1  # px in the frame; -1: 4% of the face size
    smooth: float = 1.0  # landmark smoothing strength, 0 = off
    detector: str = "hog"
    min_face: int = 40
    swap_all: bool = False  # swap every face, not only those of the model's source identity
    batch_size: int = 16
    device: str = "auto"
    fps: float = 30.0
    track: bool = True  # follow faces between frames; False: detect every frame (several times slower)
    workers: int = 0  # threads compositing and marking frames side by side (0: one per core)
    # torch | onnx (onnxruntime: the model exported in memory, or a .onnx file) | auto: onnx on a CPU, where
    # it renders 12% more faces/s than torch (bench/swap_speed.py), torch on a GPU (mixed precision)
    engine: str = "auto"
    threads: int = 1  # torch threads on a CPU (0: torch's default); 1 leaves the other cores to decode/encode
    redetect: int = 30  # with tracking, a full detection at least every this many frames


# The target's own band is finer than one model pixel: on a face whose model pixel spans under 2 frame pixels it
# lies at the frame's own finest scale, and adds only noise. On s13 (a 77 px face, 1.6 frame pixels a model
# pixel; every other shared clip 3.3-5) it cut the mark's mean z from 7.0 to 5.4 and cost a frame of 30.
OWN_MIN_MODEL_PX = 2.0
# Mouth openings (`faces.align.mouth_opening`) past the range the target's faces show over which the input's own
# mouth takes over from the model's: short, since a half-and-half mouth shows both (lips doubled); the openings
# come from smoothed landmarks, so the weight still changes gradually from frame to frame.
MOUTH_RAMP = 0.05
MOUTH_HOLD_S = 1.0  # seconds over which the input's mouth, once taken, fades back to the model's (`smooth.Hold`)
TRACKED_READ = 0.9  # share of a tracked mark's z that verify reads (its alignment differs by about a pixel)


# Eye openings (`faces.align.eye_openings`) at and under which the input's own eye is kept whole, and from which none
# of it is: a closed eye is lids and lashes, little of anyone's likeness, and a decoder paints the open eyes its
# target's faces show (d3 rendered as d6: eyes closed in 51 of 200 frames, painted open in every one). Short, since
# a half-and-half eye shows both (an iris through a lid); s29's smiling, narrowed eyes (0.17) stay the model's.
EYE_CLOSED = (0.12, 0.16)
# The input's eyeball (`faces.mask.eyeball_mask`), kept in an open eye: shrunk by this share of the eye's opening and
# feathered by that share. A decoder paints an eye as a blur looking nowhere; the input's iris looks where the input
# looks. Shrunk, the lids' margins, the eye's shape, stay the model's: the whole eyeball took dlib's distance to the
# target (120 frames, unmarked) from 0.410 to 0.434 on d6 as d3 (95% of frames won) and from 0.425 to 0.481 on d3 as
# d6; this band, 0.410 and 0.437 (with the teeth). Shrunk by a share of the eye's width instead (0.13), an eye of
# opening 0.25 (d3, s29, d19, d12) kept at most half of its middle: two irises, faintly.
EYEBALL = (0.4, 0.15)
# Mouth openings (`faces.align.mouth_opening`) over which the input's own teeth and tongue (what lies between its
# lips, grown by a pixel: the lips' inner margins stay the model's) come in: a 64 px decoder paints teeth as a white
# smear (d3 as d6, d19's crooked grin as d18), and lips parted a little show little of either. On d6 as d3 (120
# frames, dlib, unmarked) the distance to d3 went from 0.410 to 0.428 with the lips' margins grown by 0.04 of the
# eyes' distance (the rule for a mouth wider than the target shows), and to 0.423 with a pixel; d3 as d6 0.425 -> 0.428.
TEETH_OPEN = (0.03, 0.08)


def input_eyes(openings: tuple[float, float], mode: str = "auto") -> tuple[float, float]:
    """How much of each of the input's own eyes (`faces.align.EYE_POINTS` order) a swapped face keeps, 0 to 1:
    all of a closed one, none of an open one, so that a blink or a wink is not painted as a stare. Both eyes
    closing are a blink, and keep as much as the more closed one: dlib finds one shut eye more open than the other
    (d18's: 0.13 and 0.15), and kept unequally, a blink came out as a wink."""
    if mode not in ("auto", "blink"):
        return 0.0, 0.0
    lo, hi = EYE_CLOSED
    right, left = (float(np.clip((hi - o) / (hi - lo), 0.0, 1.0)) for o in openings)
    if right > 0 and left > 0:
        right = left = max(right, left)
    return right, left


def input_mouth(opening: float, shown: list[float] | None, mode: str = "auto") -> tuple[float, bool]:
    """(weight, inner): how much of the input's own mouth a swapped face keeps, 0 to 1, and whether only what lies
    between the lips (`faces.mask.mouth_mask`). Why: a decoder paints only the mouths its target's faces show;
    asked for a wider one (s29's constant smile, to s20 who never parts her lips) it paints a closed mouth, and
    the face no longer speaks or smiles with the input. Then the input's teeth show between the target's lips;
    asked for a closed mouth the target never shows, the input's closed lips. `shown`: the target side's range of
    openings (`ModelConfig.mouth`); none known (an earlier model): the model's mouth."""
    if mode == "input":
        return 1.0, False
    if mode == "model" or not shown:
        return 0.0, True
    lo, hi = shown
    return float(np.clip(max(opening - hi, lo - opening) / MOUTH_RAMP, 0.0, 1.0)), opening >= lo


def input_teeth(opening: float, mode: str = "auto") -> float:
    """How much of what lies between the input's own lips (teeth, tongue) a swapped face keeps, 0 to 1, inside the
    target's lips: none of a closed mouth, all of one open by TEETH_OPEN[1]. Not held like `input_mouth`: it
    follows the opening, so nothing flips from frame to frame."""
    if mode != "auto":
        return 0.0
    lo, hi = TEETH_OPEN
    return float(np.clip((opening - lo) / (hi - lo), 0.0, 1.0))


@dataclass(frozen=True)
class Kept:
    """What of the input's own face a swapped face keeps, where the model cannot paint it: its mouth (`input_mouth`:
    weight, and whether only between the lips), its teeth (`input_teeth`), each eye whole (`input_eyes`), and its
    eyeballs (`EYEBALL`)."""

    mouth: tuple[float, bool] = (0.0, True)
    eyes: tuple[float, float] = (0.0, 0.0)
    teeth: float = 0.0
    gaze: float = 0.0


def _region(shape: tuple[int, ...], m: np.ndarray, s: int, lms: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    """The part of the frame a face's work touches: the model crop's square, the watermark's crop and the
    detector-like box around the landmarks, grown by `margin` px; (x0, y0, x1, y1) clipped to the frame."""
    back = invert(m)
    corners = np.array([[0, 0], [s, 0], [0, s], [s, s]], np.float64) @ back[:, :2].T + back[:, 2]
    mark = invert(estimate_matrix(lms, watermark.SIZE, watermark.PADDING))
    sq = np.array([[0, 0], [watermark.SIZE, watermark.SIZE]], np.float64) @ mark[:, :2].T + mark[:, 2]
    box = box_from_landmarks(lms).reshape(2, 2)
    pts = np.vstack([corners, sq, box])
    h, w = shape[:2]
    x0, y0 = np.floor(pts.min(0)).astype(int) - margin
    x1, y1 = np.ceil(pts.max(0)).astype(int) + margin
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def _shift(m: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """The frame -> crop matrix `m` for a region of the frame whose top-left corner is (x0, y0)."""
    out = np.asarray(m, np.float64).copy()
    out[:, 2] += out[:, :2] @ np.array([x0, y0], np.float64)
    return out


def _footprint(size: int) -> np.ndarray:
    """The crop's square with a soft inner border, so a mask reaching past the crop fades instead of cutting:
    to nothing on the crop's outermost pixels (it kept 7% there, and the face stopped at the edge in a step)."""
    edge = max(2, size // 12)
    sq = np.zeros((size, size), np.float32)
    sq[edge:-edge, edge:-edge] = 1.0
    soft = cv2.GaussianBlur(sq, (0, 0), edge / 2, borderType=cv2.BORDER_CONSTANT)
    soft[[0, -1], :] = soft[:, [0, -1]] = 0.0
    return soft


class Swapper:
    """Swaps faces frame by frame. Keep one per video: it carries the landmark smoothing state."""

    def __init__(self, model: str | Path | LoadedModel, options: SwapOptions | None = None):
        self.opts = options or SwapOptions()
        if self.opts.engine not in ("auto", "torch", "onnx"):
            raise InputError("--engine", "must be auto, torch or onnx")
        self._onnx: dict[str, OnnxRenderer] = {}
        if not isinstance(model, LoadedModel) and str(model).lower().endswith(".onnx"):
            # an exported renderer: no PyTorch weights; it renders one side only
            r = OnnxRenderer.load(model, self.opts.threads)
            if self.opts.to not in ("auto", r.side):
                raise InputError(model, f"renders identity {r.side} only (--to {self.opts.to} asked)")
            self._onnx[r.side] = r
            self.opts = replace(self.opts, engine="onnx", to=r.side)
            model = LoadedModel(Path(model), r.config, None, torch.device("cpu"))
        self.model = model if isinstance(model, LoadedModel) else load_model(model, self.opts.device)
        if self.opts.engine == "auto":
            self.opts = replace(self.opts, engine="onnx" if self.model.device.type == "cpu" else "torch")
        # A 64 px model gains little from a second thread, and torch's idle threads spinning beside OpenCV's
        # and x264's slowed every small operation several times over (measured: bench/swap_speed). Set only
        # while this swapper works (`swap_frames`): the setting belongs to the process, and kept for good it
        # halved a training run made after a swap in the same process.
        self._threads = self.opts.threads if self.model.device.type == "cpu" else 0
        if self.opts.to not in ("a", "b", "auto"):
            raise InputError("--to", "must be a, b or auto")
        if self.opts.mask not in ("skin", "hull"):
            raise InputError("--mask", "must be skin or hull")
        if not 0 <= self.opts.detail <= 2:
            raise InputError("--detail", f"must be from 0 to 2 (got {self.opts.detail})")
        if self.opts.mouth not in ("auto", "model", "input"):
            raise InputError("--mouth", "must be auto, model or input")
        if self.opts.eyes not in ("auto", "blink", "model"):
            raise InputError("--eyes", "must be auto, blink or model")
        if self.opts.detail_from not in ("both", "target", "input"):
            raise InputError("--detail-from", "must be both, target or input")
        if not 0 <= self.opts.edge_match <= 1:
            raise InputError("--edge-match", f"must be from 0 to 1 (got {self.opts.edge_match})")
        self.to: str | None = None if self.opts.to == "auto" else self.opts.to
        self.chosen_by = "" if self.to is None else "--to"
        self.size = self.model.config.size
        self.padding = self.model.config.padding
        self.lift = self.model.config.lift
        self.identity = self.model.identity
        need_emb = not self.opts.swap_all or self.to is None
        self.analyzer = FaceAnalyzer(
            self.opts.detector, self.opts.min_face, embeddings=need_emb and bool(self.identity)
        )
        workers = self.opts.workers or (os.cpu_count() or 1)
        self._pool = None  # frames composited side by side: only with tracking (see swap_frames)
        if workers > 1 and self.opts.track:
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="masquerade-composite")
            weakref.finalize(self, self._pool.shutdown, wait=False)
        self.clock = StageClock()  # ms per stage: detect, identity, track, model, composite, mark
        self.tracker = FaceTracker(self.analyzer, self.opts.redetect, clock=self.clock) if self.opts.track else None
        self.smoother = LandmarkSmoother(self.opts.fps, self.opts.smooth)
        self.mouth_hold = Hold(release=1 / (MOUTH_HOLD_S * (self.opts.fps or 30.0)))
        self.mark_finder = verify_analyzer()  # finds faces exactly as `verify` will (and swap's read-back)
        self._picture_finder: FaceAnalyzer | None = None  # see find_picture_faces
        self._banks: dict[str, tuple[DetailBank, np.ndarray, np.ndarray] | None] = {}  # see use_bank
        self._thumb_weight = self._mean_hull(exemplar.THUMB)

    def use_bank(self, side: str, bank: DetailBank | None) -> None:
        """Take the target's detail for `side` from this bank (None: from none) rather than the model's own."""
        if bank is None or not len(bank):
            self._banks[side] = None
            return
        thumbs = exemplar.thumbnails(bank.faces, self._thumb_weight)
        self._banks[side] = (bank, thumbs, self._mean_hull(bank.faces.shape[1]))

    def _mean_hull(self, size: int) -> np.ndarray:
        """The mean face's hull in the model's crop (its padding and lift) at `size` px: where faces are compared."""
        return face_mask((size, size), transform_points(crop_frame_matrix(size, self.padding, self.lift), MEAN_FACE_68))

    def _load_bank(self, side: str) -> None:
        """The model's bank of the target's faces for `side`, once (None: trained before banks, or `input`)."""
        if side not in self._banks:
            use = self.opts.detail > 0 and self.opts.detail_from != "input" and self.model.net is not None
            self.use_bank(side, load_bank(self.model.path, side) if use else None)

    def find_faces(self, frame: np.ndarray) -> list[Face]:
        """The faces of the next frame of a video: tracked, or detected afresh with `track=False`."""
        if self.tracker is not None:
            return self.tracker(frame)
        with self.clock("detect"):
            return self.analyzer(frame)

    def find_picture_faces(self, picture: np.ndarray) -> list[Face]:
        """The faces of a picture. With HOG (the default, for video's speed) the CNN looks again where HOG finds
        none, as `extract` does: HOG missed d8's frowning face behind glasses. A picture is worth the CNN's
        seconds (1.6-10 s on the animal stills, where it rightly finds no face); every frame of a video is not."""
        if self._picture_finder is None:
            auto = self.opts.detector == "hog"
            self._picture_finder = replace(self.analyzer, detector="auto") if auto else self.analyzer
        with self.clock("detect"):
            return self._picture_finder(picture)

    def reset(self) -> None:
        """Start afresh: the next frame is not a continuation of the last one (e.g. another image)."""
        if self.tracker is not None:
            self.tracker.reset()
        self.smoother.tracks = []
        self.mouth_hold.tracks = []

    # -- identity -------------------------------------------------------------------------------------
    @property
    def source_side(self) -> str | None:
        return None if self.to is None else ("a" if self.to == "b" else "b")

    def choose_side(self, faces: list[Face]) -> None:
        """Pick the side to render: the one the faces are NOT of (by mean identity embedding)."""
        embs = [f.embedding for f in faces if f.embedding is not None]
        if self.to is not None or not embs or not self.identity:
            return
        side, da, db = nearer_side(np.mean(embs, 0), self.identity)
        self.to = "b" if side == "a" else "a"
        self.chosen_by = f"faces are nearer identity {side} ({min(da, db):.2f} vs {max(da, db):.2f})"

    def _is_source(self, face: Face) -> bool:
        if self.opts.swap_all or face.embedding is None or not self.identity or self.source_side is None:
            return True
        d_src = distance(face.embedding, self.identity[self.source_side])
        d_tgt = distance(face.embedding, self.identity[self.to])
        return d_src < SAME_PERSON_DISTANCE and d_src <= d_tgt

    # -- swapping -------------------------------------------------------------------------------------
    def swap_frame(self, frame: np.ndarray, still: bool = False) -> np.ndarray:
        """Swap one RGB frame; `still`: a picture, not a frame of a video (its mark may be finer: see
        `watermark.STILL_MIN_CELL_PX`)."""
        return self.swap_frames([frame], still=still)[0]

    def swap_frames(
        self, frames: list[np.ndarray], faces: list[list[Face]] | None = None, still: bool = False
    ) -> list[np.ndarray]:
        """Swap a batch of consecutive RGB frames (`still`: pictures); the model runs once over all their faces."""
        with torch_threads(self._threads):
            return self._swap_frames(frames, faces, still)

    def _swap_frames(self, frames: list[np.ndarray], faces: list[list[Face]] | None, still: bool) -> list[np.ndarray]:
        if faces is None:
            faces = [self.find_picture_faces(f) if still else self.find_faces(f) for f in frames]
        if self.to is None:
            found = [f for fs in faces for f in fs]
            self.choose_side(found)
            if self.to is None and found:
                self.to = "b"
                self.chosen_by = "default (no identity information)"
            if self.to is None:  # no face yet to decide by: nothing to swap in these frames
                return [f.copy() for f in frames]
        jobs = []  # (frame index, detection box, smoothed landmarks, matrix, crop, input's mouth and eyes kept)
        shown = self.model.config.mouth.get(self.to)  # the openings the target's faces show
        for i, (frame, fs) in enumerate(zip(frames, faces, strict=True)):
            chosen = [f for f in fs if self._is_source(f)]
            smoothed = self.smoother([f.landmarks for f in chosen])
            openings = [mouth_opening(x) for x in smoothed]
            mouths = [input_mouth(o, shown, self.opts.mouth) for o in openings]
            keep = self.mouth_hold(smoothed, [w for w, _ in mouths])
            for f, lms, k, o, (_, inner) in zip(chosen, smoothed, keep, openings, mouths, strict=True):
                m = estimate_matrix(lms, self.size, self.padding, self.lift)
                eyes = input_eyes(eye_openings(f.landmarks), self.opts.eyes)  # as found: smoothing would damp a blink
                kept = Kept((k, inner), eyes, input_teeth(o, self.opts.mouth), float(self.opts.eyes == "auto"))
                jobs.append((i, f.bbox, lms, m, crop_face(frame, m, self.size), kept))
        out = [f.copy() for f in frames]
        if not jobs:
            return out
        self._load_bank(self.to)
        with self.clock("model"):
            preds = self._run_model(np.stack([j[4] for j in jobs]))
        by_frame: dict[int, list] = {}
        for job, pred in zip(jobs, preds, strict=True):
            by_frame.setdefault(job[0], []).append((*job[1:], pred))

        def finish(i: int) -> None:  # one frame's faces, one after another (their regions may overlap)
            for box, lms, m, crop, kept, pred in by_frame[i]:
                self._composite(out[i], box, lms, m, crop, pred, kept, still)

        # Frames are independent, and OpenCV and NumPy release the GIL, so a second core can help (the pool is
        # made only with tracking). dlib's shape predictor does not release it (two threads calling it ran no
        # faster than one): on 2 cores, beside the decoding and encoding threads, the pool and one thread swap
        # at the same speed (bench/swap_speed.py --workers 1).
        if self._pool is None or self.tracker is None or len(by_frame) == 1:
            for i in by_frame:
                finish(i)
        else:
            list(self._pool.map(finish, by_frame))
        return out

    @torch.no_grad()
    def _run_model(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) RGB uint8 crops -> (N, S, S, 3 or 4) float32 RGB[, mask] in [0, 1]."""
        if self.opts.engine == "onnx":
            if self.to not in self._onnx:  # the model's renderer for this side, exported in memory (~1 s)
                self._onnx[self.to] = OnnxRenderer.load(export_bytes(self.model, self.to), self.opts.threads)
            x = crops.transpose(0, 3, 1, 2).astype(np.float32) / 255
            return self._onnx[self.to](x).transpose(0, 2, 3, 1)
        net, dev = self.model.net, self.model.device
        outs = []
        for k in range(0, len(crops), self.opts.batch_size):
            x = torch.from_numpy(crops[k : k + self.opts.batch_size]).to(dev)
            x = x.permute(0, 3, 1, 2).float() / 255
            with torch.autocast(dev.type, enabled=dev.type == "cuda"):
                y = net(x, self.to).float()
            outs.append(y.permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(outs)

    def _blur_px(self, lms: np.ndarray) -> int:
        face_px = float(np.ptp(lms[:, 0]))
        return self.opts.blur if self.opts.blur >= 0 else max(1, int(round(0.04 * face_px)))

    def _composite(
        self,
        frame: np.ndarray,
        box: np.ndarray,
        lms: np.ndarray,
        m: np.ndarray,
        crop: np.ndarray,
        pred: np.ndarray,
        kept: Kept | None = None,
        still: bool = False,
    ) -> None:
        """Put the rendered face back and mark it, in place, working only on the face's region of the frame;
        `kept`: what of the input's own face it keeps (`Kept`; none by default)."""
        x0, y0, x1, y1 = _region(frame.shape, m, self.size, lms, margin=2 * self._blur_px(lms) + 4)
        if x1 <= x0 or y1 <= y0:
            return
        roi = frame[y0:y1, x0:x1]
        at = np.array([x0, y0], np.float32)
        with self.clock("composite"):
            swapped, region = self._put_back(roi, lms - at, _shift(m, x0, y0), crop, pred, kept or Kept())
        with self.clock("mark"):
            if still:  # a picture's mark may lie around the face (`watermark.RING_TIERS`): the whole picture
                frame[y0:y1, x0:x1] = swapped
                whole = np.zeros(frame.shape[:2], np.float32)
                whole[y0:y1, x0:x1] = region
                frame[:] = self._mark(frame, frame, box, self._as_verify_sees(frame, lms), whole, (0, 0), still)
            else:
                frame[y0:y1, x0:x1] = self._mark(swapped, frame, box - np.tile(at, 2), lms - at, region, (x0, y0))

    def _verify_finds(self, picture: np.ndarray) -> list[np.ndarray]:
        """The landmarks of the faces verify's finder gives in a picture."""
        return [f.landmarks for f in self.mark_finder(picture)]

    def _as_verify_sees(self, picture: np.ndarray, lms: np.ndarray) -> np.ndarray:
        """The landmarks verify's finder gives the swapped face of a picture, or `lms` if it finds none there."""
        found = self._verify_finds(picture)
        k = same_face(found, lms)
        return lms if k is None else found[k]

    def _put_back(
        self,
        frame: np.ndarray,
        lms: np.ndarray,
        m: np.ndarray,
        crop: np.ndarray,
        pred: np.ndarray,
        kept: Kept,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Colour-match the generated face (its border to the input's own), warp it into the frame (or a region
        of it: `lms` and `m` in its pixels), blend, leaving what it `kept` of the input's own face, and restore the
        input's finest detail; returns (frame, the face's mask, which the mark covers)."""
        s = self.size
        crop_lms = transform_points(m, lms)
        crop_mask = face_mask((s, s), crop_lms)
        ref = crop.astype(np.float32)
        face = match_color(pred[..., :3] * 255.0, ref, crop_mask, self.opts.color)
        face = np.clip(match_border(face, ref, crop_mask, self.opts.edge_match), 0, 255)
        h, w = frame.shape[:2]
        face_full = uncrop(face.astype(np.float32), m, frame.shape)
        # The mask in frame pixels: landmark hull (or the model's mask), limited to the crop's footprint.
        inside = cv2.warpAffine(_footprint(s), m, (w, h), borderValue=0, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        if pred.shape[-1] > 3:  # the model's own mask head
            mask = cv2.warpAffine(
                np.ascontiguousarray(pred[..., 3]),
                m,
                (w, h),
                borderValue=0,
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            )
        else:
            mask = face_mask((h, w), lms, blur=0)
        if self.opts.mask == "skin":  # keep the input's own hair where it covers the face; never paste B's
            cut = np.maximum(not_skin(crop, crop_lms), not_skin(face.clip(0, 255).astype(np.uint8), crop_lms))
            if cut.any():
                cut = cv2.warpAffine(cut, m, (w, h), borderValue=0, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
                mask = mask * (1 - cut)
        blur = self._blur_px(lms)
        erode = self.opts.erode if self.opts.erode else blur // 2
        face_region = mask = feather(mask, erode=erode, blur=blur) * np.clip(inside, 0, 1)
        mouth, inner = kept.mouth
        if mouth > 0:  # the input's own mouth, where the model cannot paint it
            mask = mask * (1 - mouth * mouth_mask((h, w), lms, inner=inner, blur=blur))
        if kept.teeth > 0:  # the input's teeth and tongue, between the model's lips
            mask = mask * (1 - kept.teeth * mouth_mask((h, w), lms, inner=True, grow=0.0, blur=blur // 2))
        for eye, weight in enumerate(kept.eyes):  # the input's own closed eye, over the model's open one
            if weight > 0:
                mask = mask * (1 - weight * eye_mask((h, w), lms, eye, blur=blur // 2))
            if kept.gaze > 0 and weight < 1:  # the input's eyeball between the model's lids
                mask = mask * (1 - kept.gaze * eyeball_mask((h, w), lms, eye, *EYEBALL))
        out = blend(frame, face_full, mask, self.opts.blend)
        model_px = frame_px_per_crop_px(m)
        own = self._own_detail(pred, m, (h, w)) if self.opts.detail > 0 and model_px >= OWN_MIN_MODEL_PX else None
        # `target` with none of the target's band to give (a model that keeps no faces, a small face): the input's
        from_input = self.opts.detail_from != "target" or own is None
        # the mark covers the whole face, the input's mouth in it too (on s29, without it: mean z 42 -> 35)
        return restore_detail(out, frame, mask, model_px, self.opts.detail, own, from_input), face_region

    def _own_detail(self, pred: np.ndarray, m: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
        """The target's own fine band for this painted face, in place of the painting's, withheld where they
        differ, in frame pixels (`exemplar`); None when the model keeps no faces of the target."""
        entry = self._banks.get(self.to or "")
        if entry is None:
            return None
        bank, thumbs, hull = entry
        painted = (pred[..., :3] * 255.0) @ LUMA
        face = bank.faces[exemplar.nearest(thumbs, painted, self._thumb_weight)]
        band, gate = exemplar.own_band(face, painted, hull)
        k = face.shape[0] / self.size
        to_bank = np.diag([k, k]) @ m  # frame -> the bank's crop
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        return cv2.warpAffine(band * gate, to_bank, shape[::-1], flags=flags, borderValue=0)

    def _mark(
        self,
        roi: np.ndarray,
        frame: np.ndarray,
        box: np.ndarray,
        lms: np.ndarray,
        region: np.ndarray,
        at: tuple[int, int],
        still: bool = False,
    ) -> np.ndarray:
        """Embed the watermark on a swapped face (`roi`, the region of `frame` at `at`; `box` and `lms` in its
        pixels), limited to the blend mask, aligned as `verify` will align it (`watermark.mark_landmarks`:
        the same landmarks whether found from swap's own or from verify's detection). Verify reads about
        TRACKED_READ of the z, so the mark is made that much stronger."""
        pixels = frame.shape[0] * frame.shape[1]  # the mark's PSNR cap is over the whole frame
        finder = self._verify_finds if still else None  # a picture's mark is fitted to what verify reads
        return watermark.embed(
            roi,
            lms,
            self.model.model_id,
            region=region,
            pixels=pixels,
            slack=1 / TRACKED_READ,
            still=still,
            finder=finder,
        )
