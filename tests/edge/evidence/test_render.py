"""Evidence pictures: people blurred beyond recognition, bounded size, annotation drawn, input untouched."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest

from edge.evidence.render import EvidencePolicy, blur_people, encode_bounded_jpeg, render_evidence
from models.classes import COCO_CLASSES
from models.types import Detections, Image

PERSON = COCO_CLASSES.index("person")
CHAIR = COCO_CLASSES.index("chair")
# Two walkers in vtest.avi frame 100 (pixel boxes measured on the frame).
PEOPLE_XYXY = [(345.0, 196.0, 385.0, 276.0), (372.0, 176.0, 412.0, 258.0)]
# A box around the sign post that the right-hand walker stands against.
SIGN_XYXY = (405.0, 185.0, 450.0, 262.0)
ZONE = [(0.45, 0.25), (0.62, 0.25), (0.62, 0.50), (0.45, 0.50)]
WHEN = datetime(2024, 5, 4, 9, 30, tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo("Asia/Shanghai"))


@dataclass(frozen=True)
class Obj:
    label: str
    confidence: float
    xyxy: tuple[float, float, float, float]


@pytest.fixture(scope="module")
def frame(vtest_avi: Path) -> Image:
    capture = cv2.VideoCapture(str(vtest_avi))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, pixels = capture.read()
    capture.release()
    assert ok
    return np.ascontiguousarray(pixels)


def _detections(*rows: tuple[tuple[float, float, float, float], int]) -> Detections:
    return Detections(
        xyxy=np.array([xyxy for xyxy, _ in rows], dtype=np.float32).reshape(-1, 4),
        confidence=np.full(len(rows), 0.8, dtype=np.float32),
        class_id=np.array([cid for _, cid in rows], dtype=np.int64),
        class_names=COCO_CLASSES,
    )


def _detail(image: Image) -> float:
    """High-frequency energy: variance of the Laplacian of the grey picture."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return float(cv2.Laplacian(grey.astype(np.float64), cv2.CV_64F).var())


def _decode(jpeg: bytes) -> Image:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, dtype=np.uint8)


def _region(image: Image, xyxy: tuple[float, float, float, float]) -> Image:
    x1, y1, x2, y2 = (round(v) for v in xyxy)
    return image[y1:y2, x1:x2]


def _people() -> Detections:
    return _detections(*((box, PERSON) for box in PEOPLE_XYXY))


def test_people_blur_destroys_detail(frame: Image) -> None:
    blurred = blur_people(frame, _people())
    for box in PEOPLE_XYXY:
        before, after = _region(frame, box), _region(blurred, box)
        assert _detail(before) > 50, "the test needs a detailed person region"
        assert _detail(after) < 0.05 * _detail(before)
        # Beyond losing edges, the picture itself is gone: low correlation with the original.
        corr = np.corrcoef(before.astype(np.float64).ravel(), after.astype(np.float64).ravel())[0, 1]
        assert corr < 0.9
    # The face part (top 30% of the box) keeps almost nothing: a few cells of flat colour.
    x1, y1, x2, y2 = PEOPLE_XYXY[0]
    face = (x1 + 4, y1 + 4, x2 - 4, y1 + 0.25 * (y2 - y1))
    assert _detail(_region(blurred, face)) < 0.01 * _detail(_region(frame, face))


def test_blur_leaves_everything_else_alone(frame: Image) -> None:
    blurred = blur_people(frame, _people())
    assert np.array_equal(blurred[:150], frame[:150])  # above both people (boxes grown by the margin)
    assert np.array_equal(blurred[300:], frame[300:])
    assert np.array_equal(blur_people(frame, _detections((SIGN_XYXY, CHAIR))), frame)


def test_person_overlapping_the_object_is_blurred_in_the_crop(frame: Image) -> None:
    objects = [Obj("chair", 0.9, SIGN_XYXY)]
    evidence = render_evidence(
        frame,
        zone_polygon=ZONE,
        objects=objects,
        detections=_detections((SIGN_XYXY, CHAIR), (PEOPLE_XYXY[1], PERSON)),
        camera_id="cam-01",
        incident_id="0f8e2c1a-1111-2222-3333-444455556666",
        local_time=WHEN,
    )
    crop = _decode(evidence.crop_jpeg)
    policy = EvidencePolicy()
    # The crop is the object box plus a margin (at least crop_min_side_px wide), from the frame's top-left.
    width = max((SIGN_XYXY[2] - SIGN_XYXY[0]) * (1 + 2 * policy.crop_margin), policy.crop_min_side_px)
    assert abs(crop.shape[1] - width) <= 2
    left = int(np.floor(SIGN_XYXY[0] - (width - (SIGN_XYXY[2] - SIGN_XYXY[0])) / 2))
    top = int(np.floor(SIGN_XYXY[1] - (SIGN_XYXY[3] - SIGN_XYXY[1]) * policy.crop_margin))
    # The part of the walker inside the crop: x from the crop's left edge to the walker's right edge.
    _, y1, x2, y2 = PEOPLE_XYXY[1]
    overlap_in_frame = (left, y1, x2, y2)
    overlap_in_crop = (0, y1 - top, x2 - left, y2 - top)
    assert _detail(_region(crop, overlap_in_crop)) < 0.1 * _detail(_region(frame, overlap_in_frame))
    # The sign's own pixels (right of the walker) stay sharp: the crop is evidence, not mush.
    sign_in_crop = (x2 + 8 - left, SIGN_XYXY[1] - top, SIGN_XYXY[2] - left, SIGN_XYXY[3] - top)
    sign_in_frame = (x2 + 8, SIGN_XYXY[1], SIGN_XYXY[2], SIGN_XYXY[3])
    assert _detail(_region(crop, sign_in_crop)) > 0.3 * _detail(_region(frame, sign_in_frame))


def test_annotation_draws_zone_box_and_header(frame: Image) -> None:
    objects = [Obj("chair", 0.9, SIGN_XYXY)]
    evidence = render_evidence(
        frame,
        zone_polygon=ZONE,
        objects=objects,
        detections=_people(),
        camera_id="cam-01",
        incident_id="0f8e2c1a-1111",
        local_time=WHEN,
    )
    annotated = _decode(evidence.annotated_jpeg).astype(np.int32)
    h, w = annotated.shape[:2]
    assert (w, h) == (768, 576)
    # Zone outline: amber (B low, G and R high) along its top edge, absent from the source there.
    y = round(ZONE[0][1] * h)
    edge = annotated[y, round(0.50 * w) : round(0.58 * w)]
    assert np.median(edge[:, 2]) > 200 and np.median(edge[:, 1]) > 150 and np.median(edge[:, 0]) < 90
    # Object box: red on its left edge.
    x1, y1, _, y2 = (round(v) for v in SIGN_XYXY)
    box_edge = annotated[y1 + 20 : y2 - 5, x1]
    assert np.median(box_edge[:, 2]) > 180 and np.median(box_edge[:, 1]) < 80
    # Header text on a black band in the top-left corner.
    header = annotated[4:24, 4:300]
    assert (header.max(axis=2) < 40).mean() > 0.4 and (header.min(axis=2) > 200).mean() > 0.05
    assert evidence.content_type == "image/jpeg" and len(evidence.annotated_sha256) == 64


def test_render_never_mutates_its_input(frame: Image) -> None:
    pixels = frame.copy()
    pixels.flags.writeable = False  # any write in place raises
    render_evidence(
        pixels,
        zone_polygon=ZONE,
        objects=[Obj("chair", 0.9, SIGN_XYXY)],
        detections=_detections((SIGN_XYXY, CHAIR), *((box, PERSON) for box in PEOPLE_XYXY)),
        camera_id="cam-01",
        incident_id="abc",
        local_time=WHEN,
    )
    assert np.array_equal(pixels, frame)


@pytest.mark.parametrize(("max_bytes", "max_long_side"), [(200_000, 1280), (30_000, 640), (8_000, 1920)])
def test_jpeg_is_bounded_in_size_and_bytes(max_bytes: int, max_long_side: int) -> None:
    noise = np.random.default_rng(7).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)  # incompressible
    policy = EvidencePolicy(max_bytes=max_bytes, max_long_side_px=max_long_side)
    jpeg = encode_bounded_jpeg(noise, policy)
    assert len(jpeg) <= max_bytes
    assert max(_decode(jpeg).shape[:2]) <= max_long_side


def test_small_picture_keeps_its_size_and_high_quality(frame: Image) -> None:
    jpeg = encode_bounded_jpeg(frame)
    decoded = _decode(jpeg)
    assert decoded.shape == frame.shape
    assert np.abs(decoded.astype(np.int32) - frame.astype(np.int32)).mean() < 4  # first step, quality 90


def test_faces_the_detector_missed_are_blurred_by_the_face_model(opencv_data: Path) -> None:
    """messi5.jpg: the real face detector finds the face; with no person box it is still blurred."""
    from edge.evidence.faces import faces_at
    from models.faces import load_face_detector

    picture = cv2.imread(str(opencv_data / "messi5.jpg"))
    faces = faces_at(load_face_detector(), picture, picture.shape)
    assert faces is not None and len(faces) >= 1
    nobody = Detections.empty(COCO_CLASSES)
    blurred = blur_people(picture, nobody, faces=faces)
    x1, y1, x2, y2 = (int(v) for v in faces.xyxy[0])
    before = cv2.Laplacian(cv2.cvtColor(picture[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
    after = cv2.Laplacian(cv2.cvtColor(blurred[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
    assert after < before * 0.1
    near_a_face = np.zeros(picture.shape[:2], bool)
    for fx1, fy1, fx2, fy2 in faces.xyxy:
        gx, gy = (fx2 - fx1) * 0.5, (fy2 - fy1) * 0.5
        near_a_face[max(0, int(fy1 - gy)) : int(fy2 + gy) + 1, max(0, int(fx1 - gx)) : int(fx2 + gx) + 1] = (
            True
        )
    assert np.array_equal(blurred[~near_a_face], picture[~near_a_face])  # the rest stays


def test_blur_outside_keeps_the_zones_sharp_and_pixelates_the_rest(frame: Image) -> None:
    from edge.evidence.render import blur_outside

    zone = [(0.1, 0.5), (0.6, 0.5), (0.6, 0.9), (0.1, 0.9)]
    out = blur_outside(frame, [zone])
    h, w = frame.shape[:2]
    inside = (slice(int(0.55 * h), int(0.85 * h)), slice(int(0.15 * w), int(0.55 * w)))
    outside = (slice(0, int(0.4 * h)), slice(0, w))
    assert np.array_equal(out[inside], frame[inside])
    assert not np.array_equal(out[outside], frame[outside])


def test_before_now_shows_the_zone_from_the_background_beside_the_frame(frame: Image) -> None:
    reference = np.full((frame.shape[0] // 2, frame.shape[1] // 2, 3), 30, np.uint8)  # a dark empty scene
    evidence = render_evidence(
        frame,
        zone_polygon=[(0.1, 0.5), (0.6, 0.5), (0.6, 0.9), (0.1, 0.9)],
        objects=[],
        detections=Detections.empty(COCO_CLASSES),
        camera_id="cam-01",
        incident_id="0123456789abcdef",
        local_time=datetime(2025, 6, 4, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
        reference=reference,
    )
    assert evidence.before_now_jpeg is not None
    strip = cv2.imdecode(np.frombuffer(evidence.before_now_jpeg, np.uint8), cv2.IMREAD_COLOR)
    half = strip.shape[1] // 2
    assert strip[:, :half].mean() < 60 and abs(strip[:, half:].mean() - frame.mean()) < 60
    without = render_evidence(
        frame,
        zone_polygon=[],
        objects=[],
        detections=Detections.empty(COCO_CLASSES),
        camera_id="cam-01",
        incident_id="0123456789abcdef",
        local_time=datetime(2025, 6, 4, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
    )
    assert without.before_now_jpeg is None


@dataclass(frozen=True)
class TrackedObj:
    label: str
    confidence: float
    xyxy: tuple[float, float, float, float]
    tracker_id: int | None


def _is_tag_red(pixels: Image) -> bool:
    """BOX_COLOUR (BGR 0, 0, 255) fills most of a tag, white digits the rest."""
    red = (pixels[..., 2] > 170) & (pixels[..., 1] < 90) & (pixels[..., 0] < 90)
    white = pixels.min(axis=2) > 170
    return bool(red.mean() > 0.4 and white.mean() > 0.03)


def test_each_object_once_with_a_number_and_the_objects_as_drawn(frame: Image) -> None:
    chair = TrackedObj("chair", 0.9, (200.0, 300.0, 280.0, 400.0), 3)
    objects = [
        TrackedObj("bicycle", 0.34, (420.0, 300.0, 520.0, 380.0), 8),
        chair,
        TrackedObj("chair", 0.5, (202.0, 302.0, 279.0, 398.0), 3),  # the chair's track again
        TrackedObj("bench", 0.6, (421.0, 301.0, 519.0, 381.0), None),  # the bicycle's box, relabelled
    ]
    evidence = render_evidence(
        frame,
        zone_polygon=ZONE,
        objects=objects,
        detections=Detections.empty(COCO_CLASSES),
        camera_id="cam-01",
        incident_id="0f8e2c1a-2222",
        local_time=WHEN,
    )
    h, w = frame.shape[:2]
    assert [(o.label, o.confidence) for o in evidence.objects] == [("chair", 0.9), ("bench", 0.6)]
    assert evidence.objects[0].bbox == pytest.approx((200 / w, 300 / h, 280 / w, 400 / h))
    annotated = _decode(evidence.annotated_jpeg)
    # Tag 1 above-left of the chair's box, tag 2 above-left of the bench's: free places both.
    for x1, y1 in ((200, 300), (421, 301)):
        assert _is_tag_red(annotated[y1 - 16 : y1 - 2, x1 + 1 : x1 + 14]), (x1, y1)


def test_pictures_are_never_scaled_up() -> None:
    small = np.random.default_rng(3).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    zone = [(0.4, 0.4), (0.55, 0.4), (0.55, 0.6), (0.4, 0.6)]  # 48 x 48 px
    evidence = render_evidence(
        small,
        zone_polygon=zone,
        objects=[TrackedObj("chair", 0.8, (130.0, 100.0, 170.0, 140.0), 1)],
        detections=Detections.empty(COCO_CLASSES),
        camera_id="cam-01",
        incident_id="0f8e2c1a-3333",
        local_time=WHEN,
        reference=np.zeros((120, 160, 3), np.uint8),
    )
    assert _decode(evidence.annotated_jpeg).shape[:2] == (240, 320)
    assert evidence.before_now_jpeg is not None
    strip = _decode(evidence.before_now_jpeg)
    assert strip.shape[0] <= 48 and strip.shape[1] <= 2 * 48 + 6  # the zone at its own size, twice
    big = np.zeros((1080, 1920, 3), np.uint8)
    assert _decode(encode_bounded_jpeg(big)).shape[:2] == (720, 1280)  # only ever down
