"""Frames per second of `curbwatch analyze` on vtest.avi with the default model.

    .venv/bin/python bench/analyze.py [--sample-fps 1] [--threads 2]

Reports the share of wall time in decode, detection and the logic after it
(tracking + zones + incidents), for two ways of sampling: grab()-skipping the
frames between samples (what analyze does) and decoding every frame to BGR and
dropping the unwanted ones (the obvious alternative).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from edge.analyze.run import AnalyzePipeline
from edge.analyze.video_file import read_frames
from models.nanodet import DEFAULT_MODEL_PATH, NanoDetDetector
from zones.loader import load_zone_file

ROOT = Path(__file__).resolve().parent.parent


def run(
    detector: NanoDetDetector, video: Path, zones: Path, sample_fps: float | None, decode_all: bool
) -> None:
    zone_file = load_zone_file(zones)
    pipeline = AnalyzePipeline(detector, zone_file, datetime(2025, 6, 4, 2, 0, tzinfo=UTC))
    started = time.perf_counter()
    events = list(pipeline.run(read_frames(video, zone_file.camera_id, sample_fps, decode_all=decode_all)))
    wall = time.perf_counter() - started
    t = pipeline.times
    mode = "decode all" if decode_all else "grab-skip"
    rate = "every frame" if sample_fps is None else f"{sample_fps:g} fps"
    print(
        f"{mode:>10} @ {rate:>11}: {t.frames:4d} frames in {wall:6.2f} s = {t.frames / wall:6.1f} frames/s "
        f"({795 / wall:6.1f}x video frames/s) | decode {100 * t.decode_s / wall:5.1f}% "
        f"({1000 * t.decode_s / t.frames:5.1f} ms/frame), detect {100 * t.detect_s / wall:5.1f}% "
        f"({1000 * t.detect_s / t.frames:5.1f} ms), logic {100 * t.logic_s / wall:4.2f}% "
        f"({1000 * t.logic_s / t.frames:5.2f} ms) | events {len(events)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--video", type=Path, default=ROOT / ".cache/testdata/opencv/vtest.avi")
    parser.add_argument("--zones", type=Path, default=ROOT / "zones/examples/vtest_cam01.yaml")
    parser.add_argument("--sample-fps", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    detector = NanoDetDetector(DEFAULT_MODEL_PATH, threads=args.threads)
    for sample_fps, decode_all in ((args.sample_fps, False), (args.sample_fps, True), (None, False)):
        run(detector, args.video, args.zones, sample_fps, decode_all)


if __name__ == "__main__":
    main()
