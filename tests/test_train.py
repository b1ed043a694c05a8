"""`train`: losses fall, checkpoints are atomic safetensors, kill -9 and resume, NaN stops, Ctrl-C saves."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from masquerade.core.device import START_THREADS
from masquerade.core.errors import InputError
from masquerade.media import read_frames
from masquerade.models import io as ckpt
from masquerade.models import model_entry
from masquerade.models.io import build_model
from masquerade.train import loop
from masquerade.train.augment import AugmentConfig, make_pair
from masquerade.train.loop import TrainConfig, TrainingDiverged, lr_at, train

from .conftest import kill_9_when


def _saved_iteration(model_dir) -> int:
    try:
        return json.loads((model_dir / "state.json").read_text())["iteration"]
    except (OSError, ValueError):
        return -1


def test_model_folder_contents_and_losses_fall(model_dir):
    for name in (
        "model.safetensors",
        "optimizer.safetensors",
        "config.json",
        "state.json",
        "log.jsonl",
        "previews/latest.png",
        "previews/0000100.png",
    ):
        assert (model_dir / name).exists(), name
    cfg = json.loads((model_dir / "config.json").read_text())
    assert cfg["model"] == "lite" and cfg["size"] == 64 and len(cfg["identity"]["a"]) == 128
    lite = model_entry("lite")  # unset lr and batch size come from the model's registry entry
    assert (cfg["lr"], cfg["batch_size"]) == (lite.lr, lite.batch_size)
    assert cfg["ssim_weight"] == 3.0  # structure (DSSIM) weighs 3x the L1 loss by default
    assert cfg["faces"] == {"a": 33, "b": 38}  # 36 and 42 faces, every 10th id held out
    state = json.loads((model_dir / "state.json").read_text())
    hist = state["loss_history"]
    assert state["iteration"] == 100 and len(hist) == 10
    assert hist[-1][1] < hist[0][1] and hist[-1][2] < hist[0][2]  # both sides' losses fall
    log = [json.loads(x) for x in (model_dir / "log.jsonl").read_text().splitlines()]
    assert [x["iteration"] for x in log] == list(range(10, 101, 10))
    # a 100-iteration run anneals its learning rate over its last 20%: full up to 80, low at 100
    assert all(x["lr"] == cfg["lr"] for x in log[:8]) and log[-1]["lr"] < 0.2 * cfg["lr"]


def test_lr_schedule():
    assert lr_at(0.0, 1.0, 0.2) == lr_at(0.8, 1.0, 0.2) == 1.0
    steps = [lr_at(p / 100, 1.0, 0.2) for p in range(80, 101)]
    assert all(a > b for a, b in zip(steps, steps[1:], strict=False)) and steps[-1] == pytest.approx(0.05)
    assert lr_at(1.0, 1.0, 0.0) == 1.0  # anneal 0: constant


def test_a_run_with_a_known_end_anneals_its_rate_over_its_last_quarter_by_default(facesets, tmp_path):
    out = tmp_path / "m"
    train([facesets[0]], [facesets[1]], out, TrainConfig(iterations=20, batch_size=2, save_every=100))
    lr = model_entry("lite").lr
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [x["iteration"] for x in log] == [10, 20]
    assert log[0]["lr"] == lr and log[1]["lr"] < 0.2 * lr  # the 20th step lies 80% into the last quarter


def test_a_run_takes_back_the_cores_a_swapper_sets_to_one_thread_before_or_during_it(facesets, tmp_path, monkeypatch):
    if START_THREADS < 2:
        pytest.skip("one CPU thread on this machine: nothing to take back")
    torch.set_num_threads(1)  # what another stage of this process may leave (a Swapper did, before it scoped its own)
    seen = []
    step = loop.train_step

    def step_then_a_swapper_is_made(*a, **k):
        seen.append(torch.get_num_threads())
        out = step(*a, **k)
        torch.set_num_threads(1)  # a Swapper swapping beside the run (the web UI's live view) sets 1 while it works
        return out

    monkeypatch.setattr(loop, "train_step", step_then_a_swapper_is_made)
    try:
        train([facesets[0]], [facesets[1]], tmp_path / "m", TrainConfig(iterations=3, batch_size=2))
    finally:
        torch.set_num_threads(START_THREADS)
    assert seen == [START_THREADS] * 3


def test_the_last_share_of_a_run_trains_without_the_warp(tmp_path, facesets, monkeypatch):
    warps = []
    real = loop.sample_batches

    def spy(data, cfg, gen, device, layout, augment=None):
        warps.append((augment or cfg.augment).warp)
        return real(data, cfg, gen, device, layout, augment)

    monkeypatch.setattr(loop, "sample_batches", spy)
    cfg = TrainConfig(iterations=8, unwarp=0.25, batch_size=2, save_every=100, preview_every=100)
    train([facesets[0]], [facesets[1]], tmp_path / "m", cfg)
    assert warps == [1.0] * 6 + [0.0] * 2


def test_without_the_warp_the_input_is_the_target_posed_alike():
    gen = torch.Generator().manual_seed(0)
    src, weight = torch.rand(3, 3, 96, 96, generator=gen), torch.ones(3, 2, 96, 96)
    x, y, _ = make_pair(src, weight, 64, 1.0, AugmentConfig(warp=0.0), gen)
    assert torch.allclose(x, y, atol=1e-6)
    x, y, _ = make_pair(src, weight, 64, 1.0, AugmentConfig(), gen)
    assert (x - y).abs().mean() > 0.01


def test_weights_load_back_bit_exact(model_dir):
    cfg = ckpt.load_config(model_dir)
    m = build_model(cfg)
    assert ckpt.load_weights(model_dir, m) == 100
    saved = load_file(str(model_dir / "model.safetensors"))
    for k, v in m.state_dict().items():
        assert torch.equal(v, saved[k]), k


def test_kill_9_then_resume_continues_from_the_last_save(tmp_path, facesets):
    out = tmp_path / "m"
    args = [
        "train",
        str(facesets[0]),
        str(facesets[1]),
        "-o",
        str(out),
        "--iterations",
        "1000",
        "--save-every",
        "5",
        "--preview-every",
        "1000",
        "--batch-size",
        "4",
        "--ssim-weight",
        "2",
    ]
    kill_9_when(args, lambda: _saved_iteration(out) >= 5, grace=1.0)
    assert json.loads((out / "config.json").read_text())["ssim_weight"] == 2.0  # the CLI's option reaches training
    state = json.loads((out / "state.json").read_text())
    saved_it = state["iteration"]
    assert saved_it >= 5 and saved_it % 5 == 0
    m = build_model(ckpt.load_config(out))
    assert ckpt.load_weights(out, m) == saved_it  # loadable after kill -9
    opt = torch.optim.Adam(m.parameters())
    assert ckpt.load_optimizer(out, opt)[0] == saved_it
    res = train([facesets[0]], [facesets[1]], out, TrainConfig(iterations=saved_it + 3, batch_size=4, save_every=5))
    assert res.iteration == saved_it + 3
    assert json.loads((out / "state.json").read_text())["iteration"] == saved_it + 3
    assert not list(out.glob(".*tmp*"))  # no temporary files left behind


def test_resume_restores_optimizer_state_exactly(tmp_path, facesets):
    out = tmp_path / "m"
    train([facesets[0]], [facesets[1]], out, TrainConfig(iterations=4, batch_size=4, save_every=2))
    m = build_model(ckpt.load_config(out))
    opt = torch.optim.Adam(m.parameters(), betas=(0.5, 0.999))
    ckpt.load_weights(out, m)
    it, rng = ckpt.load_optimizer(out, opt)
    saved = load_file(str(out / "optimizer.safetensors"))
    st = opt.state_dict()["state"]
    assert it == 4 and rng is not None
    assert torch.equal(st[0]["exp_avg"], saved["state.0.exp_avg"])


def test_stop_and_resume_trains_exactly_like_one_run(tmp_path, facesets):
    """Weights, Adam moments (in the parameters' memory layout, which the fused step relies on) and the
    sampling RNG all come back: 3 + 3 resumed iterations give the very weights of 6 in one go."""
    cfg = dict(batch_size=4, save_every=100, preview_every=100, anneal=0.0, unwarp=0.0)  # one schedule for both
    train([facesets[0]], [facesets[1]], tmp_path / "one", TrainConfig(iterations=6, **cfg))
    train([facesets[0]], [facesets[1]], tmp_path / "two", TrainConfig(iterations=3, **cfg))
    train([facesets[0]], [facesets[1]], tmp_path / "two", TrainConfig(iterations=6, **cfg))
    one, two = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("one", "two"))
    assert one.keys() == two.keys()
    for k in one:
        assert torch.allclose(one[k], two[k], rtol=0, atol=1e-6), k


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, facesets, monkeypatch):
    out = tmp_path / "m"
    train([facesets[0]], [facesets[1]], out, TrainConfig(iterations=2, batch_size=4, save_every=2))
    before = (out / "model.safetensors").read_bytes()
    monkeypatch.setattr(loop, "face_loss", lambda *a, **k: torch.tensor(float("nan"), requires_grad=True))
    with pytest.raises(TrainingDiverged, match="last good checkpoint \\(iteration 2\\)"):
        train([facesets[0]], [facesets[1]], out, TrainConfig(iterations=10, batch_size=4, save_every=2))
    assert (out / "model.safetensors").read_bytes() == before


def test_ctrl_c_saves(tmp_path, facesets, monkeypatch):
    out = tmp_path / "m"
    calls = {"n": 0}

    def progress(it, total, info):
        calls["n"] += 1
        if it == 3:
            raise KeyboardInterrupt

    res = train([facesets[0]], [facesets[1]], out, TrainConfig(batch_size=4, save_every=1000), progress)
    assert res.interrupted and res.iteration == 3
    assert json.loads((out / "state.json").read_text())["iteration"] == 3


def test_train_cli_bad_inputs(tmp_path, facesets):
    run = lambda *a: subprocess.run([sys.executable, "-m", "masquerade", "train", *a], capture_output=True, text=True)  # noqa: E731
    p = run(str(tmp_path / "nope"), str(facesets[1]), "-o", str(tmp_path / "m"))
    assert p.returncode == 2 and "not a face set" in p.stderr and "Traceback" not in p.stderr
    p = run(str(facesets[0]), str(facesets[1]), "-o", str(tmp_path / "m"), "--model", "huge")
    assert p.returncode == 2
    p = run(str(facesets[0]), str(facesets[1]), "-o", str(tmp_path / "m"), "--resume")
    assert p.returncode == 2 and "no saved model to resume" in p.stderr


def test_an_interrupted_save_is_rolled_back_or_forward(tmp_path):
    """Kills between the files of one save: before state.json (the commit point) the new files are discarded,
    after it they are completed, so weights, optimizer and state always agree."""
    from masquerade.models import create_model

    m = create_model("lite")
    opt = torch.optim.Adam(m.parameters())
    ckpt.save_checkpoint(tmp_path, m, opt, {"iteration": 5}, torch.get_rng_state())
    ckpt.save_tensors(ckpt._next(tmp_path / ckpt.MODEL_FILE), m.state_dict(), {"iteration": "10"})
    assert ckpt.load_weights(tmp_path, create_model("lite")) == 5  # killed before the commit: the old weights
    assert ckpt._next(tmp_path / ckpt.MODEL_FILE).exists()  # a reader changes nothing (training may be running)
    ckpt.recover(tmp_path)  # the trainer, restarting, rolls the save back
    assert not ckpt._next(tmp_path / ckpt.MODEL_FILE).exists()
    ckpt.save_tensors(ckpt._next(tmp_path / ckpt.MODEL_FILE), m.state_dict(), {"iteration": "10"})
    ckpt.save_tensors(
        ckpt._next(tmp_path / ckpt.OPTIM_FILE),
        {"rng": torch.get_rng_state()},
        {"iteration": "10", "param_groups": "[]"},
    )
    ckpt.write_json(tmp_path / ckpt.STATE_FILE, {"iteration": 10})
    assert ckpt.load_weights(tmp_path, create_model("lite")) == 10  # killed after the commit: the new weights
    assert ckpt._next(tmp_path / ckpt.MODEL_FILE).exists()
    (tmp_path / ".model.x1y2.tmp.safetensors").write_bytes(b"half a file")  # left by a killed writer
    (tmp_path / ".tmpAb12Cd").write_bytes(b"half a file")  # left by safetensors inside a killed writer
    ckpt.recover(tmp_path)  # the trainer completes the save and clears the debris
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "optimizer.safetensors", "state.json"]


def test_log_carries_held_out_loss_flops_and_mfu(model_dir):
    log = [json.loads(x) for x in (model_dir / "log.jsonl").read_text().splitlines()]
    last = log[-1]
    assert last["holdout_a"] > 0 and last["holdout_b"] > 0  # previews every 50: the held-out faces were scored
    assert 0 < last["mfu"] < 1 and last["samples_per_s"] > 0


def test_a_peak_measured_in_a_busy_moment_does_not_stick_in_the_mfu(tmp_path, facesets, monkeypatch):
    calls = []

    def peak(device, repeats=8):  # the first measurement is starved (another process), the later ones are not
        calls.append(repeats)
        return 1.0 if len(calls) == 1 else 1e12

    monkeypatch.setattr(loop, "peak_flops", peak)
    out = tmp_path / "m"
    train([facesets[0]], [facesets[1]], out, TrainConfig(iterations=4, batch_size=2, preview_every=2))
    last = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    assert len(calls) == 3 and 0 < last["mfu"] < 1


def test_a_second_trainer_on_one_folder_stops_with_a_clear_message(tmp_path, facesets):
    from masquerade.core.lock import FolderBusy, FolderLock

    out = tmp_path / "m"
    out.mkdir()
    with FolderLock(out, "train"), pytest.raises(FolderBusy, match="in use by process"):
        train([facesets[0]], [facesets[1]], out, TrainConfig(iterations=1, batch_size=2))
    res = train([facesets[0]], [facesets[1]], out, TrainConfig(iterations=1, batch_size=2))  # free again
    assert res.iteration == 1


def test_a_kill_before_the_first_save_leaves_a_folder_that_resumes(tmp_path, facesets):
    out = tmp_path / "m"
    args = ["train", str(facesets[0]), str(facesets[1]), "-o", str(out), "--batch-size", "2", "--save-every", "100000"]
    kill_9_when(args, (out / "model.safetensors").exists)  # killed long before the first periodic save
    res = train([facesets[0]], [facesets[1]], out, TrainConfig(iterations=2, batch_size=2))
    assert res.iteration == 2
    assert not list(out.glob(".*tmp*")) and not list(out.glob("*.next"))


@pytest.mark.parametrize(
    "option, value, reason",
    [
        ("--lr", "-1", "--lr"),
        ("--lr", "nan", "--lr"),
        ("--lr", "0", "--lr"),
        ("--size", "7", "--size"),
        ("--size", "100000", "--size"),
        ("--unwarp", "1.5", "--unwarp"),
        ("--ssim-weight", "-1", "--ssim-weight"),
        ("--minutes", "0", "--minutes"),
        ("--minutes", "-1", "--minutes"),
    ],
)
def test_options_out_of_their_domain_are_refused_in_one_line(tmp_path, facesets, option, value, reason):
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "masquerade",
            "train",
            str(facesets[0]),
            str(facesets[1]),
            "-o",
            str(tmp_path / "m"),
            option,
            value,
        ],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and reason in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert not (tmp_path / "m").exists()


def test_each_model_takes_its_own_size_and_refuses_one_it_cannot_render():
    assert TrainConfig().with_model_defaults().size == 64
    assert TrainConfig(model="lite-d").with_model_defaults().size == 128
    assert TrainConfig(model="lite-d", size=192).with_model_defaults().size == 192
    with pytest.raises(InputError, match="multiple of 32"):
        TrainConfig(model="lite-d", size=80).check()


def test_a_model_id_is_fresh_unless_pinned_and_then_must_be_eight_hex_digits(tmp_path, facesets):
    cfg = {"iterations": 1, "batch_size": 2, "save_every": 100}
    ids = []
    for name in ("one", "two"):
        train([facesets[0]], [facesets[1]], tmp_path / name, TrainConfig(**cfg))
        ids.append(json.loads((tmp_path / name / "config.json").read_text())["model_id"])
    train([facesets[0]], [facesets[1]], tmp_path / "pinned", TrainConfig(**cfg, model_id="0123abcd"))
    config = json.loads((tmp_path / "pinned" / "config.json").read_text())
    assert ids[0] != ids[1] and config["model_id"] == "0123abcd"
    with pytest.raises(InputError, match="8 lower-case hex digits"):
        TrainConfig(model_id="c738924").check()


def test_a_lite_d_model_trains_and_swaps_at_128_px(tmp_path, facesets, d18):
    from masquerade.swap.pipeline import Swapper

    out = tmp_path / "m"
    train([facesets[0]], [facesets[1]], out, TrainConfig(model="lite-d", iterations=2, batch_size=2))
    assert json.loads((out / "config.json").read_text())["size"] == 128
    frame = next(read_frames(d18)).image
    swapper = Swapper(out)
    assert swapper.size == 128 and swapper.swap_frame(frame).shape == frame.shape


def test_train_refuses_a_face_set_folder_as_its_output(facesets):
    with pytest.raises(InputError, match="face set folder"):
        train([facesets[0]], [facesets[1]], facesets[0], TrainConfig(iterations=1))


def test_expressions_one_side_never_shows_are_named_before_training():
    import numpy as np

    from masquerade.train.data import SideData, expression_bins, uncovered

    def side(openings):
        bins = expression_bins(np.asarray(openings, float), np.zeros(len(openings)))
        return SideData(torch.zeros(0), torch.zeros(0), 0.3, np.zeros(128), bins)

    smiles = side([0.2] * 70 + [0.0] * 30)  # A smiles in 70% of its faces
    never = side([0.0] * 50 + [0.1] * 2)  # B never opens its mouth
    assert uncovered(smiles, never) == [("mouth open, frontal", 0.7)]
    assert uncovered(never, smiles) == []  # B's 2 parted mouths of 52: under the 5% worth a warning
    assert uncovered(never, smiles, at_least=0.01) == [("mouth parted, frontal", 2 / 52)]
    assert uncovered(smiles, side([0.2, 0.0])) == []


def test_a_head_turned_one_way_covers_the_other_when_training_flips_faces():
    import numpy as np

    from masquerade.train.data import SideData, expression_bins, mirror_bins, uncovered

    def side(yaws):
        bins = expression_bins(np.zeros(len(yaws)), np.asarray(yaws, float))
        return SideData(torch.zeros(0), torch.zeros(0), 0.3, np.zeros(128), bins)

    left, right = side([-20.0] * 40), side([20.0, 30.0] * 20)
    assert (mirror_bins(right.bins) == left.bins[:1]).sum() == 20  # +20 deg mirrored is -20 deg, mouth kept
    assert uncovered(left, right) == [("mouth closed, yaw -25 to -10 deg", 1.0)]
    assert uncovered(left, right, mirrored=True) == []
    assert uncovered(right, left, mirrored=True) == [("mouth closed, yaw above 25 deg", 0.5)]  # -30 never shown


def test_training_faces_carry_their_expression_bins(facesets):
    from masquerade.train.data import load_side

    side = load_side([facesets[1]], 128)
    assert side.bins is not None and side.bins.shape == (len(side),)


def test_a_side_given_two_peoples_face_sets_trains_on_its_main_person_and_counts_the_others_faces(facesets):
    from masquerade.faceset import FaceSet
    from masquerade.train.data import load_side

    counts = []
    for path in facesets:
        with FaceSet.open(path) as fs:
            counts.append(len(fs))
    assert counts[0] < counts[1]  # d19 (B) has more faces: the main person of both sets joined
    both = load_side(list(facesets), 128)
    assert both.others == counts[0] and len(both) == counts[1]
    alone = load_side([facesets[1]], 128)
    assert alone.others == 0 and np.allclose(both.embedding, alone.embedding)


def test_training_sees_a_lifted_crop_exactly_where_swap_cuts_it():
    """A model trained with `lift` is shown the same square of a face as swap later cuts from the frame."""
    import cv2

    from masquerade.faces.align import crop_face, estimate_matrix, transform_points
    from masquerade.faces.mean_face import MEAN_FACE_68
    from masquerade.train.augment import AugmentConfig
    from masquerade.train.data import SideData, fixed_batch, sample_batch

    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    frame = 127 + 100 * np.stack([np.sin(xx / 25.0), np.cos(yy / 20.0), np.sin((xx + yy) / 30.0)], -1)
    frame = cv2.GaussianBlur(frame, (0, 0), 1.5).astype(np.uint8)
    face = MEAN_FACE_68 * 180 + np.array([230.0, 150.0])
    cached = crop_face(frame, estimate_matrix(face, 256, 0.3), 256)
    side = SideData(
        torch.from_numpy(cached).permute(2, 0, 1)[None].contiguous(),
        torch.full((1, 2, 256, 256), 255, dtype=torch.uint8),
        0.3,
        np.zeros(128, np.float32),
    )
    for lift in (0.0, 0.1):
        seen = fixed_batch(side, 1, 64, 0.15, lift)[0][0].permute(1, 2, 0).numpy() * 255
        cut = crop_face(frame, estimate_matrix(face, 64, 0.15, lift), 64).astype(np.float32)
        assert np.abs(seen - cut)[4:-4, 4:-4].mean() < 6.0, lift
        still = AugmentConfig(rotation=0, zoom=0, shift=0, flip=0, warp=0, lab_l=0, lab_ab=0)
        _, target, _, _ = sample_batch(
            side, 1, 64, 0.15, still, torch.Generator().manual_seed(0), torch.device("cpu"), lift
        )
        assert np.abs(target[0].permute(1, 2, 0).numpy() * 255 - seen).max() < 1.0  # augmentation, un-jittered
    brow = transform_points(estimate_matrix(face, 64, 0.15, 0.1), face[17:27])[:, 1].min()
    assert brow > transform_points(estimate_matrix(face, 64, 0.15), face[17:27])[:, 1].min() + 4  # more room above
