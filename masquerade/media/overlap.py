"""Decoding and encoding on threads of their own, so they overlap the swap's compute.

PyAV (FFmpeg) and x264 release the GIL while they work, so a decoder a few frames ahead and an encoder a
few frames behind cost the main thread almost nothing. Both keep errors: a decoder's is raised where the
frames are consumed, an encoder's at the next write or at `close`.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


def prefetch(items: Iterator[T], depth: int = 4) -> Iterator[T]:
    """Yield what `items` yields, produced on a background thread up to `depth` items ahead.

    Leaving the loop early stops the producer (and closes `items` on its own thread)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
            q.put(_END)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="masquerade-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.1)
        worker.join()


class WriteBehind:
    """Calls `write(item)` for each `put(item)` on a background thread, at most `depth` items behind.

    `close()` waits for every write; the first error a write raised is raised by the next `put` or `close`.
    """

    def __init__(self, write: Callable[[T], None], depth: int = 4):
        self._write = write
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._worker = threading.Thread(target=self._run, name="masquerade-encode", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _END:
                return
            if self._error is None:
                try:
                    self._write(item)
                except BaseException as exc:
                    self._error = exc

    def put(self, item: T) -> None:
        if self._error is not None:
            raise self._error
        self._q.put(item)

    def close(self) -> None:
        self._q.put(_END)
        self._worker.join()
        if self._error is not None:
            raise self._error
