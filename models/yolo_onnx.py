"""ultralytics YOLO exports (YOLOv8 / YOLO11 NMS head, YOLO26 end-to-end head) on ONNX Runtime or OpenVINO.

No torch here: this is the edge path. Pre- and post-processing follow
ultralytics' predictor (letterbox, conf on the best class score, per-class NMS,
max_det) so a model gives the same boxes here as under `YOLO(model).predict`.
"""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.backend import AUTO_BACKEND
from models.detector import ModelError
from models.letterbox import LetterboxGeometry, letterbox, to_nchw_rgb
from models.onnx_rewrite import load_rewritten
from models.postprocess import batched_nms
from models.runtime import BackendConfig, Runner, open_runner
from models.types import Detections, FloatArray, Image, IntArray

log = logging.getLogger(__name__)

MAX_NMS_CANDIDATES = 30_000  # ultralytics' max_nms: only the best this many boxes enter NMS


@dataclass(frozen=True)
class UltralyticsMetadata:
    """What ultralytics writes into an ONNX export's metadata and we need to run it."""

    class_names: tuple[str, ...]
    imgsz_hw: tuple[int, int]
    stride: int
    end2end: bool


def parse_ultralytics_metadata(metadata: dict[str, str]) -> UltralyticsMetadata | None:
    """Read ultralytics' metadata map; None when the file was not written by ultralytics.

    Values are Python literals (`{0: 'person', ...}`), so they go through
    `ast.literal_eval`, which never runs code.
    """
    if "names" not in metadata or "stride" not in metadata:
        return None
    try:
        names = ast.literal_eval(metadata["names"])
        imgsz = ast.literal_eval(metadata.get("imgsz", "[640, 640]"))
        args = ast.literal_eval(metadata.get("args", "{}"))
        end2end_flag = ast.literal_eval(metadata.get("end2end", "False"))
        stride = int(metadata["stride"])
    except (ValueError, SyntaxError) as error:
        raise ModelError(f"ultralytics metadata is malformed: {error}") from error
    if not isinstance(names, dict) or sorted(names) != list(range(len(names))):
        raise ModelError("ultralytics metadata 'names' is not a {0: name, 1: name, ...} mapping")
    imgsz_hw = (int(imgsz), int(imgsz)) if isinstance(imgsz, int) else (int(imgsz[0]), int(imgsz[1]))
    end2end = bool(end2end_flag) or bool(isinstance(args, dict) and args.get("nms"))
    return UltralyticsMetadata(tuple(str(names[i]) for i in range(len(names))), imgsz_hw, stride, end2end)


def open_session(
    model_path: Path, threads: int | None = None, backend: BackendConfig = AUTO_BACKEND
) -> Runner:
    """The runner for a YOLO export; `threads` caps intra-op parallelism (None: one per physical core).

    Where `onnx` is installed and ONNX Runtime may run it, the graph is rewritten
    on the way in (`models.onnx_rewrite`: the same arithmetic in ops ONNX Runtime runs faster).
    """
    if not model_path.is_file():
        raise ModelError(f"model file not found: {model_path}")
    return open_runner(model_path, backend, threads, ort_model_bytes=lambda: load_rewritten(model_path))


def decode_nms_head(
    output: FloatArray, conf_threshold: float, iou_threshold: float, max_det: int
) -> tuple[FloatArray, FloatArray, IntArray]:
    """(4 + nc, n) rows of cx, cy, w, h, class scores -> xyxy, score, class after per-class NMS.

    A box is kept when its best class score exceeds `conf_threshold` (strictly,
    as ultralytics does); that best class is its label.
    """
    class_scores = output[4:]
    best_score = class_scores.max(axis=0)
    candidates = np.flatnonzero(best_score > conf_threshold)
    if candidates.size > MAX_NMS_CANDIDATES:
        candidates = candidates[np.argsort(-best_score[candidates], kind="stable")[:MAX_NMS_CANDIDATES]]
    score = best_score[candidates].astype(np.float32)
    class_id = class_scores[:, candidates].argmax(axis=0).astype(np.int64)
    cx, cy, w, h = output[:4, candidates]
    xyxy = np.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), axis=1).astype(np.float32)
    keep = batched_nms(xyxy, score, class_id, iou_threshold, max_det)
    return xyxy[keep], score[keep], class_id[keep]


def decode_end2end_head(
    output: FloatArray, conf_threshold: float, max_det: int
) -> tuple[FloatArray, FloatArray, IntArray]:
    """(k, 6) rows of x1, y1, x2, y2, score, class from an NMS-free head; only a score filter."""
    kept = output[output[:, 4] > conf_threshold][:max_det]
    return kept[:, :4].astype(np.float32), kept[:, 4].astype(np.float32), kept[:, 5].astype(np.int64)


class YoloOnnxDetector:
    """Runs an ultralytics ONNX export with ONNX Runtime; implements `Detector`.

    Static-shape exports are letterboxed to their fixed size; dynamic-shape
    exports to `imgsz` (argument, else the export's own) using the smallest
    stride-aligned rectangle, as ultralytics predicts with them.
    """

    def __init__(
        self,
        model_path: Path,
        conf_threshold: float = 0.25,
        iou_threshold: float = 0.7,
        max_det: int = 300,
        imgsz: int | tuple[int, int] | None = None,
        threads: int | None = None,
        backend: BackendConfig = AUTO_BACKEND,
    ) -> None:
        self.model_path = Path(model_path)
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self.max_det = max_det
        self._runner = open_session(self.model_path, threads, backend)
        metadata = parse_ultralytics_metadata(dict(self._runner.metadata))
        if metadata is None:
            raise ModelError(f"{self.model_path}: no ultralytics metadata (names, stride); not a YOLO export")
        self._metadata = metadata
        model_input = self._runner.inputs[0]
        self._input_name = model_input.name
        height, width = model_input.shape[2], model_input.shape[3]
        self.dynamic = height is None or width is None
        if self.dynamic:
            chosen = imgsz if imgsz is not None else metadata.imgsz_hw
            self._size_hw = (chosen, chosen) if isinstance(chosen, int) else (int(chosen[0]), int(chosen[1]))
        else:
            self._size_hw = (int(height or 0), int(width or 0))
            if imgsz is not None and self._size_hw != ((imgsz, imgsz) if isinstance(imgsz, int) else imgsz):
                log.warning(
                    "%s has a fixed input %s; ignoring imgsz=%s", self.model_path, self._size_hw, imgsz
                )
        self._end2end = self._is_end2end(self._runner.outputs[0].shape)
        self._warm_up()

    def _is_end2end(self, output_shape: tuple[int | None, ...]) -> bool:
        """The metadata says so, or the output is (batch, k, 6) rather than (batch, 4 + nc, anchors)."""
        if len(output_shape) != 3:
            raise ModelError(f"{self.model_path}: output shape {output_shape} is not a detection head")
        channels = output_shape[1]
        return self._metadata.end2end or (output_shape[2] == 6 and channels != 4 + len(self.class_names))

    def _warm_up(self) -> None:
        # The first run allocates and plans kernels; do it now, not on the first camera frame.
        blank = np.full((*self._size_hw, 3), 114, dtype=np.uint8)
        self.detect(blank)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._metadata.class_names

    @property
    def input_size_wh(self) -> tuple[int, int]:
        return self._size_hw[1], self._size_hw[0]

    @property
    def runtime(self) -> str:
        return self._runner.describe()

    @property
    def end2end(self) -> bool:
        return self._end2end

    def input_feeds(self, image: Image) -> tuple[dict[str, FloatArray], LetterboxGeometry]:
        """The network input for one image (also what int8 calibration feeds) and where it was placed."""
        padded, geometry = letterbox(image, self._size_hw, auto=self.dynamic, stride=self._metadata.stride)
        return {self._input_name: to_nchw_rgb(padded)}, geometry

    def raw_output(self, image: Image) -> tuple[FloatArray, LetterboxGeometry]:
        """The network's first output for one image before decoding, and where the image was placed."""
        feeds, geometry = self.input_feeds(image)
        output: FloatArray = self._runner.run(None, feeds)[0][0]
        return output, geometry

    def detect(self, image: Image, conf_threshold: float | None = None) -> Detections:
        conf = self.conf_threshold if conf_threshold is None else conf_threshold
        output, geometry = self.raw_output(image)
        if self._end2end:
            xyxy, score, class_id = decode_end2end_head(output, conf, self.max_det)
        else:
            xyxy, score, class_id = decode_nms_head(output, conf, self.iou_threshold, self.max_det)
        return Detections(
            xyxy=geometry.to_source(xyxy), confidence=score, class_id=class_id, class_names=self.class_names
        )
