"""Kill -9 `train`, `extract` and `swap` at random moments (seeded) and check what a user would find after.

For each kill: the command is started, killed after a random delay, then run again to the end. Checked:
- train: the folder resumes (the rerun reaches its target iteration), weights and state agree, no temporary
  files remain;
- extract: the rerun completes, the index has no duplicate frames, no temporary files remain;
- swap: no output appears under the user's name while the run is unfinished, the rerun writes a marked
  output, and the killed run's temporary file is gone.
Run: python bench/fault_injection.py [--kills 24] [--seed 0]. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

from common import OUT, clip, save


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "masquerade", *args], capture_output=True, text=True)


def kill_after(args: list[str], delay: float) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "masquerade", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(delay)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def temps(folder) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".tmp" in p.name or p.name.endswith(".next")]


def kill_train(work, faces, delay: float) -> dict:
    m = work / "model"
    shutil.rmtree(m, ignore_errors=True)
    args = ["train", str(faces[0]), str(faces[1]), "-o", str(m), "--batch-size", "4", "--save-every", "20"]
    kill_after([*args, "--iterations", "100000"], delay)
    saved = json.loads((m / "state.json").read_text()).get("iteration", 0) if (m / "state.json").exists() else 0
    target = saved + 20  # the rerun must resume from the last save and go on
    p = run([*args, "--iterations", str(target)])
    state = json.loads((m / "state.json").read_text()) if (m / "state.json").exists() else {}
    ok = p.returncode == 0 and state.get("iteration") == target and not temps(m)
    return {"ok": ok, "saved_at_kill": saved, "stderr": p.stderr[-200:]}


def kill_extract(work, delay: float) -> dict:
    fs = work / "faces"
    shutil.rmtree(fs, ignore_errors=True)
    args = ["extract", str(clip("d18")), "-o", str(fs), "--every", "4"]
    kill_after(args, delay)
    p = run(args)
    with sqlite3.connect(fs / "faceset.db") as db:
        frames = db.execute("SELECT COUNT(*), COUNT(DISTINCT frame_index) FROM frames").fetchone()
    ok = p.returncode == 0 and frames[0] == frames[1] == 54 and not temps(fs / "faces")
    return {"ok": ok, "frames": frames, "stderr": p.stderr[-200:]}


def kill_swap(work, model, delay: float) -> dict:
    out = work / "swapped.mp4"
    out.unlink(missing_ok=True)
    args = ["swap", str(clip("d18")), "-m", str(model), "-o", str(out), "--end", "60f"]
    kill_after(args, delay)
    premature = out.exists()
    leftovers_before = [p.name for p in work.glob(".swapped.*")]
    p = run(args)
    v = run(["verify", str(out)])
    leftovers = [p.name for p in work.glob(".swapped.*")]
    ok = not premature and p.returncode == 0 and v.returncode == 0 and not leftovers
    return {"ok": ok, "premature_output": premature, "killed_temp": bool(leftovers_before), "stderr": p.stderr[-200:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=24, help="kills in all, a third per command")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = OUT / "fault_injection"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    faces = (work / "fa", work / "fb")
    for f, c in zip(faces, ("d18", "d19"), strict=True):
        assert run(["extract", str(clip(c)), "-o", str(f), "--every", "6"]).returncode == 0
    model = work / "swap_model"
    assert run(["train", str(faces[0]), str(faces[1]), "-o", str(model), "--iterations", "150"]).returncode == 0
    results: dict[str, list] = {"train": [], "extract": [], "swap": []}
    per = max(1, args.kills // 3)
    for k in range(per):
        # delays span start-up (imports, model and data loading), the first save, and steady work
        results["train"].append({"delay": (d := round(rng.uniform(1.0, 12.0), 2)), **kill_train(work, faces, d)})
        results["extract"].append({"delay": (d := round(rng.uniform(0.5, 8.0), 2)), **kill_extract(work, d)})
        results["swap"].append({"delay": (d := round(rng.uniform(1.0, 15.0), 2)), **kill_swap(work, model, d)})
        print(k, {c: r[-1]["ok"] for c, r in results.items()}, flush=True)
    summary = {c: f"{sum(r['ok'] for r in rs)} of {len(rs)} recovered cleanly" for c, rs in results.items()}
    print(summary)
    save("fault_injection", {"seed": args.seed, "summary": summary, "runs": results})


if __name__ == "__main__":
    main()
