"""Run every benchmark and write bench/results.json and bench/results.md (a Markdown table for the README).

Run: python bench/run_all.py [--skip extract,train,swap,watermark] [--with-quality] [--collect-only]
quality_vs_time takes about 25 minutes per identity pair, so it runs only with --with-quality; its last
results (bench/out/quality_vs_time*.json, one per run) are included either way.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys

from common import OUT, ROOT, machine

SCRIPTS = {
    "extract": ["extract_speed.py", "--frames", "20", "--rate-clips", "d18,d19,d6,d3"],
    "train": ["train_speed.py"],
    "swap": ["swap_speed.py"],
    "watermark": ["watermark_robustness.py"],
    "quality": ["quality_vs_time.py"],
}


SETTINGS = (("model", "lite"), ("batch_size", 16), ("lr", 2e-4), ("anneal", 0))  # defaults of older runs


def table(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Collected {results['date']} (each figure from its script's last run) on {m['cpus']} CPU cores "
        f"({m['cpu']}), torch {m['torch']}, "
        f"{m['threads']} threads, no GPU.",
        "",
        "| stage | measure | value |",
        "|---|---|---|",
    ]
    r = results.get("extract", {})
    for k, v in r.get("speed_fps_one_process", {}).items():
        lines.append(f"| extract | {k} (frames/s, one process) | {v} |")
    for k, v in r.get("detection_rate", {}).items():
        lines.append(f"| extract | face found in frames of {k} | {v:.1%} |")
    for k, v in results.get("train", {}).get("samples_per_s", {}).items():
        lines.append(f"| train | {k} (samples/s) | {v} |")
    for k, v in results.get("train", {}).get("speedup", {}).items():
        lines.append(f"| train | {k} (speed-up) | {v}x |")
    for k, v in results.get("swap", {}).get("runs", {}).items():
        if "frames_per_s" in v:
            lines.append(f"| swap | {k}, file to file (frames/s) | {v['frames_per_s']} |")
        else:
            lines.append(f"| swap | {k} | {v} |")
    w = results.get("watermark", {})
    if w:
        lines.append(
            f"| watermark | PSNR of the mark (min / mean) | {w['psnr_db']['min']:.1f} / {w['psnr_db']['mean']:.1f} dB |"
        )
        lines.append(
            f"| watermark | embed per face / read per face | {w['embed_ms_per_face']:.1f} / "
            f"{w['read_ms_per_face']:.1f} ms |"
        )
        for k, v in w.get("attacks", {}).items():
            clip = "clip marked" if v.get("clip_marked") else f"{v.get('files_marked', 0):.0%} of files marked"
            lines.append(f"| watermark | {k}: frames carrying the mark | {v['rate']:.1%} ({clip}) |")
        fa = w.get("false_alarms")
        if fa:
            lines.append(
                f"| watermark | false alarms on unmarked media | {fa['frames_flagged']} of "
                f"{fa['frames_checked']} frames, {fa['files_flagged']} files |"
            )
    runs = results.get("quality", {}).get("runs", [])
    if runs:
        lines += [
            "",
            "Quality against CPU-minutes of training (ID win rate: swapped frames nearer B than A; distances are",
            "dlib identity distances of the swapped face to B and to A; landmark error over inter-ocular distance;",
            "SSIM of held-out faces rebuilt by their own decoder):",
            "",
            "| pair | model, batch, lr, anneal | minutes | iterations | ID win rate | dist. to target / original | "
            "landmark err. | SSIM A->A / B->B |",
            "|---|---|---|---|---|---|---|---|",
        ]
        rows = []
        for run in runs:
            st = run.get("settings", {})
            key = tuple(st.get(k, d) for k, d in SETTINGS)
            how = ", ".join(f"{v:g}" if isinstance(v, float | int) else v for v in key)
            for pair, curve in run["pairs"].items():
                for p in curve:
                    rows.append(((pair, key, p["minutes"]), how, p))
        for (pair, _, minutes), how, p in sorted(rows, key=lambda r: r[0]):
            lines.append(
                f"| {pair} | {how} | {minutes:g} | {p['iteration']} | {p['id_win_rate']:.0%} | "
                f"{p['dist_target']:.3f} / {p['dist_original']:.3f} | {p['landmark_error']:.3f} | "
                f"{p['ssim_a']:.3f} / {p['ssim_b']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip", default="")
    ap.add_argument("--with-quality", action="store_true")
    ap.add_argument("--collect-only", action="store_true", help="only gather the last results into the table")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if not args.with_quality:
        skip.add("quality")
    if not args.collect_only:
        for name, cmd in SCRIPTS.items():
            if name not in skip:
                print(f"== {name}", flush=True)
                subprocess.run([sys.executable, str(ROOT / "bench" / cmd[0]), *cmd[1:]], check=True)
    files = {
        "extract": "extract_speed",
        "train": "train_speed",
        "swap": "swap_speed",
        "watermark": "watermark_robustness",
    }
    results = {"date": dt.date.today().isoformat(), "machine": machine()}
    for key, stem in files.items():
        path = OUT / f"{stem}.json"
        if path.exists():
            results[key] = json.loads(path.read_text())
    # every quality_vs_time*.json (one per run and settings tag), the curves side by side
    runs = [json.loads(path.read_text()) for path in sorted(OUT.glob("quality_vs_time*.json"))]
    if runs:
        results["quality"] = {"runs": runs}
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    md = table(results)
    (ROOT / "bench" / "results.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
