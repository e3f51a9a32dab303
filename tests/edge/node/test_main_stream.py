"""Evidence from a camera's main stream while the node analyses its sub-stream.

Behind the seam (`CameraPipeline(main_stream=...)`): the picture is prepared while an object
waits out its dwell, the boxes and the zone are mapped onto it, its people blurred, and without
a fresh picture the analysed frame is used; a live camera's pipeline never waits for one. Then
with real footage: vtest.avi made into a 704x576 sub-stream and a 1920x1080 main stream of the
same view (tests/support/recordings.py), through the real capture path, NanoDet
and edge.capture.StillCamera, and once more with the main stream's URL dead.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.capture import CameraSpec, CameraWorker, StillCamera
from edge.incidents.store import IncidentStore
from edge.node.app import NodeRuntime, open_edge_database
from edge.node.config import NodeConfig
from edge.node.metrics import NodeMetrics
from edge.node.pipeline import NO_MAIN_STREAM, CameraPipeline, MainStream, PipelineParts
from models.nanodet import DEFAULT_MODEL_PATH, NanoDetDetector
from models.types import Detections, Frame, Image
from tests.support.broker import free_port
from tests.support.recordings import encode_recording
from uplink.messages import IncidentMessage
from uplink.outbox import Outbox
from uplink.topics import Topics
from zones.loader import parse_zone_document

SUB_WH, MAIN_WH = (704, 576), (1920, 1080)
EVIDENCE_WH = (1280, 720)  # the main stream within EvidencePolicy.max_long_side_px
NAMES = ("person", "chair")
CHAIR = (300.0, 400.0, 420.0, 520.0)  # in the 704x576 analysed frame
WALKER = (40.0, 100.0, 100.0, 260.0)  # a person in the analysed frame
DOOR = """\
camera_id: cam-01
zones:
  - id: door
    kind: monitored
    polygon: [[0.3, 0.6], [0.7, 0.6], [0.7, 1.0], [0.3, 1.0]]
    shop: {id: shop-1, name: Shop}
    classes: [chair]
    dwell_s: 1
"""
DOOR_LONG_DWELL = DOOR.replace("dwell_s: 1", "dwell_s: 8")  # stationary after 5 s
VAN_BAY = """\
camera_id: cam-01
zones:
  - id: van-bay
    kind: monitored
    polygon: [[0.80, 0.0], [1.0, 0.0], [1.0, 0.25], [0.80, 0.25]]
    shop: {id: shop-9, name: Shop}
    classes: [truck, car, bus]
    min_confidence: 0.3
    dwell_s: 2
"""


class FixedMainStream:
    max_age_s = 15.0

    def __init__(self, picture: Image | None) -> None:
        self.picture = picture
        self.calls: list[str] = []

    @property
    def taken(self) -> int:
        return self.calls.count("take")

    def prepare(self) -> None:
        self.calls.append("prepare")

    def take(self, wait_s: float = 0.0) -> Image | None:
        self.calls.append("take")
        return self.picture


class PeopleFinder:
    """The shared detector as the evidence sees it: finds one person in a picture it is given."""

    class_names = NAMES
    input_size_wh = (416, 416)

    def __init__(self, person_xyxy: tuple[float, float, float, float]) -> None:
        self.person_xyxy = person_xyxy
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, image: Image, conf_threshold: float | None = None) -> Detections:
        self.shapes.append(image.shape)
        return Detections(np.array([self.person_xyxy]), np.array([0.9]), np.array([0]), NAMES)


def _pipeline(
    tmp_path: Path,
    zones: str,
    detector: object,
    main_stream: MainStream,
    metrics: NodeMetrics | None = None,
    live: bool = False,
) -> tuple[CameraPipeline, Outbox]:
    db = open_edge_database(tmp_path / "edge.sqlite")
    outbox = Outbox(db, max_bytes=64 * 1024 * 1024)
    ids = (f"00000000-0000-4000-8000-{i:012d}" for i in itertools.count(1))
    parts = PipelineParts(
        node_id="node-1",
        outbox=outbox,
        store=IncidentStore(db),
        topics=Topics(),
        detector=detector,  # type: ignore[arg-type]
        metrics=metrics or NodeMetrics(),
        clock=lambda: datetime(2024, 5, 4, 8, 0, tzinfo=UTC),
        monotonic=time.monotonic,
        id_factory=lambda: next(ids),
        conf_threshold=0.25,
        notify=lambda: None,
    )
    zone_file = parse_zone_document(zones, "test")
    return CameraPipeline("cam-01", zone_file, parts, live=live, main_stream=main_stream), outbox


def _opened(outbox: Outbox) -> IncidentMessage:
    messages = [IncidentMessage.model_validate_json(row.payload) for row in outbox.pending(limit=100)]
    opened = [m for m in messages if m.event.value == "opened"]
    assert len(opened) == 1, [m.event.value for m in messages]
    return opened[0]


def _picture(message: IncidentMessage) -> Image:
    assert message.evidence is not None
    jpeg = message.evidence.jpeg()
    assert len(jpeg) <= 200_000  # EvidencePolicy.max_bytes holds for the larger picture too
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None
    return np.asarray(picture, np.uint8)


def _red_share(picture: Image, bbox: tuple[float, float, float, float]) -> float:
    """Share of red pixels along the left and right edges of the normalised box in `picture`."""
    h, w = picture.shape[:2]
    x1, y1, x2, y2 = round(bbox[0] * w), round(bbox[1] * h), round(bbox[2] * w), round(bbox[3] * h)
    rows = slice(y1 + (y2 - y1) // 4, y2 - (y2 - y1) // 4)
    edges = np.concatenate([picture[rows, x1 - 1 : x1 + 2], picture[rows, x2 - 1 : x2 + 2]]).reshape(-1, 3)
    red = (edges[:, 2] > 150) & (edges[:, 1] < 90) & (edges[:, 0] < 90)
    return float(red.mean())


def _feed(pipeline: CameraPipeline, seconds: int, with_walker: bool = True) -> None:
    pixels = np.full((SUB_WH[1], SUB_WH[0], 3), 120, np.uint8)
    boxes = [CHAIR, WALKER] if with_walker else [CHAIR]
    detections = Detections(
        np.array(boxes), np.array([0.8, 0.9][: len(boxes)]), np.array([1, 0][: len(boxes)]), NAMES
    )
    for t in range(seconds):
        pipeline.process(Frame(pixels, "cam-01", float(t)), detections)


def _checkerboard(wh: tuple[int, int], cell_px: int = 4) -> Image:
    w, h = wh
    yy, xx = np.mgrid[0:h, 0:w]
    board = (((yy // cell_px) + (xx // cell_px)) % 2 * 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(board[..., None], 3, axis=2))


def test_the_evidence_is_the_main_stream_picture_with_the_boxes_mapped_and_people_blurred(
    tmp_path: Path,
) -> None:
    still = _checkerboard(EVIDENCE_WH)
    finder = PeopleFinder((1000.0, 100.0, 1100.0, 400.0))  # someone the analysed frame did not have
    main = FixedMainStream(still)
    pipeline, outbox = _pipeline(tmp_path, DOOR, finder, main)
    _feed(pipeline, 8)
    opened = _opened(outbox)
    picture = _picture(opened)
    assert picture.shape[:2] == (EVIDENCE_WH[1], EVIDENCE_WH[0]) and main.taken == 1
    assert finder.shapes == [still.shape]  # the people of the picture itself were looked for
    # The chair's normalised box is the same in both streams: drawn there on the main picture.
    chair = (CHAIR[0] / SUB_WH[0], CHAIR[1] / SUB_WH[1], CHAIR[2] / SUB_WH[0], CHAIR[3] / SUB_WH[1])
    assert opened.bbox == pytest.approx(chair, abs=1e-4)
    assert opened.evidence_objects is not None and opened.evidence_objects[0].bbox == pytest.approx(
        chair, abs=1e-4
    )
    assert _red_share(picture, chair) > 0.5
    # Both people are blurred: the one of the analysed frame (scaled) and the one found in the picture.
    sx, sy = EVIDENCE_WH[0] / SUB_WH[0], EVIDENCE_WH[1] / SUB_WH[1]
    walker = (round(WALKER[0] * sx), round(WALKER[1] * sy), round(WALKER[2] * sx), round(WALKER[3] * sy))
    for x1, y1, x2, y2 in (walker, (1000, 100, 1100, 400)):
        assert picture[y1 + 10 : y2 - 10, x1 + 10 : x2 - 10].std() < 40, (x1, y1)
    assert picture[500:600, 1100:1200].std() > 90  # nobody there: the checkerboard stays sharp


def test_without_a_main_picture_in_time_the_analysed_frame_is_the_evidence(tmp_path: Path) -> None:
    main = FixedMainStream(None)  # StillCamera's answer when the stream was not read in time
    finder = PeopleFinder((0.0, 0.0, 1.0, 1.0))
    pipeline, outbox = _pipeline(tmp_path, DOOR, finder, main)
    _feed(pipeline, 8, with_walker=False)
    picture = _picture(_opened(outbox))
    assert picture.shape[:2] == (SUB_WH[1], SUB_WH[0]) and main.taken == 1
    assert finder.shapes == []  # nothing to look for people in but the analysed frame


def test_a_camera_without_a_main_stream_uses_the_analysed_frame(tmp_path: Path) -> None:
    pipeline, outbox = _pipeline(tmp_path, DOOR, PeopleFinder((0.0, 0.0, 1.0, 1.0)), NO_MAIN_STREAM)
    _feed(pipeline, 8)
    assert _picture(_opened(outbox)).shape[:2] == (SUB_WH[1], SUB_WH[0])


def test_the_node_gives_a_camera_with_a_main_stream_its_still_camera_and_counts_fallbacks() -> None:
    dead = f"rtsp://127.0.0.1:{free_port()}/main"
    cameras = [
        {"id": "cam-01", "url": "file:///sub.mkv", "zones": "z.yaml", "main_stream_url": dead,
         "main_stream_timeout_s": 2.0},
        {"id": "cam-02", "url": "file:///other.mkv", "zones": "z.yaml"},
    ]  # fmt: skip
    config = NodeConfig.model_validate({"node_id": "node-1", "cameras": cameras})
    runtime = NodeRuntime(config)
    runtime.metrics.add_cameras(["cam-01", "cam-02"])
    main = runtime._main_stream(config.cameras[0])
    assert isinstance(main, StillCamera) and (main.url, main.timeout_s) == (dead, 2.0)
    assert runtime._main_stream(config.cameras[1]) is NO_MAIN_STREAM
    assert main.max_age_s == 15.0  # the default
    assert main.take() is None  # nothing grabbed yet; and nothing listens there
    sample = runtime.metrics.registry.get_sample_value
    name = "curbwatch_evidence_main_stream_fallbacks_total"
    assert (sample(name, {"camera": "cam-01"}), sample(name, {"camera": "cam-02"})) == (1.0, 0.0)


class Chair:
    """A detector for the evidence path: nobody in the picture."""

    class_names = NAMES
    input_size_wh = (416, 416)

    def detect(self, image: Image, conf_threshold: float | None = None) -> Detections:
        return Detections.empty(NAMES)


def _feed_live(pipeline: CameraPipeline, frames: int) -> list[float]:
    """Frames a tenth of a second apart in stream time, fed as they come; seconds each took."""
    pixels = np.full((SUB_WH[1], SUB_WH[0], 3), 120, np.uint8)
    detections = Detections(np.array([CHAIR]), np.array([0.8]), np.array([1]), NAMES)
    took = []
    for t in range(frames):
        started = time.monotonic()
        pipeline.process(Frame(pixels, "cam-01", t * 0.5), detections)
        took.append(time.monotonic() - started)
        time.sleep(0.1)  # 0.6 s from standing still (5 s) to the event (8 s): the grab is done
    return took


def test_a_live_camera_gets_the_prepared_main_picture_without_waiting(tmp_path: Path) -> None:
    def slow_grab() -> Image:
        time.sleep(0.1)  # an RTSP open and a keyframe, quickly
        return _checkerboard(EVIDENCE_WH, cell_px=32)

    main = StillCamera("cam-01", "rtsp://cam/main", timeout_s=3.0, grab=slow_grab)
    pipeline, outbox = _pipeline(tmp_path, DOOR_LONG_DWELL, Chair(), main, live=True)
    took = _feed_live(pipeline, 24)  # 12 s of stream; the grab starts once the chair stands still
    assert _picture(_opened(outbox)).shape[:2] == (EVIDENCE_WH[1], EVIDENCE_WH[0])
    assert max(took) < 0.15 and main.grabs == 1


def test_a_live_camera_never_waits_for_a_hanging_main_stream(tmp_path: Path) -> None:
    release = threading.Event()

    def hangs() -> Image:
        release.wait(30)
        return _checkerboard(EVIDENCE_WH)

    metrics = NodeMetrics()
    fallbacks = metrics.evidence_fallbacks.labels(camera="cam-01")
    main = StillCamera(
        "cam-01", "rtsp://cam/main", timeout_s=3.0, grab=hangs, on_fallback=lambda _r: fallbacks.inc()
    )
    pipeline, outbox = _pipeline(tmp_path, DOOR_LONG_DWELL, Chair(), main, metrics, live=True)
    try:
        took = _feed_live(pipeline, 24)
        assert _picture(_opened(outbox)).shape[:2] == (SUB_WH[1], SUB_WH[0])  # the analysed frame
        assert max(took) < 0.15 and main.grabs == 1  # one grab, still hanging, nobody waited
        assert fallbacks._value.get() == 1
    finally:
        release.set()


# --- real footage: two streams of one camera ----------------------------------------------


@pytest.fixture(scope="module")
def streams(vtest_avi: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """vtest.avi's first 10 s as a camera's 704x576 sub-stream and its 1920x1080 main stream (H.264)."""
    out = tmp_path_factory.mktemp("streams")
    sub = encode_recording(vtest_avi, out / "sub.mkv", size_wh=SUB_WH, max_frames=100)
    main = encode_recording(vtest_avi, out / "main.mkv", size_wh=MAIN_WH, max_frames=100)
    return sub, main


def _run_camera(pipeline: CameraPipeline, sub: Path, detector: NanoDetDetector) -> None:
    """The sub-stream through the node's capture path (a frame a second) and the detector."""
    spec = CameraSpec("cam-01", str(sub), sample_interval_s=1.0)
    queue = spec.make_queue()
    worker = CameraWorker(spec, queue, stop_event=threading.Event())
    worker.start()
    while (item := queue.get(timeout_s=30)) is not None:
        assert item.frame.resolution_wh == SUB_WH
        pipeline.process(item.frame, detector.detect(item.frame.pixels))
    assert worker.join(10)


@pytest.mark.slow
def test_real_footage_evidence_comes_from_the_main_stream_with_the_van_boxed(
    tmp_path: Path, streams: tuple[Path, Path]
) -> None:
    sub, main_path = streams
    detector = NanoDetDetector(DEFAULT_MODEL_PATH, conf_threshold=0.25, threads=1)
    metrics = NodeMetrics()
    main = StillCamera("cam-01", str(main_path), timeout_s=10.0, width_px=EVIDENCE_WH[0])
    pipeline, outbox = _pipeline(tmp_path, VAN_BAY, detector, main, metrics)
    _run_camera(pipeline, sub, detector)
    opened = _opened(outbox)
    picture = _picture(opened)
    assert picture.shape[:2] == (EVIDENCE_WH[1], EVIDENCE_WH[0])  # the main stream's, not 704x576
    assert opened.label == "truck"
    x1, y1, x2, y2 = opened.bbox  # the parked van, top right (tests/edge/node/test_app.py)
    assert 0.82 < x1 < 0.87 and 0.05 < y1 < 0.09 and 0.92 < x2 < 0.96 and 0.15 < y2 < 0.19
    assert opened.evidence_objects is not None and opened.evidence_objects[0].bbox == pytest.approx(
        opened.bbox
    )
    assert _red_share(picture, opened.bbox) > 0.5  # the box is drawn where the van is in the big picture
    # ... and the van is inside it: the main picture there is the sub-stream's view of the van.
    big = picture[round(y1 * 720) + 4 : round(y2 * 720) - 4, round(x1 * 1280) + 4 : round(x2 * 1280) - 4]
    view = pipeline.latest
    assert view is not None
    sh, sw = view.frame.pixels.shape[:2]
    small = view.frame.pixels[
        round(y1 * sh) + 2 : round(y2 * sh) - 2, round(x1 * sw) + 2 : round(x2 * sw) - 2
    ]
    small = cv2.resize(small, (big.shape[1], big.shape[0]), interpolation=cv2.INTER_LINEAR)
    assert np.abs(big.astype(np.int16) - small).mean() < 20
    fallbacks = metrics.registry.get_sample_value(
        "curbwatch_evidence_main_stream_fallbacks_total", {"camera": "cam-01"}
    )
    assert not fallbacks


@pytest.mark.slow
def test_real_footage_with_the_main_stream_dead_falls_back_and_says_so(
    tmp_path: Path, streams: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    sub, _ = streams
    detector = NanoDetDetector(DEFAULT_MODEL_PATH, conf_threshold=0.25, threads=1)
    metrics = NodeMetrics()
    fallbacks = metrics.evidence_fallbacks.labels(camera="cam-01")
    dead = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/main"
    main = StillCamera(
        "cam-01", dead, timeout_s=2.0, width_px=EVIDENCE_WH[0], on_fallback=lambda _r: fallbacks.inc()
    )
    pipeline, outbox = _pipeline(tmp_path, VAN_BAY, detector, main, metrics)
    with caplog.at_level(logging.WARNING, "edge.capture.still"):
        _run_camera(pipeline, sub, detector)
    opened = _opened(outbox)  # never lost
    assert _picture(opened).shape[:2] == (SUB_WH[1], SUB_WH[0]) and opened.label == "truck"
    assert _red_share(_picture(opened), opened.bbox) > 0.5
    counted = metrics.registry.get_sample_value(
        "curbwatch_evidence_main_stream_fallbacks_total", {"camera": "cam-01"}
    )
    assert counted is not None and counted >= 1
    assert "evidence from the analysed stream" in caplog.text and "hunter2" not in caplog.text
