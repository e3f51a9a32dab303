"""What the scene model costs per processed picture, next to the detector and the obvious alternative.

On 60 pictures of vtest.avi (768x576) at one per second, one thread each (cv2.setNumThreads(1)),
after a warm-up of the learning period:
  * our scene model (edge.scene.SceneModel) at the default 384 px working width, with the
    detector's people held as the node does, and at the full 768 px;
  * OpenCV's MOG2 background subtractor at 384 px: one background, no static evidence, no
    light compensation, no nudge following: the obvious off-the-shelf alternative;
  * the bundled NanoDet detector on the same pictures.

    .venv/bin/python -m bench.scene
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edge.scene.config import SceneSettings
from edge.scene.model import SceneModel
from models.nanodet import DEFAULT_MODEL_PATH, NanoDetDetector

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = Path(os.environ.get("CURBWATCH_TESTDATA", ROOT / ".cache" / "testdata"))


def pictures(count: int = 70) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(TESTDATA / "opencv" / "vtest.avi"))
    out = []
    index = 0
    while len(out) < count:
        ok, pixels = cap.read()
        if not ok:
            break
        if index % 10 == 0:
            out.append(pixels)
        index += 1
    cap.release()
    return out


def timed(step: Callable[[int], object], indices: range) -> list[float]:
    times = []
    for i in indices:
        started = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - started)
    return times


def summary(name: str, times: list[float], reference_ms: float | None = None) -> str:
    ms = np.array(times) * 1000
    ratio = f"  {np.median(ms) / reference_ms:5.2f}x ours" if reference_ms else ""
    return f"{name:<44} median {np.median(ms):6.2f} ms  p95 {np.percentile(ms, 95):6.2f} ms{ratio}"


def main() -> None:
    cv2.setNumThreads(1)
    frames = pictures()
    detector = NanoDetDetector(DEFAULT_MODEL_PATH, threads=1)
    people = []
    for pixels in frames:
        found = detector.detect(pixels, 0.25)
        boxes = found[found.class_mask({"person"})].xyxy / np.array([768, 576, 768, 576], np.float32)
        people.append(boxes.astype(np.float32))
    warm, measured = range(0, 12), range(12, len(frames))

    def ours(width: int) -> list[float]:
        model = SceneModel(SceneSettings(width_px=width))
        for i in warm:
            model.update(frames[i], float(i), people[i])
        return timed(lambda i: model.update(frames[i], float(i), people[i]), measured)

    ours_384 = ours(384)
    reference = float(np.median(ours_384)) * 1000
    mog2 = cv2.createBackgroundSubtractorMOG2(history=300, detectShadows=True)

    def mog2_step(i: int) -> object:
        small = cv2.resize(frames[i], (384, 288), interpolation=cv2.INTER_AREA)
        return mog2.apply(small)

    for i in warm:
        mog2_step(i)
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} pictures={len(measured)} (768x576, 1 thread)")
    print(summary("scene model, 384 px (default)", ours_384))
    print(summary("scene model, 768 px (full resolution)", ours(768), reference))
    print(summary("OpenCV MOG2, 384 px (single background)", timed(mog2_step, measured), reference))
    print(
        summary(
            "NanoDet-g detector (the box's other model)",
            timed(lambda i: detector.detect(frames[i]), measured),
            reference,
        )
    )


if __name__ == "__main__":
    main()
