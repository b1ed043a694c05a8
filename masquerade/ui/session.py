"""What the UI does, without the UI: a working folder and one plain function per button.

Each function calls the same library function as the matching CLI command (extract, train, swap, verify,
evaluate), so the browser and the terminal cannot drift apart, and every output is marked and signed by the
very code that marks the CLI's. Nothing here imports Gradio: the functions are tested without a browser.
"""

from __future__ import annotations

import filecmp
import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from masquerade.core.errors import InputError, MasqueradeError, error_line
from masquerade.core.types import Progress
from masquerade.faceset.extract import ExtractOptions, ExtractSummary, extract
from masquerade.faceset.store import FaceSet
from masquerade.media.reader import IMAGE_EXTS
from masquerade.swap.pipeline import SwapOptions, Swapper
from masquerade.swap.run import VideoOptions, swap_file
from masquerade.train.loop import TrainConfig, TrainResult, train

SIDES = ("a", "b")


@dataclass(frozen=True)
class Workspace:
    """The UI's folder: the uploads it keeps (a face set indexes its sources by path), two face sets, one
    model and the outputs. Start the UI on the same folder again and everything is where it was."""

    root: Path

    def faceset(self, side: str) -> Path:
        return self.root / f"faceset_{side}"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    def keep(self, upload: str | Path, kind: str) -> Path:
        """Copy an uploaded file (the browser's temporary copy) into the workspace, under a name not yet used."""
        src = Path(upload)
        if not src.is_file():
            raise InputError(src, "no such file (was the upload finished?)")
        if src.stat().st_size == 0:
            raise InputError(src.name, "file is empty")
        folder = self.root / "media" / kind
        folder.mkdir(parents=True, exist_ok=True)
        dst = folder / src.name
        n = 1
        while dst.exists() and not filecmp.cmp(src, dst, shallow=False):  # compared in chunks, not read whole
            dst = folder / f"{src.stem}-{n}{src.suffix}"
            n += 1
        if not dst.exists():
            shutil.copyfile(src, dst.with_name(dst.name + ".part"))
            dst.with_name(dst.name + ".part").replace(dst)
        return dst


# -- faces -----------------------------------------------------------------------------------------------
def extract_side(
    ws: Workspace, side: str, uploads: list[str | Path], every: int = 2, progress: Progress | None = None
) -> ExtractSummary:
    """Add the faces of `uploads` to identity `side`'s face set (videos already indexed are skipped)."""
    if side not in SIDES:
        raise InputError("side", "must be a or b")
    if not uploads:
        raise InputError(f"identity {side.upper()}", "no video or image given")
    kept = [ws.keep(u, side) for u in uploads]
    return extract(kept, ws.faceset(side), ExtractOptions(every=every), progress)


def face_gallery(faceset: Path, n: int = 24) -> list[tuple[str, str]]:
    """Up to `n` aligned crops spread evenly over the face set, with a caption (source frame)."""
    if not (faceset / "faceset.db").is_file():
        return []
    with FaceSet.open(faceset) as fs:
        recs = list(fs)
    pick = np.linspace(0, len(recs) - 1, min(n, len(recs))).round().astype(int) if recs else []
    return [(str(recs[i].file), f"{Path(recs[i].source).name} #{recs[i].frame_index}") for i in pick]


def faceset_lines(faceset: Path, summary: ExtractSummary | None = None) -> list[str]:
    """The face count (and, after an extraction, what was refused and why)."""
    n = 0
    if (faceset / "faceset.db").is_file():
        with FaceSet.open(faceset) as fs:
            n = len(fs)
    out = [f"{n} faces in the face set"]
    if summary is not None:
        out += summary.lines()
    return out


# -- train -----------------------------------------------------------------------------------------------
@dataclass
class TrainRun:
    """One training run on its own thread, stoppable; the UI polls it for the preview and the losses."""

    ws: Workspace
    model: str = "lite"
    iterations: int = 2500
    stop_event: threading.Event = field(default_factory=threading.Event)
    info: dict = field(default_factory=dict)  # the latest progress figures
    result: TrainResult | None = None
    error: str | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        for side in SIDES:
            if not (self.ws.faceset(side) / "faceset.db").is_file():
                raise InputError(f"identity {side.upper()}", "has no faces yet: extract them on the Faces tab first")
        cfg = TrainConfig(model=self.model, iterations=self.iterations, save_every=100, preview_every=50)

        def progress(done: int, total: int | None, info: dict) -> None:
            self.info = {"iteration": done, "total": total, **info}

        def run() -> None:
            try:
                self.result = train(
                    [self.ws.faceset("a")], [self.ws.faceset("b")], self.ws.model, cfg, progress, self.stop_event.is_set
                )
            except MasqueradeError as exc:
                self.error = error_line(exc)
            except Exception as exc:  # a bug: still end the run, and say so in the UI
                self.error = f"training failed: {type(exc).__name__}: {exc}"

        self._thread = threading.Thread(target=run, name="masquerade-train", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds`; true while the run is still going."""
        if self._thread is None:
            return False
        self._thread.join(seconds)
        return self._thread.is_alive()


def latest_preview(model_dir: Path) -> str | None:
    """The newest preview grid: rows of A, A->A, A->B, B, B->B, B->A."""
    p = model_dir / "previews" / "latest.png"
    return str(p) if p.is_file() else None


def loss_rows(model_dir: Path) -> list[dict]:
    """The logged losses as long-form rows (iteration, loss, series) for a line plot."""
    path = model_dir / "log.jsonl"
    rows: list[dict] = []
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line being written
            continue
        for key, name in (("loss_a", "A"), ("loss_b", "B"), ("holdout_a", "held-out A"), ("holdout_b", "held-out B")):
            if key in rec:
                rows.append({"iteration": rec["iteration"], "loss": rec[key], "series": name})
    return rows


def model_lines(model_dir: Path) -> list[str]:
    """What the workspace's model is, as saved (shown when the page opens)."""
    state = model_dir / "state.json"
    if not state.is_file():
        return ["no model yet: extract both identities' faces, then Start"]
    cfg = json.loads((model_dir / "config.json").read_text())
    it = json.loads(state.read_text()).get("iteration", 0)
    return [f"saved model: {cfg.get('model', '?')}, iteration {it}; Start resumes it"]


def train_lines(run: TrainRun) -> list[str]:
    info = run.info
    if run.error:
        return [run.error]
    if not info:
        return ["starting (loading the face sets)"]
    total = f"/{info['total']}" if info.get("total") else ""
    return [
        f"iteration {info['iteration']}{total}: loss A {info.get('loss_a', float('nan')):.4f}, "
        f"loss B {info.get('loss_b', float('nan')):.4f}, {info.get('samples_per_s', 0):.0f} samples/s",
        *(f"warning: {w}" for w in info.get("warnings", [])),
    ]


def quality_lines(model_dir: Path) -> list[str]:
    """evaluate's held-out figures for the model as it stands."""
    from masquerade.evaluate.report import reconstruction

    out = []
    for side, r in reconstruction(model_dir).items():
        if r.get("n"):
            out.append(
                f"held-out {side.upper()}->{side.upper()}: SSIM {r['ssim']:.3f}, PSNR {r['psnr']:.2f} dB "
                f"({r['n']} faces never trained on)"
            )
    return out


# -- swap ------------------------------------------------------------------------------------------------
def swap_media(
    ws: Workspace,
    upload: str | Path,
    options: SwapOptions | None = None,
    end: str | None = None,
    preview: bool = False,
    progress: Progress | None = None,
    credentials=None,
):
    """Swap an uploaded video or image with the workspace's model, as `masquerade swap` does; with `preview`,
    one before|after still of a video (or the swapped image) and nothing else; `end` swaps a video only up to
    that time. Returns swap's report and the kept copy of the input (for the side-by-side players)."""
    if not (ws.model / "config.json").is_file():
        raise InputError("model", "no trained model yet: train one on the Train tab first")
    inp = ws.keep(upload, "swap")
    image = inp.suffix.lower() in IMAGE_EXTS
    ws.outputs.mkdir(parents=True, exist_ok=True)
    kind = "preview" if preview else "swapped"
    out = ws.outputs / f"{inp.stem}.{kind}{inp.suffix if image else '.mp4'}"
    video = VideoOptions(end=end or None, preview=1 if preview and not image else 0)
    rep = swap_file(Swapper(ws.model, options), inp, out, video, progress=progress, credentials=credentials)
    return rep, inp


# -- verify ----------------------------------------------------------------------------------------------
def verify_lines(path: str | Path) -> tuple[bool, list[str]]:
    """What `masquerade verify FILE` prints, and whether the file is marked."""
    from masquerade.provenance.verify import verify_file

    res = verify_file(path)
    return res.marked, res.lines()


# -- live ------------------------------------------------------------------------------------------------
class LiveSwapper:
    """The webcam tab's engine: one tracked Swapper for the stream (its smoothing and tracks carry from frame
    to frame), rebuilt when the model is retrained."""

    def __init__(self, ws: Workspace, clock: Callable[[], float]):
        self.ws = ws
        self.clock = clock
        self._swapper = None
        self._stamp: float | None = None
        self._lock = threading.Lock()

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        """The swapped, marked frame and the milliseconds it took."""
        weights = self.ws.model / "state.json"
        if not weights.is_file():
            raise InputError("model", "no trained model yet: train one on the Train tab first")
        t0 = self.clock()
        with self._lock:
            stamp = weights.stat().st_mtime
            if self._swapper is None or stamp != self._stamp:
                self._swapper, self._stamp = Swapper(self.ws.model, SwapOptions(to="auto")), stamp
            out = self._swapper.swap_frame(np.ascontiguousarray(frame[..., :3]))
        return out, (self.clock() - t0) * 1000
