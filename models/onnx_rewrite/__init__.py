"""Equivalent rewrites of ultralytics ONNX exports into graphs ONNX Runtime's CPU provider runs faster.

Each rewrite changes how a result is computed, not the result:
- `dfl`: the box decoding's softmax over a non-last axis as ReduceMax / Exp / ReduceSum;
- `split_conv`: a Conv + SiLU whose output is split into chunks as one Conv per chunk,
  so YOLO's C2f / C3k2 blocks stay in ONNX Runtime's blocked NCHWc layout.

Needs the `onnx` package (the [train] extra): `curbwatch models export` writes the
rewritten graph, so the edge box gets it without onnx; where onnx is installed,
`YoloOnnxDetector` also rewrites a plain ultralytics export when ONNX Runtime loads it.
OpenVINO reads the file as it is: its own compiler does this kind of work.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from models.onnx_rewrite.dfl import rewrite_dfl_softmax
from models.onnx_rewrite.split_conv import split_activated_convs

log = logging.getLogger(__name__)

__all__ = ["load_rewritten", "rewrite_file", "rewrite_model"]


def rewrite_model(model: Any) -> list[str]:
    """Apply every rewrite in place; the names of those that changed the graph."""
    applied = []
    if rewrite_dfl_softmax(model):
        applied.append("dfl")
    if split_activated_convs(model):
        applied.append("split_conv")
    return applied


def load_rewritten(model_path: Path) -> bytes | None:
    """The model's bytes, rewritten; None when onnx is missing or nothing applies.

    Never raises: a file onnx cannot read is left to ONNX Runtime, which reports it.
    """
    try:
        import onnx
    except ImportError:
        return None
    try:
        model = onnx.load(str(model_path))
        if not rewrite_model(model):
            return None
        return bytes(model.SerializeToString())
    except Exception as error:  # protobuf and onnx raise many unrelated types for a bad file
        log.debug("%s: graph rewrites skipped (%s)", model_path, error)
        return None


def rewrite_file(model_path: Path) -> list[str]:
    """Rewrite an ONNX file in place (export time, where onnx is installed); the rewrites applied."""
    import onnx

    model = onnx.load(str(model_path))
    applied = rewrite_model(model)
    if applied:
        onnx.checker.check_model(model)
        onnx.save(model, str(model_path))
    return applied
