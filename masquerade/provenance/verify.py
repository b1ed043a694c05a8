"""`verify`: does a file carry masquerade's mark? Per file: frames checked, share marked, payload, label, and
the C2PA manifest (present, valid, signer, actions).

A frame carries the mark when one of its faces does (signature z > THRESHOLD). A file is marked when
chance cannot explain what was seen (probability below 1e-6 for an unmarked file) and the payload read from
all marked faces together starts with the tool signature. "What was seen" is either enough marked frames
(binomial tail under the per-face false-positive rate), or one face so strongly marked that no face among
all those checked would reach it by chance (this is what decides single images).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from masquerade.core.errors import InputError
from masquerade.faces.align import mirror_landmarks
from masquerade.faces.analyze import FaceAnalyzer
from masquerade.media import probe, read_frames, read_label, sample_keyframes
from masquerade.provenance import watermark as wm
from masquerade.provenance.credentials import ManifestReport, read_manifest

FILE_FALSE_ALARM = 1e-6
# The model id is reported only when its weakest bit, summed over the marked faces, reaches this many times
# the decoys' sums' spread (`model_code_z`; Student-t with 48 degrees of freedom): each bit is then wrong with
# probability below 3e-5, all 16 below 5e-4. Below it the id is "unreadable", never a wrong id.
MODEL_ID_Z = 4.4
EDGE_READS = 2  # a face cut by the frame's edge is found twice: see `_landmarks`
# A face read at this z is marked beyond doubt: verify takes no further looks at it (more refinements of its
# landmarks, its mirror image), which on a clean output cost about 0.15 s a face at 480p. Every look is still
# counted in the false-alarm rule (looks_per_frame): stopping early can only lower an unmarked face's best z.
# Measured (swap's output, 30 frames each, every frame): d18 clean 6.8 -> 3.5 s, d12 9.5 -> 6.5 s, with the same
# frames marked on d18, d12, s29 and s13, clean and after CRF 35; mean z 75.9 -> 73.2 on d18, the model id's
# z 13.1 -> 12.8 (s29 5.8 -> 5.5, d12 5.9 -> 5.7; named at 4.4). Where frames are large (s29, 720x1364) verify's
# time is its face detector's: 0.36 s a frame.
SURE_Z = 9.0
MAX_UNREAD = 16  # frames kept to be searched (`_searched`) once the file is decided, at most (whole frames)
LONG_VIDEO = 10  # a video with more than 10x the frames to check is sampled at its keyframes...
MIN_KEYFRAMES = 60  # ...when it has at least this many (else every Nth frame, decoded in order)


def tiers_read(still: bool = False) -> tuple[wm.Tier, ...]:
    """The tiers a face is read in: a video's, and for a picture also the ring a picture may be marked in. A
    picture may be a video's frame (a screenshot, a still exported from it): JPEG 50 files of d18's swapped
    frames, read without the colour tiers, were decided marked for 64% of frames."""
    return wm.VIDEO_TIERS + wm.RING_TIERS if still else wm.VIDEO_TIERS


def looks_per_frame(tiers: tuple[wm.Tier, ...] = wm.VIDEO_TIERS) -> int:
    """Chances per frame for an unmarked file to score: each face found (up to 3 windows, twice when cut by the
    frame's edge) is read in each of `tiers` (a picture's include the ring), as it is and mirrored (a flipped
    video keeps its mark; a rescaled one may have moved to the other tier's size), after each of
    `watermark.READ_STEPS` refinements of its landmarks. (The search around a face's alignment, `_searched`,
    only counts frames in a file already decided: it is no look.)"""
    return EDGE_READS * wm.FINDER["max_faces"] * 2 * len(tiers) * len(wm.READ_STEPS)


LOOKS_PER_FRAME = looks_per_frame()  # a video's


@dataclass
class VerifyResult:
    path: str
    marked: bool
    frames_checked: int
    frames_with_face: int
    frames_marked: int  # read as marked, or, in a file decided marked, found by searching around a face
    fraction_marked: float  # of the frames checked
    signature: str | None  # decoded from all marked faces, hex
    model_code: str | None  # the 16-bit model id, hex (first 4 hex digits of the model id)
    model_code_z: float  # the weakest model-id bit against the decoys (`model_code_z`): below MODEL_ID_Z, not reported
    label: str | None
    mean_z: float
    min_marked_frames: int
    credentials: ManifestReport | None = None  # the file's C2PA manifest (verify_file reads it; swap's check not)

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        verdict = "MARKED as synthetic (masquerade)" if self.marked else "no masquerade mark found"
        out = [
            f"{self.path}: {verdict}",
            f"  frames checked: {self.frames_checked}, with a face: {self.frames_with_face}, "
            f"carrying the mark: {self.frames_marked} ({self.fraction_marked:.1%})",
        ]
        if self.signature is not None:
            ok = wm.signature_ok(int(self.signature, 16))
            model = self.model_code or "unreadable (the marked frames do not name it for sure)"
            out.append(
                f"  payload: signature 0x{self.signature} ({'masquerade' if ok else 'not masquerade'}), model {model}"
            )
        note = ""
        if self.label and not self.marked:
            note = " (contradicts the pixels, which carry no mark: a label is easily added or removed)"
        out.append(f"  metadata label: {self.label or 'none'}{note}")
        if self.credentials is not None:
            out.append(f"  content credentials: {self.credentials.summary()}")
        return out


def min_marked_frames(
    frames: int,
    p_face: float | None = None,
    faces_per_frame: int = LOOKS_PER_FRAME,
    alarm: float = FILE_FALSE_ALARM,
) -> int:
    """Smallest k such that P(at least k of `frames` unmarked frames score as marked) < `alarm`."""
    p = min(1.0, (p_face if p_face is not None else wm.false_positive_rate()) * faces_per_frame)
    tail, k = 1.0, 0
    while k <= frames:
        # P(X >= k+1) = P(X >= k) - P(X = k)
        pk = math.comb(frames, k) * p**k * (1 - p) ** (frames - k)
        tail -= pk
        k += 1
        if tail < alarm:
            return k
    return frames + 1


def strict_threshold(frames: int, faces_per_frame: int = LOOKS_PER_FRAME) -> float:
    """z above which a single face decides: frames * faces * P(T > z) < FILE_FALSE_ALARM."""
    return max(wm.THRESHOLD, wm.t_isf(FILE_FALSE_ALARM / (frames * faces_per_frame), wm.N_DECOYS))


def _sides(image: np.ndarray, landmarks: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The face as it is and mirrored (a flipped video keeps its mark): (image, landmarks) each, the mirror
    image made only when asked for."""
    yield image, landmarks
    yield np.ascontiguousarray(image[:, ::-1]), mirror_landmarks(landmarks, image.shape[1])


def read_frame(image: np.ndarray, fa: FaceAnalyzer, still: bool = False) -> tuple[list[np.ndarray], list[wm.FaceMark]]:
    """The faces verify finds in one frame and the mark of each, as it is or mirrored, in each tier
    (`still`: a picture, also read in the ring tiers), whichever reads strongest: `looks_per_frame` looks."""
    faces = _landmarks(fa, image)
    return faces, [_read_sides(image, f, tiers_read(still)) for f in faces]


def _read_sides(image: np.ndarray, landmarks: np.ndarray, tiers: tuple[wm.Tier, ...]) -> wm.FaceMark:
    """A face's strongest read, as it is and mirrored; once a read reaches SURE_Z, no more looks are taken."""
    best = None
    for side, lm in _sides(image, landmarks):
        r = wm.read_mark(side, lm, tiers, enough=SURE_Z)
        best = r if best is None or _z(r) > _z(best) else best
        if _z(best) >= SURE_Z:
            break
    return best


def _searched(image: np.ndarray, faces: list[np.ndarray]) -> bool:
    """Whether one of these faces, none read as marked, is found marked by searching around its alignment
    (`watermark.search_mark`), as it is and mirrored. Where dlib's landmarks do not settle (a head turning
    fast, a blurry painted face) verify's land a few pixels and percent off the embed's. Only in a file already
    decided marked: on d18's own face, unmarked, the best of the searched alignments read as one read at 4.3-4.6
    over 12 frames in a row, while its reads stayed under 3.5 (the face's texture matches the signature
    somewhere near, frame after frame). It counts a marked file's frames; it never decides a file."""
    return any(wm.search_mark(i, lm).marked for f in faces for i, lm in _sides(image, f))


def _z(r: wm.FaceMark) -> float:
    return r.z_signature


def _landmarks(fa: FaceAnalyzer, image: np.ndarray) -> list[np.ndarray]:
    """The faces' landmarks; for a frame with a face cut by its edge (a 16:9 screen recording cuts chins),
    also the faces found again in the frame extended at its edges, where the detector's box keeps the face's
    shape. Both are read (EDGE_READS): on d18 cut at 70% of its height, the cut frame's faces alone read the
    mark in 7 of 10 frames, the extended frame's in 4, both in 10; on a screen recording of d18, 33 and 36 of
    36 sampled frames (18 before `mark_landmarks` extended the edges too)."""
    found = [f.landmarks for f in fa(image)]
    pad = max((wm.edge_pad(image.shape, lm) for lm in found), default=0)
    if not pad:
        return found
    return found + [f.landmarks - pad for f in fa(wm.extend_edges(image, pad))]


def model_code_z(z_sum: np.ndarray, decoy_sum: np.ndarray, marked: int) -> float:
    """How surely the model id is read from the bit z-scores summed over `marked` faces: its weakest bit
    against the spread of the decoys' sums. The frames of one face are not independent: the host's texture
    that the embed's cancellation misses at verify's alignment, and the payload's cross-talk into other
    patterns, repeat in every frame, so a sum over n frames spreads by more than sqrt(n) (the decoys' sums
    over 30 frames of d18 swapped by the tests' model: 3.9x as far clean, 4.4x after CRF 28, where one id
    bit summed to z -3.8 against the old rule's sqrt(n) and a wrong id was reported). The decoys are
    embedded and cancelled exactly as the payload is, so they carry the same bias."""
    spread = max(math.sqrt(marked), float(np.sqrt(np.mean(decoy_sum**2))))
    return float(np.abs(z_sum[wm.N_SIG :]).min() / spread) if marked else 0.0


def _decided(marked: int, checked: int, zs: list[float], z_sum: np.ndarray, looks: int) -> bool:
    """Whether these frames make the file marked: enough marked frames, or one face so strongly marked that no
    face among all those checked would reach it by chance; and the signature read from them is masquerade's."""
    enough = marked >= min_marked_frames(checked, faces_per_frame=looks)
    strong = bool(zs) and max(zs) > strict_threshold(checked, looks)
    return (enough or strong) and marked > 0 and wm.signature_ok(wm.bits_to_payload(z_sum)[0])


def _certain(marked: int, checked: int, z_sum: np.ndarray, decoy_sum: np.ndarray, looks: int) -> bool:
    """Marked beyond doubt after `checked` frames (of a video), with the false-alarm rate shared among `looks`
    tests, and the model id readable: nothing more to learn from the frames not yet checked."""
    if marked < min_marked_frames(checked, alarm=FILE_FALSE_ALARM / looks):
        return False
    sig, _ = wm.bits_to_payload(z_sum)
    return wm.signature_ok(sig) and model_code_z(z_sum, decoy_sum, marked) >= MODEL_ID_Z


def verify_analyzer() -> FaceAnalyzer:
    """The face finder verify reads marks with (and swap aligns its marks to): landmarks only."""
    return FaceAnalyzer(**wm.FINDER)


def _frames_to_check(path: Path, info, max_frames: int, all_frames: bool) -> tuple[Iterable[np.ndarray], int]:
    """(frames, how many at most) for verify: every frame; or for a long video its keyframes, coarse to fine
    (a seek and one decode each, so a 10-minute file is not decoded whole); else every Nth frame."""
    if all_frames or not info.frames:
        return (fr.image for fr in read_frames(path)), info.frames or 1
    if info.kind == "video" and info.frames > LONG_VIDEO * max_frames:
        keys = list(sample_keyframes(path, max_frames))
        if len(keys) >= MIN_KEYFRAMES:
            return (fr.image for fr in keys), len(keys)
    every = max(1, math.ceil(info.frames / max_frames))
    return (fr.image for _, fr in zip(range(max_frames), read_frames(path, every=every), strict=False)), max_frames


def verify_file(
    path: str | Path, max_frames: int = 300, analyzer: FaceAnalyzer | None = None, all_frames: bool = False
) -> VerifyResult:
    """Check a video (up to `max_frames` frames spread over it, stopping as soon as the file is certainly
    marked and its model id read; `all_frames`: every frame, no early stop) or an image for the mark."""
    path = Path(path)
    info = probe(path)  # raises InputError for missing files and non-media
    frames, looks = _frames_to_check(path, info, max_frames, all_frames)
    still = info.kind == "image"
    result = verify_frames(path, frames, analyzer, early_stop=0 if all_frames or still else looks, still=still)
    result.credentials = read_manifest(path)
    return result


def verify_frames(
    path: str | Path,
    frames: Iterable[np.ndarray],
    analyzer: FaceAnalyzer | None = None,
    early_stop: int = 0,
    still: bool = False,
) -> VerifyResult:
    """The verdict on these frames of `path` (what `verify` says, and what `swap` checks before it
    hands an output over). `early_stop`: at most this many frames will be looked at; stop as soon as the file
    is marked at a false-alarm rate divided by that number (one test per look) and its model id is read.
    `still`: the frames are pictures, also read in the ring tiers a picture may be marked in."""
    fa = analyzer or verify_analyzer()
    looks = looks_per_frame(tiers_read(still))
    checked = with_face = marked = searched = 0  # marked: read as marked; searched: found by `_searched`
    z_sum = np.zeros(wm.N_BITS, np.float64)
    decoy_sum = np.zeros(wm.N_DECOYS, np.float64)
    zs: list[float] = []
    unread: list[tuple[np.ndarray, list[np.ndarray]]] = []  # frames to search once the file is decided
    decided = False
    for image in frames:
        checked += 1
        faces, reads = read_frame(image, fa, still)
        with_face += bool(faces)
        if reads:
            zs.append(max(map(_z, reads)))
        hits = [r for r in reads if r.marked]
        if hits:
            marked += 1
            for r in hits:
                z_sum += r.z_bits
                decoy_sum += r.z_decoys
            decided = decided or _decided(marked, checked, zs, z_sum, looks)
            if early_stop and _certain(marked, checked, z_sum, decoy_sum, early_stop):
                break
        elif faces and decided:
            searched += _searched(image, faces)
        elif faces and len(unread) < MAX_UNREAD:
            unread.append((image, faces))
    if checked == 0:
        raise InputError(path, "no frame could be read")
    need = min_marked_frames(checked, faces_per_frame=looks)
    is_marked = _decided(marked, checked, zs, z_sum, looks)
    # decided on the frames so far is not decided on them all (3 of 10 frames is, 3 of 300 is not)
    searched = searched + sum(_searched(image, faces) for image, faces in unread) if is_marked else 0
    sig = code = None
    code_z = model_code_z(z_sum, decoy_sum, marked)
    if marked:
        sig_v, code_v = wm.bits_to_payload(z_sum)
        sig = f"{sig_v:04x}"
        code = f"{code_v:04x}" if code_z >= MODEL_ID_Z else None  # a model id is right or not given
    return VerifyResult(
        path=str(path),
        marked=is_marked,
        frames_checked=checked,
        frames_with_face=with_face,
        frames_marked=marked + searched,
        fraction_marked=(marked + searched) / checked,
        signature=sig,
        model_code=code,
        model_code_z=code_z,
        label=read_label(path),
        mean_z=float(np.mean(zs)) if zs else 0.0,
        min_marked_frames=need,
    )
