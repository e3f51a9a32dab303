"""Which detector backend to build, as one strict pydantic model, and `load_detector`.

A config names its backend with `type` (a discriminated union, as Frigate's
detectors do). Given only a file, `load_detector` picks the backend from it:
.pt -> ultralytics; .onnx with ultralytics metadata -> yolo_onnx; NanoDet's
ONNX -> nanodet; an OpenVINO IR (.xml) the same by its contents, on OpenVINO;
.yaml/.json -> a config file. Nothing given -> bundled NanoDet.

The ONNX backends run on the engine their `backend` names (models/backend.py):
auto (OpenVINO where usable, else ONNX Runtime), openvino or onnxruntime.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import onnxruntime as ort
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from models.backend import AUTO_BACKEND, AutoBackend, Backend, OnnxRuntimeBackend, OpenVinoBackend
from models.detector import Detector, ModelError

CONFIG_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
NANODET_OUTPUT = "scores_8"  # NanoDet exports name their outputs per stride; ultralytics' do not


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Threshold = Annotated[float, Field(ge=0.0, le=1.0)]
Threads = Annotated[
    int | None, Field(ge=1, le=64, description="Inference (intra-op) threads; null: all cores.")
]
BackendField = Annotated[Backend, Field(description="Inference engine: auto, openvino or onnxruntime.")]


class NanoDetConfig(_Strict):
    """The bundled NanoDet-g (COCO, 416x416), or another NanoDet ONNX export."""

    type: Literal["nanodet"] = "nanodet"
    path: Path | None = Field(default=None, description="NanoDet ONNX file; null: the bundled model.")
    conf_threshold: Threshold = Field(default=0.35, description="Minimum class score to report a box.")
    iou_threshold: Threshold = Field(
        default=0.6, description="Boxes of one class overlapping more are merged."
    )
    threads: Threads = None
    backend: BackendField = AUTO_BACKEND


class YoloOnnxConfig(_Strict):
    """An ultralytics YOLO export (YOLOv8, YOLO11, YOLO26) run with ONNX Runtime or OpenVINO."""

    type: Literal["yolo_onnx"] = "yolo_onnx"
    path: Path = Field(description="ONNX file written by `curbwatch models export` or ultralytics.")
    conf_threshold: Threshold = Field(default=0.25, description="Minimum best-class score to report a box.")
    iou_threshold: Threshold = Field(
        default=0.7, description="Per-class NMS IoU (ignored by NMS-free heads)."
    )
    max_det: int = Field(default=300, ge=1, le=30_000, description="At most this many boxes per frame.")
    imgsz: int | None = Field(
        default=None,
        ge=32,
        le=4096,
        description="Input size for dynamic-shape exports; null: the export's own.",
    )
    threads: Threads = None
    backend: BackendField = AUTO_BACKEND


class UltralyticsConfig(_Strict):
    """A YOLO .pt checkpoint run by ultralytics itself (needs torch; training machines only)."""

    type: Literal["ultralytics"] = "ultralytics"
    path: Path = Field(description="The .pt checkpoint.")
    conf_threshold: Threshold = Field(default=0.25, description="Minimum best-class score to report a box.")
    iou_threshold: Threshold = Field(default=0.7, description="Per-class NMS IoU.")
    max_det: int = Field(default=300, ge=1, le=30_000, description="At most this many boxes per frame.")
    imgsz: int = Field(default=640, ge=32, le=4096, description="Inference size in pixels (long side).")
    device: str = Field(default="cpu", min_length=1, description="torch device: cpu, cuda:0, ...")


DetectorConfig = Annotated[NanoDetConfig | YoloOnnxConfig | UltralyticsConfig, Field(discriminator="type")]
_CONFIG_ADAPTER: TypeAdapter[NanoDetConfig | YoloOnnxConfig | UltralyticsConfig] = TypeAdapter(DetectorConfig)


def parse_config(data: object, source: str = "detector config") -> DetectorConfig:
    """Validate a mapping as a `DetectorConfig`; errors name the offending key."""
    try:
        return _CONFIG_ADAPTER.validate_python(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ModelError(f"{source}: {where}: {first['msg']}") from error


def _read_config_file(path: Path) -> DetectorConfig:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            from ruamel.yaml import YAML  # only config files need it

            data = YAML(typ="safe").load(text)
    except Exception as error:  # json and ruamel raise unrelated error types
        raise ModelError(f"{path}: not valid {path.suffix.lstrip('.').upper()} ({error})") from error
    config = parse_config(data, str(path))
    if config.path is not None and not config.path.is_absolute():
        config = config.model_copy(update={"path": path.parent / config.path})  # relative to the config file
    return config


def _sniff_onnx(path: Path) -> DetectorConfig:
    """Open the file once, unoptimised, to see whose export it is."""
    from models.yolo_onnx import parse_ultralytics_metadata

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's exception classes are not importable types
        raise ModelError(f"{path}: not a loadable ONNX model") from error
    if parse_ultralytics_metadata(session.get_modelmeta().custom_metadata_map) is not None:
        return YoloOnnxConfig(path=path)
    if NANODET_OUTPUT in {output.name for output in session.get_outputs()}:
        return NanoDetConfig(path=path)
    raise ModelError(f"{path}: ONNX model of unknown kind (neither an ultralytics export nor NanoDet)")


def _sniff_openvino_ir(path: Path) -> DetectorConfig:
    """An IR's kind, read from its outputs and metadata as `_sniff_onnx` does; it runs on OpenVINO."""
    from models.openvino_runner import read_model_io, unusable_reason
    from models.yolo_onnx import parse_ultralytics_metadata

    problem = unusable_reason()
    if problem is not None:
        raise ModelError(f"{path}: an OpenVINO IR needs OpenVINO: {problem}")
    output_names, metadata = read_model_io(path)
    if parse_ultralytics_metadata(metadata) is not None:
        return YoloOnnxConfig(path=path, backend=OpenVinoBackend())
    if NANODET_OUTPUT in output_names:
        return NanoDetConfig(path=path, backend=OpenVinoBackend())
    raise ModelError(f"{path}: OpenVINO IR of unknown kind (neither an ultralytics export nor NanoDet)")


def config_for_path(path: Path) -> DetectorConfig:
    """The backend a model or config file needs, judged from the file itself."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in CONFIG_SUFFIXES:
        return _read_config_file(path)
    if suffix == ".pt":
        return UltralyticsConfig(path=path)
    if suffix == ".onnx":
        return _sniff_onnx(path)
    if suffix == ".xml":
        return _sniff_openvino_ir(path)
    raise ModelError(
        f"{path}: unsupported model format {suffix or '(no suffix)'!r}; expected .onnx, .xml (OpenVINO IR), "
        ".pt, .yaml"
    )


def build_detector(config: DetectorConfig) -> Detector:
    """Construct the backend a config names; heavy imports happen only here."""
    if isinstance(config, NanoDetConfig):
        from models.nanodet import DEFAULT_MODEL_PATH, NanoDetDetector

        path = config.path or DEFAULT_MODEL_PATH
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        return NanoDetDetector(
            path, config.conf_threshold, config.iou_threshold, config.threads, config.backend
        )
    if isinstance(config, YoloOnnxConfig):
        from models.yolo_onnx import YoloOnnxDetector

        return YoloOnnxDetector(
            config.path,
            config.conf_threshold,
            config.iou_threshold,
            config.max_det,
            config.imgsz,
            config.threads,
            config.backend,
        )
    from models.ultralytics_backend import UltralyticsDetector

    return UltralyticsDetector(
        config.path, config.conf_threshold, config.iou_threshold, config.max_det, config.imgsz, config.device
    )


def load_detector(
    source: Path | str | DetectorConfig | None = None,
    *,
    conf_threshold: float | None = None,
    threads: int | None = None,
    backend: AutoBackend | OpenVinoBackend | OnnxRuntimeBackend | None = None,
) -> Detector:
    """A ready (warmed-up) detector from a model file, a config file, a config, or nothing (bundled NanoDet).

    `conf_threshold`, `threads` and `backend` override the config's values when given
    (`backend` only where the config has one: an ultralytics .pt runs on torch).
    An OpenVINO IR (.xml) runs on auto or openvino; onnxruntime is then an error.
    """
    if source is None:
        config: DetectorConfig = NanoDetConfig()
    elif isinstance(source, str | Path):
        config = config_for_path(Path(source))
    else:
        config = source
    overrides: dict[str, object] = {}
    if conf_threshold is not None:
        overrides["conf_threshold"] = conf_threshold
    if threads is not None and "threads" in type(config).model_fields:
        overrides["threads"] = threads
    if backend is not None and "backend" in type(config).model_fields:
        overrides["backend"] = backend.model_dump()
    if overrides:
        config = parse_config({**config.model_dump(), **overrides}, "overrides")
    return build_detector(config)
