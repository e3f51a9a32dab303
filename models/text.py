"""Where is there text in a picture: PP-OCRv4 mobile's DBNet text detector (ONNX Runtime or OpenVINO).

The edge asks this of the crop of a new static object: a board that carries text is
tagged `signboard`. Only detection runs here, no recognition: we need to know that
text is there, not what it says.

The model file and how it was chosen: models/weights/ppocr_det_v4_mobile.md.
Pre- and post-processing follow PaddleOCR's `DetResizeForTest` (limit type "max"),
`NormalizeImage` and `DBPostProcess` (quadrilateral boxes), with the rotated boxes
reported as their axis-aligned bounds. The box score is PaddleOCR's "slow" mode, the
mean probability inside the region's outline, not its default "fast" mode (inside
the region's minimum-area rectangle): a sign seen at an angle has slightly bent text
lines whose rectangle takes in background, and scenetext06's shop front scored 0.65
that way against the 0.6 cut-off, 0.99 by its outline.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from models.backend import AUTO_BACKEND
from models.detector import ModelError
from models.runtime import BackendConfig, Runner, open_runner
from models.types import Detections, FloatArray, Image

DEFAULT_MODEL_PATH = Path(__file__).parent / "weights" / "ppocr_det_v4_mobile.onnx"
TEXT_CLASSES = ("text",)

STRIDE = 32  # the network downsamples by 32: input sides must be multiples of it
# PaddleOCR's NormalizeImage on the BGR image as decoded: its ImageNet RGB means and
# deviations are applied in channel order, so blue gets the red statistics. The
# model was trained that way; feeding RGB instead is not what it saw.
MEAN_BGR = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255
STD_BGR = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255
MAX_CANDIDATES = 1000  # PaddleOCR's max_candidates: contours looked at per image
# has_text's default: 1 % of the crop keeps a sign whose lettering is a small part of the
# object (a maker's plate on a generator covered 3 %) and ignores a stray box of a few pixels.
DEFAULT_MIN_AREA_FRACTION = 0.01


class TextDetector:
    """Text boxes in a BGR image, in that image's pixels.

    One text line (or one word, when the letters are far apart) is one box. Settings
    default to PaddleOCR's for this model except the input size: crops are small
    and the edge box is slow, so the long side is capped at 256 px.
    """

    def __init__(
        self,
        model_path: Path = DEFAULT_MODEL_PATH,
        max_side_px: int = 256,
        prob_threshold: float = 0.3,
        box_threshold: float = 0.6,
        min_box_side_px: float = 3.0,
        unclip_ratio: float = 1.5,
        threads: int | None = 1,
        backend: BackendConfig = AUTO_BACKEND,
    ) -> None:
        """`max_side_px`: the image is shrunk (never enlarged) so its long side is at most this.

        `prob_threshold`: a probability-map pixel above it is text (PaddleOCR's `thresh`).
        `box_threshold`: a region is kept when its mean probability reaches it (`box_thresh`).
        `min_box_side_px`: regions whose short side is below this, on the network's map, are
        dropped (PaddleOCR's `min_size`). `unclip_ratio`: how far a region is grown back out,
        since the model predicts shrunken text kernels. `threads`: ONNX Runtime intra-op
        threads (None: one per core). `backend`: the inference engine (models/backend.py).
        """
        if max_side_px < STRIDE or max_side_px % STRIDE:
            raise ValueError(f"max_side_px: expected a multiple of {STRIDE} >= {STRIDE}, got {max_side_px}")
        for name, value in (("prob_threshold", prob_threshold), ("box_threshold", box_threshold)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: expected 0..1, got {value}")
        if min_box_side_px < 0:
            raise ValueError(f"min_box_side_px: expected >= 0, got {min_box_side_px}")
        if unclip_ratio < 0:
            raise ValueError(f"unclip_ratio: expected >= 0, got {unclip_ratio}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads: expected >= 1 or None, got {threads}")
        self._max_side_px = max_side_px
        self._prob_threshold = prob_threshold
        self._box_threshold = box_threshold
        self._min_box_side_px = min_box_side_px
        self._unclip_ratio = unclip_ratio
        model_path = Path(model_path)
        self._runner = open_runner(model_path, backend, threads)
        self._input_name, self._output_name = _check_io(self._runner, model_path)
        # One run at the largest input: the engine allocates its buffers on the first call.
        blank = np.zeros((1, 3, max_side_px, max_side_px), dtype=np.float32)
        try:
            warm = self._runner.run([self._output_name], {self._input_name: blank})[0]
        except Exception as error:  # a foreign model may want other types or sizes
            raise ModelError(f"{model_path}: cannot run on a (1, 3, h, w) image: {error}") from error
        if warm.shape != (1, 1, max_side_px, max_side_px):
            raise ModelError(
                f"{model_path}: expected a (1, 1, h, w) probability map for a (1, 3, h, w) input, "
                f"got {warm.shape}"
            )

    @property
    def class_names(self) -> tuple[str, ...]:
        return TEXT_CLASSES

    @property
    def max_side_px(self) -> int:
        return self._max_side_px

    @property
    def runtime(self) -> str:
        return self._runner.describe()

    def find_text(self, image: Image) -> Detections:
        """Text boxes (class "text"), top to bottom; confidence is the mean text probability inside."""
        _check_image(image)
        blob, input_wh = preprocess(image, self._max_side_px)
        prob = self._runner.run([self._output_name], {self._input_name: blob})[0][0, 0]
        xyxy_map, confidence = boxes_from_probability(
            prob, self._prob_threshold, self._box_threshold, self._min_box_side_px, self._unclip_ratio
        )
        height, width = image.shape[:2]
        scale = np.array(
            [width / input_wh[0], height / input_wh[1], width / input_wh[0], height / input_wh[1]],
            dtype=np.float32,
        )
        xyxy = np.clip(xyxy_map * scale, 0, np.array([width, height, width, height], dtype=np.float32))
        # PaddleOCR drops boxes 3 px or less wide or tall once they are in the image's pixels.
        keep = ((xyxy[:, 2] - xyxy[:, 0]) > 3) & ((xyxy[:, 3] - xyxy[:, 1]) > 3)
        xyxy, confidence = xyxy[keep], confidence[keep]
        order = np.lexsort((xyxy[:, 0], xyxy[:, 1]))
        return Detections(
            xyxy=xyxy[order],
            confidence=confidence[order],
            class_id=np.zeros(len(order), dtype=np.int64),
            class_names=TEXT_CLASSES,
        )

    def text_fraction(self, image: Image) -> float:
        """Share of the image's area covered by text boxes (their union), 0..1."""
        return covered_fraction(self.find_text(image).xyxy, image.shape[1], image.shape[0])

    def has_text(self, image: Image, min_area_fraction: float = DEFAULT_MIN_AREA_FRACTION) -> bool:
        """True when at least one text box is found and text covers `min_area_fraction` of the image.

        Use 0 to accept any box.
        """
        if not 0.0 <= min_area_fraction <= 1.0:
            raise ValueError(f"min_area_fraction: expected 0..1, got {min_area_fraction}")
        found = self.find_text(image)
        if len(found) == 0:
            return False
        return covered_fraction(found.xyxy, image.shape[1], image.shape[0]) >= min_area_fraction


def load_text_detector(
    max_side_px: int = 256, threads: int | None = 1, backend: BackendConfig = AUTO_BACKEND
) -> TextDetector:
    """The bundled PP-OCRv4 mobile text detector, found beside this module."""
    return TextDetector(DEFAULT_MODEL_PATH, max_side_px=max_side_px, threads=threads, backend=backend)


def input_size_wh(image_wh: tuple[int, int], max_side_px: int) -> tuple[int, int]:
    """Network input size: shrunk so the long side is at most `max_side_px`, sides rounded to 32.

    PaddleOCR's `DetResizeForTest` with limit type "max": never enlarged, each side rounded
    to the nearest multiple of 32 and at least 32, so the aspect ratio changes slightly.
    """
    width, height = image_wh
    ratio = min(1.0, max_side_px / max(width, height))
    return (
        max(STRIDE, round(width * ratio / STRIDE) * STRIDE),
        max(STRIDE, round(height * ratio / STRIDE) * STRIDE),
    )


def preprocess(image: Image, max_side_px: int) -> tuple[FloatArray, tuple[int, int]]:
    """(1, 3, h, w) float32 blob, normalised one channel at a time, and its size (w, h)."""
    input_wh = input_size_wh((image.shape[1], image.shape[0]), max_side_px)
    resized = cv2.resize(image, input_wh, interpolation=cv2.INTER_LINEAR)
    blob = np.empty((1, 3, input_wh[1], input_wh[0]), dtype=np.float32)
    for channel in range(3):
        plane = blob[0, channel]
        np.subtract(resized[:, :, channel], MEAN_BGR[channel], out=plane, dtype=np.float32)
        np.divide(plane, STD_BGR[channel], out=plane)
    return blob, input_wh


def boxes_from_probability(
    prob: FloatArray,
    prob_threshold: float,
    box_threshold: float,
    min_box_side_px: float,
    unclip_ratio: float,
) -> tuple[FloatArray, FloatArray]:
    """DBNet boxes from an (h, w) text-probability map: (n, 4) xyxy on the map and (n,) scores.

    Each connected region above `prob_threshold` is scored by its mean probability inside
    its outline and boxed by its minimum-area rectangle. A kept rectangle is grown on every side by
    area * unclip_ratio / perimeter (what PaddleOCR's polygon offset does to a rectangle)
    and reported as its axis-aligned bounds.
    """
    height, width = prob.shape
    bitmap = (prob > prob_threshold).astype(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    boxes: list[FloatArray] = []
    scores: list[float] = []
    for contour in contours[:MAX_CANDIDATES]:
        (cx, cy), (rect_w, rect_h), angle = cv2.minAreaRect(contour)
        if min(rect_w, rect_h) < min_box_side_px:
            continue
        score = _mean_inside(prob, np.asarray(contour, dtype=np.int32))
        if score < box_threshold:
            continue
        grow = rect_w * rect_h * unclip_ratio / (2 * (rect_w + rect_h))
        grown_w, grown_h = rect_w + 2 * grow, rect_h + 2 * grow
        if min(grown_w, grown_h) < min_box_side_px + 2:
            continue
        grown = cv2.boxPoints(((cx, cy), (grown_w, grown_h), angle))
        x1, y1 = np.clip(grown.min(axis=0), 0, [width, height])
        x2, y2 = np.clip(grown.max(axis=0), 0, [width, height])
        boxes.append(np.array([x1, y1, x2, y2], dtype=np.float32))
        scores.append(score)
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return np.stack(boxes), np.array(scores, dtype=np.float32)


def covered_fraction(xyxy: FloatArray, width: int, height: int) -> float:
    """Share of a width x height image covered by the union of the boxes."""
    if len(xyxy) == 0 or width <= 0 or height <= 0:
        return 0.0
    mask = np.zeros((height, width), dtype=np.uint8)
    for x1, y1, x2, y2 in np.rint(xyxy).astype(np.int64):
        mask[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = 1
    return float(mask.mean())


def _mean_inside(prob: FloatArray, contour: npt.NDArray[np.int32]) -> float:
    """Mean of `prob` inside a region's outline (PaddleOCR's "slow" box score)."""
    x, y, width, height = cv2.boundingRect(contour)
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(mask, [contour - np.array([x, y], dtype=np.int32)], 1)
    return float(cv2.mean(prob[y : y + height, x : x + width], mask)[0])


def _check_image(image: Image) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image: expected (h, w, 3) uint8 BGR, got {image.shape} {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image: expected at least 1x1 pixels, got {image.shape}")


def _check_io(runner: Runner, model_path: Path) -> tuple[str, str]:
    """Input and output names; a model that is not one image in, one map out is not this one."""
    inputs, outputs = runner.inputs, runner.outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(
            f"{model_path}: expected one input and one output, got "
            f"{[i.name for i in inputs]} -> {[o.name for o in outputs]}"
        )
    shape = inputs[0].shape
    if len(shape) != 4 or shape[1] != 3 or any(isinstance(d, int) for d in shape[2:]):
        raise ModelError(f"{model_path}: expected a dynamic (n, 3, h, w) input, got {shape}")
    return inputs[0].name, outputs[0].name
