"""The training loop, in one readable function: sample, step, log, preview, checkpoint.

A model folder holds config.json (architecture, hyper-parameters, face sets, identities), model.safetensors,
optimizer.safetensors, state.json (iteration, loss history), log.jsonl and previews/. Training resumes
from it when it exists; Ctrl-C saves before returning; a NaN loss stops without overwriting the last save.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from masquerade import __version__
from masquerade.core.atomic import write_bytes, write_json
from masquerade.core.device import pick_device
from masquerade.core.errors import InputError, MasqueradeError
from masquerade.faceset.augment import AugmentConfig
from masquerade.faceset.dataset import SideData, fixed_batch, load_side, sample_batch
from masquerade.models import create_model, model_entry
from masquerade.train import checkpoint as ckpt
from masquerade.train.losses import face_loss

ARCH_KEYS = ("model", "size", "padding", "mask")


@dataclass
class TrainConfig:
    model: str = "lite"
    size: int = 64
    padding: float = 0.15  # the model's crop around the mean face (inner face plus a margin)
    mask: bool = False
    batch_size: int | None = None  # None: the model's own default (models/registry)
    lr: float | None = None  # None: the model's own default
    anneal: float = 0.0  # share of a run with a known end (--minutes/--iterations) whose lr is annealed
    ssim_weight: float = 1.0
    iterations: int | None = None  # total, counted across resumes
    minutes: float | None = None  # this run
    save_every: int = 250
    preview_every: int = 250
    seed: int = 0
    device: str = "auto"
    compile: bool = False
    holdout_every: int = 10  # every 10th face is kept for evaluation
    threads: int = 0  # CPU threads (0: all cores)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def with_model_defaults(self) -> TrainConfig:
        """A copy with the settings left unset (lr, batch size) taken from the model's registry entry."""
        entry = model_entry(self.model)
        return replace(self, lr=self.lr or entry.lr, batch_size=self.batch_size or entry.batch_size)


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


def _config_dict(cfg: TrainConfig, faceset_a, faceset_b, data_a: SideData, data_b: SideData) -> dict:
    d = asdict(cfg)
    for k in ("iterations", "minutes", "device", "compile", "threads"):
        d.pop(k)
    d.update(
        format="masquerade-model",
        version=__version__,
        model_id=secrets.token_hex(4),
        facesets={
            "a": [str(Path(p).resolve()) for p in faceset_a],
            "b": [str(Path(p).resolve()) for p in faceset_b],
        },
        identity={"a": data_a.embedding.tolist(), "b": data_b.embedding.tolist()},
        faces={"a": len(data_a), "b": len(data_b)},
    )
    return d


def build_model(config: dict) -> torch.nn.Module:
    return create_model(config["model"], size=config["size"], mask=config["mask"])


def memory_format(model: torch.nn.Module, device: torch.device) -> torch.memory_format:
    """Channels-last where it is faster: on GPUs (tensor cores), and on CPUs for narrow models. Measured on
    a 2-core CPU, full training step: `lite` (4 M parameters) +20-25%; `original` (82 M) -15% at batch 16."""
    narrow = sum(p.numel() for p in model.parameters()) < 20_000_000
    return torch.channels_last if device.type == "cuda" or narrow else torch.contiguous_format


def lr_at(progress: float, lr: float, anneal: float, floor: float = 0.05) -> float:
    """Full rate, then a cosine anneal to `floor` * lr over the last `anneal` share of a run.

    Why: a time-boxed run (--minutes) should end on settled weights, and a high rate's last steps are noisy.
    Off by default: at 5 and 10 CPU-minutes it measured no clear gain (bench/results.md). A resumed run starts
    again at full rate (a warm restart).
    """
    if anneal <= 0 or progress <= 1 - anneal:
        return lr
    t = min((progress - (1 - anneal)) / anneal, 1.0)
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def make_optimizer(model: torch.nn.Module, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam with the seed's betas; the fused kernel where there is one (7x faster than the default on a CPU)."""
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.999), fused=fused)


def _to_image(t: torch.Tensor) -> np.ndarray:
    return (t[:3].clamp(0, 1).permute(1, 2, 0).cpu().numpy()[..., ::-1] * 255 + 0.5).astype(np.uint8)


@torch.no_grad()
def preview_grid(model: torch.nn.Module, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Rows of: A, A->A, A->B, B, B->B, B->A (faces from the two sides), as a BGR image."""
    model.eval()
    n = min(len(a), len(b))
    cols = [a[:n], model(a[:n], "a"), model(a[:n], "b"), b[:n], model(b[:n], "b"), model(b[:n], "a")]
    model.train()
    rows = [np.hstack([_to_image(c[i].float()) for c in cols]) for i in range(n)]
    return np.vstack(rows)


def _write_png(path: Path, img: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", img)
    if ok:
        write_bytes(path, buf.tobytes())


def _trim_log(path: Path, iteration: int) -> None:
    """After a crash, drop log lines past the checkpoint being resumed from."""
    if not path.is_file():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["iteration"] <= iteration]
    write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())


def train(
    faceset_a: list[str | Path],
    faceset_b: list[str | Path],
    model_dir: str | Path,
    cfg: TrainConfig | None = None,
    progress: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train (or resume) the model in `model_dir` on the faces of A and B until a limit or Ctrl-C."""
    cfg = replace(cfg) if cfg else TrainConfig()  # a copy: the stored architecture and defaults fill it in
    model_dir = Path(model_dir)
    if model_dir.exists() and not model_dir.is_dir():
        raise InputError(model_dir, "model path exists and is not a folder")
    resume = (model_dir / ckpt.CONFIG_FILE).is_file()
    if resume:
        ckpt.recover(model_dir)  # complete or discard a save a kill interrupted; drop its temporary files
        stored = ckpt.load_config(model_dir)
        for k in ARCH_KEYS:  # the architecture is the stored one; runtime options come from this call
            setattr(cfg, k, stored[k])
        cfg.holdout_every = stored.get("holdout_every", cfg.holdout_every)
    cfg = cfg.with_model_defaults()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)

    work = 2 * cfg.size
    data_a = load_side(faceset_a, work, cfg.holdout_every)
    data_b = load_side(faceset_b, work, cfg.holdout_every)
    config = stored if resume else _config_dict(cfg, faceset_a, faceset_b, data_a, data_b)
    model = build_model(config)
    layout = memory_format(model, device)
    model = model.to(device, memory_format=layout)
    opt = make_optimizer(model, cfg.lr, device)
    gen = torch.Generator().manual_seed(cfg.seed)
    state = {"iteration": 0, "samples": 0, "seconds": 0.0, "loss_history": []}
    if resume:
        it_w = ckpt.load_weights(model_dir, model)
        if (model_dir / ckpt.OPTIM_FILE).is_file():
            it_o, rng = ckpt.load_optimizer(model_dir, opt)
            if rng is not None:
                gen.set_state(rng)
            if it_o != it_w:
                print(f"warning: optimizer state is from iteration {it_o}, weights from {it_w}; moments reset")
                opt = make_optimizer(model, cfg.lr, device)
        state = ckpt.load_state(model_dir)
        state["iteration"] = it_w
    else:
        model_dir.mkdir(parents=True, exist_ok=True)
        write_json(model_dir / ckpt.CONFIG_FILE, config)
    _trim_log(model_dir / "log.jsonl", state["iteration"])

    cuda = device.type == "cuda"
    amp_dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and amp_dtype == torch.float16)
    step_model = torch.compile(model) if cfg.compile else model
    prev_a = fixed_batch(data_a, 4, cfg.size, cfg.padding).to(device)
    prev_b = fixed_batch(data_b, 4, cfg.size, cfg.padding).to(device)
    (model_dir / "previews").mkdir(exist_ok=True)

    def save() -> None:
        ckpt.save_checkpoint(model_dir, model, opt, state, gen.get_state())

    def preview() -> None:
        grid = preview_grid(model, prev_a, prev_b)
        _write_png(model_dir / "previews" / f"{state['iteration']:07d}.png", grid)
        _write_png(model_dir / "previews" / "latest.png", grid)

    start_it = state["iteration"]
    seconds_before = float(state.get("seconds", 0.0))  # training time of earlier runs of this model
    t0 = time.monotonic()
    deadline = t0 + cfg.minutes * 60 if cfg.minutes else math.inf
    target = cfg.iterations if cfg.iterations is not None else math.inf
    ema_a = ema_b = None
    window: list[tuple[float, float]] = []
    stopped_by, interrupted = "", False
    log = open(model_dir / "log.jsonl", "a")  # noqa: SIM115 - closed in finally
    try:
        while True:
            if state["iteration"] >= target:
                stopped_by = "iterations"
                break
            if time.monotonic() >= deadline:
                stopped_by = "minutes"
                break
            progress_frac = max(
                (time.monotonic() - t0) / (deadline - t0) if deadline != math.inf else 0.0,
                (state["iteration"] - start_it) / (target - start_it) if target != math.inf else 0.0,
            )
            lr = lr_at(progress_frac, cfg.lr, cfg.anneal)
            for g in opt.param_groups:
                g["lr"] = lr
            losses = []
            with torch.autocast(device.type, dtype=amp_dtype, enabled=cuda):
                for side, data in (("a", data_a), ("b", data_b)):
                    x, y, w, m = sample_batch(data, cfg.batch_size, cfg.size, cfg.padding, cfg.augment, gen, device)
                    x = x.contiguous(memory_format=layout)
                    pred = step_model(x, side).float()
                    losses.append(face_loss(pred, y, w, cfg.ssim_weight, m if config["mask"] else None))
            loss = losses[0] + losses[1]
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at iteration {state['iteration'] + 1}; stopped. The last good "
                    f"checkpoint (iteration {ckpt.load_state(model_dir).get('iteration', 0)}) is kept; "
                    "try a lower --lr"
                )
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            la, lb = losses[0].item(), losses[1].item()
            ema_a = la if ema_a is None else 0.95 * ema_a + 0.05 * la
            ema_b = lb if ema_b is None else 0.95 * ema_b + 0.05 * lb
            window.append((la, lb))
            state["iteration"] += 1
            state["samples"] += 2 * cfg.batch_size
            it = state["iteration"]
            elapsed = time.monotonic() - t0
            info = {
                "loss_a": ema_a,
                "loss_b": ema_b,
                "samples_per_s": 2 * cfg.batch_size * (it - start_it) / elapsed,
                "elapsed": elapsed,
                "target": target,
                "deadline": deadline,
            }
            if it % 10 == 0 or it == target:
                mean_a, mean_b = np.mean(window, 0).tolist()
                window.clear()
                log.write(
                    json.dumps(
                        {
                            "iteration": it,
                            "loss_a": mean_a,
                            "loss_b": mean_b,
                            "lr": lr,
                            "seconds": seconds_before + elapsed,
                        }
                    )
                    + "\n"
                )
                log.flush()
                state["loss_history"].append([it, round(mean_a, 5), round(mean_b, 5)])
            if it % cfg.preview_every == 0:
                preview()
            if it % cfg.save_every == 0:
                state["seconds"] = seconds_before + elapsed
                save()
            if progress:
                progress(it, info)
    except KeyboardInterrupt:
        interrupted = True
        stopped_by = "interrupt"
    finally:
        log.close()
    state["seconds"] = seconds_before + time.monotonic() - t0
    if state["iteration"] > start_it or not (model_dir / ckpt.MODEL_FILE).is_file():
        save()
        preview()
    total_s = state["seconds"]
    return TrainResult(
        iteration=state["iteration"],
        seconds=total_s,
        samples_per_s=(state["samples"] / total_s) if total_s else 0.0,
        loss_a=ema_a or float("nan"),
        loss_b=ema_b or float("nan"),
        interrupted=interrupted,
        stopped_by=stopped_by,
    )
