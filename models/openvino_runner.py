"""OpenVINO's CPU plugin behind `models.runtime.Runner`.

Compiled once per detector with OpenVINO's model cache (CACHE_DIR): the second
start of a node loads the compiled blob instead of compiling again. Threads,
performance hint and precision come from the config; `openvino` is imported only
here, so an edge box without it never touches it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from models.backend import AutoBackend, Engine, OpenVinoBackend, default_cache_dir
from models.detector import ModelError
from models.runtime import Array, TensorSpec

log = logging.getLogger(__name__)

DEVICE = "CPU"


@functools.cache
def unusable_reason() -> str | None:
    """None when OpenVINO is installed and offers a CPU device; else why not (checked once)."""
    try:
        import openvino as ov
    except ImportError:
        return "OpenVINO is not installed (pip install curbwatch[openvino])"
    try:
        devices = ov.Core().available_devices
    except Exception as error:  # a broken install raises RuntimeError from its plugin loader
        return f"OpenVINO cannot list its devices ({error})"
    if DEVICE not in devices:
        return f"OpenVINO offers no CPU device on this machine (devices: {devices})"
    return None


def _dims(partial_shape: Any) -> tuple[int | None, ...]:
    return tuple(d.get_length() if d.is_static else None for d in partial_shape)


def _metadata(model: Any) -> dict[str, str]:
    """ONNX metadata_props, which OpenVINO keeps in the model's rt_info under "framework"."""
    if not model.has_rt_info(["framework"]):
        return {}
    entries = model.get_rt_info(["framework"]).astype(dict)
    return {str(key): value.astype(str) for key, value in entries.items()}


def read_model_io(model_path: Path) -> tuple[set[str], dict[str, str]]:
    """Output tensor names and metadata of a model file, read without compiling it."""
    import openvino as ov

    try:
        model = ov.Core().read_model(str(model_path))
    except Exception as error:  # OpenVINO's frontends raise RuntimeError and their own types
        raise ModelError(f"{model_path}: OpenVINO cannot read it ({_first_line(error)})") from error
    return {name for port in model.outputs for name in port.get_names()}, _metadata(model)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class OpenVinoRunner:
    """A model compiled for OpenVINO's CPU plugin, with one infer request."""

    def __init__(self, compiled: Any, metadata: Mapping[str, str], settings: str) -> None:
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._metadata = dict(metadata)
        self._settings = settings
        self._inputs = tuple(
            TensorSpec(port.get_any_name(), _dims(port.get_partial_shape())) for port in compiled.inputs
        )
        self._outputs = tuple(
            TensorSpec(port.get_any_name(), _dims(port.get_partial_shape())) for port in compiled.outputs
        )
        self._output_index = {
            name: index for index, port in enumerate(compiled.outputs) for name in port.get_names()
        }

    @property
    def engine(self) -> Engine:
        return Engine.OPENVINO

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    @property
    def metadata(self) -> Mapping[str, str]:
        return self._metadata

    def run(self, output_names: Sequence[str] | None, feeds: Mapping[str, Array]) -> list[Array]:
        try:
            # share_inputs: the blob is ours and stays unchanged until infer returns; outputs are
            # copied out of the request's buffers, which the next call overwrites.
            results = self._request.infer(dict(feeds), share_inputs=True, share_outputs=False)
        except RuntimeError as error:
            raise ModelError(f"OpenVINO inference failed: {_first_line(error)}") from error
        if output_names is None:
            return [results[index] for index in range(len(self._outputs))]
        return [results[self._output_index[name]] for name in output_names]

    def describe(self) -> str:
        import openvino as ov

        return f"openvino {ov.get_version().split('-')[0]} {DEVICE}, {self._settings}"


def compile_config(backend: AutoBackend | OpenVinoBackend, threads: int | None) -> dict[str, str]:
    """The CPU plugin's properties: threads (0: OpenVINO decides), hint, precision, cache.

    Pinning off: the plugin pins each compiled model's threads to cores of its choosing, so
    two one-thread detector workers (node.yaml detector.workers: 2) shared one core: 19.3
    frames/s on 2 cores against 37.8 unpinned (NanoDet-g, AMD EPYC, one run). The edge box
    shares its cores with decoding anyway.
    """
    cache_dir = backend.cache_dir or default_cache_dir()
    return {
        "INFERENCE_NUM_THREADS": str(threads or 0),
        "ENABLE_CPU_PINNING": "NO",
        "PERFORMANCE_HINT": backend.performance_hint.value,
        "INFERENCE_PRECISION_HINT": backend.precision.value,
        "CACHE_DIR": str(cache_dir),
    }


def open_openvino(
    model_path: Path, backend: AutoBackend | OpenVinoBackend, threads: int | None
) -> OpenVinoRunner:
    """Read an ONNX file or OpenVINO IR and compile it for the CPU; failures are ModelErrors."""
    import openvino as ov

    config = compile_config(backend, threads)
    try:
        Path(config["CACHE_DIR"]).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        # A service user without a writable home still runs, compiling at every start.
        log.warning(
            "OpenVINO cache_dir %s: %s; compiling without a cache", config["CACHE_DIR"], error.strerror
        )
        del config["CACHE_DIR"]
    core = ov.Core()
    try:
        model = core.read_model(str(model_path))
        compiled = core.compile_model(model, DEVICE, config)
    except Exception as error:  # OpenVINO raises RuntimeError and its own frontend exception types
        raise ModelError(f"{model_path}: OpenVINO cannot load it ({_first_line(error)})") from error
    settings = (
        f"threads={threads if threads is not None else 'all cores'}, "
        f"hint={backend.performance_hint.value}, precision={backend.precision.value}"
    )
    log.debug("compiled %s for OpenVINO %s (%s)", model_path, DEVICE, settings)
    return OpenVinoRunner(compiled, _metadata(model), settings)
