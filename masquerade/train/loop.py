"""The training loop, in one readable function around `train_step`: sample, step, log, preview, checkpoint.

A model folder holds config.json (architecture, hyper-parameters, face sets, identities), model.safetensors,
optimizer.safetensors, state.json (iteration, loss history), log.jsonl and previews/. Training resumes
from it when it exists; the first checkpoint is written at once (so a kill at any moment leaves a folder
that resumes); Ctrl-C saves before returning; a NaN loss stops without overwriting the last save.
Beside the loss, the log carries a held-out loss (faces never trained on) and, as in nanoGPT, the model
FLOPs per sample and the achieved fraction of the machine's peak (MFU).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from masquerade import __version__
from masquerade.core.atomic import make_folder, write_bytes
from masquerade.core.device import START_THREADS, pick_device
from masquerade.core.errors import InputError, MasqueradeError
from masquerade.core.lock import FolderLock
from masquerade.core.types import Progress
from masquerade.faceset.store import FaceSet
from masquerade.media import write_image
from masquerade.models import io
from masquerade.models.detail import write_banks
from masquerade.models.registry import model_entry
from masquerade.train import distributed
from masquerade.train.augment import AugmentConfig
from masquerade.train.data import SideData, fixed_batch, load_side, mouth_range, sample_batch, uncovered
from masquerade.train.losses import face_loss

LOG_EVERY = 10


@dataclass
class TrainConfig:
    model: str = "lite"
    size: int | None = None  # None: the model's own (64, or 128 for lite-d)
    padding: float = 0.15  # the model's crop around the mean face (inner face plus a margin)
    # The crop moved up by this share of the face: 0.22 of room above the brows, 0.08 below the chin. Centred,
    # d6's raised brows fell outside what the model paints and showed above the painted ones; lifted, the swap
    # came nearer B on d6:d3 and s29:s20 at 10 CPU-minutes (0.457/0.563 -> 0.449/0.525), mouth error lower.
    lift: float = 0.07
    mask: bool = False
    batch_size: int | None = None  # None: the model's own default (models/registry)
    lr: float | None = None  # None: the model's own default
    # The last quarter of a run with a known end (--minutes/--iterations) lowers the lr along a cosine, so the run
    # ends on settled weights: B's own faces rebuilt nearer B and the swap nearer B on d6:d3, s29:s20 and d18:d19
    anneal: float = 0.25
    unwarp: float = 0.25  # share at the end of such a run trained without the grid warp (pose jitter only)
    # DSSIM weighs 3x the L1 loss, as in DeepFaceLab's, where structure dominates: at 10 CPU-minutes B's own faces
    # rebuilt by B's decoder came nearer B on d18:d19, d6:d3 and s29:s20 (0.326/0.413/0.367 -> 0.319/0.395/0.347)
    ssim_weight: float = 3.0
    iterations: int | None = None  # total, counted across resumes
    minutes: float | None = None  # this run
    save_every: int = 250
    preview_every: int = 250
    seed: int = 0
    device: str = "auto"
    compile: bool = False
    holdout_every: int = 10  # every 10th face is kept for evaluation
    threads: int = 0  # CPU threads (0: all cores, as torch chose them at start-up)
    # The new model's id, which its marks carry: "" draws a fresh one (a model's id is its own); tests pin it,
    # as the mark's strength on a face depends on the bits it carries
    model_id: str = ""
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def with_model_defaults(self) -> TrainConfig:
        """A copy with the settings left unset (lr, batch size, size) taken from the model's registry entry."""
        entry = model_entry(self.model)
        lr = entry.lr if self.lr is None else self.lr
        return replace(self, lr=lr, batch_size=self.batch_size or entry.batch_size, size=self.size or entry.size)

    def check(self) -> None:
        """Every option in its domain, else a one-line error naming the option."""
        lo, hi = io.SIZE_RANGE
        k = model_entry(self.model).multiple
        if self.size is not None and (not lo <= self.size <= hi or self.size % k):
            msg = f"must be a multiple of {k} from {lo} to {hi} for {self.model} (got {self.size})"
            raise InputError("--size", msg)
        if self.lr is not None and not (math.isfinite(self.lr) and 0 < self.lr < 1):
            raise InputError("--lr", f"must be a number above 0 and below 1 (got {self.lr})")
        if self.minutes is not None and not (math.isfinite(self.minutes) and self.minutes > 0):
            raise InputError("--minutes", f"must be a number above 0 (got {self.minutes})")
        if self.iterations is not None and self.iterations < 1:
            raise InputError("--iterations", f"must be 1 or more (got {self.iterations})")
        for name in ("batch_size", "save_every", "preview_every"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise InputError(f"--{name.replace('_', '-')}", f"must be 1 or more (got {v})")
        if self.model_id and not re.fullmatch(r"[0-9a-f]{8}", self.model_id):
            raise InputError("model_id", f"must be 8 lower-case hex digits (got {self.model_id!r})")
        if not 0 <= self.anneal <= 1:
            raise InputError("--anneal", f"must be between 0 and 1 (got {self.anneal})")
        if not 0 <= self.unwarp <= 1:
            raise InputError("--unwarp", f"must be between 0 and 1 (got {self.unwarp})")
        if not (math.isfinite(self.ssim_weight) and self.ssim_weight >= 0):
            raise InputError("--ssim-weight", f"must be a number, 0 or more (got {self.ssim_weight})")
        if self.threads < 0:
            raise InputError("--threads", f"must be 0 or more (got {self.threads})")


class TrainingDiverged(MasqueradeError):
    exit_code = 3


@dataclass
class TrainResult:
    iteration: int
    seconds: float
    samples_per_s: float
    loss_a: float
    loss_b: float
    interrupted: bool = False
    stopped_by: str = ""
    world_size: int = 1  # processes that trained together (torchrun)
    ranks_agree: bool = True  # every process ended with the very same weights
    warnings: list[str] = field(default_factory=list)  # said before training (also on stderr)


def new_config(cfg: TrainConfig, faceset_a, faceset_b, data_a: SideData, data_b: SideData) -> io.ModelConfig:
    """The config of a new model: its architecture, identities and the hyper-parameters it is trained with."""
    training = asdict(cfg)
    for k in (*io.ARCH_KEYS, "holdout_every", "iterations", "minutes", "device", "compile", "threads", "model_id"):
        training.pop(k)
    return io.ModelConfig(
        model=cfg.model,
        size=cfg.size,
        padding=cfg.padding,
        lift=cfg.lift,
        mask=cfg.mask,
        model_id=cfg.model_id or secrets.token_hex(4),
        version=__version__,
        holdout_every=cfg.holdout_every,
        facesets={
            "a": [str(Path(p).resolve()) for p in faceset_a],
            "b": [str(Path(p).resolve()) for p in faceset_b],
        },
        identity={"a": data_a.embedding.tolist(), "b": data_b.embedding.tolist()},
        faces={"a": len(data_a), "b": len(data_b)},
        mouth={"a": mouth_range(data_a), "b": mouth_range(data_b)},
        training=training,
    )


def memory_format(model: torch.nn.Module, device: torch.device) -> torch.memory_format:
    """Channels-last where it is faster: on GPUs (tensor cores), and on CPUs for narrow models. Measured on
    a 2-core CPU, full training step: `lite` (4 M parameters) +20-25%; `original` (82 M) -15% at batch 16."""
    narrow = sum(p.numel() for p in model.parameters()) < 20_000_000
    return torch.channels_last if device.type == "cuda" or narrow else torch.contiguous_format


def lr_at(progress: float, lr: float, anneal: float, floor: float = 0.05) -> float:
    """Full rate, then a cosine anneal to `floor` * lr over the last `anneal` share of a run.

    Why: a time-boxed run (--minutes) should end on settled weights, and a high rate's last steps are noisy.
    A resumed run starts again at full rate (a warm restart).
    """
    if anneal <= 0 or progress <= 1 - anneal:
        return lr
    t = min((progress - (1 - anneal)) / anneal, 1.0)
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def make_optimizer(model: torch.nn.Module, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam with the seed's betas; the fused kernel where there is one (7x faster than the default on a CPU)."""
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.999), fused=fused)


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # warped input, target, weight, mask


def sample_batches(
    data: dict[str, SideData],
    cfg: TrainConfig,
    gen: torch.Generator,
    device: torch.device,
    layout,
    augment: AugmentConfig | None = None,
) -> dict[str, Batch]:
    """One augmented batch per side (`augment`: default `cfg.augment`), the inputs in the model's memory layout."""
    out = {}
    for side, d in data.items():
        x, y, w, m = sample_batch(
            d, cfg.batch_size, cfg.size, cfg.padding, augment or cfg.augment, gen, device, cfg.lift
        )
        out[side] = (x.contiguous(memory_format=layout), y, w, m)
    return out


def train_step(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    batches: dict[str, Batch],
    cfg: TrainConfig,
    scaler: torch.amp.GradScaler | None = None,
    dist: distributed.Dist | None = None,
) -> tuple[float, float]:
    """One update of both sides: loss A + loss B, backward, Adam (mixed precision on CUDA).

    `model` is the network, or what `distributed.wrap` made of it (several processes average gradients).
    Returns the two losses; when the loss is not finite (on any process) the weights are left untouched.
    """
    dist = dist or distributed.Dist()
    both = model if isinstance(model, distributed.BothSides | nn.parallel.DistributedDataParallel) else None
    both = both or distributed.BothSides(model)
    device = batches["a"][0].device
    amp = device.type == "cuda"
    amp_dtype = torch.bfloat16 if amp and torch.cuda.is_bf16_supported() else torch.float16
    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
        preds = both(batches["a"][0], batches["b"][0])
        losses = [
            face_loss(pred.float(), y, w, cfg.ssim_weight, m if cfg.mask else None)
            for pred, (_, y, w, m) in zip(preds, (batches["a"], batches["b"]), strict=True)
        ]
    loss = losses[0] + losses[1]
    if distributed.any_rank(dist, not bool(torch.isfinite(loss)), device):
        return float("nan"), float("nan")
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    return losses[0].item(), losses[1].item()


def flops_per_sample(model: torch.nn.Module, size: int, device: torch.device) -> float:
    """Model FLOPs of one training sample (forward and backward through the encoder and one decoder)."""
    x = torch.rand(1, 3, size, size, device=device)
    with FlopCounterMode(display=False) as fc:
        model(x, "a").sum().backward()
    model.zero_grad(set_to_none=True)
    return float(fc.get_total_flops())


def peak_flops(device: torch.device, repeats: int = 8) -> float:
    """This machine's attainable FLOP/s, measured on a large float32 matrix product (nanoGPT quotes the
    datasheet's peak; a CPU has none to quote, so it is measured, about 0.2 s). The best of `repeats` products
    after a warm-up, so that a moment of contention does not understate it; train re-measures at every preview
    and keeps the best, because a busy start alone gave an MFU above 1 (twice in full test runs)."""
    n = 2048 if device.type == "cuda" else 768
    a, b = torch.rand(n, n, device=device), torch.rand(n, n, device=device)
    (a @ b).sum().item()  # warm-up: allocation, thread pool
    best = math.inf
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


@torch.no_grad()
def preview_grid(model: torch.nn.Module, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Rows of: A, A->A, A->B, B, B->B, B->A (faces from the two sides), as an RGB image."""
    model.eval()
    n = min(len(a), len(b))
    cols = [a[:n], model(a[:n], "a"), model(a[:n], "b"), b[:n], model(b[:n], "b"), model(b[:n], "a")]
    model.train()
    img = torch.cat([torch.cat([c[i, :3].float() for c in cols], 2) for i in range(n)], 1)
    return (img.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)


@torch.no_grad()
def holdout_loss(model: torch.nn.Module, held: dict[str, tuple[torch.Tensor, torch.Tensor]], cfg: TrainConfig):
    """The loss on faces never trained on, each rebuilt by its own decoder (no augmentation)."""
    model.eval()
    out = {
        f"holdout_{s}": round(face_loss(model(x, s).float(), x, w, cfg.ssim_weight).item(), 5)
        for s, (x, w) in held.items()
    }
    model.train()
    return out


def _trim_log(path: Path, iteration: int) -> None:
    """After a crash, drop log lines past the checkpoint being resumed from (and any unreadable line)."""
    if not path.is_file():
        return
    keep = []
    for ln in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(ln)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("iteration"), int) and rec["iteration"] <= iteration:
            keep.append(ln)
    write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())


def _holdout(paths, cfg: TrainConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    try:
        side = load_side(paths, 2 * cfg.size, cfg.holdout_every, split="holdout")
    except InputError:  # a small face set may hold no held-out face
        return None
    x, w = fixed_batch(side, 16, cfg.size, cfg.padding, cfg.lift)
    return x.to(device), w.to(device)


def train(
    faceset_a: list[str | Path],
    faceset_b: list[str | Path],
    model_dir: str | Path,
    cfg: TrainConfig | None = None,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train (or resume) the model in `model_dir` on the faces of A and B until a limit, Ctrl-C, or `stop()`
    returns true (checked before every step: how a UI's stop button ends a run, saved, as Ctrl-C does)."""
    cfg = replace(cfg) if cfg else TrainConfig()  # a copy: the stored architecture and defaults fill it in
    cfg.check()
    model_dir = Path(model_dir)
    if model_dir.exists() and not model_dir.is_dir():
        raise InputError(model_dir, "model path exists and is not a folder")
    if (model_dir / "faceset.db").exists():
        raise InputError(model_dir, "is a face set folder; give the model its own folder")
    for path in [*faceset_a, *faceset_b]:  # refuse a bad face set before the model folder is made
        FaceSet.open(path).close()
    dist = distributed.from_env()  # torchrun's processes: rank 0 alone writes (and locks) the folder
    device = pick_device(distributed.device_name(dist, cfg.device))
    distributed.start(dist, device)
    try:
        if dist.main:
            make_folder(model_dir)
        with FolderLock(model_dir, "train") if dist.main else contextlib.nullcontext():
            return _train_locked(faceset_a, faceset_b, model_dir, cfg, progress, dist, device, stop)
    finally:
        distributed.stop(dist)


def _train_locked(
    faceset_a,
    faceset_b,
    model_dir: Path,
    cfg: TrainConfig,
    progress: Progress | None,
    dist: distributed.Dist,
    device: torch.device,
    stop: Callable[[], bool] | None = None,
) -> TrainResult:
    if not dist.main:  # the others start from the folder rank 0 has made ready (config and first checkpoint)
        distributed.barrier(dist)
    resume = (model_dir / io.CONFIG_FILE).is_file()
    if resume:
        if dist.main:
            io.recover(model_dir)  # complete or discard a save a kill interrupted; drop its temporary files
        config = io.load_config(model_dir)
        for k in io.ARCH_KEYS:  # the architecture is the stored one; runtime options come from this call
            setattr(cfg, k, getattr(config, k))
        cfg.holdout_every = config.holdout_every
    cfg = cfg.with_model_defaults()
    # Always set, and kept (below): torch's thread count belongs to the process, and a Swapper working beside the
    # run (the web UI's live view) sets 1 while it swaps, which halved training (121 -> 70 samples/s)
    shared = max(1, (os.cpu_count() or 1) // dist.local_world)  # processes on one machine share its cores
    threads = cfg.threads or (shared if dist.enabled else START_THREADS)
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)  # the same initial weights everywhere (DDP also broadcasts rank 0's)

    work = 2 * cfg.size
    data = {"a": load_side(faceset_a, work, cfg.holdout_every), "b": load_side(faceset_b, work, cfg.holdout_every)}
    warnings = [
        f"{data[k].others} faces of {', '.join(map(str, paths))} do not look like the main person there (someone"
        " else, or no face at all): left out of training"
        for k, paths in (("a", faceset_a), ("b", faceset_b))
        if data[k].others
    ]
    for src, dst in (("a", "b"), ("b", "a")):
        if gaps := uncovered(data[src], data[dst], mirrored=cfg.augment.flip > 0):
            shown = "; ".join(f"{name} ({share:.0%})" for name, share in gaps[:3])
            warnings.append(
                f"{sum(s for _, s in gaps):.0%} of {src.upper()}'s faces show what {dst.upper()}'s faces never do: "
                f"{shown}. {dst.upper()}'s decoder cannot learn to render it; add footage of {dst.upper()} doing it"
                " (meanwhile swap keeps the input's own mouth where it opens or closes beyond what"
                f" {dst.upper()}'s faces show: --mouth)"
            )
    for w in warnings if dist.main else []:
        print(f"warning: {w}", file=sys.stderr)
    if not resume:
        config = new_config(cfg, faceset_a, faceset_b, data["a"], data["b"])
    model = io.build_model(config)
    layout = memory_format(model, device)
    model = model.to(device, memory_format=layout)
    opt = make_optimizer(model, cfg.lr, device)
    gen = torch.Generator().manual_seed(cfg.seed + 1000 * dist.rank)  # each rank samples its own faces
    state = {"iteration": 0, "samples": 0, "seconds": 0.0, "loss_history": []}
    has_weights = resume and (
        (model_dir / io.MODEL_FILE).is_file() or (model_dir / (io.MODEL_FILE + ".next")).is_file()
    )
    if has_weights:
        it_w = io.load_weights(model_dir, model)
        if (model_dir / io.OPTIM_FILE).is_file():
            it_o, rng = io.load_optimizer(model_dir, opt)
            if rng is not None and dist.main:
                gen.set_state(rng)
            if it_o != it_w:
                print(f"warning: optimizer state is from iteration {it_o}, weights from {it_w}; moments reset")
                opt = make_optimizer(model, cfg.lr, device)
        state = io.load_state(model_dir)
        state["iteration"] = it_w
    elif not resume:
        config.save(model_dir)
    if resume and not config.mouth and dist.main:  # a model from before `mouth` was kept learns it now
        config.mouth = {k: mouth_range(data[k]) for k in ("a", "b")}
        config.save(model_dir)
    if dist.main:  # each side's own faces, for the fine detail swap lays on what the model paints
        write_banks(model_dir, config)
    if not dist.main:  # a resumed rank > 0 draws faces of its own from here on
        gen.manual_seed(cfg.seed + 1000 * dist.rank + state["iteration"])
    if dist.main:
        _trim_log(model_dir / "log.jsonl", state["iteration"])

    cuda = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if cuda and not torch.cuda.is_bf16_supported() else None
    prev_a = fixed_batch(data["a"], 4, cfg.size, cfg.padding, cfg.lift)[0].to(device)
    prev_b = fixed_batch(data["b"], 4, cfg.size, cfg.padding, cfg.lift)[0].to(device)
    held = {s: h for s, p in (("a", faceset_a), ("b", faceset_b)) if (h := _holdout(p, cfg, device)) is not None}
    if dist.main:
        (model_dir / "previews").mkdir(exist_ok=True)
    fps = flops_per_sample(model, cfg.size, device)
    peak = peak_flops(device) * dist.world  # MFU of all processes together
    global_batch = cfg.batch_size * dist.world

    def save() -> None:
        if dist.main:
            io.save_checkpoint(model_dir, model, opt, state, gen.get_state())

    def preview() -> None:
        if not dist.main:
            return
        grid = preview_grid(model, prev_a, prev_b)
        write_image(model_dir / "previews" / f"{state['iteration']:07d}.png", grid)
        write_image(model_dir / "previews" / "latest.png", grid)

    if not has_weights:  # the first checkpoint at once: a kill before the first save still resumes
        save()
    if dist.main:
        distributed.barrier(dist)  # the folder is ready for the other ranks
    # Wrapped after the FLOP count (a backward outside DDP's forward would upset its gradient hooks) and after
    # the barrier (DDP's constructor is a collective every rank must reach in the same order)
    step_model = distributed.wrap(dist, torch.compile(model) if cfg.compile else model, device)

    unwarped = replace(cfg.augment, warp=0.0)
    start_it = state["iteration"]
    seconds_before = float(state.get("seconds", 0.0))  # training time of earlier runs of this model
    t0 = time.monotonic()
    deadline = t0 + cfg.minutes * 60 if cfg.minutes else math.inf
    target = cfg.iterations if cfg.iterations is not None else math.inf
    ema_a = ema_b = None
    window: list[tuple[float, float]] = []
    stopped_by, interrupted = "", False
    log = open(model_dir / "log.jsonl", "a") if dist.main else open(os.devnull, "w")  # noqa: SIM115 - closed below
    try:
        while True:
            if state["iteration"] >= target:
                stopped_by = "iterations"
                break
            if distributed.any_rank(dist, time.monotonic() >= deadline, device):  # all ranks stop together
                stopped_by = "minutes"
                break
            if stop is not None and distributed.any_rank(dist, stop(), device):
                stopped_by = "stop"
                break
            progress_frac = max(
                (time.monotonic() - t0) / (deadline - t0) if deadline != math.inf else 0.0,
                (state["iteration"] - start_it) / (target - start_it) if target != math.inf else 0.0,
            )
            lr = lr_at(progress_frac, cfg.lr, cfg.anneal)
            for g in opt.param_groups:
                g["lr"] = lr
            # the late phase without the warp: the decoders then see the faces they will be asked to paint
            late = cfg.unwarp > 0 and progress_frac >= 1 - cfg.unwarp
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            batches = sample_batches(data, cfg, gen, device, layout, unwarped if late else None)
            la, lb = train_step(step_model, opt, batches, cfg, scaler, dist)
            if not (math.isfinite(la) and math.isfinite(lb)):
                raise TrainingDiverged(
                    f"loss became {la + lb} at iteration {state['iteration'] + 1}; stopped. The last good "
                    f"checkpoint (iteration {io.load_state(model_dir).get('iteration', 0)}) is kept; "
                    "try a lower --lr"
                )
            ema_a = la if ema_a is None else 0.95 * ema_a + 0.05 * la
            ema_b = lb if ema_b is None else 0.95 * ema_b + 0.05 * lb
            window.append((la, lb))
            state["iteration"] += 1
            state["samples"] += 2 * global_batch
            it = state["iteration"]
            is_preview = it % cfg.preview_every == 0
            if is_preview:  # the peak is the best seen: a moment of contention at the start does not stick
                peak = max(peak, peak_flops(device, repeats=2) * dist.world)
            elapsed = time.monotonic() - t0
            sps = 2 * global_batch * (it - start_it) / elapsed
            info = {
                "loss_a": ema_a,
                "loss_b": ema_b,
                "lr": lr,
                "samples_per_s": sps,
                "flops_per_sample": fps,
                "mfu": fps * sps / peak,
                "elapsed": elapsed,
                "deadline": deadline,
                "warnings": warnings,
            }
            if it % LOG_EVERY == 0 or it == target or is_preview:
                mean_a, mean_b = np.mean(window, 0).tolist()
                window.clear()
                rec = {
                    "iteration": it,
                    "loss_a": mean_a,
                    "loss_b": mean_b,
                    "lr": lr,
                    "seconds": seconds_before + elapsed,
                    "samples_per_s": round(sps, 1),
                    "mfu": round(info["mfu"], 4),
                }
                if dist.enabled:
                    rec.update(processes=dist.world, global_batch=global_batch)
                if is_preview and dist.main:
                    rec.update(holdout_loss(model, held, cfg))
                    info.update({k: v for k, v in rec.items() if k.startswith("holdout")})
                    preview()
                log.write(json.dumps(rec) + "\n")
                log.flush()
                state["loss_history"].append([it, round(mean_a, 5), round(mean_b, 5)])
            if it % cfg.save_every == 0:
                state["seconds"] = seconds_before + elapsed
                save()
            if progress and dist.main:
                progress(it, None if target == math.inf else int(target), info)
    except KeyboardInterrupt:
        interrupted = True
        stopped_by = "interrupt"
    finally:
        log.close()
    state["seconds"] = seconds_before + time.monotonic() - t0
    agree = interrupted or distributed.same_weights(dist, model)  # no collective after a Ctrl-C
    if state["iteration"] > start_it:
        save()
        preview()
    if not interrupted:  # the ranks leave together: one tearing gloo down while rank 0 still saved was seen to
        distributed.barrier(dist)  # abort it (SIGABRT, once in a full test run)
    total_s = state["seconds"]
    return TrainResult(
        iteration=state["iteration"],
        seconds=total_s,
        samples_per_s=(state["samples"] / total_s) if total_s else 0.0,
        loss_a=ema_a or float("nan"),
        loss_b=ema_b or float("nan"),
        interrupted=interrupted,
        stopped_by=stopped_by,
        world_size=dist.world,
        ranks_agree=agree,
        warnings=warnings,
    )
