"""BlazeFace (MediaPipe's back-camera model) on ONNX Runtime or OpenVINO: where to blur faces in evidence.

The model file and how it was made: models/weights/blazeface_back.md.

Street pictures are large and their faces small, while the network sees 256x256: a whole
768x576 frame shrunk to that leaves a 12 px face at 4, and the network finds none. So
`detect` runs the network on overlapping square tiles of the picture (`Tiling`) and on
the whole picture, and merges what all passes found with MediaPipe's weighted NMS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.backend import AUTO_BACKEND
from models.detector import ModelError
from models.postprocess import box_iou
from models.runtime import BackendConfig, Runner, open_runner
from models.types import Detections, FloatArray, Image, IntArray

DEFAULT_MODEL_PATH = Path(__file__).parent / "weights" / "blazeface_back.onnx"
CLASS_NAMES = ("face",)

INPUT_SIZE = 256
ANCHORS_PER_CELL = {16: 2, 32: 6}  # stride -> anchors per grid cell, MediaPipe's SSD layout
BOX_CHANNELS = 16  # centre dx, dy, w, h (input pixels) + 6 keypoints, unused here
OUTPUT_NAMES = tuple(f"{kind}_{stride}" for kind in ("scores", "boxes") for stride in ANCHORS_PER_CELL)
MAX_CANDIDATES = 1000
MAX_DETECTIONS = 300


@dataclass(frozen=True)
class Tiling:
    """How `FaceDetector.detect` covers a picture with 256x256 network inputs.

    tile_px: side of the square tiles, in picture pixels; each tile is resized to 256x256.
        None: the whole picture only. At 256 (the default) the network sees the picture's
        own pixels, which finds faces down to about 10 px (walkers in a 768x576 CCTV frame).
        Smaller tiles enlarge the faces but the number of tiles, hence the time, grows with
        (1 / tile_px)^2, and so do false detections (see the model card).
    overlap_px: how far neighbouring tiles overlap, in picture pixels. Each tile reports
        only the faces whose centre lies nearer to it than to its neighbours, so a face is
        reported once, and whole if it is no larger than `overlap_px`.
    whole_image: also run the whole picture, letterboxed to a square, for faces larger than
        `overlap_px` that tiles would cut.
    """

    tile_px: int | None = 256
    overlap_px: int = 64
    whole_image: bool = True

    def __post_init__(self) -> None:
        if self.tile_px is not None and self.tile_px < 16:
            raise ValueError(f"Tiling.tile_px: expected >= 16 or None, got {self.tile_px}")
        if self.overlap_px < 0 or (self.tile_px is not None and self.overlap_px >= self.tile_px):
            raise ValueError(f"Tiling.overlap_px: expected 0..tile_px - 1, got {self.overlap_px}")
        if self.tile_px is None and not self.whole_image:
            raise ValueError("Tiling: tile_px=None and whole_image=False would look at nothing")


WHOLE_IMAGE_ONLY = Tiling(tile_px=None)


@dataclass(frozen=True)
class View:
    """One square network input: the picture region [x, x + side) x [y, y + side), padded
    with black where it leaves the picture, and the part of it whose faces it reports."""

    x: int
    y: int
    side: int
    keep_xyxy: tuple[float, float, float, float]

    @property
    def scale(self) -> float:
        """Network pixels per picture pixel."""
        return INPUT_SIZE / self.side


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Tile starts along one axis: evenly spread, first at 0, last ending at `length`,
    neighbours overlapping by at least `overlap`. One tile when it covers `length`."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def _core_bounds(starts: list[int], tile: int, length: int) -> list[tuple[float, float]]:
    """Per tile, the stretch of the axis nearer to it than to its neighbours (the midpoints
    of the overlaps), so that every point belongs to exactly one tile."""
    bounds = []
    for i, start in enumerate(starts):
        low = 0.0 if i == 0 else (start + starts[i - 1] + tile) / 2
        high = float(length) if i == len(starts) - 1 else (starts[i + 1] + start + tile) / 2
        bounds.append((low, high))
    return bounds


def plan_views(width: int, height: int, tiling: Tiling) -> list[View]:
    """The network inputs that cover a width x height picture under `tiling`."""
    views = []
    if tiling.tile_px is not None:
        tile = tiling.tile_px
        xs, ys = tile_origins(width, tile, tiling.overlap_px), tile_origins(height, tile, tiling.overlap_px)
        x_cores, y_cores = _core_bounds(xs, tile, width), _core_bounds(ys, tile, height)
        for y, (y_low, y_high) in zip(ys, y_cores, strict=True):
            for x, (x_low, x_high) in zip(xs, x_cores, strict=True):
                views.append(View(x, y, tile, (x_low, y_low, x_high, y_high)))
    single_tile = len(views) == 1 and views[0].side >= max(width, height)
    if tiling.whole_image and not single_tile:
        views.append(View(0, 0, max(width, height), (0.0, 0.0, float(width), float(height))))
    return views


def network_input(image: Image, view: View) -> FloatArray:
    """The view's region as a (1, 3, 256, 256) RGB blob in [-1, 1], black beyond the picture."""
    height, width = image.shape[:2]
    region = image[view.y : min(view.y + view.side, height), view.x : min(view.x + view.side, width)]
    square = np.zeros((view.side, view.side, 3), dtype=np.uint8)
    square[: region.shape[0], : region.shape[1]] = region
    shrinking = view.side > INPUT_SIZE
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(square, (INPUT_SIZE, INPUT_SIZE), interpolation=interpolation)
    blob = np.empty((1, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    for channel in range(3):  # BGR picture -> RGB planes
        plane = blob[0, channel]
        np.multiply(resized[:, :, 2 - channel], np.float32(1 / 127.5), out=plane, dtype=np.float32)
        np.subtract(plane, np.float32(1.0), out=plane)
    return blob


def anchor_centres() -> FloatArray:
    """(896, 2) anchor centres in network pixels, in the order of the concatenated outputs:
    stride 16 then 32, row-major, each cell's anchors consecutive."""
    centres = []
    for stride, per_cell in ANCHORS_PER_CELL.items():
        cells = INPUT_SIZE // stride
        ys, xs = np.mgrid[0:cells, 0:cells].astype(np.float32)
        grid = np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def weighted_nms(xyxy: FloatArray, scores: FloatArray, iou_threshold: float) -> tuple[FloatArray, FloatArray]:
    """MediaPipe's blending NMS: each kept box is the score-weighted mean of the boxes that
    overlap the best remaining one by more than `iou_threshold`; it keeps the best score.

    One face fires many neighbouring anchors; their mean is steadier than the best alone.
    """
    order = np.argsort(-scores, kind="stable")
    xyxy, scores = xyxy[order], scores[order]
    overlaps = box_iou(xyxy, xyxy) > iou_threshold
    remaining = np.ones(len(scores), dtype=bool)
    boxes, kept_scores = [], []
    for rank in range(len(scores)):
        if not remaining[rank]:
            continue
        cluster = overlaps[rank] & remaining
        remaining &= ~cluster
        weights = scores[cluster]
        boxes.append((xyxy[cluster] * weights[:, None]).sum(axis=0) / weights.sum())
        kept_scores.append(scores[rank])
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return np.asarray(boxes, dtype=np.float32), np.asarray(kept_scores, dtype=np.float32)


class FaceDetector:
    """BlazeFace back-camera 256 on tiles of the picture; faces as `Detections` of class "face"."""

    def __init__(
        self,
        model_path: Path = DEFAULT_MODEL_PATH,
        conf_threshold: float = 0.5,
        iou_threshold: float = 0.3,
        tiling: Tiling = Tiling(),
        threads: int | None = 1,
        backend: BackendConfig = AUTO_BACKEND,
    ) -> None:
        for name, value in (("conf_threshold", conf_threshold), ("iou_threshold", iou_threshold)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: expected 0..1, got {value}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads: expected >= 1 or None, got {threads}")
        self._conf_threshold = conf_threshold
        self._iou_threshold = iou_threshold
        self._tiling = tiling
        self._runner = open_runner(Path(model_path), backend, threads)
        self._input_name = _check_io(self._runner, Path(model_path))
        self._centres = anchor_centres()
        # One dummy run: the engine allocates its buffers on the first call.
        self.detect(np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8))

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES

    @property
    def tiling(self) -> Tiling:
        return self._tiling

    @property
    def runtime(self) -> str:
        return self._runner.describe()

    def detect(self, image: Image, conf_threshold: float | None = None) -> Detections:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image: expected (h, w, 3) uint8 BGR, got {image.shape} {image.dtype}")
        threshold = self._conf_threshold if conf_threshold is None else conf_threshold
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"conf_threshold: expected 0..1, got {threshold}")
        height, width = image.shape[:2]
        views = plan_views(width, height, self._tiling)
        found = [self._detect_view(image, view, threshold) for view in views]
        xyxy = np.concatenate([boxes for boxes, _ in found])
        scores = np.concatenate([scores for _, scores in found])
        if len(scores) > MAX_CANDIDATES:
            top = np.argpartition(-scores, MAX_CANDIDATES)[:MAX_CANDIDATES]
            xyxy, scores = xyxy[top], scores[top]
        xyxy, scores = weighted_nms(xyxy, scores, self._iou_threshold)
        xyxy, scores = xyxy[:MAX_DETECTIONS], scores[:MAX_DETECTIONS]
        xyxy = np.clip(xyxy, 0, np.array([width, height, width, height], dtype=np.float32))
        return Detections(
            xyxy=xyxy,
            confidence=scores,
            class_id=np.zeros(len(scores), dtype=np.int64),
            class_names=CLASS_NAMES,
        )

    def _detect_view(self, image: Image, view: View, threshold: float) -> tuple[FloatArray, FloatArray]:
        """Candidate boxes (picture pixels) and scores of one view, before NMS."""
        outputs = self._runner.run(OUTPUT_NAMES, {self._input_name: network_input(image, view)})
        logits = np.concatenate([out[0, :, 0] for out in outputs[: len(ANCHORS_PER_CELL)]])
        boxes = np.concatenate([out[0] for out in outputs[len(ANCHORS_PER_CELL) :]])
        scores = 0.5 * (np.tanh(logits / 2) + 1)  # the sigmoid, without exp() overflowing
        anchor: IntArray = np.flatnonzero(scores > threshold)
        centres = self._centres[anchor] + boxes[anchor, :2]
        half_wh = boxes[anchor, 2:4] / 2
        xyxy = np.concatenate([centres - half_wh, centres + half_wh], axis=1) / view.scale
        xyxy += np.array([view.x, view.y, view.x, view.y], dtype=np.float32)
        x_low, y_low, x_high, y_high = view.keep_xyxy
        mid_x, mid_y = (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2
        mine = (mid_x >= x_low) & (mid_x < x_high) & (mid_y >= y_low) & (mid_y < y_high)
        return xyxy[mine].astype(np.float32), scores[anchor][mine].astype(np.float32)


def load_face_detector(
    model_path: Path | None = None,
    *,
    tiling: Tiling = Tiling(),
    threads: int | None = 1,
    backend: BackendConfig = AUTO_BACKEND,
) -> FaceDetector:
    """The bundled BlazeFace (models/weights/blazeface_back.onnx) unless `model_path` is given."""
    return FaceDetector(model_path or DEFAULT_MODEL_PATH, tiling=tiling, threads=threads, backend=backend)


def _check_io(runner: Runner, model_path: Path) -> str:
    """The input's name; a model with other inputs or outputs is not this one."""
    inputs = runner.inputs
    if len(inputs) != 1 or inputs[0].shape != (1, 3, INPUT_SIZE, INPUT_SIZE):
        found_inputs = {i.name: i.shape for i in inputs}
        raise ModelError(f"{model_path}: expected one input (1, 3, 256, 256), got {found_inputs}")
    expected: dict[str, tuple[int | None, ...]] = {}
    for stride, per_cell in ANCHORS_PER_CELL.items():
        anchors = (INPUT_SIZE // stride) ** 2 * per_cell
        expected[f"scores_{stride}"] = (1, anchors, 1)
        expected[f"boxes_{stride}"] = (1, anchors, BOX_CHANNELS)
    found = {output.name: output.shape for output in runner.outputs}
    if found != expected:
        raise ModelError(f"{model_path}: expected BlazeFace outputs {expected}, got {found}")
    return str(inputs[0].name)
