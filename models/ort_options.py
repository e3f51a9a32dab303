"""The ONNX Runtime session settings every curbwatch backend runs with.

Measured on the 2-core shared box (bench/detector.py, model card of NanoDet):
- `ORT_ENABLE_ALL` is what puts convolutions into the blocked NCHWc layout; at
  `EXTENDED` YOLO11n ran about 2x slower.
- Spinning off: by default idle pool threads busy-wait for the next parallel
  section. On a loaded box that burns the core the working thread needs: YOLO11n
  640 at 2 threads was 1.74x slower with spinning at load average ~3, and only 3 %
  faster at load ~2 (bench/detector.py --ablations).
- One inter-op thread and sequential execution: the graphs are chains; parallel
  branches only add a second pool.
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from models.detector import ModelError

ALLOW_SPINNING = "session.intra_op.allow_spinning"


def cpu_session_options(threads: int | None) -> ort.SessionOptions:
    """Session options for CPU inference; `threads` caps intra-op threads (None: one per physical core)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = True
    options.add_session_config_entry(ALLOW_SPINNING, "0")
    options.log_severity_level = 3  # errors only; warnings about unused initializers are noise
    return options


def open_cpu_session(model_path: Path, threads: int | None) -> ort.InferenceSession:
    """A CPU session on `model_path` with `cpu_session_options`; a missing or bad file is a ModelError."""
    if not model_path.is_file():
        raise ModelError(f"{model_path}: model file not found")
    try:
        return ort.InferenceSession(
            str(model_path), cpu_session_options(threads), providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # ORT raises its own pybind classes for every kind of bad file
        raise ModelError(f"{model_path}: not a loadable ONNX model: {error}") from error
