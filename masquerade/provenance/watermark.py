"""An invisible, robust watermark anchored to the face: spread spectrum in the aligned face's luminance and, on a
video's face, in its blue-yellow colour (Cb).

Why anchored to the face: a swapped face is what we made, and the detector can find and align faces again
with the same landmarks and mean face used to embed. Alignment then undoes cropping, scaling, shifting and
small rotations of the frame for free; no synchronisation template or search is needed.

Embedding: the 32-bit payload (16-bit tool signature + 16-bit model id) selects signs of 32 pseudo-random
patterns (key-seeded +-1 cells of 4 px in an aligned crop, bicubic-smoothed so they survive JPEG and H.264).
Their sum, scaled to `AMPLITUDE` grey levels and weighted by the face mask, is added to the face's luminance
(equally to R, G and B, so chroma is untouched).

Tiers: a face whose pattern cells would be at least 12 frame pixels wide in the 128 px crop (32 cells a side)
is marked in a 192 px crop (48 cells) instead. That mark has 2.25x as many cells, so it reads about 1.5x the
z at the same strength, and its grain is finer: on the large faces of stills and HD video it is fainter
(measured: 1.3-3.2 grey levels rms instead of 3.3-4.4 on d18, d6 and a still) and less coarse. In a video its
cells stay at least MIN_CELL_PX frame pixels wide, as H.264 and downscaling take most of a finer mark; in a
picture, STILL_MIN_CELL_PX. A picture is marked around the face rather than on it when that reads
well enough after JPEG and WebP 50 (`RING_TIERS`). The
reader tries every tier (a face rescaled after marking may look like the other tier's size); each try counts
as a look in `verify`'s false-alarm rule. Both sides align the crop to `mark_landmarks`.

Colour (`COLOUR_TIERS`): a video face also carries the payload in its Cb, uniform over the face and in coarse cells,
read with the layout every face shares in colour projected out of the patterns. The eye sees blue-yellow far less
than brightness at this grain, so that mark can be as strong as H.264 at CRF 35 needs on the shared clips, and the
luminance mark is made faint enough not to show (`_unseen`). Verify reads a video's faces in every tier of both
(`VIDEO_TIERS`), a picture's in those and the ring.

Detection: re-align the face, band-pass its luminance, divide it by its local texture (the mark's energy and
the face's own content both follow texture: weighting by 1/texture is the matched filter, and on a face with
smooth cheeks and sharp features it reads 1.4-1.8x the z of a plain correlation), and correlate with the 32
payload patterns and with 48 decoy patterns that are never embedded. The decoys' correlations estimate, for
this very face, the spread of a correlation under "no mark", so z-scores are self-calibrated. A face is marked when the
signature's z-score (the 16 known signature bits combined) exceeds `THRESHOLD`; see `false_positive_rate`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from masquerade.faces.align import estimate_matrix, frame_px_per_crop_px, invert, transform_points
from masquerade.faces.mask import face_mask
from masquerade.faces.track import box_from_landmarks, refine_landmarks, same_face

KEY = 0x6D617371  # seeds the patterns; changing it makes every earlier mark unreadable
SIGNATURE = 0x4D51  # "MQ": the tool signature, the first 16 payload bits
SIGNATURE_TOLERANCE = 2  # bit errors allowed when reading the signature back (detection rests on z)
N_BITS = 32
N_SIG = 16
N_DECOYS = 48
SIZE = 128  # side of the coarse tier's aligned crop (every tier's crop covers the same square of the frame)
PADDING = 0.1  # the inner face: where a swap changes pixels
CELL = 4  # crop pixels per pattern cell; with BAND, survives 50% downscaling, H.264, JPEG 50
TARGET_Z = 10.0  # embed just strongly enough that the clean face reads this z (attacks keep ~2/3 of it)
AIM = 1.15  # embed for this much more than the target before the 8-bit check (rounding costs some; the
# same energy on average as the earlier rule of 1.25x after a failed check, in fewer checks)
AMPLITUDE = (0.5, 4.0)  # scale of the mark in grey levels (rms before texture weighting): floor and ceiling
PEAK = 2.5  # the unit-rms pattern is clipped here, so no pixel stands out...
MAX_DELTA = 12.0  # ...and no pixel changes by more than this many grey levels
# The mark as rendered is not the mark as designed: peaks clipped (PEAK, MAX_DELTA), energy shaped by the face's
# texture (which the mark itself raises where the reader measures it), 8-bit rounding. At the embed's own alignment
# the decoys, cancelled by design, then read a third of the host face's own spread (s29 swapped by a d6:d3 model:
# 430 against 1350) and the same in every frame: a null spread inflated by the mark itself, and a bias in the
# decoys' sums over frames that kept the model id unread. The embed reads the decoys back and cancels what they
# read, this many times (`_embed_aligned`; 1.5% more energy). 30 frames, s29 / d18 (the demo's model): mean z clean
# 23.8 -> 50.3 / 31.0 -> 53.9, CRF 28 15.2 -> 18.2 / 17.9 -> 19.7, CRF 35 7.2 -> 8.3 / 9.3 -> 10.1, and the clean
# files name their model (id 1.7 -> 5.2 / 10.2 decoy spreads, 4.4 needed).
SELF_NOISE_STEPS = 2
# How verify finds the faces it reads marks on (and swap aligns the marks it embeds, exactly as verify will):
# HOG below its usual threshold, the 3 most confident windows of a frame. A swapped face, painted by a model,
# scores lower than the real one (say -0.6 instead of 0.3 on a small face); the z statistic, calibrated per
# face, keeps wrong windows harmless, and the file rule counts 3 candidates per frame.
FINDER = {"detector": "hog", "min_face": 40, "threshold": -0.8, "max_faces": 3}
SIGNATURE_SHARE = 0.75  # of the mark's energy: detection reads the signature; model-id bits add up over a clip
THRESHOLD = 4.5  # signature z-score for "this face carries the mark"
MIN_PSNR = 40.5  # the mark's energy is capped per frame so that marking never costs more than this
BAND = (1.0, 4.0)  # difference-of-Gaussians band (sigmas, crop px) the detector looks in
# A video face's mark is made fainter (`_unseen`) until the face's SSIM (luma, marked against unmarked) is VISIBLE_SSIM,
# but never below the scale at which the whole mark's z at the embed's own alignment, were it to fall with the scale,
# would be SURE_Z: the faces with z to spare give it up, those near the codecs' cliff keep it. (The z does not fall with
# the scale: scaled, the decoys are no longer wholly cancelled. Read after CRF 18, d18 keeps 41 of its 77 at 0.86 of its
# mark, d6 6.4 of its 39 at 0.5; docs/watermark.md.) 30 frames swapped by a 10-minute d6:d3 model, face SSIM and frames
# marked of 30 after CRF 35 / after 50% + CRF 28, without -> with: d6 0.973 -> 0.979, 30 / 30 both ways (distance to d3
# 0.414 -> 0.398); d18 0.975 -> 0.980, 30 / 30; d12 0.964 -> 0.965, 24 / 24 -> 26 / 23; s29 (0.958) and s13 unchanged
# there, but over s29's first 80 faces 24 fade part-way (0.962 -> 0.975) and CRF 35 keeps 78% of its 160 frames (86%). A
# floor on the z read at each scale (20) let s29 fade to 0.967 and lost CRF 35 on 43% of its 160 frames; scaling the
# payload alone (not the cancelling of the face's own reading) left d6 at 0.978.
# Since the colour tier (COLOUR_TIERS) carries the mark through the codecs, the luminance mark is faded to where it no
# longer shows: an SSIM of 0.98 passed faces plainly blotched (d6 at 0.973-0.979), 0.995 is clean by eye. The floor
# (SURE_Z 6, from 30) binds only where the whole mark reads little: at 12 it held most faces of six clips at half.
VISIBLE_SSIM = 0.995
SURE_Z = 6.0
VISIBLE_TRIES = 3


@dataclass(frozen=True)
class Tier:
    """One resolution of the mark: an aligned crop of `size` px with `size // CELL` pattern cells a side."""

    size: int
    target: float  # the z to embed for: a fine mark loses more to H.264 on smooth skin (measured on s29)
    padding: float = PADDING  # of the face, on each side of the crop
    ring: bool = False  # laid around the face (hair, ears, neck, background) and not on it: see RING_TIERS
    channel: str = "y"  # the plane it lies in: "y" luminance, "cb" the blue-yellow colour (see COLOUR_TIERS)

    @property
    def cells(self) -> int:
        return self.size // CELL


# A finer mark is fainter for the same z, but H.264 takes more of it, the more the smoother the face: its
# target is higher. A 256 px tier (cells of 4 px on d18) was fainter still but lost two thirds of its z to a
# CRF 28 re-encode on d18 and s29 (measured clean and re-encoded, with a 20-minute and the tests' model).
TIERS = (Tier(SIZE, TARGET_Z), Tier(3 * SIZE // 2, 1.3 * TARGET_Z))
# A picture is marked around the face rather than on it, when that reads well enough (`embed`): the same
# patterns over a crop with 0.6 of the face's width on each side (cells as wide as the coarse tier's), masked to
# a ring that leaves the face's hull out. On the smooth faces of stills the face mark showed as a mottle (face
# SSIM, marked against unmarked, 0.966-0.978 on s0, s3 and d9); with the ring, 0.988-0.993. Not for video: there
# the ring lies on a still background while it moves with the face, and H.264 at CRF 35 dropped it after the
# keyframe (s29 53%, d18 37% of frames, where the face mark kept 83-100%).
# Only in the coarse tier's cells: a fine ring (352 px) read 133-171 clean but 0.1-4.9 after JPEG or WebP 50 on
# d30, s0 and s9, whose backgrounds are smooth or dark (the coarse ring: 4-12 at the same strength).
RING_PADDING = 0.6
# Around a face, plain walls and skies lie beside hair: the ring's energy follows the least texture within
# RING_MASK_PX crop pixels (2 cells), down to RING_TEXTURE_FLOOR of the mean. With the face's texture weight
# (blurred energy, floor 0.4) the ring showed as a mottle on the plain wall beside d9's and d30's hair.
RING_TEXTURE_FLOOR = 0.1
RING_MASK_PX = 9
RING_SIZE = 4 * round(SIZE * (1 + 2 * RING_PADDING) / (1 + 2 * PADDING) / 4)  # 236: cells as wide as the coarse tier's
RING_TIERS = (Tier(RING_SIZE, TARGET_Z, RING_PADDING, ring=True),)
# A video face is also marked in its blue-yellow colour (OpenCV's Cb): the same payload, uniform over the face (not
# shaped by texture; the face's own reading cancelled, `_embed_colour`), COLOUR_AMP Cb levels rms, in a 72 or 96 px crop
# of the same square (cells of 4 px: coarser than the luminance tiers', as H.264 keeps colour at half resolution). The
# eye is far less sensitive to blue-yellow than to brightness at this grain: on d6 (smooth skin), where the luminance
# mark showed as blotches until faded to a third, the colour mark read as much after CRF 28 and 35 and after 50% + CRF
# 28 (45 of 45 frames each, 10-minute d6:d3 model) with no dlib cost. Faces share their colour's layout (red lips, dark
# brows and eyes, the hull against the background), and coarse patterns correlate with it: read as they are, unmarked
# faces scored a mean z of 0.95 in the 96 px tier (1073 faces of every clip and still, 15 over 3). The reader therefore
# projects the band-passed layout of the mean face's features out of its patterns (`_feature_basis`): mean -0.29,
# spread 1.02, highest 2.45, none over 3 (72 px: -0.46, 1.07, 2.71, none), where Student's t expects 2.3 over 3.
COLOUR_TIERS = (Tier(72, TARGET_Z, channel="cb"), Tier(96, TARGET_Z, channel="cb"))
# The mark is laid less its part in the faces' shared layout (`_feature_layout`), which the reader ignores and which
# only showed (violet eyes). That part is 5-8% of the mark's energy: at 3.0 without it s29 kept 35 of 45 frames at
# CRF 35 (45 with it); at 3.25, 44-45 of 45, with a lower ΔE than the 3.0 mark with it (s29 3.42 -> 3.12, d6
# 3.34 -> 3.20).
COLOUR_AMP = 3.25
COLOUR_CANCEL_STEPS = 4
# The finer colour tier whose cells are at least this many frame pixels wide (`tier_for`): H.264 at CRF 35 and a 50%
# downscale take a colour mark whose cells are narrower. s29 (96 px cells of 8.2 frame px), its first 20 frames, frames
# marked by the colour tier after CRF 35 / 50% + CRF 28: 18 / 0 of 20 in 96 px, 20 / 20 in 72 px (s20, 8.6 px: 20 / 15
# and 20 / 20); d6 (12.2 px) reads about as well in either, and is marked in the finer, fainter-looking grain.
MIN_COLOUR_CELL_PX = 10.0
VIDEO_TIERS = TIERS + COLOUR_TIERS  # what a video's face is read in
REFINE_STEPS = 2  # see `mark_landmarks`
# A video face's first mark is only a probe: the mark is laid again where the landmarks are found on the marked
# face (REALIGN_STEPS), refined as verify refines. So its landmarks are refined once, not twice, from the tracked
# ones (swap's output, 30 frames, mean z clean / after CRF 35, with 2 and with 1: d18 71.8 / 16.5 and 75.0 / 15.3,
# s29 45.5 / 7.5 and 48.2 / 7.6, d12 35.3 / 6.8 and 35.3 / 7.0): one call of dlib's shape predictor, about 5 ms a
# face on this CPU, saved. Not refined at all, d18 read 49.5 clean.
VIDEO_REFINE_STEPS = 1
EDGE_MARGIN = 0.25  # a face cut by the frame's edge is refined in the frame extended by this much of its box more
# The mark moves dlib's landmarks on the face it is added to by about 1.5 px (mean of 68, d18 and s29), so
# verify aligned to other landmarks than embed did and read 60-70% of the z. `embed` finds the landmarks again on
# the marked face and, when they moved by more than REALIGN_PX, marks the face again aligned to them: verify
# then reads about 1.3x the z (swap's output, 30 frames: d18 31 -> 41, s29 19 -> 25). A second step gained
# nothing measurable (s29, 60 frames).
REALIGN_STEPS = 1
REALIGN_PX = 0.5
# As verify refines: with 1, s10 read z 6.1, not 8.7 (embed 13.7 ms, not 15.7), and swap's output read clean
# d18 64.0, s29 43.0, d12 34.3 against 75.9, 46.9 and 37.8 (30 frames each).
REALIGN_REFINE = REFINE_STEPS
# A picture is marked just strongly enough to read this z once saved as JPEG 50 and as WebP 50 (verify decides a
# single picture at z 6.3; the margin is for verify's own detection and the whole picture's block grid): it
# meets no video codec, and read 45-65 clean at a video frame's strength (face SSIM 0.966-0.992). After a
# codec the z falls faster than the amplitude (about as its 1.25th power: WebP 50 on d9), hence the fitting
# step's exponent 0.8.
STILL_CODEC_Z = 14.0
STILL_CODECS = ((".jpg", cv2.IMWRITE_JPEG_QUALITY, 50), (".webp", cv2.IMWRITE_WEBP_QUALITY, 50))
STILL_FIT_STEPS = 2
# The finest tier whose cells are at least this many frame pixels wide is used: 8, so that after a 50% downscale
# they are still as wide as the coarse tier's on d18 (4 px). At 6, d6 took the fine tier and was fainter and
# better read clean, after JPEG 50 and WebP 50, but kept 77% of its frames after CRF 35 and after 50% + CRF 28
# (92% and 96% in the coarse tier).
MIN_CELL_PX = 8.0
STILL_MIN_CELL_PX = 2.0  # in a picture: JPEG and WebP at quality 50 leave cells of 2 px (s0, s3, s10)


def tier_for(landmarks: np.ndarray, min_cell_px: float = MIN_CELL_PX, tiers: tuple[Tier, ...] = TIERS) -> Tier:
    """The tier a face of this size is marked in: the finest of `tiers` whose cells are >= `min_cell_px` frame
    pixels."""
    face_px = frame_px_per_crop_px(estimate_matrix(landmarks, SIZE, PADDING)) * SIZE / (1 + 2 * PADDING)
    fits = [t for t in tiers if CELL * face_px * (1 + 2 * t.padding) / t.size >= min_cell_px]  # a cell, frame px
    return fits[-1] if fits else tiers[0]


def mark_landmarks(rgb: np.ndarray, landmarks: np.ndarray, steps: int = REFINE_STEPS) -> np.ndarray:
    """The landmarks a mark is aligned to: found again twice (`steps`) from the box the given ones imply.

    dlib's landmarks depend on the box they start from, and swap (tracking) and verify (detecting) start from
    different boxes: up to 3 px apart on a 480p face, which halves a fine mark's z. Refined twice, both
    reach the same landmarks within about half a pixel (measured on d18), wherever they started.
    A face cut by the frame's edge (a chin below a 16:9 crop) is refined in the frame extended by repeating
    its edge pixels: dlib then keeps the face's shape instead of squeezing it into the frame. With verify's
    second look at such faces (`verify._landmarks`), a screen recording of d18 went from 48% of its frames
    marked to 100%."""
    pad = edge_pad(rgb.shape, landmarks)
    if not pad:
        return refine_landmarks(rgb, landmarks, steps=steps)
    return refine_landmarks(extend_edges(rgb, pad), landmarks + pad, steps=steps) - pad


def edge_pad(shape: tuple[int, ...], landmarks: np.ndarray) -> int:
    """How far to extend a frame of this shape for the detector's box of this face to fit, with EDGE_MARGIN
    of the box to spare: 0 for a face inside the frame."""
    x0, y0, x1, y1 = box_from_landmarks(landmarks)
    out = max(0.0, -x0, -y0, x1 - shape[1], y1 - shape[0])
    return int(math.ceil(out + EDGE_MARGIN * (x1 - x0))) if out > 0 else 0


def extend_edges(rgb: np.ndarray, pad: int) -> np.ndarray:
    """The frame extended by `pad` pixels on every side, repeating its edge pixels."""
    return cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)


@cache
def canonical_mask(tier: Tier = TIERS[0]) -> np.ndarray:
    """The mask of the mean face in the tier's aligned crop: where marks live, for any face."""
    from masquerade.faces.align import crop_frame_matrix
    from masquerade.faces.mean_face import MEAN_FACE_68

    return _tier_mask(tier, transform_points(crop_frame_matrix(tier.size, tier.padding), MEAN_FACE_68))


def _tier_mask(tier: Tier, points: np.ndarray) -> np.ndarray:
    """The face's hull (68 points in crop pixels), or for a ring tier the crop less that hull (forehead
    included), its feather kept outside the hull."""
    if not tier.ring:
        return face_mask((tier.size, tier.size), points, blur=_mask_blur(tier))
    hole = face_mask((tier.size, tier.size), points, blur=int(0.04 * tier.size))
    return np.clip(_square_mask(tier.size) - 2 * hole, 0, 1).astype(np.float32)


@cache
def _square_mask(size: int) -> np.ndarray:
    """The whole crop, feathered at its border."""
    b = int(0.06 * size)
    m = np.zeros((size, size), np.float32)
    m[b : size - b, b : size - b] = 1
    return cv2.GaussianBlur(m, (0, 0), b / 2 + 1)


def _mask_blur(tier: Tier) -> int:
    return 6 * tier.size // SIZE


@cache
def patterns(tier: Tier = TIERS[0]) -> np.ndarray:
    """(N_BITS + N_DECOYS, size, size) float32 smooth pseudo-random patterns of a tier, fixed by KEY.

    They are made orthogonal over the mean face's mask after band-pass filtering (QR), so an embedded
    pattern does not leak into the decoys' correlations and inflate the null spread ("self-noise").
    The coarse tier keeps the patterns of earlier versions, so their marks still read.
    """
    rng = np.random.default_rng(KEY if tier == TIERS[0] else [KEY, tier.size])
    cells = rng.choice(np.array([-1.0, 1.0], np.float32), size=(N_BITS + N_DECOYS, tier.cells, tier.cells))
    raw = np.stack([cv2.resize(c, (tier.size, tier.size), interpolation=cv2.INTER_CUBIC) for c in cells])
    mask = canonical_mask(tier)
    filt = np.stack([_bandpass(p) for p in raw]).reshape(len(raw), -1) * mask.reshape(-1)
    # Express the orthonormalised (filtered, masked) rows as combinations of the raw patterns.
    _, r = np.linalg.qr(filt.T.astype(np.float64))
    mix = np.linalg.inv(r).T  # rows of mix @ filt are orthonormal
    out = (mix @ raw.reshape(len(raw), -1).astype(np.float64)).reshape(raw.shape)
    out /= np.sqrt((out**2 * mask).sum((1, 2), keepdims=True) / mask.sum())
    return out.astype(np.float32)


@cache
def _filtered_patterns(tier: Tier) -> np.ndarray:
    """The tier's patterns band-passed as the reader sees them, flattened: (N_BITS + N_DECOYS, size * size).
    A colour tier's have the layout every face shares projected out (`_feature_basis`)."""
    f = np.stack([_bandpass(p) for p in patterns(tier)]).reshape(N_BITS + N_DECOYS, -1)
    if tier.channel == "y":
        return f
    b = _feature_basis(tier)
    return (f - (f @ b.T) @ b).astype(np.float32)


# The mean face's features whose colour differs from the skin's in every face: lips (outer, inner), eyes, brows,
# nostrils, the nose's bridge, and the hull against the background. Each as drawn (filled, or a line of
# `FEATURE_LINE` of the crop) and softened (FEATURE_BLUR: a face's colour edges are soft), and each of those shifted
# by a pixel in x and in y (a face's features lie a little off the mean's). Unmarked faces of every clip and still
# (1073), colour z with the sharp features alone / with the soft ones too: 96 px mean 0.11 / -0.29, highest 3.02 /
# 2.45, the clips' own means spread 0.72 / 0.70 rms; 72 px -0.51 / -0.46, 3.22 / 2.71, 0.77 / 0.63.
FEATURES = (
    (range(48, 60), True),
    (range(60, 68), True),
    (range(36, 42), True),
    (range(42, 48), True),
    (range(17, 22), False),
    (range(22, 27), False),
    (range(31, 36), False),
    (range(27, 31), False),
)
FEATURE_LINE = 1 / 32
FEATURE_BLUR = (0.0, 2.0)  # sigmas, crop px


def _feature_drawings(tier: Tier) -> list[np.ndarray]:
    """The mean face's features (`FEATURES`) and hull drawn in the tier's crop, sharp and soft (FEATURE_BLUR), each
    also as its change when shifted by a pixel in x and in y: (54) float32 images, unmasked. From the mean face's
    landmarks alone, no data."""
    from masquerade.faces.align import crop_frame_matrix
    from masquerade.faces.mean_face import MEAN_FACE_68

    size = tier.size
    pts = np.round(transform_points(crop_frame_matrix(size, tier.padding), MEAN_FACE_68) * 16).astype(np.int32)
    drawn = []
    for idx, filled in FEATURES:
        im = np.zeros((size, size), np.float32)
        if filled:
            cv2.fillPoly(im, [pts[list(idx)]], 1.0, lineType=cv2.LINE_AA, shift=4)
        else:
            cv2.polylines(im, [pts[list(idx)]], False, 1.0, max(1, round(FEATURE_LINE * size)), cv2.LINE_AA, shift=4)
        drawn.append(im)
    drawn.append((canonical_mask(tier) > 0.5).astype(np.float32))
    out = []
    for im in (cv2.GaussianBlur(d, (0, 0), b) if b else d for d in drawn for b in FEATURE_BLUR):
        out += [im] + [np.roll(im, (dy, dx), (0, 1)) - im for dx, dy in ((1, 0), (0, 1))]
    return out


def _orthonormal(rows: list[np.ndarray]) -> np.ndarray:
    """Orthonormal rows spanning the flattened `rows` (QR)."""
    q, _ = np.linalg.qr(np.array([r.reshape(-1) for r in rows], np.float64).T)
    return q.T.astype(np.float32)


@cache
def _feature_basis(tier: Tier) -> np.ndarray:
    """Orthonormal rows (54, size * size): the band-passed, masked layout of the mean face's features
    (`_feature_drawings`). Why: a reader in colour correlates with what all faces share there; without this,
    unmarked faces read a mean z of 0.95 in 96 px (d3 2.45)."""
    mask = canonical_mask(tier)
    return _orthonormal([_bandpass(d) * mask for d in _feature_drawings(tier)])


@cache
def _feature_layout(tier: Tier) -> np.ndarray:
    """Orthonormal rows (54, size * size): the masked layout of the mean face's features, not band-passed. What the
    colour reader ignores (`_feature_basis` is its band-passed image), so the colour mark is kept out of it
    (`_embed_colour`): there it would only show. Left in, the payload's share of it tinted d3's and d6's eyes violet
    (their mean Cb +4.0 and +3.5 levels, the skin's -0.1 and -0.3)."""
    mask = canonical_mask(tier)
    return _orthonormal([d * mask for d in _feature_drawings(tier)])


def _bandpass(img: np.ndarray) -> np.ndarray:
    """Difference of Gaussians: drops the face's shading (low) and pixel noise and codec ringing (high)."""
    return cv2.GaussianBlur(img, (0, 0), BAND[0]) - cv2.GaussianBlur(img, (0, 0), BAND[1])


def model_code(model_id: str) -> int:
    """The 16-bit model id carried in the mark: the first four hex digits of the model's id."""
    try:
        return int(model_id[:4], 16) & 0xFFFF
    except (ValueError, TypeError):
        return 0


def payload_bits(model_id: str) -> np.ndarray:
    word = (SIGNATURE << 16) | model_code(model_id)
    return np.array([1.0 if (word >> (N_BITS - 1 - i)) & 1 else -1.0 for i in range(N_BITS)], np.float32)


def bits_to_payload(signs: np.ndarray) -> tuple[int, int]:
    """(signature, model code) from 32 bit signs."""
    word = 0
    for v in signs[:N_BITS]:
        word = (word << 1) | int(v > 0)
    return word >> 16, word & 0xFFFF


def signature_ok(signature: int) -> bool:
    return bin((signature ^ SIGNATURE) & 0xFFFF).count("1") <= SIGNATURE_TOLERANCE


def _crop_geometry(landmarks: np.ndarray, tier: Tier) -> tuple[np.ndarray, np.ndarray]:
    m = estimate_matrix(landmarks, tier.size, tier.padding)
    return m, _tier_mask(tier, transform_points(m, landmarks))


def embed(
    frame: np.ndarray,
    landmarks: np.ndarray,
    model_id: str,
    region: np.ndarray | None = None,
    pixels: int | None = None,
    slack: float = 1.0,
    still: bool = False,
    finder: Callable[[np.ndarray], list[np.ndarray]] | None = None,
) -> np.ndarray:
    """Add the mark for one face (68 landmarks, frame pixels) to an RGB uint8 frame; returns a new frame.
    It is aligned to `mark_landmarks`, in the tier `tier_for` chooses; `read_mark` finds it.

    Invisible: its energy follows the face's own texture (eyes, brows, mouth, hairline mask it; smooth
    cheeks get little), with peaks clipped, and its strength is just what this face needs to read TARGET_Z,
    or on a video face less, until the face's SSIM is VISIBLE_SSIM, while its full z scaled down stays at SURE_Z.
    Informed: the host face's own correlation with each pattern is measured and subtracted from the mark,
    so it cannot flip payload bits (otherwise the same bias repeats in every frame and never averages out);
    the decoys' too, so the reader's null spread, which the decoys measure, is what a codec or an attack adds
    and not the face's own texture: on small or smooth faces that texture was what capped the z (s13 read 4.4
    before any encoding, at the strength ceiling). The strength is still set against the host's spread, so
    the mark is no fainter than before. An unmarked face reads exactly as before: no false alarm is added.
    Aligned as verify will align it: to the landmarks found on the marked face (see REALIGN_STEPS).
    `region` (frame-sized, [0, 1]) limits where pixels may change, e.g. the swap's blend mask. `frame` may be
    the part of a larger frame around the face (`pixels`: the whole frame's pixel count, for the PSNR cap);
    it must hold the face's crop, as the mark is then exactly what it is on the whole frame. `slack`: embed for
    this many times the tier's target z at these landmarks (more when the reader will align the face less
    exactly). `still`: the frame is a picture, not a frame of a video (finer cells are allowed, and the mark
    is laid around the face, `RING_TIERS`, when it reads STILL_CODEC_Z there once saved as JPEG and WebP 50;
    `region` does not limit that ring, and `frame` should be the whole picture). `finder`: for a picture, the
    landmarks of the faces verify finds in it (`codec_z`).
    """
    landmarks = mark_landmarks(frame, landmarks, REFINE_STEPS if still else VIDEO_REFINE_STEPS)
    if still:
        ring, z = _embed_picture(frame, landmarks, (model_id, None, pixels, slack, True, RING_TIERS), finder)
        if z >= STILL_CODEC_Z:  # else the face itself is marked, as strongly as the codecs need
            return ring
        face, z_face = _embed_picture(frame, landmarks, (model_id, region, pixels, slack, True, TIERS), finder)
        return face if z_face >= z else ring  # neither reads STILL_CODEC_Z (both at the ceiling): the stronger
    # The colour mark first: the luminance mark then reads, and cancels, what its rounding left in the luma; and
    # adding the same to R, G and B leaves the Cb it wrote as it was.
    tier = tier_for(landmarks, MIN_COLOUR_CELL_PX, COLOUR_TIERS)
    coloured = _embed_colour(frame, landmarks, model_id, region, tier)
    return _embed_aligned(coloured, landmarks, (model_id, region, pixels, slack, False, TIERS))[0]


def _embed_colour(
    frame: np.ndarray, landmarks: np.ndarray, model_id: str, region: np.ndarray | None, tier: Tier
) -> np.ndarray:
    """The payload added to the face's Cb (a colour tier), COLOUR_AMP levels rms, uniform over the face's mask
    (peaks clipped at PEAK), less its share in the layout the reader ignores (`_feature_layout`): R, G and B change
    by `CB_RGB` times it, the luminance by nothing but rounding.
    Informed, as the luminance mark is: the face's own Cb reading of every pattern (decoys too) is cancelled, then
    what clipping and cross-talk leave is read back and cancelled, half at a time (COLOUR_CANCEL_STEPS; whole steps
    diverged on s29). Left in, the face's reading repeats in every frame, and no clip of the 12 shared ones named
    its model (weakest id bit 0.1-2.3 decoy spreads, 4.4 needed)."""
    m, mask = geometry = _crop_geometry(landmarks, tier)
    # only the crop's box in the frame is touched, with the crop pixel around it that interpolation reaches: pixel p
    # of the box at (x0, y0) is frame pixel p + (x0, y0)
    h, w = frame.shape[:2]
    s = tier.size
    corners = transform_points(invert(m), np.array([[-1, -1], [s, -1], [s, s], [-1, s]], np.float64))
    x0, y0 = np.clip(np.floor(corners.min(0)).astype(int), 0, [w, h])
    x1, y1 = np.clip(np.ceil(corners.max(0)).astype(int) + 1, 0, [w, h])
    if x1 <= x0 or y1 <= y0:
        return frame
    at = m.copy()
    at[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
    inv = dict(flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    host = frame[y0:y1, x0:x1].astype(np.int16)

    layout = _feature_layout(tier)

    def marked(coeffs: np.ndarray) -> np.ndarray:
        mark = np.tensordot(coeffs.astype(np.float32), patterns(tier), axes=1)
        mark = np.clip(mark, -PEAK * COLOUR_AMP, PEAK * COLOUR_AMP) * mask
        mark = mark - ((layout @ mark.reshape(-1)) @ layout).reshape(mark.shape)  # out of what the reader ignores
        delta = cv2.warpAffine(mark, at, (int(x1 - x0), int(y1 - y0)), **inv)
        if region is not None:
            delta = delta * region[y0:y1, x0:x1]
        out = frame.copy()
        out[y0:y1, x0:x1] = np.clip(host + np.floor(delta[..., None] * CB_RGB + 0.5).astype(np.int16), 0, 255)
        return out

    def reading(image: np.ndarray) -> np.ndarray:
        """Every pattern's correlation with the face's Cb, as verify reads it at these landmarks."""
        r = read_face(image, landmarks, tier, geometry)
        return np.concatenate([r.z_bits, r.z_decoys]).astype(np.float64) * r.sigma

    base = COLOUR_AMP * np.concatenate([payload_bits(model_id) * _bit_gains(), np.zeros(N_DECOYS, np.float32)])
    out = marked(base)
    r0 = reading(frame)
    gain = float(np.median((reading(out)[:N_BITS] - r0[:N_BITS]) / base[:N_BITS]))  # correlation per unit
    if not np.isfinite(gain) or gain <= 0:
        return out
    want = base * gain  # the payload's reading, and nothing in the decoys
    coeffs = base - r0 / gain
    best = marked(coeffs)
    left = reading(best) - want  # what clipping and cross-talk leave: read once per mark tried
    for _ in range(COLOUR_CANCEL_STEPS):  # cancelled half at a time, while it shrinks
        coeffs = coeffs - 0.5 * left / gain
        out = marked(coeffs)
        now = reading(out) - want
        if np.abs(now).max() >= np.abs(left).max():
            break
        best, left = out, now
    return best


def _embed_aligned(
    frame: np.ndarray, landmarks: np.ndarray, args: tuple
) -> tuple[np.ndarray, np.ndarray, float | None, float]:
    """`_embed_at`, aligned again to the landmarks found on the marked face: (out, landmarks, gain, amp).
    A video face's mark is made fainter first where it would show (`_unseen`)."""
    delta, gain, amp, z = _embed_at(frame, landmarks, *args)
    fade = 1.0
    if z is not None and not args[4]:  # a picture's strength is fitted to JPEG and WebP instead
        fade = _unseen(frame, landmarks, delta, z)
    out = _added(frame, delta * np.float32(fade))
    corrected = False  # the decoys' leak is cancelled at the alignment verify will use (SELF_NOISE_STEPS)
    for _ in range(REALIGN_STEPS):
        seen = mark_landmarks(out, landmarks, REALIGN_REFINE)  # what verify will align to on the marked face
        if float(np.linalg.norm(seen - landmarks, axis=1).mean()) < REALIGN_PX:
            break
        landmarks = seen
        delta, gain, amp, _ = _embed_at(frame, landmarks, *args, gain=gain, amp=amp, correct=SELF_NOISE_STEPS)
        out = _added(frame, delta * np.float32(fade))
        corrected = True
    if gain is not None and not corrected:
        delta, gain, amp, _ = _embed_at(frame, landmarks, *args, gain=gain, amp=amp, correct=SELF_NOISE_STEPS)
        out = _added(frame, delta * np.float32(fade))
    return out, landmarks, gain, amp


def face_box(landmarks: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the landmarks' box in whole pixels, from 0: where a face's SSIM is judged (`_unseen`)."""
    x0, y0 = np.maximum(np.floor(landmarks.min(0)).astype(int), 0)
    x1, y1 = np.ceil(landmarks.max(0)).astype(int) + 1
    return int(x0), int(y0), int(x1), int(y1)


def _unseen(frame: np.ndarray, landmarks: np.ndarray, delta: np.ndarray, z: float) -> float:
    """The share of the mark (`delta`, read at signature z by `_embed_at`) to keep: less, in up to VISIBLE_TRIES
    steps, until the face (luma in the landmarks' box, marked against unmarked) has an SSIM of VISIBLE_SSIM, but
    never less than would read SURE_Z were the whole mark's z to fall with its scale. The whole mark is scaled, the
    cancelling of the face's own reading with the payload: alone, the payload is half of what shows on a smooth
    face. Tried on the marked luma alone, as `_embed_at` reads."""
    x0, y0, x1, y1 = face_box(landmarks)
    luma = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)

    def ssim(fade: float) -> float:
        """The face's SSIM, marked with this share of the mark against unmarked."""
        return mean_ssim(luma, marked_luma(luma, delta[y0:y1, x0:x1] * np.float32(fade)))

    s = ssim(1.0)
    if s >= VISIBLE_SSIM or z <= SURE_Z:  # unseen already, or no z to spare
        return 1.0
    lowest, fade = SURE_Z / z, 1.0
    for _ in range(VISIBLE_TRIES):
        # SSIM's loss grows as the square of the mark's scale on a face with little texture
        want = max(fade * math.sqrt((1 - VISIBLE_SSIM) / max(1 - s, 1e-6)), lowest)
        if s >= VISIBLE_SSIM or want > 0.99 * fade:  # unseen, or at the floor
            break
        fade, s = want, ssim(want)
    return fade


def mean_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two grey images of 0-255 (`ssim_map`)."""
    return float(ssim_map(a, b).mean())


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Local SSIM (Wang et al. 2004; 11 px Gaussian window, sigma 1.5) of two grey images of 0-255: where on a face
    a mark shows, which the mean hides (bench/watermark_visibility.py)."""
    x, y = a.astype(np.float32), b.astype(np.float32)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my, xx, yy, xy = (cv2.GaussianBlur(v, (11, 11), 1.5) for v in (x, y, x * x, y * y, x * y))
    vx, vy, cxy = xx - mx * mx, yy - my * my, xy - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def _embed_picture(
    frame: np.ndarray, landmarks: np.ndarray, args: tuple, finder: Callable[[np.ndarray], list[np.ndarray]] | None
) -> tuple[np.ndarray, float]:
    """A picture meets no video codec: marked as strongly as it needs to read STILL_CODEC_Z once saved as
    JPEG and WebP 50, no more (fainter than a video frame's mark, or up to the ceiling when the codecs take
    more of it). (marked picture, that z)."""
    tiers = args[-1]
    out, landmarks, gain, amp = _embed_aligned(frame, landmarks, args)
    if gain is None:
        return out, 0.0
    z = codec_z(out, landmarks, tiers, finder)
    for _ in range(STILL_FIT_STEPS):
        fainter = z >= 1.3 * STILL_CODEC_Z
        want = float(np.clip(amp * (1.2 * STILL_CODEC_Z / max(z, 1.0)) ** 0.8, *AMPLITUDE))
        if (z >= STILL_CODEC_Z and not fainter) or abs(want - amp) < 0.05 * amp:  # fitted, or at a bound
            break
        d, _, want, _ = _embed_at(frame, landmarks, *args, gain=gain, amp=want, correct=SELF_NOISE_STEPS)
        tried = _added(frame, d)
        z_tried = codec_z(tried, landmarks, tiers, finder)
        if (z_tried < STILL_CODEC_Z) if fainter else (z_tried <= z):  # too faint now, or no better
            break
        out, amp, z = tried, want, z_tried
    return out, z


def codec_z(
    frame: np.ndarray,
    landmarks: np.ndarray,
    tiers: tuple[Tier, ...] = TIERS,
    finder: Callable[[np.ndarray], list[np.ndarray]] | None = None,
) -> float:
    """The weakest signature z a picture's face reads once saved by each of STILL_CODECS, aligned as verify
    would align it: to landmarks found again on the saved picture (on some faces dlib's landmarks jump by
    pixels when the mark changes: s10's by 4 px, for which verify read z 4.5 where the embed's own alignment
    read 39). `finder` (the landmarks of the faces verify finds in a picture): found again from verify's own
    detection of this face, rather than from `landmarks`. Without it, the demo's model's swap of d9 read z 23
    here and 6.4 in verify after WebP 50: verify's detection on the saved picture lay a few pixels off."""
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    zs = []
    for ext, flag, quality in STILL_CODECS:
        back = cv2.cvtColor(
            cv2.imdecode(cv2.imencode(ext, bgr, [flag, quality])[1], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
        )
        found = [landmarks] if finder is None else finder(back)
        k = same_face(found, landmarks)
        if k is None:  # verify would not find this face in the saved picture
            zs.append(0.0)
            continue
        seen = mark_landmarks(back, found[k])
        zs.append(max(read_face(back, seen, tier).z_signature for tier in tiers))
    return min(zs)


def _embed_at(
    frame: np.ndarray,
    landmarks: np.ndarray,
    model_id: str,
    region: np.ndarray | None,
    pixels: int | None,
    slack: float,
    still: bool,
    tiers: tuple[Tier, ...],
    gain: float | None = None,
    amp: float | None = None,
    correct: int = 0,
) -> tuple[np.ndarray, float | None, float, float | None]:
    """`embed` aligned to exactly these landmarks: (the mark, a luminance delta for `_added`; z per unit pattern
    coefficient; amplitude; the signature z the mark was read at, or None when it was not read as returned).
    `gain`: that z per unit as measured at landmarks a pixel or so away (it is the same; one read saved).
    `amp`: embed at this amplitude rather than the one that reaches the tier's target z.
    `correct`: read the decoys back this many times and cancel what the mark leaked into them (SELF_NOISE_STEPS)."""
    tier = tier_for(landmarks, STILL_MIN_CELL_PX if still else MIN_CELL_PX, tiers)
    target = tier.target * slack
    geometry = m, mask = _crop_geometry(landmarks, tier)  # once per face: every read below shares it
    # Every read below is of the luminance alone: the mark adds the same to R, G and B, which adds exactly that to
    # OpenCV's luma (its weights sum to one), so reading `marked_luma` is reading the marked frame, at a third of
    # the work (up to channels clipped at 0 or 255). The frame itself is marked once, by the caller (`_added`).
    luma = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    gray = luma.astype(np.float32)
    crop = cv2.warpAffine(gray, m, (tier.size, tier.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    weight = (_ring_weight(crop, mask) if tier.ring else texture_weight(crop, mask)) * mask
    h, w = frame.shape[:2]
    inv = dict(flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def render(coeffs: np.ndarray, scale: float) -> np.ndarray:
        """The mark for these pattern coefficients, its peaks clipped at PEAK x scale, in frame pixels."""
        mark = np.tensordot(coeffs, patterns(tier), axes=1)
        mark = np.clip(mark, -PEAK * scale, PEAK * scale) * weight
        delta = cv2.warpAffine(mark.astype(np.float32), m, (w, h), **inv)
        return delta * region if region is not None else delta

    def marked(coeffs: np.ndarray, scale: float) -> np.ndarray:
        """The mark for these coefficients, as added to the frame (peaks clipped, PSNR capped)."""
        return capped(np.clip(render(coeffs, scale), -MAX_DELTA, MAX_DELTA), pixels)

    def read(delta: np.ndarray) -> FaceMark:
        return read_face(marked_luma(luma, delta), landmarks, tier, geometry)

    base = np.concatenate([payload_bits(model_id) * _bit_gains(), np.zeros(N_DECOYS, np.float32)])  # decoys: 0
    lo, hi = AMPLITUDE
    r0 = read_face(luma, landmarks, tier, geometry)
    if gain is None:
        r1 = read_face(gray + capped(render(base * lo, lo), pixels), landmarks, tier, geometry)  # before rounding
        per_unit = (r1.z_bits * r1.sigma / r0.sigma - r0.z_bits) / (lo * base[:N_BITS])  # z per unit coefficient
        gain = float(np.median(per_unit))
    g = gain
    if not np.isfinite(g) or g <= 0:
        return marked(base * hi, hi), None, hi, None
    host = np.concatenate([r0.z_bits, r0.z_decoys])  # the host face's own reading of every pattern
    sig_per_amp = g * float(np.abs(base[:N_SIG]).sum()) / math.sqrt(N_SIG)  # signature z per unit amplitude
    # The prediction is linear and exact before rounding, which costs a face some of its z: aim above the
    # target (AIM), so that faces pass the first check (measured: 1.0 checks a face instead of 1.7).
    fixed = amp is not None
    amp = float(np.clip(amp if fixed else AIM * target / sig_per_amp, lo, hi))
    seen = None  # the signature z of `delta` as it stands, once read
    for _ in range(3):  # the output is rounded to 8 bits: check, correct
        coeffs = base * amp - host / g  # cancel the host's own reading of each pattern, decoys included
        delta = marked(coeffs, amp)
        if fixed:
            break
        r = read(delta)
        seen = r.z_signature
        z = r.z_signature * r.sigma / r0.sigma  # against the host's spread: as strong as before, not fainter
        if z >= target or amp >= hi:
            break
        amp = float(min(hi, amp * max(1.1, AIM * target / max(z, 1.0))))
    for _ in range(correct):  # the decoys made to read nothing (in the host's spreads, as `host`)
        r = read(delta)
        coeffs[N_BITS:] -= r.z_decoys * r.sigma / r0.sigma / g
        delta, seen = marked(coeffs, amp), None
    return delta, g, amp, seen  # `marked` capped it


def _bit_gains() -> np.ndarray:
    """Per-pattern gains: SIGNATURE_SHARE of the energy to the 16 signature bits, the rest to the model id."""
    g = np.full(N_BITS, math.sqrt((1 - SIGNATURE_SHARE) / (N_BITS - N_SIG)), np.float32)
    g[:N_SIG] = math.sqrt(SIGNATURE_SHARE / N_SIG)
    return g


def texture_weight(crop: np.ndarray, mask: np.ndarray, band: np.ndarray | None = None) -> np.ndarray:
    """Local texture of the face in the mark's band, as a weight with mean 1 inside the mask (0.4 to 2.5)."""
    band = _bandpass(crop) if band is None else band
    return _as_weight(np.sqrt(cv2.GaussianBlur(band**2, (0, 0), 4.0)), mask, floor=0.4)


def _ring_weight(crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Like `texture_weight`, but the texture at a pixel is the least within a cell or two of it: an edge
    (hair against a plain wall) does not hide a mark on the flat side next to it."""
    energy = np.sqrt(cv2.GaussianBlur(_bandpass(crop) ** 2, (0, 0), 2.0))
    energy = cv2.GaussianBlur(cv2.erode(energy, np.ones((RING_MASK_PX, RING_MASK_PX), np.uint8)), (0, 0), 2.0)
    return _as_weight(energy, mask, floor=RING_TEXTURE_FLOOR)


def _as_weight(energy: np.ndarray, mask: np.ndarray, floor: float) -> np.ndarray:
    """Local texture energy as a weight: `floor` to 2.5 times its mean inside the mask, then mean 1 there."""
    mean = float((energy * mask).sum() / max(mask.sum(), 1e-6)) + 1e-6
    w = np.clip(energy / mean, floor, 2.5)
    return w / (float((w * mask).sum() / max(mask.sum(), 1e-6)) + 1e-6)


def capped(delta: np.ndarray, pixels: int | None = None) -> np.ndarray:
    """A luminance delta scaled down if needed to keep PSNR >= MIN_PSNR over `pixels` (default: the delta's own;
    more when it covers a region of a larger frame)."""
    n = max(pixels or delta.size, delta.size)
    rms = math.sqrt(float(np.dot(delta.ravel().astype(np.float64), delta.ravel())) / n)
    cap = 255.0 / 10 ** (MIN_PSNR / 20)
    return delta * np.float32(cap / rms) if rms > cap else delta


def _steps(delta: np.ndarray) -> np.ndarray:
    """The delta rounded to whole grey levels (half up), as int16."""
    return np.floor(delta + 0.5).astype(np.int16)


def add_mark(frame: np.ndarray, delta: np.ndarray, pixels: int | None = None) -> np.ndarray:
    """Add a luminance delta to R, G and B equally, `capped` over `pixels`, rounded to 8 bits."""
    return _added(frame, capped(delta, pixels))


def _added(frame: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """`add_mark` of a delta already `capped`."""
    return np.clip(frame.astype(np.int16) + _steps(delta)[..., None], 0, 255).astype(np.uint8)


def marked_luma(luma: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """The 8-bit luma (`cv2.COLOR_RGB2GRAY`) of the frame `add_mark` makes from the frame of this luma, exactly
    where no channel clips at 0 or 255: a whole grey level added to R, G and B adds one to OpenCV's luma."""
    return np.clip(luma.astype(np.int16) + _steps(delta), 0, 255).astype(np.float32)


def in_frame(shape: tuple[int, ...], m: np.ndarray, size: int) -> np.ndarray | None:
    """Which pixels of a `size` crop taken with matrix `m` lie inside a frame of this shape (1 inside, 0 out), or
    None when all do. Why: a face cut by the frame's edge (a screen recording's 16:9 crop takes the chin) is
    cropped with the frame reflected at its edge, and that mirror image of the face, mark and texture, only
    adds noise to every pattern's correlation. Read on the face inside the frame alone, d18's screen recording
    went from 95.8% of frames marked to 100% (mean z 11.0 -> 13.6, p10 6.0 -> 8.3)."""
    h, w = shape[:2]
    corners = np.array([[0, 0], [size - 1, 0], [size - 1, size - 1], [0, size - 1]], np.float64)
    back = transform_points(invert(m), corners)  # the crop's corners in frame pixels
    if back[:, 0].min() >= 0 and back[:, 1].min() >= 0 and back[:, 0].max() <= w - 1 and back[:, 1].max() <= h - 1:
        return None
    frame_corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64)
    poly = np.round(transform_points(m, frame_corners) * 16).astype(np.int32)  # 4 bits of sub-pixel precision
    inside = np.zeros((size, size), np.float32)
    cv2.fillConvexPoly(inside, poly, 1.0, lineType=cv2.LINE_AA, shift=4)
    return inside


@dataclass
class FaceMark:
    """What the detector read from one face: z-scores of the 32 payload bits and of the signature."""

    z_bits: np.ndarray  # (32,) correlation of each payload pattern / null spread
    z_signature: float
    z_decoys: np.ndarray  # (N_DECOYS,) the decoys' correlations / the same spread
    sigma: float  # the null spread: the decoys' rms correlation

    @property
    def marked(self) -> bool:
        return self.z_signature > THRESHOLD


def read_face(
    frame: np.ndarray,
    landmarks: np.ndarray,
    tier: Tier | None = None,
    geometry: tuple[np.ndarray, np.ndarray] | None = None,
) -> FaceMark:
    """Correlate one face (68 landmarks in frame pixels) against one tier's payload and decoy patterns
    (default: the tier `embed` would choose for these landmarks; `verify` tries every tier).
    `geometry`: the face's (matrix, mask) from `_crop_geometry`, when already known."""
    tier = tier or tier_for(landmarks)
    m, mask = geometry if geometry is not None else _crop_geometry(landmarks, tier)
    mask = _read_mask(frame.shape, m, tier.size, mask)
    resid = _whitened(frame, m, tier.size, mask, tier.channel) * mask
    return _as_read(_filtered_patterns(tier) @ resid.reshape(-1))


def _read_mask(shape: tuple[int, ...], m: np.ndarray, size: int, mask: np.ndarray) -> np.ndarray:
    """The face's mask in its crop, less what lies outside the frame (`in_frame`)."""
    inside = in_frame(shape, m, size)
    return mask if inside is None else mask * inside


def _whitened(frame: np.ndarray, m: np.ndarray, size: int, mask: np.ndarray, channel: str = "y") -> np.ndarray:
    """The `size` crop's (frame -> crop matrix `m`) band-passed luminance over its local texture (measured
    inside `mask`): what the patterns are correlated with. Textured parts weigh less: the matched filter.
    `channel` "cb": the crop's band-passed Cb as it is (the colour mark is not shaped by texture)."""
    if channel == "cb":
        if frame.ndim == 2:  # a grey picture has no colour, nor a colour mark
            return np.zeros((size, size), np.float32)
        rgb = cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        band = _bandpass(cb_plane(rgb))  # Cb is linear in R, G, B: cropping first is the same, at less cost
        return band if np.abs(band).max() > 1e-3 else np.zeros_like(band)  # grey in RGB: float dust, not colour
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    crop = cv2.warpAffine(
        gray.astype(np.float32), m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    band = _bandpass(crop)
    return band / texture_weight(crop, mask, band)


# OpenCV's YCrCb (BT.601): Cb = 0.564 (B - Y) + 128. Adding d to Cb with Y and Cr unchanged adds d x CB_RGB to R, G, B.
CB_WEIGHTS = np.array([-0.168736, -0.331264, 0.5], np.float32)  # Cb - 128 from R, G, B
CB_RGB = np.array([0.0, -0.114 / 0.587 / 0.564, 1 / 0.564], np.float32)


def cb_plane(rgb: np.ndarray) -> np.ndarray:
    """The Cb of an RGB image (float32, centred on 0): `cv2.COLOR_RGB2YCrCb`'s, less 128, unrounded."""
    return rgb.astype(np.float32) @ CB_WEIGHTS


def _signature_z(corr: np.ndarray) -> np.ndarray:
    """The signature's z of each row of (payload + decoys) correlations: its 16 bits combined, against the
    row's own decoys' spread."""
    sigma = np.sqrt(np.mean(corr[..., N_BITS:] ** 2, axis=-1)) + 1e-9
    return corr[..., :N_SIG] @ payload_bits("0000")[:N_SIG] / math.sqrt(N_SIG) / sigma


def _as_read(corr: np.ndarray) -> FaceMark:
    """One face's read from its (payload + decoys) correlations."""
    sigma = float(np.sqrt(np.mean(corr[N_BITS:] ** 2))) + 1e-9
    z = corr / sigma
    return FaceMark(z[:N_BITS].astype(np.float32), float(_signature_z(corr)), z[N_BITS:].astype(np.float32), sigma)


# On a motion-blurred face dlib's refinement does not settle: refined again from verify's detection, d12's frame
# 49 (swapped by its own model) read z 3.6 / 9.6 / 24 / 29 after 2 / 3 / 4 / 6 steps, the mark aligned 2-3 px
# from where the first two steps put it. Verify reads the face after each of these steps (each a look).
READ_STEPS = (2, 4, 6)


def read_mark(
    frame: np.ndarray, landmarks: np.ndarray, tiers: tuple[Tier, ...] = TIERS, enough: float = math.inf
) -> FaceMark:
    """The face's mark as `embed` aligned it (`mark_landmarks`, refined READ_STEPS times), read in each of `tiers`
    (verify's: VIDEO_TIERS, and for a picture RING_TIERS too): the strongest read. Each tier and each step is a look
    for the false-alarm rate: `false_positive_rate() * len(tiers) * len(READ_STEPS)` per face. `enough`: no further
    refinement once a read reaches this z (each costs two calls of dlib's shape predictor)."""
    reads, done = [], 0
    for steps in READ_STEPS:
        landmarks = mark_landmarks(frame, landmarks, steps - done)
        done = steps
        reads += [read_face(frame, landmarks, tier) for tier in tiers]
        if max(r.z_signature for r in reads) >= enough:
            break
    return max(reads, key=lambda r: r.z_signature)


# Where dlib's landmarks have more than one resting place (a head turning fast, a blurry painted face), verify's
# may land a few pixels and a few percent of scale from those the mark was aligned to, whatever the refinement:
# d12's frames 32, 48 and 169 (swapped by its own model) read z 1.0-1.3 at verify's alignment and 6.6-10.3 at
# one 4-12% smaller and a pixel or two off. In a file already decided marked, verify reads a face that does not
# read as marked again at these alignments around the embed's own (`search_mark`).
SEARCH_SCALES = (0.88, 0.92, 0.96, 1.0, 1.04)  # of the crop, about its centre
SEARCH_SHIFTS = (-2.0, -1.0, 0.0, 1.0, 2.0)  # crop pixels, in x and in y
SEARCH_MARGIN = 16  # crop pixels of face read around the crop, for the alignments that reach beyond it


def search_mark(frame: np.ndarray, landmarks: np.ndarray) -> FaceMark:
    """The face's mark read at every alignment of SEARCH_SCALES x SEARCH_SHIFTS around `mark_landmarks`, in each
    of VIDEO_TIERS (a video's and a picture's face alike): the strongest read, its z the one a single
    read would need to be as unlikely by chance (`single_read_z`): marked as one read is. Every tier, as
    `read_mark` reads: a rescaled video may have moved the face to the other tier's size (d18's screen
    recording, 1.5x: 6 of 216 frames unread, each found at 125 alignments of the coarse tier, where the tier
    `embed` would choose for the larger face found none).

    The whitened band is computed once per tier, over a crop SEARCH_MARGIN wider, and each alignment resamples
    it (the band and the texture weight barely change over a few pixels and percent): the 125 reads of a tier
    take about 14 ms, what 30 of `read_face` take."""
    landmarks = mark_landmarks(frame, landmarks, REFINE_STEPS)
    corr = np.concatenate([_searched_corr(frame, landmarks, tier) for tier in VIDEO_TIERS])  # (alignments, 80)
    best = _as_read(corr[int(np.argmax(_signature_z(corr)))])
    best.z_signature = single_read_z(best.z_signature, len(corr))
    return best


def _searched_corr(frame: np.ndarray, landmarks: np.ndarray, tier: Tier) -> np.ndarray:
    """(alignments, 80): the patterns' correlations at every alignment of the search, in one tier."""
    m, mask = _crop_geometry(landmarks, tier)
    mask = _read_mask(frame.shape, m, tier.size, mask)
    pad, size = SEARCH_MARGIN, tier.size
    wide = m + np.array([[0, 0, pad], [0, 0, pad]])  # the crop SEARCH_MARGIN wider on every side
    wide_mask = cv2.copyMakeBorder(mask, *(pad,) * 4, cv2.BORDER_CONSTANT)
    resid = _whitened(frame, wide, size + 2 * pad, wide_mask, tier.channel)
    c = (size - 1) / 2
    warped = []
    for s in SEARCH_SCALES:
        for dy in SEARCH_SHIFTS:
            for dx in SEARCH_SHIFTS:
                # crop pixel u of the alignment s m + (1 - s) c + d lies at (u - (1 - s) c - d) / s + pad in `wide`
                a = np.array([[1 / s, 0, pad - ((1 - s) * c + dx) / s], [0, 1 / s, pad - ((1 - s) * c + dy) / s]])
                warped.append(cv2.warpAffine(resid, a, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP))
    return (np.stack(warped) * mask).reshape(len(warped), -1) @ _filtered_patterns(tier).T


def single_read_z(z: float, reads: int) -> float:
    """The z a single read would need to be as unlikely on an unmarked face as the best of `reads` reads at `z`
    (a union bound: neighbouring alignments read much alike, so the true chance is lower). Under the line
    (`search_threshold`) only the order matters: shifted, not converted."""
    line = search_threshold(reads)
    return z - (line - THRESHOLD) if z <= line else t_isf(reads * false_positive_rate(z), N_DECOYS)


@cache
def search_threshold(reads: int) -> float:
    """The z the best of `reads` reads must exceed to be as unlikely on an unmarked face as one read at THRESHOLD."""
    return t_isf(false_positive_rate() / reads, N_DECOYS)


def t_isf(p: float, dof: int) -> float:
    """The t with P(T > t) = p, for Student's t with `dof` degrees of freedom (0 < p <= 0.5)."""
    lo, hi = 0.0, 40.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_sf(mid, dof) > p else (lo, mid)
    return hi


def t_sf(t: float, dof: int) -> float:
    """P(T > t) for Student's t with `dof` degrees of freedom (numerical integration of the density)."""
    if t <= 0:
        return 1.0 - t_sf(-t, dof)
    logc = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    # substitute u = 1 / (1 + x^2/dof) is awkward near 0; integrate in x on a log-spaced grid instead
    x = t * np.exp(np.linspace(0, math.log(1e4), 20001))
    pdf = np.exp(logc - (dof + 1) / 2 * np.log1p(x**2 / dof))
    return float(np.trapezoid(pdf, x))


def false_positive_rate(threshold: float = THRESHOLD) -> float:
    """Per-face probability that an unmarked face scores above `threshold`.

    Under "no mark" each correlation is a zero-mean sum over thousands of pixels, close to normal with a
    spread the 48 decoys estimate; the signature's z is then Student-t with N_DECOYS degrees of freedom.
    """
    return t_sf(threshold, N_DECOYS)
