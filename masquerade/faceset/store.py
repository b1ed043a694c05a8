"""A face set on disk: FACESET/faces/*.png aligned crops and FACESET/faceset.db, an SQLite index.

One row per face (source, frame, box, 68 landmarks, alignment matrix, embedding, quality) and one per
source. Each frame is committed in one transaction together with a row in `frames`, which is what makes
re-running resumable: a frame is either fully in the index or not at all. Crop PNGs are written (atomically)
before their rows, so a crash can leave an orphan PNG, never a row without its image.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from masquerade.core.errors import InputError
from masquerade.core.types import Face
from masquerade.faces.identity import main_person
from masquerade.media.reader import MediaInfo
from masquerade.media.writer import write_image

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    fps REAL NOT NULL,
    frames INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS frames (
    source_id INTEGER NOT NULL REFERENCES sources(id),
    frame_index INTEGER NOT NULL,
    faces INTEGER NOT NULL,
    PRIMARY KEY (source_id, frame_index)
);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources(id),
    frame_index INTEGER NOT NULL,
    face_index INTEGER NOT NULL,
    time REAL NOT NULL,
    file TEXT NOT NULL UNIQUE,
    x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
    score REAL NOT NULL,
    landmarks BLOB NOT NULL,
    matrix BLOB NOT NULL,
    embedding BLOB,
    blur REAL NOT NULL,
    yaw REAL NOT NULL, pitch REAL NOT NULL, roll REAL NOT NULL,
    UNIQUE (source_id, frame_index, face_index)
);
"""


def is_holdout(face_id: int, every: int) -> bool:
    """Every `every`-th face (by index id) is kept out of training, for evaluation."""
    return every > 0 and face_id % every == 0


def main_person_records(sets: list[FaceSet]) -> tuple[list[tuple[FaceSet, FaceRecord]], int]:
    """Every face of these open face sets that is their main person, and how many are not. One person, found
    over all the faces (both splits, so they agree): a second person or a false face (s18: a blurred plant, 14
    of 296 faces) would teach a decoder, or lend its detail to, someone else."""
    records = [(fs, rec) for fs in sets for rec in fs]
    embedded = [k for k, (_, rec) in enumerate(records) if rec.face.embedding is not None]
    keep = main_person(np.stack([records[k][1].face.embedding for k in embedded])) if embedded else []
    others = {k for k, kept in zip(embedded, keep, strict=True) if not kept}
    return [r for k, r in enumerate(records) if k not in others], len(others)


@dataclass
class FaceRecord:
    """One indexed face: the `Face` (landmarks and matrix in the source frame's pixels, no crop) plus where
    it is in the face set and its source."""

    id: int
    source: str
    frame_index: int
    face_index: int
    time: float
    file: Path
    face: Face


def _checked(db_path: Path) -> sqlite3.Connection:
    """Open an existing face set index, refusing (one line) a corrupt file, a foreign SQLite database, or
    one written by a newer masquerade."""
    try:
        db = sqlite3.connect(db_path)
        if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("integrity check failed")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "sources", "frames", "faces"} <= tables:
            db.close()
            raise InputError(db_path, "not a masquerade face set index (a different SQLite database)")
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:
        raise InputError(db_path, f"corrupt or unreadable face set index ({exc})") from None
    version = meta.get("schema")
    if version is None or not str(version).isdigit() or "size" not in meta or "padding" not in meta:
        db.close()
        raise InputError(db_path, "not a masquerade face set index (no schema version)")
    if int(version) != SCHEMA_VERSION:
        db.close()
        newer = int(version) > SCHEMA_VERSION
        raise InputError(
            db_path,
            f"face set schema {version} is {'newer' if newer else 'older'} than this masquerade's "
            f"({SCHEMA_VERSION}){'; update masquerade' if newer else ''}",
        )
    return db


class FaceSet:
    """Open with `FaceSet.open(path)` to read, `FaceSet.create(path, size, padding)` to write or resume."""

    def __init__(self, root: Path, db: sqlite3.Connection):
        self.root = root
        self.db = db
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        self.size = int(meta["size"])
        self.padding = float(meta["padding"])

    @classmethod
    def open(cls, path: str | Path) -> FaceSet:
        root = Path(path)
        db_path = root / "faceset.db"
        if not db_path.is_file():
            raise InputError(root, "not a face set (no faceset.db; make one with `masquerade extract`)")
        return cls(root, _checked(db_path))

    @classmethod
    def create(cls, path: str | Path, size: int = 256, padding: float = 0.3) -> FaceSet:
        """Create a face set, or reopen an existing one for resuming (its crop size must match)."""
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise InputError(root, "output exists and is not a folder")
        db_path = root / "faceset.db"
        db = _checked(db_path) if db_path.exists() else None  # refuse a foreign, corrupt or newer index
        (root / "faces").mkdir(parents=True, exist_ok=True)
        db = db or sqlite3.connect(db_path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        with db:
            db.executescript(SCHEMA)
            for key, value in (("schema", SCHEMA_VERSION), ("size", size), ("padding", padding)):
                db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, str(value)))
        fs = cls(root, db)
        if fs.size != size or abs(fs.padding - padding) > 1e-9:
            db.close()
            raise InputError(
                root,
                f"face set was made with --size {fs.size} (padding {fs.padding}); cannot add {size} px crops to it",
            )
        return fs

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> FaceSet:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------------
    def add_source(self, info: MediaInfo) -> int:
        path = str(Path(info.path).resolve())
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO sources (path, kind, width, height, fps, frames) VALUES (?,?,?,?,?,?)",
                (path, info.kind, info.width, info.height, info.fps, info.frames),
            )
        return int(self.db.execute("SELECT id FROM sources WHERE path=?", (path,)).fetchone()[0])

    def done_frames(self, source_id: int) -> set[int]:
        rows = self.db.execute("SELECT frame_index FROM frames WHERE source_id=?", (source_id,))
        return {r[0] for r in rows}

    def add_frame(self, source_id: int, frame_index: int, time: float, faces: list[Face]) -> None:
        """Write the crops, then index the faces and mark the frame done, in one transaction."""
        rows = []
        for k, f in enumerate(faces):
            name = f"faces/{source_id:04d}_{frame_index:07d}_{k}.png"
            write_image(self.root / name, f.crop)
            emb = None if f.embedding is None else np.asarray(f.embedding, np.float32).tobytes()
            rows.append(
                (
                    source_id,
                    frame_index,
                    k,
                    time,
                    name,
                    *map(float, f.bbox),
                    float(f.score),
                    np.asarray(f.landmarks, np.float32).tobytes(),
                    np.asarray(f.matrix, np.float64).tobytes(),
                    emb,
                    float(f.blur),
                    *map(float, f.pose),
                )
            )
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO faces (source_id, frame_index, face_index, time, file, x0, y0, x1, y1,"
                " score, landmarks, matrix, embedding, blur, yaw, pitch, roll)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            self.db.execute("INSERT OR REPLACE INTO frames VALUES (?, ?, ?)", (source_id, frame_index, len(faces)))

    # -- reading -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    def __iter__(self) -> Iterator[FaceRecord]:
        return self._records()

    def _records(self, source: str | None = None) -> Iterator[FaceRecord]:
        """Every indexed face, or those of one source path (filtered in SQL, not decoded and dropped)."""
        q = (
            "SELECT f.id, s.path, f.frame_index, f.face_index, f.time, f.file, f.x0, f.y0, f.x1, f.y1, f.score,"
            " f.landmarks, f.matrix, f.embedding, f.blur, f.yaw, f.pitch, f.roll"
            " FROM faces f JOIN sources s ON s.id = f.source_id"
            + (" WHERE s.path = ?" if source is not None else "")
            + " ORDER BY f.source_id, f.frame_index, f.face_index"
        )
        for r in self.db.execute(q, () if source is None else (source,)):
            face = Face(
                bbox=np.array(r[6:10], np.float32),
                score=r[10],
                landmarks=np.frombuffer(r[11], np.float32).reshape(68, 2),
                matrix=np.frombuffer(r[12], np.float64).reshape(2, 3),
                crop_size=self.size,
                embedding=None if r[13] is None else np.frombuffer(r[13], np.float32),
                blur=r[14],
                pose=(r[15], r[16], r[17]),
            )
            yield FaceRecord(r[0], r[1], r[2], r[3], r[4], self._contained(r[5]), face)

    def _contained(self, name: str) -> Path:
        """A crop path from the index, refused unless it stays inside this face set's folder."""
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise InputError(self.root / "faceset.db", f"stored face path {name!r} points outside the face set")
        return path

    def faces_of(self, source: str | Path) -> dict[int, list[Face]]:
        """The indexed faces of one source file, by frame index, as Face objects (no crops): lets `swap`
        skip detection on frames that `extract` already analysed."""
        path = str(Path(source).resolve())
        out: dict[int, list[Face]] = {}
        for r in self._records(path):
            out.setdefault(r.frame_index, []).append(r.face)
        for (frame_index,) in self.db.execute(
            "SELECT f.frame_index FROM frames f JOIN sources s ON s.id = f.source_id WHERE s.path=? AND f.faces=0",
            (path,),
        ):
            out.setdefault(frame_index, [])
        return out

    def sources(self) -> list[dict]:
        cols = ("id", "path", "kind", "width", "height", "fps", "frames")
        return [dict(zip(cols, r, strict=True)) for r in self.db.execute(f"SELECT {', '.join(cols)} FROM sources")]

    def load_crop(self, rec: FaceRecord) -> np.ndarray:
        """The aligned crop of a face, RGB."""
        img = cv2.imread(str(rec.file), cv2.IMREAD_COLOR)
        if img is None or img.shape[:2] != (self.size, self.size):
            raise InputError(rec.file, "face crop is missing, unreadable or not of the face set's size")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def embeddings(self) -> np.ndarray:
        rows = self.db.execute("SELECT embedding FROM faces WHERE embedding IS NOT NULL ORDER BY id")
        vecs = [np.frombuffer(r[0], np.float32) for r in rows]
        return np.stack(vecs) if vecs else np.zeros((0, 128), np.float32)

    def mean_embedding(self) -> np.ndarray:
        """The mean identity of the set's main person (`faces.identity.main_person`): a second person or a
        false face found by the detector does not pull it."""
        e = self.embeddings()
        if not len(e):
            raise InputError(self.root, "face set has no identity embeddings")
        return e[main_person(e)].mean(0)

    def summary(self) -> dict:
        return {
            "path": str(self.root),
            "faces": len(self),
            "size": self.size,
            "padding": self.padding,
            "sources": [s["path"] for s in self.sources()],
        }
