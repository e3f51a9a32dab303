"""Which inference engine runs an ONNX model: `backend: auto | openvino | onnxruntime`.

A pydantic discriminated union on `type`, as Frigate chooses its detectors; a bare
string (`backend: openvino`) is shorthand for `{type: openvino}`. `auto` runs
OpenVINO where it is installed and has a CPU device, else ONNX Runtime: OpenVINO
is an optional extra (`pip install curbwatch[openvino]`), and an edge box without
it still runs.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter


class Engine(enum.StrEnum):
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"


class PerformanceHint(enum.StrEnum):
    """OpenVINO's PERFORMANCE_HINT: one request at a time is what the detector scheduler sends."""

    LATENCY = "LATENCY"
    THROUGHPUT = "THROUGHPUT"


class Precision(enum.StrEnum):
    """OpenVINO's INFERENCE_PRECISION_HINT on CPU.

    f32 by default: on CPUs with AVX-512 BF16 or AMX, OpenVINO would otherwise run
    bf16 and move scores by about 1e-2, so the same file would give other boxes on
    another box. bf16 is there for who wants the speed and has checked the drift.
    """

    F32 = "f32"
    BF16 = "bf16"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OnnxRuntimeBackend(_Strict):
    """ONNX Runtime's CPU provider (the session options of models/ort_options.py)."""

    type: Literal["onnxruntime"] = "onnxruntime"


class _OpenVinoSettings(_Strict):
    performance_hint: PerformanceHint = Field(
        default=PerformanceHint.LATENCY, description="OpenVINO PERFORMANCE_HINT: LATENCY or THROUGHPUT."
    )
    precision: Precision = Field(
        default=Precision.F32, description="Inference precision on CPU: f32 (exact) or bf16 (faster)."
    )
    cache_dir: Path | None = Field(
        default=None,
        description="OpenVINO model cache (compiled once, loaded from here next time); "
        "null: $XDG_CACHE_HOME/curbwatch/openvino.",
    )


class OpenVinoBackend(_OpenVinoSettings):
    """OpenVINO's CPU plugin; an error when OpenVINO is not installed or cannot run the model."""

    type: Literal["openvino"] = "openvino"


class AutoBackend(_OpenVinoSettings):
    """OpenVINO where installed and usable (with these settings), else ONNX Runtime."""

    type: Literal["auto"] = "auto"


AUTO_BACKEND = AutoBackend()


def _shorthand(value: object) -> object:
    return {"type": value} if isinstance(value, str) else value


_Tagged = Annotated[AutoBackend | OpenVinoBackend | OnnxRuntimeBackend, Field(discriminator="type")]
Backend = Annotated[_Tagged, BeforeValidator(_shorthand)]
BACKEND_ADAPTER: TypeAdapter[AutoBackend | OpenVinoBackend | OnnxRuntimeBackend] = TypeAdapter(Backend)
BACKEND_NAMES = ("auto", "openvino", "onnxruntime")


def parse_backend(value: object) -> AutoBackend | OpenVinoBackend | OnnxRuntimeBackend:
    """A backend from its name or mapping (CLI options, tests)."""
    return BACKEND_ADAPTER.validate_python(value)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "curbwatch" / "openvino"
