"""Atomic writes: a reader (or a crash) sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMP_MARK = ".tmp"  # temporary files are named .<stem>.<random>.tmp<suffix>


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix if suffix is not None else path.suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{TEMP_MARK}{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj: object) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def remove_stale_temps(folder: str | os.PathLike) -> int:
    """Delete temporary files that a killed writer left in `folder`. Only for the folder's one writer,
    at its start: another process's write in progress would lose its temporary file."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    # ours, and safetensors' own (it writes through a `.tmpXXXXXX` file of Rust's tempfile crate)
    stale = {p for pattern in (f".*{TEMP_MARK}*", f"{TEMP_MARK}*") for p in folder.glob(pattern) if p.is_file()}
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)
