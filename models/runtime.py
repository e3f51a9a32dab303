"""`Runner`: the seam between our pre/post-processing and an inference engine.

Every ONNX backend (NanoDet, YOLO exports, faces, text) prepares its input blob and
decodes the outputs itself; only `Runner.run` differs between ONNX Runtime and
OpenVINO. `open_runner` picks the engine from a `Backend` config (models/backend.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from models.backend import AutoBackend, Engine, OnnxRuntimeBackend, OpenVinoBackend
from models.detector import ModelError
from models.ort_options import cpu_session_options

log = logging.getLogger(__name__)

Array = npt.NDArray[np.float32]
IR_SUFFIX = ".xml"  # an OpenVINO IR (e.g. an int8 model from `curbwatch models quantize`)


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output; None in `shape` is a dynamic dimension."""

    name: str
    shape: tuple[int | None, ...]


class Runner(Protocol):
    """One compiled model: named float inputs in, named outputs out (one caller at a time)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def inputs(self) -> tuple[TensorSpec, ...]: ...

    @property
    def outputs(self) -> tuple[TensorSpec, ...]: ...

    @property
    def metadata(self) -> Mapping[str, str]:
        """The model file's metadata map (ultralytics writes names, stride, imgsz there)."""
        ...

    def run(self, output_names: Sequence[str] | None, feeds: Mapping[str, Array]) -> list[Array]:
        """The outputs named (None: all, in model order) for the inputs given."""
        ...

    def describe(self) -> str:
        """One line for `curbwatch models info` and the node's log: engine, version, settings."""
        ...


def _dims(shape: Sequence[object] | None) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) else None for d in (shape or ()))


class OnnxRuntimeRunner:
    """An ONNX Runtime CPU session with curbwatch's session options."""

    def __init__(self, session: ort.InferenceSession, threads: int | None) -> None:
        self._session = session
        self._threads = threads
        self._inputs = tuple(TensorSpec(i.name, _dims(i.shape)) for i in session.get_inputs())
        self._outputs = tuple(TensorSpec(o.name, _dims(o.shape)) for o in session.get_outputs())

    @property
    def engine(self) -> Engine:
        return Engine.ONNXRUNTIME

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    @property
    def metadata(self) -> Mapping[str, str]:
        return dict(self._session.get_modelmeta().custom_metadata_map)

    def run(self, output_names: Sequence[str] | None, feeds: Mapping[str, Array]) -> list[Array]:
        outputs: list[Array] = self._session.run(None if output_names is None else list(output_names), feeds)
        return outputs

    def describe(self) -> str:
        threads = self._threads if self._threads is not None else "all cores"
        return f"onnxruntime {ort.__version__} CPUExecutionProvider, threads={threads}"


def open_onnxruntime(model: Path, threads: int | None, model_bytes: bytes | None = None) -> OnnxRuntimeRunner:
    """ONNX Runtime on `model` (or on `model_bytes`, a rewritten copy of it)."""
    if model.suffix.lower() == IR_SUFFIX:
        raise ModelError(f"{model}: an OpenVINO IR runs only with backend openvino (or auto)")
    try:
        session = ort.InferenceSession(
            model_bytes if model_bytes is not None else str(model),
            cpu_session_options(threads),
            providers=["CPUExecutionProvider"],
        )
    except Exception as error:  # ORT raises its own pybind classes for every kind of bad file
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"{model}: not a loadable ONNX model ({first_line})") from error
    return OnnxRuntimeRunner(session, threads)


BackendConfig = AutoBackend | OpenVinoBackend | OnnxRuntimeBackend


def open_runner(
    model: Path,
    backend: BackendConfig,
    threads: int | None,
    *,
    ort_model_bytes: Callable[[], bytes | None] = lambda: None,
) -> Runner:
    """The engine `backend` names, on `model`; a missing or unloadable file is a ModelError.

    `ort_model_bytes`: called only when ONNX Runtime is chosen, what it should load
    instead of the file (the YOLO backend's DFL rewrite, a workaround for one slow
    ONNX Runtime kernel); OpenVINO always reads the file itself.
    """
    model = Path(model)
    if not model.is_file():
        raise ModelError(f"model file not found: {model}")
    if isinstance(backend, OnnxRuntimeBackend):
        return open_onnxruntime(model, threads, ort_model_bytes())
    from models import openvino_runner

    if isinstance(backend, OpenVinoBackend):
        problem = openvino_runner.unusable_reason()
        if problem is not None:
            raise ModelError(f"{model}: backend openvino: {problem}")
        return openvino_runner.open_openvino(model, backend, threads)
    problem = openvino_runner.unusable_reason()
    if problem is None:
        try:
            return openvino_runner.open_openvino(model, backend, threads)
        except ModelError as error:
            if model.suffix.lower() == IR_SUFFIX:
                raise
            log.warning("%s; backend auto falls back to ONNX Runtime", error)
    elif model.suffix.lower() == IR_SUFFIX:
        raise ModelError(f"{model}: an OpenVINO IR needs OpenVINO: {problem}")
    return open_onnxruntime(model, threads, ort_model_bytes())
