"""Labels in the file (container metadata, PNG text, EXIF) and an optional visible tag."""

from __future__ import annotations

import cv2
import numpy as np

from masquerade import __version__

LABEL_PREFIX = "synthetic:"


def synthetic_label(model_id: str) -> str:
    return f"{LABEL_PREFIX} made with masquerade {__version__}, model {model_id}"


def video_metadata(model_id: str) -> dict[str, str]:
    text = synthetic_label(model_id)
    return {"comment": text, "description": text}


def draw_tag(frame: np.ndarray, text: str = "SYNTHETIC") -> np.ndarray:
    """A small visible tag in the bottom-right corner (white on translucent black)."""
    out = frame.copy()
    h, w = out.shape[:2]
    scale = max(0.35, min(h, w) / 900)
    thick = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(3, int(6 * scale))
    x1, y1 = w - pad, h - pad
    x0, y0 = x1 - tw - 2 * pad, y1 - th - base - 2 * pad
    roi = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = (roi * 0.45).astype(np.uint8)
    cv2.putText(
        out,
        text,
        (x0 + pad, y1 - pad - base),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        thick,
        cv2.LINE_AA,
    )
    return out
