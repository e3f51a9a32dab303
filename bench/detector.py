"""Per-frame latency of our ONNX path vs ultralytics on the same model file and frames, measured fairly.

    .venv/bin/python bench/detector.py [--frames 20] [--passes 3] [--imgsz 640] [--threads 1 2] [--int8]
    .venv/bin/python bench/detector.py --nanodet-only     # no ultralytics needed: NanoDet on both engines

End to end per frame (pre + inference + post), on vtest.avi frames + bus.jpg:
  ours        YoloOnnxDetector(model.onnx) on ONNX Runtime
  ours-ov     the same detector, the same file, on OpenVINO (f32)
  ult-onnx    ultralytics.YOLO(model.onnx).predict   (the same file)
  ult-pt      ultralytics.YOLO(model.pt).predict on CPU
  nanodet     the bundled NanoDet-g 416 (default detector) on ONNX Runtime
  nanodet-ov  the same on OpenVINO (f32); `nanodet-ov bf16`: at bf16 precision (what OpenVINO
              picks by itself on AVX-512 BF16 / AMX CPUs); `nanodet-ov int8`: the IR
              of `curbwatch models quantize`,
              calibrated on demo-clip and vtest.avi frames the bench does not time
Without ultralytics installed (or with --nanodet-only) only the NanoDet rows run.
and with --ablations, on the static export, ours without the graph rewrites of
models/onnx_rewrite (`ours-plain`) and ours with ONNX Runtime's thread spinning
back on (`ours-spin`);
with --int8, ours on the files `curbwatch models export --dynamic --int8` writes for
the same network, calibrated on the bench frames (`ours fp32`, `ours int8`), after
that command's own check of how many fp32 boxes the int8 model finds again on them;
with a random-weight YOLO11n exported by ultralytics (latency does not depend on
the weights), once static and once with dynamic axes. Needs the [train] extra.

Input size matters as much as the runtime: ultralytics predicts a .pt (and a
dynamic ONNX) on the smallest stride-aligned rectangle (640x480 for a 4:3 frame),
while a static 640 export always runs 640x640, a third more pixels. Compare
`ult-pt` with `ours dynamic` for equal work.

Fairness, because the box is small and shared:
- every backend runs in its own process: ONNX Runtime's and torch's (OpenMP)
  thread pools in one process steal each other's cores (torch at 2 threads went
  from about 100 ms to seconds when an ONNX Runtime session lived beside it);
- equal thread counts: for each N in --threads, ours and NanoDet get
  `threads=N`, torch gets `set_num_threads(N)`, and ultralytics' own ONNX Runtime
  session is rebuilt with `intra_op_num_threads=N` (its other options left at the defaults);
- interleaved: the parent sends one frame to each worker in turn (order rotating
  every round), so load from other jobs falls on all alike; a short pause between
  calls lets a finished worker's threads stop spinning before the next one starts;
- wall time and CPU time (`time.process_time`, all threads of the worker) per
  call, after warm-up; medians, minima and ratios from this one run.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("YOLO_OFFLINE", "1")

from models.types import Image  # noqa: E402

WARMUP_CALLS = 3
Times = dict[str, dict[str, list[float]]]  # label -> "wall" / "cpu" -> ms per call


@dataclass(frozen=True)
class Job:
    """One worker: which backend, on which file, at how many threads."""

    backend: str  # ours | ours-ov | ours-plain | ours-spin | ult-onnx | ult-pt | nanodet | nanodet-ov
    threads: int
    model_path: str
    imgsz: int
    export: str = ""  # static / dynamic: ultralytics' exports; fp32 / int8: `curbwatch models export`'s

    @property
    def label(self) -> str:
        return " ".join(part for part in (self.backend, self.export, f"t{self.threads}") if part)


TESTDATA = Path(os.environ.get("CURBWATCH_TESTDATA", ROOT / ".cache" / "testdata"))


def load_frames(count: int) -> list[Image]:
    capture = cv2.VideoCapture(str(TESTDATA / "opencv" / "vtest.avi"))
    frames: list[Image] = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(np.asarray(frame, dtype=np.uint8))
    capture.release()
    try:
        import ultralytics

        extra = Path(str(ultralytics.__file__)).parent / "assets" / "bus.jpg"
    except ImportError:
        extra = TESTDATA / "opencv" / "leuvenB.jpg"
    picture = cv2.imread(str(extra))
    if picture is None:
        raise SystemExit(f"{extra} is missing")
    frames.append(np.asarray(picture, dtype=np.uint8))
    return frames


def build_runner(job: Job) -> Any:
    """A callable frame -> detections for the job; heavy imports happen here, in the worker."""
    from models.backend import OnnxRuntimeBackend, OpenVinoBackend, Precision

    engine = OpenVinoBackend() if job.backend.endswith("-ov") else OnnxRuntimeBackend()
    if job.export == "bf16":
        engine = OpenVinoBackend(precision=Precision.BF16)
    if job.backend.startswith("ours"):
        import onnxruntime as ort

        from models import ort_options, yolo_onnx

        if job.backend == "ours-plain":

            def no_rewrite(model_path: Path) -> bytes | None:
                return None

            yolo_onnx.load_rewritten = no_rewrite
        if job.backend == "ours-spin":
            spinning = ort_options.cpu_session_options

            def spinning_options(threads: int | None) -> ort.SessionOptions:
                options = spinning(threads)
                options.add_session_config_entry(ort_options.ALLOW_SPINNING, "1")
                return options

            yolo_onnx.cpu_session_options = spinning_options
        return yolo_onnx.YoloOnnxDetector(Path(job.model_path), threads=job.threads, backend=engine).detect
    if job.backend.startswith("nanodet"):
        from models.config import load_detector
        from models.nanodet import DEFAULT_MODEL_PATH

        return load_detector(
            Path(job.model_path or DEFAULT_MODEL_PATH), threads=job.threads, backend=engine
        ).detect
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(job.threads)
    model: Any = YOLO(job.model_path, task="detect")
    blank = np.full((job.imgsz, job.imgsz, 3), 114, dtype=np.uint8)
    model.predict(blank, imgsz=job.imgsz, device="cpu", verbose=False)  # builds the predictor
    if job.backend == "ult-onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = job.threads
        backend = model.predictor.model.backend
        backend.session = ort.InferenceSession(job.model_path, options, providers=["CPUExecutionProvider"])

    def run(frame: Image) -> object:
        return model.predict(frame, imgsz=job.imgsz, device="cpu", verbose=False)

    return run


def worker(job: Job, connection: Connection) -> None:
    """Build the detector, then answer each frame with (wall seconds, CPU seconds)."""
    frames: list[Image] = connection.recv()
    run = build_runner(job)
    for _ in range(WARMUP_CALLS):
        run(frames[0])
    connection.send("ready")
    while (index := connection.recv()) is not None:
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        run(frames[index])
        connection.send((time.perf_counter() - wall_start, time.process_time() - cpu_start))


def measure(jobs: list[Job], frames: list[Image], passes: int, gap_s: float) -> Times:
    context = mp.get_context("spawn")
    pipes, processes = [], []
    for job in jobs:
        parent_end, child_end = context.Pipe()
        process = context.Process(target=worker, args=(job, child_end), daemon=True)
        process.start()
        parent_end.send(frames)
        pipes.append(parent_end)
        processes.append(process)
    for pipe in pipes:
        pipe.recv()  # "ready": every worker is loaded and warm before timing starts
    times: Times = {job.label: {"wall": [], "cpu": []} for job in jobs}
    round_number = 0
    for _ in range(passes):
        for index in range(len(frames)):
            order = list(range(len(jobs)))
            shift = round_number % len(jobs)
            for slot in order[shift:] + order[:shift]:
                time.sleep(gap_s)
                pipes[slot].send(index)
                wall, cpu = pipes[slot].recv()
                times[jobs[slot].label]["wall"].append(wall * 1000)
                times[jobs[slot].label]["cpu"].append(cpu * 1000)
            round_number += 1
    for pipe, process in zip(pipes, processes, strict=True):
        pipe.send(None)
        process.join(timeout=30)
    return times


def report(times: Times, thread_counts: list[int]) -> None:
    print(f"{'':26s} {'wall med':>9s} {'wall min':>9s} {'CPU med':>9s} {'CPU min':>9s}   (ms per frame)")
    for label, series in times.items():
        wall, cpu = series["wall"], series["cpu"]
        print(
            f"  {label:24s} {statistics.median(wall):9.1f} {min(wall):9.1f} "
            f"{statistics.median(cpu):9.1f} {min(cpu):9.1f}"
        )
    print("ratios, theirs / ours (> 1: ours is faster): wall median | CPU median | paired wall median")
    for threads in thread_counts:
        for theirs, ours in (
            ("ult-onnx static", "ours static"),
            ("ult-onnx dynamic", "ours dynamic"),
            ("ult-pt", "ours dynamic"),
            ("ult-pt", "ours static"),
            ("ours-plain static", "ours static"),
            ("ours-spin static", "ours static"),
            ("ult-pt", "ours fp32"),
            ("ult-pt", "ours int8"),
            ("ours fp32", "ours int8"),
            ("ours static", "ours-ov static"),
            ("ours dynamic", "ours-ov dynamic"),
            ("ult-pt", "ours-ov dynamic"),
            ("nanodet", "nanodet-ov"),
            ("nanodet", "nanodet-ov bf16"),
            ("nanodet-ov", "nanodet-ov int8"),
            ("nanodet", "nanodet-ov int8"),
        ):
            a, b = times.get(f"{theirs} t{threads}"), times.get(f"{ours} t{threads}")
            if a is None or b is None:
                continue
            paired = statistics.median(x / y for x, y in zip(a["wall"], b["wall"], strict=True))
            wall_ratio = statistics.median(a["wall"]) / statistics.median(b["wall"])
            cpu_ratio = statistics.median(a["cpu"]) / statistics.median(b["cpu"])
            print(
                f"  t{threads} {theirs:18s} / {ours:12s} "
                f"{wall_ratio:5.2f}x | {cpu_ratio:5.2f}x | {paired:5.2f}x"
            )
    for threads in thread_counts:
        for label in ("nanodet", "nanodet-ov", "nanodet-ov bf16", "nanodet-ov int8"):
            series = times.get(f"{label} t{threads}")
            if series is None:
                continue
            print(
                f"NanoDet-g 416 ({label}), {threads} thread(s): "
                f"{1000 / statistics.median(series['wall']):5.1f} FPS by wall median, "
                f"{1000 / min(series['wall']):5.1f} by wall min, "
                f"{1000 / statistics.median(series['cpu']):5.1f} per core-second of CPU"
            )


def export_ours(pt: Path, tmp: Path, frames: list[Image], imgsz: int) -> dict[str, str]:
    """fp32 and int8 files from `curbwatch models export --dynamic --int8`, calibrated on the bench frames.

    The command prints how many fp32 boxes (its detector's default conf, 0.25) the
    int8 model finds again on the calibration images, here the bench frames; with
    random weights that is a rough check at best.
    """
    from models.cli import models_group

    calibration = tmp / "calibration"
    calibration.mkdir()
    for index, frame in enumerate(frames):
        cv2.imwrite(str(calibration / f"frame_{index:03d}.png"), frame)  # lossless: the same pixels
    fp32 = tmp / "yolo11n_ours.onnx"
    args = ["export", str(pt), "--imgsz", str(imgsz), "--dynamic", "--int8"]
    print(f"curbwatch models {' '.join(args)} --calibration <{len(frames)} bench frames>", flush=True)
    models_group.main([*args, "--calibration", str(calibration), "--out", str(fp32)], standalone_mode=False)
    print(
        "  a rough check: random weights score few or no boxes above 0.25 (YOLO11n's: none, even at 0.002),"
        " so 0/0 says nothing about int8 accuracy; tests/models check int8 on a trained model",
        flush=True,
    )
    return {"fp32": str(fp32), "int8": str(fp32.with_name(f"{fp32.stem}_int8.onnx"))}


def nanodet_int8(tmp: Path) -> str:
    """NanoDet's OpenVINO int8 IR, calibrated on frames the bench does not time (demo clip, vtest 40 s on)."""
    from models.nanodet import DEFAULT_MODEL_PATH
    from models.quantize import calibration_frames, quantize_openvino_int8

    demo = ROOT / "edge" / "demo" / "demo_cam01.mp4"
    frames = calibration_frames([demo], 20, every_s=3.0)
    capture = cv2.VideoCapture(str(TESTDATA / "opencv" / "vtest.avi"))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 400)  # 40 s on: far from the timed frames at the start
    for _ in range(10):
        ok, frame = capture.read()
        if ok:
            frames.append(np.asarray(frame, dtype=np.uint8))
        for _ in range(20):
            capture.grab()
    capture.release()
    out = tmp / "nanodet_g_416_int8.xml"
    print(f"curbwatch models quantize (NNCF) on {len(frames)} calibration frames -> {out.name}", flush=True)
    return str(quantize_openvino_int8(DEFAULT_MODEL_PATH, out, frames))


def openvino_installed() -> bool:
    from models.openvino_runner import unusable_reason

    problem = unusable_reason()
    if problem is not None:
        print(f"OpenVINO rows left out: {problem}")
    return problem is None


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="vtest.avi frames to use (bus.jpg is added)")
    parser.add_argument("--passes", type=int, default=3, help="sweeps over the frames")
    parser.add_argument("--imgsz", type=int, default=640, help="export size of the YOLO11n model")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to compare")
    parser.add_argument("--ablations", action="store_true", help="also ours-plain and ours-spin")
    parser.add_argument(
        "--int8", action="store_true", help="also ours on `curbwatch models export --dynamic --int8` files"
    )
    parser.add_argument("--nanodet-only", action="store_true", help="only NanoDet, ONNX Runtime vs OpenVINO")
    parser.add_argument("--no-ov-int8", action="store_true", help="skip NanoDet's OpenVINO int8 row")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="pause between calls, not timed")
    args = parser.parse_args()

    has_ultralytics = importlib.util.find_spec("ultralytics") is not None
    if not has_ultralytics:
        print("ultralytics is not installed: only the NanoDet rows run")
    with_yolo = has_ultralytics and not args.nanodet_only
    with_ov = openvino_installed()

    frames = load_frames(args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        if with_yolo:
            from ultralytics import YOLO

            pt = Path(tmp) / "yolo11n_random.pt"
            YOLO("yolo11n.yaml").save(str(pt))
            exports = {}
            for dynamic in (False, True):
                exported = Path(
                    YOLO(str(pt)).export(format="onnx", imgsz=args.imgsz, dynamic=dynamic, verbose=False)
                )
                exports[dynamic] = str(exported.rename(exported.with_name(f"yolo11n_dynamic_{dynamic}.onnx")))
            static_onnx, dynamic_onnx = exports[False], exports[True]
            ours_exports = export_ours(pt, Path(tmp), frames, args.imgsz) if args.int8 else {}
            for threads in args.threads:
                for export, path in (("static", static_onnx), ("dynamic", dynamic_onnx)):
                    ablate = args.ablations and export == "static"
                    backends = ["ours", "ult-onnx"] + (["ours-ov"] if with_ov else [])
                    backends += ["ours-plain", "ours-spin"] if ablate else []
                    jobs += [Job(backend, threads, path, args.imgsz, export) for backend in backends]
                jobs += [
                    Job("ours", threads, path, args.imgsz, export) for export, path in ours_exports.items()
                ]
                jobs.append(Job("ult-pt", threads, str(pt), args.imgsz))
        int8_ir = nanodet_int8(Path(tmp)) if with_ov and not args.no_ov_int8 else None
        for threads in args.threads:
            jobs.append(Job("nanodet", threads, "", args.imgsz))
            if with_ov:
                jobs.append(Job("nanodet-ov", threads, "", args.imgsz))
                jobs.append(Job("nanodet-ov", threads, "", args.imgsz, "bf16"))
            if int8_ir is not None:
                jobs.append(Job("nanodet-ov", threads, int8_ir, args.imgsz, "int8"))
        started = time.perf_counter()
        times = measure(jobs, frames, args.passes, args.gap_ms / 1000)
        elapsed = time.perf_counter() - started
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    affinity = sorted(os.sched_getaffinity(0))
    what = (
        f"YOLO11n at {args.imgsz} (random weights; static export: padded to {args.imgsz}x{args.imgsz}, "
        "dynamic export and .pt: smallest stride-aligned rectangle, 640x480 for vtest) and NanoDet-g 416"
        if with_yolo
        else "NanoDet-g 416"
    )
    print(
        f"{what}, {len(frames)} frames x {args.passes} passes, interleaved; "
        + ("ours fp32 / int8: `curbwatch models export --dynamic [--int8]` files; " if args.int8 else "")
        + f"CPUs {affinity} of {os.cpu_count()}; "
        f"load average after {load}; {elapsed:.0f} s"
    )
    report(times, args.threads)


if __name__ == "__main__":
    main()
