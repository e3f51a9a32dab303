"""Read a video file as sampled `Frame`s, timestamps from the stream.

Frames between samples are `grab()`bed (demuxed and decoded by FFmpeg, but not
converted to BGR and not copied into numpy), which is the cheap way to skip with
OpenCV. The time of a frame is its presentation time (CAP_PROP_POS_MSEC), so a
variable-frame-rate file samples correctly; sampling is by seconds, not by
frame count.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.types import Frame


class VideoFileError(Exception):
    """The file cannot be opened or decoded as video."""


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frame_count: int
    resolution_wh: tuple[int, int]

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


def probe(path: Path | str) -> VideoInfo:
    cap = _open(path)
    try:
        return VideoInfo(
            fps=float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
            frame_count=int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
            resolution_wh=(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))),
        )
    finally:
        cap.release()


def _open(path: Path | str) -> cv2.VideoCapture:
    if not Path(path).is_file():
        raise VideoFileError(f"{path}: no such file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoFileError(f"{path}: not a video OpenCV can open")
    return cap


def read_frames(
    path: Path | str, camera_id: str, sample_fps: float | None = 1.0, decode_all: bool = False
) -> Iterator[Frame]:
    """Frames at most `sample_fps` per second of stream time (None: every frame).

    decode_all=True retrieves every frame and drops the unwanted ones afterwards:
    the slow alternative, kept for the benchmark's comparison.
    """
    if sample_fps is not None and sample_fps <= 0:
        raise ValueError(f"sample_fps: expected > 0, got {sample_fps}")
    cap = _open(path)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    interval = 0.0 if sample_fps is None else 1.0 / sample_fps
    next_t = 0.0
    index = 0
    try:
        while cap.grab():
            ts = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if ts <= 0.0 and index > 0 and fps > 0:
                ts = index / fps  # containers without timestamps
            index += 1
            wanted = ts + 1e-6 >= next_t
            if not wanted and not decode_all:
                continue
            ok, pixels = cap.retrieve()
            if not ok:
                raise VideoFileError(f"{path}: cannot decode frame {index - 1}")
            if not wanted:
                continue
            next_t = next_t + interval if next_t + interval > ts else ts + interval
            yield Frame(np.asarray(pixels, dtype=np.uint8), camera_id, ts)
    finally:
        cap.release()
