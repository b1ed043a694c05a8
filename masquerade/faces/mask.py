"""Face masks from landmarks: the hull of jaw and brows, raised to cover the forehead, with soft edges; and
what inside that hull is not the face's skin (hair, background) reaching in from its edge."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from masquerade.faces.align import EYE_POINTS, interocular

JAW = slice(0, 17)
BROWS = slice(17, 27)
EYES = slice(36, 48)
MOUTH = slice(48, 68)


def face_hull_points(landmarks: np.ndarray, forehead: float = 0.35) -> np.ndarray:
    """Jaw + brows, plus the brows lifted along the face's up axis by `forehead` x (brow-to-chin distance)."""
    pts = np.asarray(landmarks, np.float64)
    brows = pts[BROWS]
    chin = pts[8]
    brow_c = brows.mean(0)
    up = brow_c - chin
    lifted = brows + up * forehead
    return np.vstack([pts[JAW], brows, lifted]).astype(np.float32)


def hull_mask(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """A filled convex hull of points as a float32 mask of the given (h, w)."""
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(points * 4).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_AA, shift=2)
    return mask.astype(np.float32) / 255.0


def feather(mask: np.ndarray, erode: int = 0, blur: int = 0) -> np.ndarray:
    """Shrink a mask by `erode` px, then soften its edge with a Gaussian of about `blur` px."""
    out = mask.astype(np.float32)
    if erode > 0:
        out = cv2.erode(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode + 1, 2 * erode + 1)))
    elif erode < 0:
        out = cv2.dilate(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (-2 * erode + 1, -2 * erode + 1)))
    if blur > 0:
        k = 2 * int(blur) + 1
        out = cv2.GaussianBlur(out, (k, k), blur / 2)
    return np.clip(out, 0.0, 1.0)


def face_mask(shape: tuple[int, int], landmarks: np.ndarray, blur: int | None = None) -> np.ndarray:
    """The soft face mask for landmarks given in the coordinates of an image of `shape` (h, w)."""
    m = hull_mask(shape, face_hull_points(landmarks))
    if blur is None:
        blur = max(1, int(round(min(shape) * 0.03)))
    return feather(m, erode=blur // 2, blur=blur)


def feature_mask(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """Eyes (with brows' lower edge) and mouth, slightly grown: the regions a swap is judged by."""
    pts = np.asarray(landmarks, np.float32)
    m = np.maximum(hull_mask(shape, pts[36:42]), hull_mask(shape, pts[42:48]))
    m = np.maximum(m, hull_mask(shape, pts[MOUTH]))
    grow = max(1, int(round(min(shape) * 0.04)))
    return feather(m, erode=-grow, blur=grow)


def _in_own_box(
    shape: tuple[int, int], points: np.ndarray, pad: int, draw: Callable[[tuple[int, int], np.ndarray], np.ndarray]
) -> np.ndarray:
    """A mask of `shape`, drawn only in the box around `points` grown by `pad` px (clipped to the image) by
    `draw(box shape, box origin)`: a feature's mask drawn in its own box, not the whole image (a 250 px face's
    mouth: 0.3 ms instead of 4.7)."""
    (x0, y0), (x1, y1) = np.floor(points.min(0)).astype(int) - pad, np.ceil(points.max(0)).astype(int) + pad
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])
    out = np.zeros(shape, np.float32)
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = draw((y1 - y0, x1 - x0), np.array([x0, y0], np.float32))
    return out


def _feathered_hull(shape: tuple[int, int], points: np.ndarray, erode: int, blur: int) -> np.ndarray:
    """The hull of `points`, shrunk by `erode` px (grown if negative) and feathered by `blur` px, drawn in its own box
    (`_in_own_box`)."""

    def draw(size: tuple[int, int], origin: np.ndarray) -> np.ndarray:
        return feather(hull_mask(size, points - origin), erode=erode, blur=blur)

    return _in_own_box(shape, points, max(-erode, 0) + 2 * max(blur, 0) + 2, draw)


def mouth_mask(
    shape: tuple[int, int], landmarks: np.ndarray, inner: bool = False, grow: float = 0.04, blur: int = 0
) -> np.ndarray:
    """The mouth, grown by `grow` x the inter-ocular distance and feathered by `blur` px: what lies between the
    lips (teeth, tongue) if `inner`, else the lips and all between them. What a swap takes from the input when
    the model cannot paint it: an opening wider than the target shows (inner, so the lips stay the target's),
    or lips more closed than the target shows (the input's closed lips over a painted open mouth)."""
    pts = np.asarray(landmarks, np.float32)
    px = max(1, int(round(grow * interocular(pts))))
    return _feathered_hull(shape, pts[60:68] if inner else pts[48:60], -px, blur)


def eye_mask(shape: tuple[int, int], landmarks: np.ndarray, eye: int, blur: int = 0) -> np.ndarray:
    """One eye with its lids (`eye`: 0 the face's right, 1 its left, as `faces.align.EYE_POINTS`): an ellipse on the
    eye's corners, 1.5x the eye's width and 0.8x it high, under the brow, feathered by `blur` px. What a swap
    takes from the input when the model cannot paint it: a closed eye, over the open one the target's faces show."""
    pts = np.asarray(landmarks, np.float32)[EYE_POINTS[eye]]
    a, b = pts[0], pts[3]
    width = float(np.linalg.norm(b - a))
    centre = (a + b) / 2
    angle = float(np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0])))
    axes = (0.75 * width, 0.4 * width)

    def draw(size: tuple[int, int], origin: np.ndarray) -> np.ndarray:
        box = np.zeros(size, np.float32)
        if width > 0:
            at = tuple(int(round(v * 16)) for v in centre - origin)
            cv2.ellipse(box, at, tuple(int(round(v * 16)) for v in axes), angle, 0, 360, 1.0, -1, cv2.LINE_AA, 4)
        return feather(box, erode=0, blur=blur)

    return _in_own_box(shape, centre[None], int(np.ceil(axes[0])) + 2 * max(blur, 0) + 2, draw)


def eyeball_mask(shape: tuple[int, int], landmarks: np.ndarray, eye: int, shrink: float, soft: float) -> np.ndarray:
    """One eye between its lids (`eye` as in `eye_mask`): the hull of its six points, shrunk by `shrink` and
    feathered by `soft` x the eye's opening (the lids' mean distance), so that a narrow eye keeps as much of its
    middle as a wide one. What a swap takes from the input where the model paints an open eye: the iris and where it
    looks, which a decoder paints as a blur looking nowhere; shrunk, so that the lids' margins, the eye's shape,
    stay the model's."""
    pts = np.asarray(landmarks, np.float32)[EYE_POINTS[eye]]
    height = float(np.linalg.norm(pts[1] - pts[5]) + np.linalg.norm(pts[2] - pts[4])) / 2
    return _feathered_hull(shape, pts, int(round(shrink * height)), max(1, int(round(soft * height))))


INNER = (slice(17, 22), slice(22, 27), slice(27, 36), slice(36, 42), slice(42, 48), MOUTH)  # brows, nose, eyes


def not_skin(image: np.ndarray, landmarks: np.ndarray, tolerance: float = 3.0) -> np.ndarray:
    """Where the face hull holds something other than this face's skin that reaches in from the hull's edge:
    hair over the temples or forehead, background past a turned cheek. Float32 (h, w), 1 there.

    The face's own skin colour is measured on itself (robust median and spread in L*a*b* over the cheeks,
    away from eyes, brows, nose and mouth), so it works for any skin tone without a trained segmenter. Only
    regions touching the hull's edge count: a shadow or a crease inside the face stays face; and eyes, brows,
    nose and mouth, grown by a margin, are never cut.
    """
    h, w = image.shape[:2]
    pts = np.asarray(landmarks, np.float32)
    face = hull_mask((h, w), face_hull_points(pts)) > 0.5
    iod = interocular(pts)
    inner = np.zeros((h, w), np.float32)
    for part in INNER:
        inner = np.maximum(inner, hull_mask((h, w), pts[part]))
    inner = feather(inner, erode=-max(1, int(round(0.12 * iod)))) > 0.5  # grown by a margin
    cheeks = face & ~inner & (hull_mask((h, w), pts) > 0.5)
    if cheeks.sum() < 16:
        return np.zeros((h, w), np.float32)
    lab = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
    ref = lab[cheeks]
    med = np.median(ref, 0)
    spread = np.maximum(np.median(np.abs(ref - med), 0) * 1.4826 * tolerance, (20.0, 6.0, 6.0))
    far = np.sqrt((((lab - med) / spread) ** 2).sum(-1)) > 1.5
    other = (far & face & ~inner).astype(np.uint8)
    k = max(3, (min(h, w) // 64) | 1)
    other = cv2.morphologyEx(other, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    edge = face & (cv2.erode(face.astype(np.uint8), np.ones((k, k), np.uint8)) == 0)
    _, labels = cv2.connectedComponents(other)
    touching = np.unique(labels[edge & (other > 0)])
    return np.isin(labels, touching[touching > 0]).astype(np.float32)
