"""Time spent per named stage of a pipeline, for benchmarks and live figures (no global state: one per run)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager


class StageClock:
    """`with clock("model"): ...` adds the block's wall time to that stage; `ms_per(n)` reports per item."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - t

    def ms_per(self, count: int) -> dict[str, float]:
        """Milliseconds per item (frame) of each stage over `count` items."""
        return {k: round(1000 * v / max(count, 1), 2) for k, v in self.seconds.items()}
