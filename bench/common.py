"""Helpers shared by the benchmark scripts: paths, machine info, result files."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = (ROOT / ".." / "shared" / "data").resolve()
CLIPS = DATA / "clips"
OUT = ROOT / "bench" / "out"  # made on import: every bench writes its models, clips and results here
OUT.mkdir(parents=True, exist_ok=True)


def machine() -> dict:
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "cuda": torch.cuda.is_available(),
    }


def clip(name: str) -> Path:
    path = CLIPS / f"{name}.mp4"
    if not path.exists():
        raise SystemExit(f"test media not found: {path}")
    return path


def save(name: str, result: dict) -> Path:
    path = OUT / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **result}, indent=2) + "\n")
    return path
