"""Extraction: from videos, images and folders to an aligned, indexed face set; resumable.

Frames are analysed in worker processes (dlib uses one core each) while the parent writes the index in
order, one transaction per frame.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from masquerade.core.atomic import make_folder, remove_stale_temps
from masquerade.core.errors import InputError, MasqueradeError
from masquerade.core.lock import FolderLock
from masquerade.core.types import Face, Progress
from masquerade.faces.analyze import FaceAnalyzer
from masquerade.faces.identity import SAME_PERSON_DISTANCE, distance, main_person
from masquerade.faceset.store import FaceSet
from masquerade.media.reader import (
    Frame,
    ReadStats,
    is_image_path,
    list_sources,
    probe,
    read_frames,
    read_image,
)


@dataclass
class ExtractOptions:
    size: int = 256
    padding: float = 0.3
    every: int = 1
    detector: str = "auto"
    min_face: int = 40
    max_faces: int = 0
    min_blur: float = 0.0
    identity: str | None = None
    workers: int = 0  # 0: one per core, at most 4


@dataclass
class ExtractSummary:
    sources: int = 0
    frames_read: int = 0
    frames_done_before: int = 0
    faces_kept: int = 0
    corrupt_frames: int = 0
    skipped: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        skipped = ", ".join(f"{n} {k}" for k, n in sorted(self.skipped.items())) or "none"
        out = [
            f"sources: {self.sources}, frames read: {self.frames_read}"
            + (f" (+{self.frames_done_before} done before, skipped)" if self.frames_done_before else ""),
            f"faces kept: {self.faces_kept}; faces or frames skipped: {skipped}",
            f"corrupt frames skipped: {self.corrupt_frames}; time: {self.seconds:.1f} s",
        ]
        return out + self.notes


def reference_embedding(ref: str | Path, analyzer: FaceAnalyzer | None = None) -> np.ndarray:
    """The identity to keep: the mean embedding of a face set, or of the largest face in an image."""
    ref = Path(ref)
    if (ref / "faceset.db").is_file():
        with FaceSet.open(ref) as fs:
            return fs.mean_embedding()
    if not is_image_path(ref):
        raise InputError(ref, "--identity takes an image of the person or a face set folder")
    faces = (analyzer or FaceAnalyzer(embeddings=True))(read_image(ref))
    if not faces:
        raise InputError(ref, "no face found in the --identity image")
    return faces[0].embedding


# -- worker side -------------------------------------------------------------------------------------
_analyzer: FaceAnalyzer | None = None


def _init_worker(opts: ExtractOptions) -> None:
    global _analyzer  # one analyzer per worker process; dlib models load once
    _analyzer = FaceAnalyzer(
        opts.detector, opts.min_face, crop_size=opts.size, padding=opts.padding, embeddings=True, quality=True
    )


def _analyze(item: tuple[int, Frame]) -> tuple[int, Frame, list[Face]]:
    assert _analyzer is not None
    sid, frame = item
    faces = _analyzer(frame.image)
    frame.image = None  # do not ship the frame back
    return sid, frame, faces


def _select(faces: list[Face], opts: ExtractOptions, ref: np.ndarray | None, skipped: Counter) -> list[Face]:
    kept = []
    for f in faces:
        if f.blur < opts.min_blur:  # (faces under --min-face never leave the analyzer)
            skipped["blurry"] += 1
        elif ref is not None and distance(f.embedding, ref) >= SAME_PERSON_DISTANCE:
            skipped["other identity"] += 1
        else:
            kept.append(f)
    if opts.max_faces and len(kept) > opts.max_faces:
        skipped["over --max-faces-per-frame"] += len(kept) - opts.max_faces
        kept = kept[: opts.max_faces]
    return kept


def _pool_map(
    opts: ExtractOptions, items: Iterable[tuple[int, Frame]], total: int
) -> Iterator[tuple[int, Frame, list[Face]]]:
    """Analyse frames in worker processes, results in input order, at most two frames per worker in flight
    (a long video is never read ahead into memory). A worker that dies raises instead of hanging: a
    multiprocessing.Pool would silently start another, forever, e.g. under a script with no main guard."""
    workers = min(opts.workers or min(mp.cpu_count(), 4), total)
    if workers <= 1:
        _init_worker(opts)
        yield from map(_analyze, items)
        return
    ctx = mp.get_context("spawn")  # safe beside torch's threads, same on every OS
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(opts,))
    pending: deque[Future] = deque()
    try:
        for item in items:
            pending.append(pool.submit(_analyze, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BrokenProcessPool as e:
        raise MasqueradeError(
            "a face-analysis worker process died (out of memory, or a Python script that calls extract() "
            'without an `if __name__ == "__main__":` guard); ExtractOptions(workers=1) runs in this process'
        ) from e
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def extract(
    sources: list[str | Path],
    output: str | Path,
    opts: ExtractOptions | None = None,
    progress: Progress | None = None,
) -> ExtractSummary:
    """Extract faces from `sources` into the face set at `output`; frames already indexed are skipped.

    `progress(frames_done, frames_total, {"faces": faces kept})` is called after every frame.
    """
    opts = opts or ExtractOptions()
    if opts.every < 1:
        raise InputError("--every", "must be 1 or more")
    if not 32 <= opts.size <= 2048:
        raise InputError("--size", f"must be from 32 to 2048 pixels (got {opts.size})")
    t0 = time.monotonic()
    files = list_sources(sources)
    infos = [probe(f) for f in files]  # fail fast on bad input, before any work
    ref = reference_embedding(opts.identity) if opts.identity else None
    summary = ExtractSummary(sources=len(files))
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise InputError(output, "output exists and is not a folder")
    make_folder(output)
    with FolderLock(output, "extract"), FaceSet.create(output, opts.size, opts.padding) as fs:
        remove_stale_temps(output / "faces")  # crops a killed run was writing (we hold the folder's lock)
        plan = []
        for info in infos:
            sid = fs.add_source(info)
            done = fs.done_frames(sid)
            todo = len(range(0, max(info.frames, 1), opts.every)) - len(done)
            summary.frames_done_before += len(done)
            plan.append((info, sid, done, max(todo, 0)))
        total = sum(p[3] for p in plan)
        stats = ReadStats()
        items = (
            (sid, frame)
            for info, sid, done, _ in plan
            for frame in read_frames(info.path, every=opts.every, stats=stats, skip=done)
        )
        for count, (sid, frame, faces) in enumerate(_pool_map(opts, items, total), start=1):
            if not faces:
                summary.skipped["frames with no face"] += 1
            kept = _select(faces, opts, ref, summary.skipped)
            fs.add_frame(sid, frame.index, frame.time, kept)
            summary.faces_kept += len(kept)
            summary.frames_read += 1
            if progress:
                progress(count, total, {"faces": summary.faces_kept})
        summary.corrupt_frames = stats.corrupt
        summary.notes.extend(stats.notes)
        if others := int((~main_person(fs.embeddings())).sum()):
            summary.notes.append(
                f"{others} of {len(fs)} faces do not look like the set's main person (someone else, or no face at"
                " all): train leaves them out; --identity REF keeps only one person's faces"
            )
    summary.seconds = time.monotonic() - t0
    return summary
