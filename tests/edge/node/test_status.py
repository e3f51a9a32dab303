"""Camera status on state changes, snapshots on schedule with people blurred."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.capture import CameraState as CaptureState
from edge.node.config_sync import ConfigSync
from edge.node.metrics import NodeMetrics
from edge.node.status import (
    CameraCounts,
    CameraReading,
    CameraStatusReporter,
    CoreShare,
    LatestView,
    RateMeter,
    RecentDurations,
    RuntimeReading,
    StatusLoop,
    health_probe,
    snapshot_jpeg,
)
from models.classes import COCO_CLASSES
from models.types import Detections, Frame
from uplink.messages import CameraHealth, CameraState, CameraStatus, ConfigHealth, RuntimeHealth

NOW = datetime(2024, 5, 4, 8, 0, tzinfo=UTC)
PERSON_XYXY = (345.0, 196.0, 385.0, 276.0)  # a walker in vtest.avi frame 100


class Sink:
    def __init__(self) -> None:
        self.statuses: list[CameraStatus] = []
        self.snapshots: list[tuple[str, bytes]] = []

    def publish_camera_status(self, status: CameraStatus) -> None:
        self.statuses.append(status)

    def publish_snapshot(self, camera_id: str, jpeg: bytes) -> None:
        self.snapshots.append((camera_id, jpeg))


@pytest.fixture(scope="module")
def view(vtest_avi: Path) -> LatestView:
    capture = cv2.VideoCapture(str(vtest_avi))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, pixels = capture.read()
    capture.release()
    assert ok
    people = Detections(
        xyxy=np.array([PERSON_XYXY], np.float32),
        confidence=np.array([0.9], np.float32),
        class_id=np.array([COCO_CLASSES.index("person")]),
        class_names=COCO_CLASSES,
    )
    return LatestView(Frame(np.ascontiguousarray(pixels), "cam-01", 10.0), people, 0.0)


@pytest.mark.parametrize(
    ("state", "wire"),
    [
        (CaptureState.STARTING, CameraState.RECONNECTING),
        (CaptureState.STREAMING, CameraState.STREAMING),
        (CaptureState.RECONNECTING, CameraState.RECONNECTING),
        (CaptureState.OFFLINE, CameraState.OFFLINE),
        (CaptureState.STOPPED, CameraState.OFFLINE),
    ],
)
def test_every_capture_state_becomes_a_wire_status(state: CaptureState, wire: CameraState) -> None:
    sink, metrics = Sink(), NodeMetrics()
    reporter = CameraStatusReporter(
        "node-1", sink, metrics, lambda camera: 95.0, clock=lambda: NOW, monotonic=lambda: 100.0
    )
    reporter("cam-01", state)
    (status,) = sink.statuses
    assert (status.node_id, status.camera_id, status.state, status.at) == ("node-1", "cam-01", wire, NOW)
    assert status.last_frame_at == NOW - timedelta(seconds=5)
    value = metrics.registry.get_sample_value(
        "curbwatch_camera_state", {"camera": "cam-01", "curbwatch_camera_state": state.value}
    )
    assert value == 1


def test_snapshot_is_downscaled_and_people_are_blurred(view: LatestView) -> None:
    jpeg = snapshot_jpeg(view, max_side_px=384)
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None and picture.shape == (288, 384, 3)
    source = cv2.resize(view.frame.pixels, (384, 288), interpolation=cv2.INTER_AREA)
    x1, y1, x2, y2 = (round(v / 2) for v in PERSON_XYXY)

    def detail(image: np.ndarray) -> float:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)
        return float(cv2.Laplacian(grey, cv2.CV_64F).var())

    assert detail(picture[y1:y2, x1:x2]) < 0.1 * detail(source[y1:y2, x1:x2])
    # Elsewhere the snapshot is a faithful picture for drawing zones on.
    assert np.abs(picture[:80].astype(int) - source[:80].astype(int)).mean() < 6


def test_snapshots_go_out_at_once_then_every_interval(view: LatestView) -> None:
    sink, metrics, now = Sink(), NodeMetrics(), [0.0]
    loop = StatusLoop(
        sink,
        metrics,
        lambda: {"cam-01": view},
        lambda: 4,
        lambda: {"cam-01": CameraCounts(captured=int(now[0]) + 10, dropped=2, queue_depth=1)},
        snapshot_interval_s=600,
        snapshot_max_side_px=320,
        stop_event=threading.Event(),
        monotonic=lambda: now[0],
    )
    loop.tick()
    now[0] = 599.0
    loop.tick()
    now[0] = 600.0
    loop.tick()
    assert [camera for camera, _ in sink.snapshots] == ["cam-01", "cam-01"]
    assert metrics.registry.get_sample_value("curbwatch_outbox_backlog") == 4
    cam = {"camera": "cam-01"}
    assert metrics.registry.get_sample_value("curbwatch_frames_captured_total", cam) == 610
    assert metrics.registry.get_sample_value("curbwatch_frames_dropped_total", cam) == 2
    assert metrics.registry.get_sample_value("curbwatch_queue_depth", cam) == 1


def test_capture_threads_and_their_cpu_seconds_by_stage_are_polled_into_metrics(view: LatestView) -> None:
    metrics = NodeMetrics()
    counts = {
        "cam-01": CameraCounts(10, 0, 0, capturing=True, demux_s=0.5, decode_s=2.0, convert_s=0.25),
        "cam-02": CameraCounts(10, 0, 0, capturing=False, demux_s=0.1, decode_s=0.4),  # its file ended
    }
    loop = StatusLoop(
        Sink(),
        metrics,
        lambda: {},
        lambda: 0,
        lambda: counts,
        snapshot_interval_s=0,
        snapshot_max_side_px=320,
        stop_event=threading.Event(),
    )
    loop.tick()
    counts["cam-01"] = CameraCounts(20, 0, 0, capturing=True, demux_s=0.75, decode_s=3.0, convert_s=0.5)
    loop.tick()
    sample = metrics.registry.get_sample_value
    seconds = {
        stage: sample("curbwatch_capture_cpu_seconds_total", {"camera": "cam-01", "stage": stage})
        for stage in ("demux", "decode", "convert")
    }
    assert seconds == {"demux": 0.75, "decode": 3.0, "convert": 0.5}  # totals, each second counted once
    assert sample("curbwatch_capture_cpu_seconds_total", {"camera": "cam-02", "stage": "decode"}) == 0.4
    assert sample("curbwatch_capture_threads") == 1


def test_rate_meter_counts_the_last_window_and_a_young_camera_over_its_age() -> None:
    meter = RateMeter(window_s=10.0)
    assert meter.per_second(100.0) == 0.0
    for t in range(100, 105):  # one frame a second, for 5 s
        meter.mark(float(t))
    assert meter.per_second(105.0) == pytest.approx(1.0)  # over its 5 s, not the 10 s window
    for t in range(105, 125, 2):  # then one every 2 s
        meter.mark(float(t))
    assert meter.per_second(125.0) == pytest.approx(0.5)
    assert meter.per_second(200.0) == 0.0  # stalled: nothing in the window
    with pytest.raises(ValueError, match="window_s"):
        RateMeter(window_s=0)


class _Zones:
    def replace_zones(self, zone_file: object, version: int | None, document: object = None) -> None:
        pass


def test_health_probe_reports_cameras_and_the_config_rejection(tmp_path: Path) -> None:
    sync = ConfigSync("node-1", {"cam-01": _Zones()}, tmp_path / "config.json", clock=lambda: NOW)
    readings = {
        "cam-02": CameraReading(CaptureState.STARTING, None, 0.0, 0),
        "cam-01": CameraReading(CaptureState.STREAMING, 97.5, 0.987654, 2),
    }
    probe = health_probe(sync, "1.2.3", lambda: readings, clock=lambda: NOW, monotonic=lambda: 100.0)
    report = probe()
    assert report.software_version == "1.2.3" and report.config_version is None
    assert report.cameras == (
        CameraHealth(
            camera_id="cam-01",
            state=CameraState.STREAMING,
            last_frame_at=NOW - timedelta(seconds=2.5),
            fps_analysed=0.988,
            incidents_open=2,
        ),
        CameraHealth(
            camera_id="cam-02",
            state=CameraState.RECONNECTING,
            last_frame_at=None,
            fps_analysed=0.0,
            incidents_open=0,
        ),
    )
    assert report.config == ConfigHealth(applied_version=None)
    sync.on_rejected(3, ["config v3: " + "x" * 600])
    config = probe().config
    assert config is not None and (config.applied_version, config.rejected_version, config.rejected_at) == (
        None,
        3,
        NOW,
    )
    assert len(config.problems[0]) == 500 and config.problems[0].endswith("…")


def test_recent_durations_give_the_mean_and_p95_of_the_last_ones_in_ms() -> None:
    recent = RecentDurations(size=100)
    assert recent.mean_p95_ms() is None
    for _ in range(50):
        recent.add(1.0)  # pushed out by the next 100
    for ms in range(1, 101):
        recent.add(ms / 1000)
    mean, p95 = recent.mean_p95_ms() or (0.0, 0.0)
    assert mean == pytest.approx(50.5) and p95 == pytest.approx(95.05)
    with pytest.raises(ValueError, match="size"):
        RecentDurations(size=0)


def test_core_share_is_cpu_seconds_per_wall_second_between_readings() -> None:
    share = CoreShare()
    assert share.update(100.0, 4.0) is None  # nothing to compare with yet
    assert share.update(160.0, 7.0) == pytest.approx(0.05)  # 3 CPU s in 60 s: 5 % of a core
    assert share.update(160.0, 8.0) is None  # the clock did not move
    assert share.update(220.0, 8.0) == 0.0


def test_health_probe_reports_what_the_box_runs(tmp_path: Path) -> None:
    sync = ConfigSync("node-1", {"cam-01": _Zones()}, tmp_path / "config.json", clock=lambda: NOW)
    readings = {"cam-01": CameraReading(CaptureState.STREAMING, 97.5, 1.0, 0, decode_share=0.041234)}
    runtime = RuntimeReading(
        detector_threads=2, detector_workers=1, capture_threads=1, detect_ms=(21.4321, 27.9)
    )
    probe = health_probe(
        sync, None, lambda: readings, lambda: runtime, clock=lambda: NOW, monotonic=lambda: 100.0
    )
    report = probe()
    assert report.runtime == RuntimeHealth(
        detector_threads=2, detector_workers=1, capture_threads=1, detect_ms_mean=21.432, detect_ms_p95=27.9
    )
    assert [camera.decode_share for camera in report.cameras] == [0.0412]
    before_any_frame = RuntimeReading(
        detector_threads=2, detector_workers=1, capture_threads=0, detect_ms=None
    )
    report = health_probe(sync, None, lambda: {}, lambda: before_any_frame)()
    assert report.runtime is not None and (report.runtime.detect_ms_mean, report.runtime.detect_ms_p95) == (
        None,
        None,
    )
    assert health_probe(sync, None)().runtime is None
