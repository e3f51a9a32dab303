"""Turn an ultralytics .pt checkpoint into an ONNX file `YoloOnnxDetector` runs, optionally int8.

Export needs ultralytics and torch (training machines); int8 quantisation needs
`onnx`. Neither is imported unless these functions are called.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from models.agreement import Agreement, compare_detectors
from models.detector import ModelError
from models.letterbox import letterbox, to_nchw_rgb
from models.onnx_rewrite import rewrite_file
from models.types import Image
from models.ultralytics_backend import import_ultralytics

__all__ = ["Agreement", "compare_detectors", "export_onnx", "quantize_int8"]


def export_onnx(pt_path: Path, out: Path, imgsz: int = 640, dynamic: bool = False) -> Path:
    """Export with ultralytics; a YOLO26-style NMS-free head is kept end-to-end ((1, 300, 6) output)."""
    if not pt_path.is_file():
        raise ModelError(f"model file not found: {pt_path}")
    ultralytics = import_ultralytics()
    with tempfile.TemporaryDirectory() as tmp:
        # ultralytics writes next to the checkpoint; work on a copy so the user's folder stays clean.
        work_copy = Path(tmp) / pt_path.name
        shutil.copyfile(pt_path, work_copy)
        try:
            model = ultralytics.YOLO(str(work_copy), task="detect")
            has_nms_free_head = getattr(model.model.model[-1], "one2one_cv2", None) is not None
            exported = model.export(
                format="onnx",
                imgsz=imgsz,
                dynamic=dynamic,
                nms=False if has_nms_free_head else None,
                verbose=False,
            )
        except Exception as error:  # torch and ultralytics raise many unrelated types
            raise ModelError(f"{pt_path}: export failed ({error})") from error
        # ONNX Runtime runs parts of ultralytics' graph slowly; write the faster, equivalent one.
        rewrite_file(Path(exported))
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(exported), out)
    return out


class _CalibrationImages:
    """Feeds letterboxed images to onnxruntime's static quantiser (its CalibrationDataReader protocol)."""

    def __init__(self, input_name: str, size_hw: tuple[int, int], images: Sequence[Image]) -> None:
        self._batches: Iterator[dict[str, Any]] = (
            {input_name: to_nchw_rgb(letterbox(image, size_hw)[0])} for image in images
        )

    def get_next(self) -> dict[str, Any] | None:
        return next(self._batches, None)


def _decode_tail_nodes(model: Any) -> list[str]:
    """Names of the nodes between the last real convolutions and the outputs (box decoding, sigmoid, top-k).

    Quantising those to 8 bits would put pixel coordinates and 0..1 scores on one
    coarse scale; they are cheap, so they stay float. The walk stops at convolutions
    with more than one output channel; the DFL's 1-channel convolution is part of decoding.
    """
    producers = {output: node for node in model.graph.node for output in node.output}
    initializers = {init.name: init for init in model.graph.initializer}
    excluded: list[str] = []
    pending = [output.name for output in model.graph.output]
    seen: set[str] = set()
    while pending:
        node = producers.get(pending.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        weight = initializers.get(node.input[1]) if node.op_type == "Conv" else None
        if weight is not None and weight.dims[0] > 1:
            continue
        excluded.append(node.name)
        pending.extend(node.input)
    return excluded


def quantize_int8(fp32_path: Path, out: Path, calibration: Sequence[Image]) -> Path:
    """Static int8 (QDQ, per-channel weights) of an ultralytics ONNX export, calibrated on real images."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from models.yolo_onnx import YoloOnnxDetector

    if not calibration:
        raise ModelError("int8 quantisation needs at least one calibration image")
    reference = YoloOnnxDetector(fp32_path)
    size_hw = (reference.input_size_wh[1], reference.input_size_wh[0])
    fp32_model = onnx.load(str(fp32_path))
    input_name = fp32_model.graph.input[0].name
    out.parent.mkdir(parents=True, exist_ok=True)
    quantize_static(
        str(fp32_path),
        str(out),
        _CalibrationImages(input_name, size_hw, calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=_decode_tail_nodes(fp32_model),
    )
    # The quantiser drops ultralytics' metadata (class names, stride); the backend needs it.
    int8_model = onnx.load(str(out))
    del int8_model.metadata_props[:]
    int8_model.metadata_props.extend(fp32_model.metadata_props)
    onnx.save(int8_model, str(out))
    return out
