"""Shared fixtures: the shared test media (skipped when absent), small face sets and a briefly trained model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = (ROOT / ".." / "shared" / "data").resolve()
CLIPS = DATA / "clips"
STILLS = DATA / "stills"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"test media not found: {path}")
    return path


def kill_9_when(args: list[str], ready: Callable[[], bool], timeout: float = 180, grace: float = 0.0) -> None:
    """Run `python -m masquerade ARGS`, wait until `ready()` (polled), wait `grace` s, then SIGKILL it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "masquerade", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None and not ready():
        time.sleep(0.2)
    time.sleep(grace)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="session", autouse=True)
def own_config_folder(tmp_path_factory) -> Path:
    """The user's config folder (where swap keeps its local C2PA signing key) is a fresh one per test run,
    for this process and the CLI subprocesses it starts."""
    folder = tmp_path_factory.mktemp("config")
    os.environ["XDG_CONFIG_HOME"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def d18() -> Path:
    return need(CLIPS / "d18.mp4")


@pytest.fixture(scope="session")
def d19() -> Path:
    return need(CLIPS / "d19.mp4")


@pytest.fixture(scope="session")
def facesets(tmp_path_factory, d18, d19) -> tuple[Path, Path]:
    """Face sets of d18 (A) and d19 (B) from every 6th frame."""
    from masquerade.faceset.extract import ExtractOptions, extract

    root = tmp_path_factory.mktemp("facesets")
    for name, clip in (("a", d18), ("b", d19)):
        extract([clip], root / name, ExtractOptions(every=6))
    return root / "a", root / "b"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, facesets) -> Path:
    """A `lite` model trained briefly on d18 (A) and d19 (B): enough to run every stage, not to look good.
    100 iterations: fewer paint faces too flat for a detector to find again, so swap would refuse its outputs."""
    from masquerade.train.loop import TrainConfig, train

    out = tmp_path_factory.mktemp("models") / "m"
    # threads pinned: the model must not depend on the machine's core count (a different thread count sums in a
    # different order); `train` sets them itself, whatever a Swapper made before this fixture left. The id pinned,
    # as the mark carries it: on these blurry faces how firmly a mark reads varies with its bits (s42's swap saved
    # as a JPEG read z 3 to 31 over four ids), and a test must not pass or fail by the draw
    cfg = TrainConfig(iterations=100, save_every=50, preview_every=50, anneal=0.2, threads=2, model_id="c738924b")
    train([facesets[0]], [facesets[1]], out, cfg)
    return out


@pytest.fixture(scope="session")
def swapped_clip(tmp_path_factory, model_dir, d18) -> Path:
    """The first 30 frames of d18 swapped to B's face through the CLI."""
    from masquerade.cli import main

    out = tmp_path_factory.mktemp("swapped") / "d18_to_b.mp4"
    assert main(["swap", str(d18), "-m", str(model_dir), "-o", str(out), "--end", "30f"]) == 0
    return out
