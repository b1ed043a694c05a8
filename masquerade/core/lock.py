"""A folder lock, so that two writers (two `train` runs on one model, two `extract` runs on one face set)
never work on one folder at once: the second stops at once with the first one's process id.

It is an OS advisory lock (flock) on FOLDER/.lock: the OS drops it when its process dies, even by kill -9,
so a stale lock file never blocks a later run.
"""

from __future__ import annotations

import os
from pathlib import Path

from masquerade.core.errors import InputError, MasqueradeError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: runs without the lock
    fcntl = None

LOCK_NAME = ".lock"


class FolderBusy(MasqueradeError):
    exit_code = 2


class FolderLock:
    """`with FolderLock(folder, "train"):` holds the folder for this process, or raises FolderBusy."""

    def __init__(self, folder: str | Path, what: str):
        self.path = Path(folder) / LOCK_NAME
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        if fcntl is None:
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError(self.path.parent, f"cannot write here ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise FolderBusy(f"{self.path.parent}: in use by {holder}; wait for it to finish or stop it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} ({self.what})".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
