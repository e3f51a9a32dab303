"""TextDetector with the bundled PP-OCRv4 mobile model on real photos (Debian opencv-doc).

Sign boards and text lines below were marked by hand on the photos, in the photos'
own pixels, from zoomed views with a pixel grid; the detector sees only the crop.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

import models
from models.detector import ModelError
from models.text import (
    DEFAULT_MODEL_PATH,
    TEXT_CLASSES,
    TextDetector,
    boxes_from_probability,
    covered_fraction,
    input_size_wh,
    load_text_detector,
)
from models.types import Detections, Image

MODEL_CARD = DEFAULT_MODEL_PATH.with_suffix(".md")
Box = tuple[int, int, int, int]


@pytest.fixture(scope="module")
def detector() -> TextDetector:
    return load_text_detector(threads=1)


def read_image(path: Path) -> Image:
    image = cv2.imread(str(path))
    assert image is not None, f"cannot decode {path}"
    return np.asarray(image, dtype=np.uint8)


def first_frame(path: Path) -> Image:
    capture = cv2.VideoCapture(str(path))
    ok, frame = capture.read()
    capture.release()
    assert ok, f"cannot read {path}"
    return np.asarray(frame, dtype=np.uint8)


def cut(image: Image, box: Box) -> Image:
    x1, y1, x2, y2 = box
    return np.ascontiguousarray(image[y1:y2, x1:x2])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter_wh = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None)
    inter = float(inter_wh.prod())
    return inter / (float(np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2])) - inter)


def centre_inside(xyxy: np.ndarray, box: Box) -> bool:
    cx, cy = (xyxy[0] + xyxy[2]) / 2, (xyxy[1] + xyxy[3]) / 2
    return bool(box[0] <= cx <= box[2] and box[1] <= cy <= box[3])


def covers(xyxy: np.ndarray, line: Box, share: float) -> bool:
    """The box takes in `share` of the line's area and its centre lies on the line."""
    inter_w = min(xyxy[2], line[2]) - max(xyxy[0], line[0])
    inter_h = min(xyxy[3], line[3]) - max(xyxy[1], line[1])
    area = (line[2] - line[0]) * (line[3] - line[1])
    return inter_w > 0 and inter_h > 0 and inter_w * inter_h >= share * area and centre_inside(xyxy, line)


# photo, crop handed to the detector, the sign board, its text lines (all in photo pixels),
# and how many boxes may lie off the board.
SIGNS: list[tuple[str, Box, Box, list[Box], int]] = [
    (
        "scenetext01.jpg",
        (240, 0, 470, 290),
        (258, 18, 445, 270),
        [
            (282, 42, 423, 75),  # NOTICE
            (280, 88, 420, 120),  # DOUBLE
            (278, 130, 422, 162),  # PARKING
            (277, 173, 422, 205),  # PROHIBITED
            (287, 217, 403, 248),  # AT ALL TIMES
        ],
        0,
    ),
    (
        "scenetext03.jpg",
        (80, 500, 650, 650),
        (100, 530, 630, 640),
        [(137, 578, 180, 607), (207, 560, 337, 623), (407, 557, 597, 600)],  # the / copy / centre
        0,
    ),
    ("scenetext05.jpg", (440, 280, 720, 420), (472, 310, 692, 394), [(477, 319, 686, 385)], 0),  # NO PARKING
    # The whole barrier as a sidewalk object would be cropped: its plate is the only text.
    ("scenetext05.jpg", (280, 100, 860, 660), (472, 310, 692, 394), [(477, 319, 686, 385)], 0),
    ("scenetext05.jpg", (60, 150, 260, 250), (88, 172, 225, 222), [(92, 175, 220, 215)], 0),  # rear barrier
    # Shop front fascia: "priory galleries at the ship".
    ("scenetext06.jpg", (200, 250, 640, 480), (200, 262, 640, 340), [(242, 285, 587, 320)], 0),
    # Hanging sign, 90x85 px. Its bracket's iron scroll, above right, reads as a "6" (0.89).
    (
        "scenetext06.jpg",
        (270, 140, 360, 225),
        (282, 150, 340, 216),
        [(295, 159, 335, 174), (290, 176, 335, 192), (297, 202, 327, 212)],  # priory / galleries / the ship
        1,
    ),
]


@pytest.mark.parametrize(
    ("photo", "crop", "board", "lines", "strays"), SIGNS, ids=[f"{s[0]}-{s[1]}" for s in SIGNS]
)
def test_finds_each_line_of_a_sign_where_it_is(
    detector: TextDetector,
    opencv_data: Path,
    photo: str,
    crop: Box,
    board: Box,
    lines: list[Box],
    strays: int,
) -> None:
    found = detector.find_text(cut(read_image(opencv_data / photo), crop))
    in_photo = found.xyxy + np.array([crop[0], crop[1], crop[0], crop[1]], dtype=np.float32)
    for line in lines:
        assert any(covers(box, line, 0.7) for box in in_photo), f"line {line} not found in {in_photo.round()}"
    off_board = [box for box in in_photo if not centre_inside(box, board)]
    assert len(off_board) == strays, f"boxes off the board {board}: {off_board}"


@pytest.mark.parametrize(
    ("photo", "crop"),
    [
        ("scenetext03.jpg", (0, 0, 700, 300)),  # concrete ceiling with bolts and rails
        ("leuvenB.jpg", (400, 0, 700, 160)),  # overcast sky
        ("leuvenB.jpg", (0, 120, 120, 400)),  # brick wall and a window
        ("leuvenB.jpg", (0, 0, 751, 563)),  # the whole street: houses, cobbles, bicycles
        ("scenetext01.jpg", (450, 0, 800, 260)),  # trees in front of a building
        ("scenetext05.jpg", (0, 700, 560, 960)),  # red paving stones
        ("vtest.avi", (0, 195, 250, 300)),  # the footpath, frame 0
        ("vtest.avi", (300, 380, 556, 576)),  # grass and a tripod, frame 0
    ],
)
def test_text_free_crops_give_no_text(
    detector: TextDetector, opencv_data: Path, photo: str, crop: Box
) -> None:
    path = opencv_data / photo
    picture = first_frame(path) if photo.endswith(".avi") else read_image(path)
    image = cut(picture, crop)
    found = detector.find_text(image)
    assert len(found) == 0, found.xyxy
    assert detector.text_fraction(image) == 0.0
    assert not detector.has_text(image, min_area_fraction=0.0)


def test_text_free_tiles_are_seldom_flagged(
    detector: TextDetector, leuven_jpg: Path, opencv_data: Path
) -> None:
    """Every 128 and 256 px tile of text-free parts of the photos; when measured, 1 of 286 (two bicycles)."""
    regions = [
        read_image(leuven_jpg),
        read_image(opencv_data / "scenetext05.jpg")[420:],
        read_image(opencv_data / "scenetext03.jpg")[:320, :760],
    ]
    tiles = [
        np.ascontiguousarray(region[y : y + side, x : x + side])
        for side in (128, 256)
        for region in regions
        for y in range(0, region.shape[0] - side + 1, side // 2)
        for x in range(0, region.shape[1] - side + 1, side // 2)
    ]
    flagged = sum(detector.has_text(tile) for tile in tiles)
    assert flagged <= 0.02 * len(tiles), f"{flagged} of {len(tiles)} text-free tiles flagged"


def test_a_sign_crop_has_text_and_a_wall_does_not(detector: TextDetector, opencv_data: Path) -> None:
    photo = read_image(opencv_data / "scenetext03.jpg")
    sign, ceiling = cut(photo, (80, 500, 650, 650)), cut(photo, (0, 0, 700, 300))
    assert detector.has_text(sign)
    assert 0.2 < detector.text_fraction(sign) < 0.6  # three words on a board with a margin round it
    assert not detector.has_text(ceiling)


def test_has_text_needs_the_area_asked_for(detector: TextDetector, opencv_data: Path) -> None:
    sign = cut(read_image(opencv_data / "scenetext06.jpg"), (200, 250, 640, 480))
    fraction = detector.text_fraction(sign)
    assert 0.0 < fraction < 1.0
    assert detector.has_text(sign, min_area_fraction=fraction * 0.99)
    assert not detector.has_text(sign, min_area_fraction=min(1.0, fraction * 1.01))


def test_detections_are_text_boxes_inside_the_image(detector: TextDetector, opencv_data: Path) -> None:
    image = cut(read_image(opencv_data / "scenetext01.jpg"), (240, 0, 470, 290))
    found = detector.find_text(image)
    assert isinstance(found, Detections)
    assert found.class_names == TEXT_CLASSES == ("text",)
    assert found.labels == ["text"] * len(found)
    assert found.xyxy.dtype == np.float32 and found.xyxy.shape == (5, 4)
    assert found.confidence.dtype == np.float32 and found.class_id.dtype == np.int64
    assert np.all((found.confidence >= 0.6) & (found.confidence <= 1.0))
    x1, y1, x2, y2 = found.xyxy.T
    height, width = image.shape[:2]
    assert np.all((x1 >= 0) & (y1 >= 0) & (x2 <= width) & (y2 <= height) & (x2 > x1) & (y2 > y1))
    assert np.all(np.diff(y1) > 0), "lines come top to bottom"


def test_boxes_follow_the_image_scale(detector: TextDetector, opencv_data: Path) -> None:
    """Twice the crop, twice the boxes.

    Both shrink to the same 192x256 network input, from slightly different pixels (the
    enlarged copy was interpolated), so boxes agree to a pixel or two of the network's map.
    """
    image = cut(read_image(opencv_data / "scenetext01.jpg"), (240, 0, 470, 290))
    double = np.asarray(cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
    small, large = detector.find_text(image), detector.find_text(double)
    assert len(small) == len(large) == 5
    for doubled, box in zip(large.xyxy, small.xyxy * 2, strict=True):
        assert iou(doubled, box) > 0.85, (doubled, box)


def test_find_text_does_not_mutate_its_input(detector: TextDetector, opencv_data: Path) -> None:
    image = cut(read_image(opencv_data / "scenetext05.jpg"), (440, 280, 720, 420))
    before = image.copy()
    image.flags.writeable = False  # a write would raise, not pass silently
    assert len(detector.find_text(image)) == 1
    assert np.array_equal(image, before)


@pytest.mark.parametrize(
    "image",
    [
        np.full((200, 300, 3), 128, dtype=np.uint8),
        np.zeros((1, 1, 3), dtype=np.uint8),
        np.zeros((5, 2000, 3), dtype=np.uint8),
    ],
    ids=["grey", "one-pixel", "sliver"],
)
def test_featureless_images_give_no_text(detector: TextDetector, image: Image) -> None:
    assert len(detector.find_text(image)) == 0
    assert detector.text_fraction(image) == 0.0


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((10, 10), dtype=np.uint8),
        np.zeros((10, 10, 4), dtype=np.uint8),
        np.zeros((10, 10, 3), dtype=np.float32),
        np.zeros((0, 10, 3), dtype=np.uint8),
    ],
    ids=["grey", "bgra", "float", "empty"],
)
def test_rejects_images_that_are_not_bgr_uint8(detector: TextDetector, image: Image) -> None:
    with pytest.raises(ValueError, match="expected"):
        detector.find_text(image)


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_has_text_rejects_a_fraction_outside_0_1(detector: TextDetector, fraction: float) -> None:
    with pytest.raises(ValueError, match="min_area_fraction"):
        detector.has_text(np.zeros((8, 8, 3), dtype=np.uint8), min_area_fraction=fraction)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_side_px": 250}, "max_side_px"),
        ({"max_side_px": 0}, "max_side_px"),
        ({"prob_threshold": 1.2}, "prob_threshold"),
        ({"box_threshold": -0.1}, "box_threshold"),
        ({"min_box_side_px": -1}, "min_box_side_px"),
        ({"unclip_ratio": -0.5}, "unclip_ratio"),
        ({"threads": 0}, "threads"),
    ],
)
def test_rejects_bad_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TextDetector(DEFAULT_MODEL_PATH, **kwargs)  # type: ignore[arg-type]


def _identity_onnx(path: Path) -> None:
    """A valid ONNX model with a dynamic image input that is not a text detector."""
    onnx = pytest.importorskip("onnx")
    tensor = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [tensor("x", onnx.TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [tensor("y", onnx.TensorProto.FLOAT, ["n", 3, "h", "w"])],
    )
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)]), path)


def _fixed_size_onnx(path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    tensor = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=1)],
        "fixed",
        [tensor("x", onnx.TensorProto.FLOAT, [1, 3, 640, 640])],
        [tensor("y", onnx.TensorProto.FLOAT, [1, 1, 640, 640])],
    )
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)]), path)


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (None, "not found"),
        (lambda path: path.write_bytes(b"definitely not a protobuf"), "not a loadable ONNX model"),
        (lambda path: path.write_bytes(DEFAULT_MODEL_PATH.read_bytes()[:100_000]), "not a loadable ONNX"),
        (_identity_onnx, r"expected a \(1, 1, h, w\) probability map"),
        (_fixed_size_onnx, "expected a dynamic"),
    ],
    ids=["missing", "garbage", "truncated", "other-model", "fixed-size"],
)
def test_bad_model_files_raise_model_error(
    tmp_path: Path, write: Callable[[Path], object] | None, message: str
) -> None:
    path = tmp_path / "model.onnx"
    if write is not None:
        write(path)
    with pytest.raises(ModelError, match=message):
        TextDetector(path)


def test_load_text_detector_finds_the_bundled_file_in_the_package() -> None:
    bundled = Path(models.__file__).parent / "weights" / "ppocr_det_v4_mobile.onnx"
    assert bundled == DEFAULT_MODEL_PATH
    assert DEFAULT_MODEL_PATH.is_file()
    assert load_text_detector(max_side_px=128).max_side_px == 128


def test_model_file_matches_its_card() -> None:
    card = MODEL_CARD.read_text(encoding="utf-8")
    recorded = re.search(r"^\| sha256 \| `([0-9a-f]{64})`", card, re.MULTILINE)
    assert recorded, "the model card records no sha256"
    assert hashlib.sha256(DEFAULT_MODEL_PATH.read_bytes()).hexdigest() == recorded.group(1)


@pytest.mark.parametrize(
    ("image_wh", "max_side_px", "expected_wh"),
    [
        ((800, 600), 256, (256, 192)),
        ((570, 150), 256, (256, 64)),
        ((90, 85), 256, (96, 96)),  # never shrunk; rounding to 32 may enlarge a little
        ((1, 1), 256, (32, 32)),
        ((2000, 5), 256, (256, 32)),
        ((640, 480), 640, (640, 480)),
        ((1280, 960), 640, (640, 480)),
    ],
)
def test_input_size_caps_the_long_side_and_rounds_to_32(
    image_wh: tuple[int, int], max_side_px: int, expected_wh: tuple[int, int]
) -> None:
    assert input_size_wh(image_wh, max_side_px) == expected_wh


def _map_with(regions: list[tuple[Box, float]], shape: tuple[int, int] = (64, 96)) -> np.ndarray:
    prob = np.zeros(shape, dtype=np.float32)
    for (x1, y1, x2, y2), value in regions:
        prob[y1:y2, x1:x2] = value
    return prob


def test_a_region_is_grown_back_out_by_the_unclip_distance() -> None:
    # Pixels x 10..29, y 20..27: minimum-area rectangle 19 x 7 between the pixel centres.
    xyxy, score = boxes_from_probability(_map_with([((10, 20, 30, 28), 0.9)]), 0.3, 0.6, 3.0, 1.5)
    grow = 19 * 7 * 1.5 / (2 * (19 + 7))
    np.testing.assert_allclose(xyxy, [[10 - grow, 20 - grow, 29 + grow, 27 + grow]], atol=0.05)
    np.testing.assert_allclose(score, [0.9], atol=1e-6)


@pytest.mark.parametrize(
    ("regions", "kept"),
    [
        ([((10, 20, 30, 28), 0.9)], 1),
        ([((10, 20, 30, 28), 0.5)], 0),  # above the pixel threshold, mean below the box threshold
        ([((10, 20, 30, 28), 0.2)], 0),  # below the pixel threshold: no region at all
        ([((10, 20, 30, 22), 0.9)], 0),  # 2 px tall: under min_box_side_px
        ([((10, 20, 30, 28), 0.9), ((50, 5, 90, 15), 0.7)], 2),
    ],
    ids=["kept", "weak", "faint", "thin", "two"],
)
def test_regions_are_filtered_by_score_and_size(regions: list[tuple[Box, float]], kept: int) -> None:
    xyxy, score = boxes_from_probability(_map_with(regions), 0.3, 0.6, 3.0, 1.5)
    assert xyxy.shape == (kept, 4) and score.shape == (kept,)


def test_grown_boxes_stay_on_the_map() -> None:
    xyxy, _ = boxes_from_probability(_map_with([((0, 0, 96, 10), 1.0)]), 0.3, 0.6, 3.0, 1.5)
    assert xyxy.tolist() == [[0.0, 0.0, 96.0, xyxy[0, 3]]] and 10 < xyxy[0, 3] < 64


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        ([], 0.0),
        ([[0, 0, 50, 100]], 0.5),
        ([[0, 0, 50, 100], [25, 0, 75, 100]], 0.75),  # overlap counted once
        ([[-20, -20, 200, 200]], 1.0),  # clipped to the image
    ],
)
def test_covered_fraction_is_the_union_over_the_image(boxes: list[list[float]], expected: float) -> None:
    xyxy = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    assert covered_fraction(xyxy, 100, 100) == pytest.approx(expected)
