"""NanoDetDetector with the real bundled model on real pictures."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.classes import COCO_CLASSES
from models.detector import Detector, ModelError
from models.nanodet import DEFAULT_MODEL_PATH, NanoDetDetector, anchor_centres, distances
from models.types import Detections, Image

MODEL_CARD = DEFAULT_MODEL_PATH.with_suffix(".md")


@pytest.fixture(scope="module")
def detector() -> NanoDetDetector:
    return NanoDetDetector(DEFAULT_MODEL_PATH, threads=1)


def read_image(path: Path) -> Image:
    image = cv2.imread(str(path))
    assert image is not None, f"cannot decode {path}"
    return np.asarray(image, dtype=np.uint8)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter_wh = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None)
    inter = float(inter_wh.prod())
    area = float(np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]))
    return inter / (area - inter)


def test_is_a_detector_with_coco_classes(detector: NanoDetDetector) -> None:
    assert isinstance(detector, Detector)
    assert detector.class_names == COCO_CLASSES
    assert detector.input_size_wh == (416, 416)


@pytest.mark.parametrize(
    ("picture", "label", "at_least"),
    [
        ("bus_jpg", "bus", 1),
        ("bus_jpg", "person", 3),
        ("leuven_jpg", "bicycle", 2),
    ],
)
def test_finds_the_objects_in_real_scenes(
    detector: NanoDetDetector, request: pytest.FixtureRequest, picture: str, label: str, at_least: int
) -> None:
    found = detector.detect(read_image(request.getfixturevalue(picture)))
    assert found.labels.count(label) >= at_least, f"{label}: {found.labels}"


def test_bus_box_covers_the_bus(detector: NanoDetDetector, bus_jpg: Path) -> None:
    image = read_image(bus_jpg)
    height, width = image.shape[:2]
    found = detector.detect(image)
    (x1, y1, x2, y2) = found[found.class_mask(["bus"])].xyxy[0]
    # The bus spans the frame's width in its middle band (y ~ 20-70 %).
    assert (x2 - x1) > 0.8 * width
    assert 0.1 * height < y1 < 0.35 * height
    assert 0.55 * height < y2 < 0.85 * height


def test_people_boxes_are_upright(detector: NanoDetDetector, bus_jpg: Path) -> None:
    found = detector.detect(read_image(bus_jpg))
    people = found[found.class_mask(["person"])]
    heights = people.xyxy[:, 3] - people.xyxy[:, 1]
    widths = people.xyxy[:, 2] - people.xyxy[:, 0]
    assert np.all(heights > 1.5 * widths), people.xyxy


@pytest.mark.parametrize("name", ["leuvenB.jpg", "scenetext01.jpg", "scenetext03.jpg", "scenetext05.jpg"])
def test_boxes_lie_inside_the_image(detector: NanoDetDetector, opencv_data: Path, name: str) -> None:
    image = read_image(opencv_data / name)
    height, width = image.shape[:2]
    found = detector.detect(image, conf_threshold=0.2)
    assert len(found) > 0
    x1, y1, x2, y2 = found.xyxy.T
    assert np.all((x1 >= 0) & (y1 >= 0) & (x2 <= width) & (y2 <= height))
    assert np.all((x2 > x1) & (y2 > y1))
    assert np.all((found.confidence >= 0.2) & (found.confidence <= 1.0))


def test_boxes_follow_the_image_scale(detector: NanoDetDetector, bus_jpg: Path) -> None:
    """Boxes come back in the caller's pixels: half the image, half the box."""
    image = read_image(bus_jpg)
    half_size = (image.shape[1] // 2, image.shape[0] // 2)
    half = np.asarray(cv2.resize(image, half_size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    full_found, half_found = detector.detect(image), detector.detect(half)
    full_box = full_found[full_found.class_mask(["bus"])].xyxy[0]
    half_box = half_found[half_found.class_mask(["bus"])].xyxy[0]
    assert iou(full_box, half_box * 2) > 0.9


def test_threshold_argument_overrides_the_default(detector: NanoDetDetector, bus_jpg: Path) -> None:
    image = read_image(bus_jpg)
    loose = detector.detect(image, conf_threshold=0.2)
    default = detector.detect(image)
    strict = detector.detect(image, conf_threshold=0.7)
    assert len(loose) > len(default) > len(strict) > 0
    assert strict.confidence.min() >= 0.7
    assert default.confidence.min() >= 0.35


def test_detect_does_not_mutate_its_input(detector: NanoDetDetector, bus_jpg: Path) -> None:
    image = read_image(bus_jpg)
    before = image.copy()
    image.flags.writeable = False  # a write would raise, not pass silently
    found = detector.detect(image)
    assert isinstance(found, Detections)
    assert np.array_equal(image, before)


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(7).integers(0, 256, (480, 640, 3), dtype=np.uint8),
        np.full((480, 640, 3), 128, dtype=np.uint8),
        np.zeros((1, 1, 3), dtype=np.uint8),
    ],
    ids=["noise", "grey", "one-pixel"],
)
def test_featureless_images_give_few_detections(detector: NanoDetDetector, image: Image) -> None:
    assert len(detector.detect(image)) <= 1


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((10, 10), dtype=np.uint8),
        np.zeros((10, 10, 4), dtype=np.uint8),
        np.zeros((10, 10, 3), dtype=np.float32),
    ],
    ids=["grey", "bgra", "float"],
)
def test_rejects_images_that_are_not_bgr_uint8(detector: NanoDetDetector, image: Image) -> None:
    with pytest.raises(ValueError, match="expected"):
        detector.detect(image)


def test_rejects_a_threshold_outside_0_1(detector: NanoDetDetector) -> None:
    with pytest.raises(ValueError, match="conf_threshold"):
        detector.detect(np.zeros((8, 8, 3), dtype=np.uint8), conf_threshold=1.2)


def test_model_file_matches_its_card() -> None:
    card = MODEL_CARD.read_text(encoding="utf-8")
    recorded = re.search(r"^\| sha256 \| `([0-9a-f]{64})`", card, re.MULTILINE)
    assert recorded, "the model card records no sha256"
    assert hashlib.sha256(DEFAULT_MODEL_PATH.read_bytes()).hexdigest() == recorded.group(1)


def _foreign_onnx(path: Path) -> None:
    """A valid ONNX model that is not NanoDet: one input, one Identity output."""
    onnx = pytest.importorskip("onnx")
    tensor = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["images"], ["out"])],
        "foreign",
        [tensor("images", onnx.TensorProto.FLOAT, [1, 3, 416, 416])],
        [tensor("out", onnx.TensorProto.FLOAT, [1, 3, 416, 416])],
    )
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)]), path)


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (None, "not found"),
        (lambda path: path.write_bytes(b"definitely not a protobuf"), "not a loadable ONNX model"),
        (lambda path: path.write_bytes(DEFAULT_MODEL_PATH.read_bytes()[:100_000]), "not a loadable ONNX"),
        (lambda path: path.write_bytes(b""), "not a loadable ONNX model"),
        (_foreign_onnx, "expected NanoDet outputs"),
    ],
    ids=["missing", "garbage", "truncated", "empty", "other-model"],
)
def test_bad_model_files_raise_model_error(
    tmp_path: Path, write: Callable[[Path], object] | None, message: str
) -> None:
    path = tmp_path / "model.onnx"
    if write is not None:
        write(path)
    with pytest.raises(ModelError, match=message):
        NanoDetDetector(path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"conf_threshold": 1.5}, "conf_threshold"),
        ({"iou_threshold": -0.1}, "iou_threshold"),
        ({"threads": 0}, "threads"),
    ],
)
def test_rejects_bad_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NanoDetDetector(DEFAULT_MODEL_PATH, **kwargs)  # type: ignore[arg-type]


def test_anchor_centres_sit_in_the_middle_of_each_cell() -> None:
    centres, strides = anchor_centres((416, 416))
    assert centres.shape == (52 * 52 + 26 * 26 + 13 * 13, 2)
    assert centres[0].tolist() == [4.0, 4.0]  # first stride-8 cell
    assert centres[1].tolist() == [12.0, 4.0]  # row-major: x moves first
    assert centres[52 * 52].tolist() == [8.0, 8.0]  # first stride-16 cell
    assert centres[-1].tolist() == [400.0, 400.0]  # last stride-32 cell
    assert np.unique(strides).tolist() == [8.0, 16.0, 32.0]


@pytest.mark.parametrize(("bin_index", "stride", "expected"), [(0, 8, 0.0), (3, 8, 24.0), (10, 32, 320.0)])
def test_distances_are_the_expected_bin_times_the_stride(
    bin_index: int, stride: int, expected: float
) -> None:
    logits = np.full((1, 4, 11), -50.0, dtype=np.float32)
    logits[0, :, bin_index] = 50.0  # all mass on one bin
    got = distances(logits.reshape(1, 44), np.array([stride], dtype=np.float32))
    np.testing.assert_allclose(got, [[expected] * 4], atol=1e-3)


def test_distances_average_over_the_bins() -> None:
    logits = np.zeros((1, 44), dtype=np.float32)  # uniform over 0..10: mean bin 5
    got = distances(logits, np.array([16], dtype=np.float32))
    np.testing.assert_allclose(got, [[80.0] * 4], atol=1e-4)
