"""How many cameras one edge box sustains at one analysed frame per 2 s each.

Each simulated camera replays an H.264 recording of vtest.avi (768x576, 10 fps,
a keyframe every second, like a typical IP camera) in real time and in a loop,
through the real capture path (`CameraWorker` -> LATEST_WINS queue ->
`DetectorScheduler` -> the default NanoDet detector). Camera starts are
staggered over one sampling interval, as independent cameras are.

For each camera count (4, 8, 16, 24 by default) and each decode mode
(keyframe-only, full) it measures, after a warm-up:
  * process CPU (user+sys seconds per wall second, in cores) and detector busy share;
  * per-camera sampling jitter: |gap between two analyses - interval| (wall clock), p50/p95;
  * lag: frame queued -> detection finished, p50/p95;
  * missed samples: gaps in stream time longer than 1.5 intervals (a frame replaced unseen).
A mode stops stepping up once a count breaks the bounds (--max-jitter-s, --max-lag-s, misses).
`--scene on` adds the scene model (edge.scene) as the node runs it: every decoded picture, scaled
in the capture thread, updated in the node's one scene thread, merged into each analysed frame's
detections; `--scene both` runs each step without and with it; `--scene compare` also runs the
scene models in the capture threads themselves (the obvious way, which starves the detector).

    .venv/bin/python -m bench.cameras                   # 4 8 16 24, 20 s each
    .venv/bin/python -m bench.cameras --counts 16 24 32 --seconds 30 --detector-threads 1
    .venv/bin/python -m bench.cameras --counts 24 --modes keyframes --scene compare
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.capture import CameraSpec, CameraWorker, DecodeMode
from edge.capture.sources import Picture
from edge.node.scheduler import DetectorScheduler, percentile
from edge.scene.config import SceneSettings
from edge.scene.static_objects import StaticObjects
from edge.scene.worker import SceneWorker
from models.detector import Detector
from models.types import Detections, Frame

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = Path(os.environ.get("CURBWATCH_TESTDATA", ROOT / ".cache" / "testdata"))
BENCH_CACHE = ROOT / ".cache" / "bench"


def camera_recording(frames: int = 300) -> Path:
    """vtest.avi as H.264 with a 1 s keyframe interval (cached)."""
    from tests.support.rtsp import encode_h264, write_matroska

    path = BENCH_CACHE / f"vtest_h264_gop10_{frames}.mkv"
    if not path.exists():
        BENCH_CACHE.mkdir(parents=True, exist_ok=True)
        clip = encode_h264(TESTDATA / "opencv" / "vtest.avi", max_frames=frames, gop=10)
        partial = path.with_suffix(".part.mkv")
        write_matroska(clip, partial)
        partial.rename(path)
    return path


class NullDetector:
    """Finds nothing at no cost: isolates what capture (demux, decode, convert) costs."""

    class_names = ("none",)
    input_size_wh = (1, 1)

    def detect(self, image: object, conf_threshold: float | None = None) -> Detections:
        return Detections.empty(self.class_names)


def load_detector(threads: int, kind: str = "default") -> Detector:
    if kind == "none":
        return NullDetector()
    try:
        from models.nanodet import DEFAULT_MODEL_PATH, NanoDetDetector
    except ImportError:
        from models.config import load_detector as load

        detector: Detector = load(None)
        return detector
    return NanoDetDetector(DEFAULT_MODEL_PATH, threads=threads)


@dataclass
class StepResult:
    mode: DecodeMode
    scene: str  # off | worker (the node's one scene thread) | capture (in each capture thread)
    cameras: int
    cpu_cores: float
    detector_busy: float
    analysed_per_s: float
    jitter_p50_s: float
    jitter_p95_s: float
    worst_camera_jitter_p95_s: float
    lag_p50_s: float
    lag_p95_s: float
    missed: int
    dropped: int

    @property
    def label(self) -> str:
        return self.mode.value + ("" if self.scene == "off" else f"+scene/{self.scene}")

    def within(self, max_jitter_s: float, max_lag_s: float) -> bool:
        return self.jitter_p95_s <= max_jitter_s and self.lag_p95_s <= max_lag_s and self.missed == 0

    def row(self) -> str:
        return (
            f"{self.label:>23} {self.cameras:>4} {self.cpu_cores:>6.2f} {self.detector_busy:>6.0%} "
            f"{self.analysed_per_s:>6.2f} {self.jitter_p50_s:>7.3f} {self.jitter_p95_s:>7.3f} "
            f"{self.worst_camera_jitter_p95_s:>7.3f} {self.lag_p50_s:>6.3f} {self.lag_p95_s:>6.3f} "
            f"{self.missed:>6} {self.dropped:>6}"
        )


HEADER = (
    f"{'decode':>23} {'cams':>4} {'cores':>6} {'det':>6} {'fr/s':>6} {'jit50':>7} {'jit95':>7} "
    f"{'worst95':>7} {'lag50':>6} {'lag95':>6} {'missed':>6} {'drops':>6}"
)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def scene_tap(camera_id: str, eye: StaticObjects, worker: SceneWorker | None) -> Callable[[Picture], None]:
    """The node's capture-thread tap (edge.node.app): pictures decoded anyway, to the scene thread.

    worker None: the scene model runs in the capture thread itself (the alternative measured).
    """

    def tap(picture: Picture) -> None:
        if eye.claim(picture.ts):
            small = picture.to_bgr_width(eye.settings.width_px)
            if worker is None:
                eye.update(small, picture.ts)
            else:
                worker.submit(camera_id, eye, small, picture.ts)

    return tap


def run_step(
    recording: Path,
    detector: Detector,
    cameras: int,
    mode: DecodeMode,
    interval_s: float,
    warmup_s: float,
    measure_s: float,
    scene: str = "off",
) -> StepResult:
    done_at: dict[str, list[float]] = {f"cam{i:02d}": [] for i in range(cameras)}
    stream_ts: dict[str, list[float]] = {name: [] for name in done_at}
    measuring = threading.Event()
    eyes = {name: StaticObjects(SceneSettings()) for name in done_at} if scene != "off" else {}

    def on_result(frame: Frame, detections: Detections) -> None:
        eye = eyes.get(frame.camera_id)
        if eye is not None:  # what CameraPipeline does before the tracker
            eye.see_people(detections, frame.resolution_wh)
            eye.merge(frame, detections)
        if measuring.is_set():
            done_at[frame.camera_id].append(time.monotonic())
            stream_ts[frame.camera_id].append(frame.ts)

    stop = threading.Event()
    scheduler = DetectorScheduler(detector, on_result, stop_event=stop)
    scene_worker = SceneWorker(stop)
    workers = []
    for name in done_at:
        spec = CameraSpec(name, str(recording), interval_s, decode=mode, realtime=True, loop=True)
        queue = spec.make_queue()
        schedule = scheduler.add_camera(name, queue, interval_s)
        tap = scene_tap(name, eyes[name], scene_worker if scene == "worker" else None) if eyes else None
        workers.append((CameraWorker(spec, queue, stop_event=stop, on_picture=tap), schedule))
    scheduler.start()
    scene_worker.start()
    for index, (worker, _) in enumerate(workers):
        worker.start()
        time.sleep(interval_s / cameras if index < cameras - 1 else 0)  # independent phases
    time.sleep(warmup_s)
    for _, schedule in workers:
        schedule.lag_s.clear()
    dropped_before = sum(schedule.dropped for _, schedule in workers)
    busy_before = scheduler.busy_s
    cpu_before, wall_before = cpu_seconds(), time.monotonic()
    measuring.set()
    time.sleep(measure_s)
    measuring.clear()
    cpu_used, wall = cpu_seconds() - cpu_before, time.monotonic() - wall_before
    busy = scheduler.busy_s - busy_before
    dropped = sum(schedule.dropped for _, schedule in workers) - dropped_before
    lags = list(itertools.chain.from_iterable(schedule.lag_s for _, schedule in workers))
    stop.set()
    for worker, _ in workers:
        worker.join(5)
    scene_worker.stop()
    scene_worker.join(5)
    scheduler.join(5)

    jitter_all: list[float] = []
    worst = 0.0
    missed = 0
    for name in done_at:
        gaps = np.diff(done_at[name])
        jitter = np.abs(gaps - interval_s)
        jitter_all.extend(jitter.tolist())
        if jitter.size:
            worst = max(worst, float(np.percentile(jitter, 95)))
        missed += int(np.sum(np.diff(stream_ts[name]) > 1.5 * interval_s))
    analysed = sum(len(v) for v in done_at.values())
    return StepResult(
        mode=mode,
        scene=scene,
        cameras=cameras,
        cpu_cores=cpu_used / wall,
        detector_busy=busy / wall,
        analysed_per_s=analysed / wall,
        jitter_p50_s=percentile(jitter_all, 50) or 0.0,
        jitter_p95_s=percentile(jitter_all, 95) or 0.0,
        worst_camera_jitter_p95_s=worst,
        lag_p50_s=percentile(lags, 50) or 0.0,
        lag_p95_s=percentile(lags, 95) or 0.0,
        missed=missed,
        dropped=dropped,
    )


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> list[StepResult]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", type=int, nargs="+", default=[4, 8, 16, 24])
    parser.add_argument(
        "--modes", nargs="+", default=["keyframes", "full"], choices=["keyframes", "full", "auto"]
    )
    parser.add_argument("--interval-s", type=float, default=2.0, help="sampling interval per camera")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per step")
    parser.add_argument("--warmup-s", type=float, default=4.0)
    parser.add_argument("--detector-threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    parser.add_argument(
        "--detector", choices=["default", "none"], default="default", help="none: capture cost only"
    )
    parser.add_argument(
        "--scene",
        choices=["off", "on", "both", "compare"],
        default="off",
        help="the scene model: on (in the node's scene thread), both (off and on), "
        "compare (off, on, and in each capture thread instead)",
    )
    parser.add_argument("--max-jitter-s", type=float, default=0.5, help="bound on pooled p95 jitter")
    parser.add_argument("--max-lag-s", type=float, default=1.0, help="bound on pooled p95 lag")
    args = parser.parse_args(argv)

    recording = camera_recording()
    detector = load_detector(args.detector_threads, args.detector)
    probe = np.zeros((576, 768, 3), np.uint8)
    started = time.perf_counter()
    for _ in range(5):
        detector.detect(probe)
    per_frame_s = (time.perf_counter() - started) / 5
    out(
        f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} detector={type(detector).__name__} "
        f"threads={args.detector_threads} detect={per_frame_s * 1000:.0f} ms/frame "
        f"interval={args.interval_s} s recording={recording.name}"
    )
    out(HEADER)
    results: list[StepResult] = []
    failed: set[tuple[DecodeMode, str]] = set()
    scenes = {
        "off": ["off"],
        "on": ["worker"],
        "both": ["off", "worker"],
        "compare": ["off", "worker", "capture"],
    }[args.scene]
    variants = [(DecodeMode(m), scene) for m in args.modes for scene in scenes]
    for count in sorted(args.counts):
        for mode, scene in variants:
            if (mode, scene) in failed:
                continue
            result = run_step(
                recording, detector, count, mode, args.interval_s, args.warmup_s, args.seconds, scene
            )
            results.append(result)
            ok = result.within(args.max_jitter_s, args.max_lag_s)
            out(result.row() + ("" if ok else "   <- over the bound"))
            if not ok:
                failed.add((mode, scene))
    for mode, scene in variants:
        passing = [
            r.cameras
            for r in results
            if r.mode is mode and r.scene is scene and r.within(args.max_jitter_s, args.max_lag_s)
        ]
        label = mode.value + ("" if scene == "off" else f" + scene ({scene} thread)")
        out(f"{label}: sustains {max(passing) if passing else 0} cameras within the bounds")
    return results


if __name__ == "__main__":
    main()
