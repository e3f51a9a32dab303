"""Per-frame latency of our ONNX path vs ultralytics on the same model file and frames, in one run.

    .venv/bin/python bench/detector.py [--frames 30] [--imgsz 640]

Compares, on vtest.avi frames + bus.jpg, end to end per frame (pre + inference + post):
  ours     YoloOnnxDetector(model.onnx)
  ult-onnx ultralytics.YOLO(model.onnx).predict
  ult-pt   ultralytics.YOLO(model.pt).predict on CPU
with a random-weight YOLO11n (latency does not depend on the weights), and the
bundled NanoDet's frames per second at 1 and 2 threads. Needs the [train] extra.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("YOLO_OFFLINE", "1")

from models.nanodet import DEFAULT_MODEL_PATH, NanoDetDetector  # noqa: E402
from models.types import Image  # noqa: E402
from models.yolo_onnx import YoloOnnxDetector  # noqa: E402


def load_frames(count: int) -> list[Image]:
    import ultralytics

    testdata = Path(os.environ.get("CURBWATCH_TESTDATA", ROOT / ".cache" / "testdata"))
    capture = cv2.VideoCapture(str(testdata / "opencv" / "vtest.avi"))
    frames: list[Image] = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(np.asarray(frame, dtype=np.uint8))
    capture.release()
    bus = cv2.imread(str(Path(str(ultralytics.__file__)).parent / "assets" / "bus.jpg"))
    assert bus is not None, "ultralytics ships assets/bus.jpg"
    frames.append(np.asarray(bus, dtype=np.uint8))
    return frames


def median_ms(run: Callable[[Image], object], frames: list[Image], passes: int = 3) -> float:
    """Median per-frame wall time over `passes` sweeps, after one untimed frame."""
    run(frames[0])
    times = []
    for _ in range(passes):
        for frame in frames:
            start = time.perf_counter()
            run(frame)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30, help="vtest.avi frames to use (bus.jpg is added)")
    parser.add_argument("--imgsz", type=int, default=640, help="export size of the YOLO11n model")
    args = parser.parse_args()

    from ultralytics import YOLO

    frames = load_frames(args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        pt = Path(tmp) / "yolo11n_random.pt"
        YOLO("yolo11n.yaml").save(str(pt))
        onnx_path = Path(YOLO(str(pt)).export(format="onnx", imgsz=args.imgsz, verbose=False))

        ours = YoloOnnxDetector(onnx_path)
        ult_onnx = YOLO(str(onnx_path), task="detect")
        ult_pt = YOLO(str(pt), task="detect")
        results = {
            "ours (onnx)": median_ms(ours.detect, frames),
            "ultralytics (same onnx)": median_ms(
                lambda f: ult_onnx.predict(f, imgsz=args.imgsz, verbose=False), frames
            ),
            "ultralytics (.pt, cpu)": median_ms(
                lambda f: ult_pt.predict(f, imgsz=args.imgsz, device="cpu", verbose=False), frames
            ),
        }
    print(f"YOLO11n {args.imgsz}x{args.imgsz}, {len(frames)} frames (vtest + bus), {os.cpu_count()} CPUs")
    for name, ms in results.items():
        print(f"  {name:26s} {ms:7.1f} ms/frame")
    ours_ms = results["ours (onnx)"]
    print(f"  speed-up vs ultralytics on the same onnx: {results['ultralytics (same onnx)'] / ours_ms:.2f}x")
    print(f"  speed-up vs ultralytics on the .pt:       {results['ultralytics (.pt, cpu)'] / ours_ms:.2f}x")

    for threads in (1, 2):
        nanodet = NanoDetDetector(DEFAULT_MODEL_PATH, threads=threads)
        ms = median_ms(nanodet.detect, frames)
        print(f"NanoDet-g 416 (default), {threads} thread{'s' if threads > 1 else ''}: {1000 / ms:5.1f} FPS")


if __name__ == "__main__":
    main()
