"""Atomic writes: a reader (or a crash) sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from masquerade.core.errors import InputError

TEMP_MARK = ".tmp"  # temporary files are named .<stem>.<pid>-<random>.tmp<suffix>


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed over `path`."""
    path = Path(path)
    make_folder(path.parent)
    tmp_path = temp_beside(path, suffix)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        publish(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def make_folder(folder: Path) -> None:
    """Create a folder (and its parents), or say in one line why it cannot be."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(folder, "exists and is not a folder") from None
    except OSError as exc:
        raise InputError(folder, f"cannot create this folder ({exc.strerror or exc})") from None


def temp_beside(path: Path, suffix: str | None = None) -> Path:
    """A new empty temporary file beside `path`, named after it and this process (see remove_orphan_temps)."""
    suffix = suffix if suffix is not None else path.suffix
    if path.is_dir():
        raise InputError(path, "is a folder; give the output a file name")
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.stem}.{os.getpid()}-", suffix=f"{TEMP_MARK}{suffix}", dir=path.parent
        )
    except OSError as exc:
        raise InputError(path.parent, f"cannot write here ({exc.strerror or exc})") from None
    os.close(fd)
    return Path(tmp)


def remove_orphan_temps(path: Path) -> int:
    """Delete the temporary files of `path` left by writers that were killed (their process is gone);
    those of a writer still running are kept."""
    removed = 0
    for tmp in Path(path).parent.glob(f".{Path(path).stem}.*{TEMP_MARK}*"):
        pid = tmp.name[len(Path(path).stem) + 2 :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def publish(tmp: Path, path: Path) -> None:
    """Rename a finished temporary file over `path`, with the permissions a plain `open` would have given
    it (mkstemp makes its files private, mode 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


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
