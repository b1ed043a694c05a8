"""Training under torchrun: 2 CPU processes (gloo) train one model, and it resumes in a single process."""

import json
import subprocess
import sys

from masquerade.models.io import load_state


def torchrun(*args, n=2):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}"]
    return subprocess.run([*cmd, "-m", "masquerade", *map(str, args)], capture_output=True, text=True, timeout=600)


def test_two_processes_train_the_same_weights_and_one_resumes_them(facesets, tmp_path):
    a, b = facesets
    out = tmp_path / "m"
    r = torchrun("train", a, b, "-o", out, "--iterations", 30, "--batch-size", 4, "--save-every", 10, "--seed", 3)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2 processes (torchrun): the very same weights on every process" in r.stdout
    assert r.stdout.count("reached --iterations") == 1  # rank 0 alone reports
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["iteration"] == 30 and log[-1]["processes"] == 2 and log[-1]["global_batch"] == 8
    assert log[-1]["loss_a"] < log[0]["loss_a"] and log[-1]["loss_b"] < log[0]["loss_b"]  # both sides learn
    assert load_state(out)["iteration"] == 30
    # the same model resumes in one process, and back under torchrun
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "masquerade",
            *map(str, ("train", a, b, "-o", out, "--iterations", 35, "--batch-size", 4)),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and load_state(out)["iteration"] == 35, r.stderr[-2000:]
    r = torchrun("train", a, b, "-o", out, "--iterations", 40, "--batch-size", 4)
    assert r.returncode == 0 and load_state(out)["iteration"] == 40, r.stderr[-2000:]
