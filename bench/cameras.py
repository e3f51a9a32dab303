"""How many cameras one edge box sustains at one analysed frame per 2 s each.

Each simulated camera replays an H.264 recording of vtest.avi (768x576, 10 fps,
a keyframe every second, like a typical IP camera) in real time and in a loop,
through the real capture path (`CameraWorker` -> LATEST_WINS queue ->
`DetectorScheduler` -> the default NanoDet detector). Camera starts are
staggered over one sampling interval, as independent cameras are.
`--resolution 1080p` replays vtest.avi scaled up to 1920x1080 (a camera's main stream)
and `--codec h265` encodes it as H.265 instead (tests/support/recordings.py; both cached
under .cache/bench, a keyframe every second). Frames are converted at most
`--analysis-width` wide in the capture threads, as the node does (`analysis_width_px`).
`--backend` picks the detector's engine (auto: OpenVINO where installed); `--workers N` runs N
detector workers, each with its own copy of the model, as node.yaml `detector.workers` does.

For each camera count (4, 8, 16, 24 by default) and each decode mode
(keyframe-only, full) it measures, after a warm-up:
  * process CPU (user+sys seconds per wall second, in cores) and detector busy share;
  * per-camera sampling jitter: |gap between two analyses - interval| (wall clock), p50/p95;
  * lag: frame queued -> detection finished, p50/p95;
  * missed samples: gaps in stream time longer than 1.5 intervals (a frame replaced unseen);
  * where the time goes, as shares of one core (CPU seconds per wall second): demux, decode
    and resize (YUV -> BGR scaled to the analysis width) in the capture threads (their thread
    CPU time), detect (the detector thread's CPU time in `detect`: all of inference at
    --detector-threads 1; at more, the pool's other threads count under "other") and logic
    (the result callback: the scene model's merge when on); "other" is the rest of the
    process (the scene thread, queues, Python).
A mode stops stepping up once a count breaks the bounds (--max-jitter-s, --max-lag-s, misses).
`--scene on` adds the scene model (edge.scene) as the node runs it: every decoded picture, scaled
in the capture thread, updated in the node's one scene thread, merged into each analysed frame's
detections; `--scene both` runs each step without and with it; `--scene compare` also runs the
scene models in the capture threads themselves (the obvious way, which starves the detector).

    .venv/bin/python -m bench.cameras                   # 4 8 16 24, 20 s each
    .venv/bin/python -m bench.cameras --counts 16 24 32 --seconds 30 --detector-threads 1
    .venv/bin/python -m bench.cameras --counts 24 --modes keyframes --scene compare
    .venv/bin/python -m bench.cameras --resolution 1080p --codec h265 --counts 24 48 --modes keyframes
    .venv/bin/python -m bench.cameras --resolution 1080p --counts 48 --model nanodet_int8.xml
    .venv/bin/python -m bench.cameras --resolution 1080p --counts 48 64 --workers 2 --modes keyframes
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


def camera_recording(frames: int = 300, resolution: str = "576p", codec: str = "h264") -> Path:
    """vtest.avi as H.264 (or H.265) with a 1 s keyframe interval, at its own size or scaled up (cached)."""
    from tests.support.rtsp import encode_h264, write_matroska

    if resolution != "576p" or codec != "h264":
        from tests.support.recordings import RESOLUTIONS, encode_recording

        path = BENCH_CACHE / f"vtest_{resolution}_{codec}_gop10_{frames}.mkv"
        if not path.exists():
            print(f"encoding {path.name} (once; cached) ...", flush=True)
            encode_recording(
                TESTDATA / "opencv" / "vtest.avi",
                path,
                codec=codec,
                size_wh=RESOLUTIONS[resolution],
                max_frames=frames,
                keyframe_s=1.0,
            )
        return path
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


class CpuTimedDetector:
    """Counts the CPU time of the calling (detector) thread spent in `detect`."""

    def __init__(self, detector: Detector) -> None:
        self._detector = detector
        self.cpu_s = 0.0

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._detector.class_names

    @property
    def input_size_wh(self) -> tuple[int, int]:
        return self._detector.input_size_wh

    def detect(self, image: np.ndarray, conf_threshold: float | None = None) -> Detections:
        started = time.thread_time()
        try:
            return self._detector.detect(image, conf_threshold)
        finally:
            self.cpu_s += time.thread_time() - started


def load_detector(
    threads: int, kind: str = "default", backend: str = "auto", model: Path | None = None
) -> Detector:
    if kind == "none":
        return NullDetector()
    from models.backend import parse_backend
    from models.config import load_detector as load

    return load(model, threads=threads, backend=parse_backend(backend))


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
    shares: dict[str, float]  # stage -> CPU seconds per wall second (cores)

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

    def shares_row(self) -> str:
        parts = " ".join(f"{stage} {share:.3f}" for stage, share in self.shares.items())
        return f"{'':>23} {self.cameras:>4} cores by stage: {parts}"


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
    detectors: list[Detector],
    cameras: int,
    mode: DecodeMode,
    interval_s: float,
    warmup_s: float,
    measure_s: float,
    scene: str = "off",
    analysis_width_px: int | None = 960,
) -> StepResult:
    done_at: dict[str, list[float]] = {f"cam{i:02d}": [] for i in range(cameras)}
    stream_ts: dict[str, list[float]] = {name: [] for name in done_at}
    measuring = threading.Event()
    eyes = {name: StaticObjects(SceneSettings()) for name in done_at} if scene != "off" else {}
    logic_s = [0.0]
    logic_lock = threading.Lock()  # with --workers > 1, results come from several threads

    def on_result(frame: Frame, detections: Detections) -> None:
        started = time.thread_time()
        try:
            analyse(frame, detections)
        finally:
            with logic_lock:
                logic_s[0] += time.thread_time() - started

    def analyse(frame: Frame, detections: Detections) -> None:
        eye = eyes.get(frame.camera_id)
        if eye is not None:  # what CameraPipeline does before the tracker
            eye.see_people(detections, frame.resolution_wh)
            eye.merge(frame, detections)
        if measuring.is_set():
            done_at[frame.camera_id].append(time.monotonic())
            stream_ts[frame.camera_id].append(frame.ts)

    stop = threading.Event()
    timed = [CpuTimedDetector(detector) for detector in detectors]  # one per worker, as the node
    scheduler = DetectorScheduler(list(timed).pop, on_result, workers=len(timed), stop_event=stop)
    scene_worker = SceneWorker(stop)
    workers = []
    for name in done_at:
        spec = CameraSpec(
            name,
            str(recording),
            interval_s,
            decode=mode,
            realtime=True,
            loop=True,
            analysis_width_px=analysis_width_px,
        )
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
    stages_before = capture_stages([worker for worker, _ in workers])
    logic_before, detect_before = logic_s[0], sum(t.cpu_s for t in timed)
    cpu_before, wall_before = cpu_seconds(), time.monotonic()
    measuring.set()
    time.sleep(measure_s)
    measuring.clear()
    cpu_used, wall = cpu_seconds() - cpu_before, time.monotonic() - wall_before
    busy = scheduler.busy_s - busy_before
    stages = capture_stages([worker for worker, _ in workers])
    shares = {stage: (stages[stage] - stages_before[stage]) / wall for stage in stages}
    shares["detect"] = (sum(t.cpu_s for t in timed) - detect_before) / wall
    shares["logic"] = (logic_s[0] - logic_before) / wall
    shares["other"] = max(0.0, cpu_used / wall - sum(shares.values()))
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
        shares=shares,
    )


def capture_stages(workers: list[CameraWorker]) -> dict[str, float]:
    """CPU seconds so far of all capture threads: demux, decode, resize (scaled conversion)."""
    stats = [worker.stats() for worker in workers]
    return {
        "demux": sum(s.demux_s for s in stats),
        "decode": sum(s.decode_s for s in stats),
        "resize": sum(s.convert_s for s in stats),
    }


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
    parser.add_argument("--detector-threads", type=int, default=1, help="inference threads per worker")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="detector workers, each with its own model (node.yaml detector.workers)",
    )
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
    parser.add_argument("--resolution", choices=["576p", "720p", "1080p"], default="576p")
    parser.add_argument("--codec", choices=["h264", "h265"], default="h264")
    parser.add_argument(
        "--analysis-width", type=int, default=960, help="frames converted at most this wide; 0: full size"
    )
    parser.add_argument("--backend", choices=["auto", "openvino", "onnxruntime"], default="auto")
    parser.add_argument(
        "--model", type=Path, help="detector model (e.g. the int8 .xml of `curbwatch models quantize`)"
    )
    parser.add_argument("--recording-frames", type=int, default=300, help="length of the looped recording")
    parser.add_argument("--max-jitter-s", type=float, default=0.5, help="bound on pooled p95 jitter")
    parser.add_argument("--max-lag-s", type=float, default=1.0, help="bound on pooled p95 lag")
    args = parser.parse_args(argv)

    recording = camera_recording(args.recording_frames, args.resolution, args.codec)
    detectors = [
        load_detector(args.detector_threads, args.detector, args.backend, args.model)
        for _ in range(args.workers)
    ]
    detector = detectors[0]
    analysis_width = args.analysis_width or None
    probe = np.zeros((576, 768, 3), np.uint8)
    started = time.perf_counter()
    for _ in range(5):
        detector.detect(probe)
    per_frame_s = (time.perf_counter() - started) / 5
    out(
        f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} detector={type(detector).__name__} "
        f"({getattr(detector, 'runtime', 'no engine')}) "
        f"workers={args.workers} threads={args.detector_threads} detect={per_frame_s * 1000:.0f} ms/frame "
        f"interval={args.interval_s} s recording={recording.name} analysis width={analysis_width}"
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
                recording,
                detectors,
                count,
                mode,
                args.interval_s,
                args.warmup_s,
                args.seconds,
                scene,
                analysis_width,
            )
            results.append(result)
            ok = result.within(args.max_jitter_s, args.max_lag_s)
            out(result.row() + ("" if ok else "   <- over the bound"))
            out(result.shares_row())
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
