"""Real frames for model tests: vtest.avi (a pedestrian street) and the demo clip (goods on a sidewalk)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from models.types import Image

ROOT = Path(__file__).resolve().parents[2]
DEMO_CLIP = ROOT / "edge" / "demo" / "demo_cam01.mp4"


def video_frames(path: Path, *, start_s: float = 0.0, every_s: float = 1.0, count: int = 10) -> list[Image]:
    """`count` BGR frames of a video file, one per `every_s` of stream time from `start_s`."""
    frames: list[Image] = []
    due = start_s
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is None or frame.time + 1e-6 < due:
                continue
            frames.append(np.ascontiguousarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8))
            due += every_s
            if len(frames) == count:
                break
    if len(frames) < count:
        raise ValueError(
            f"{path}: only {len(frames)} frames from {start_s} s every {every_s} s, wanted {count}"
        )
    return frames
