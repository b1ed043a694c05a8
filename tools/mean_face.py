"""Regenerate masquerade/faces/mean_face.py: the 68-point mean face used as the alignment target.

Generalised Procrustes analysis of dlib landmarks over the shared clips (every 6th frame), then
normalised so the eyes are level and the 68 points fill the unit square. Run: python tools/mean_face.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from masquerade.faces.align import umeyama
from masquerade.faces.detect import HogDetector, landmarks68
from masquerade.media import read_frames

CLIPS = ["d18", "d19", "d6", "d3", "d12", "d9", "d0"]


def main() -> None:
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/clips")
    det = HogDetector(min_face=80)
    shapes = []
    for name in CLIPS:
        for fr in read_frames(data / f"{name}.mp4", every=6):
            rgb = fr.image
            for d in det.detect(rgb)[:1]:
                shapes.append(landmarks68(rgb, d.box))
    pts = np.stack(shapes).astype(np.float64)
    mean = pts[0] - pts[0].mean(0)
    for _ in range(10):
        aligned = np.stack([(umeyama(p, mean)[:, :2] @ p.T).T + umeyama(p, mean)[:, 2] for p in pts])
        mean = aligned.mean(0)
        mean -= mean.mean(0)
        mean /= np.linalg.norm(mean)
    eye_l, eye_r = mean[36:42].mean(0), mean[42:48].mean(0)
    angle = np.arctan2(eye_r[1] - eye_l[1], eye_r[0] - eye_l[0])
    c, s = np.cos(-angle), np.sin(-angle)
    mean = mean @ np.array([[c, s], [-s, c]])
    mean -= mean.min(0)
    mean /= mean.max()
    mean += (1 - mean.max(0)) / 2
    body = ",\n".join(f"    ({x:.4f}, {y:.4f})" for x, y in mean)
    out = Path(__file__).resolve().parents[1] / "masquerade/faces/mean_face.py"
    out.write_text(
        '"""The 68-point mean face (dlib order) in the unit square; made by tools/mean_face.py from '
        f'{len(pts)} faces."""\n\nimport numpy as np\n\nMEAN_FACE_68 = np.array(\n  [\n{body},\n  ],\n'
        "  dtype=np.float32,\n)\n".replace("\n  ", "\n    ").replace("    [\n", "    [\n")
    )
    print(f"wrote {out} from {len(pts)} faces")


if __name__ == "__main__":
    main()
