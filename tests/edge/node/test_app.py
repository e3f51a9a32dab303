"""The edge node end to end: real video, real detector, real Mosquitto, the real ingest.

vtest.avi (768x576, 79.5 s) shows a parked white van in the top-right corner that the
bundled NanoDet finds in every sampled frame ("truck", conf ~0.56, box about
[651, 43, 724, 98]) next to a half-visible car. A zone drawn around them with those
classes makes a deterministic incident: opened after dwell_s, updated every
update_every_s, still open when the file ends.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest

from edge.node.app import NodeRuntime, NodeSeams, TimedDetector, capture_url, default_detector
from edge.node.config import DetectorSection, load_node_config
from models.detector import Detector
from models.nanodet import DEFAULT_MODEL_PATH, NanoDetDetector
from models.types import Detections
from tests.support.broker import MosquittoBroker, free_port
from uplink.config_publish import publish_config
from uplink.ingest_service import IngestService
from uplink.messages import ConfigMessage, IncidentMessage
from uplink.settings import MqttSettings
from uplink.topics import Topics

pytestmark = pytest.mark.slow

NODE = "node-e2e"
ZONES = """\
camera_id: cam-01
timezone: Asia/Shanghai
zones:
  - id: van-bay
    kind: monitored
    polygon: [[0.80, 0.0], [1.0, 0.0], [1.0, 0.25], [0.80, 0.25]]
    shop: {id: shop-9, name: 示例商店}
    classes: [truck, car, bus]
    min_confidence: 0.3
    dwell_s: 5
    clear_s: 30
    update_every_s: 10
"""


def _node_yaml(tmp_path: Path, broker: MosquittoBroker, video: Path, metrics_port: int = 0) -> Path:
    (tmp_path / "zones.yaml").write_text(ZONES)
    path = tmp_path / "node.yaml"
    path.write_text(
        f"""\
node_id: {NODE}
mqtt: {{host: {broker.host}, port: {broker.port}, keepalive_s: 5}}
outbox: {{path: state/edge.sqlite}}
detector: {{threads: 1, conf: 0.25}}
cameras:
  - id: cam-01
    url: file://{video}
    sample_interval_s: 1
    zones: zones.yaml
    keyframes_only: "off"
metrics: {{port: {metrics_port}}}
health: {{interval_s: 1, snapshot_interval_s: 600}}
"""
    )
    return path


def nanodet(section: DetectorSection) -> Detector:
    return NanoDetDetector(
        DEFAULT_MODEL_PATH, conf_threshold=section.conf, threads=section.threads, backend=section.backend
    )


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class IncidentSubscriber:
    """What a plain MQTT subscriber sees on the incident topics, in arrival order."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.messages: list[IncidentMessage] = []
        self.snapshots: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-subscriber")
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        topics = Topics()
        self.client.subscribe(f"{topics.prefix}/{NODE}/+/incident", qos=1)
        self.client.subscribe(f"{topics.prefix}/{NODE}/+/snapshot", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            if message.topic.endswith("/incident"):
                self.messages.append(IncidentMessage.model_validate_json(message.payload))
            else:
                self.snapshots[message.topic] = bytes(message.payload)

    def received(self) -> list[IncidentMessage]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def ingest(own_broker: MosquittoBroker, tmp_path: Path) -> Iterator[Path]:
    """The centre: uplink's IngestService writing a review database; yields its path."""
    settings = MqttSettings.model_validate(
        {"host": own_broker.host, "port": own_broker.port, "client_id": "centre"}
    )
    db_path = tmp_path / "centre" / "review.sqlite"
    db_path.parent.mkdir()
    service = IngestService(settings, db_path, tmp_path / "centre" / "evidence")
    service.start()
    assert service.wait_subscribed(10)
    yield db_path
    service.stop()


def _centre_rows(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db_path)
    try:
        return list(conn.execute(sql).fetchall())
    finally:
        conn.close()


def _centre_events(db_path: Path) -> list[tuple[str, int, str]]:
    rows = _centre_rows(
        db_path, "SELECT incident_id, seq, event FROM incident_events ORDER BY incident_id, seq"
    )
    return [(str(r[0]), int(str(r[1])), str(r[2])) for r in rows]


def _edge_outbox(config_path: Path) -> list[tuple[str, int, bool]]:
    conn = sqlite3.connect(config_path.parent / "state" / "edge.sqlite")
    try:
        rows = conn.execute(
            "SELECT incident_id, seq, sent_at IS NOT NULL FROM outbox ORDER BY position"
        ).fetchall()
    finally:
        conn.close()
    return [(str(r[0]), int(r[1]), bool(r[2])) for r in rows]


def test_capture_url_forms() -> None:
    assert capture_url("file:///data/a.mp4") == "/data/a.mp4"
    assert capture_url("usb:0") == "0"
    assert capture_url("rtsp://u:p@cam/1") == "rtsp://u:p@cam/1"


def test_node_turns_a_video_into_ordered_incident_events_at_the_centre(
    own_broker: MosquittoBroker, tmp_path: Path, vtest_avi: Path, ingest: Path
) -> None:
    config = load_node_config(_node_yaml(tmp_path, own_broker, vtest_avi, metrics_port=free_port()))
    subscriber = IncidentSubscriber(own_broker)
    # The review server's zones (retained) reach the node as it connects and replace node.yaml's.
    review = MqttSettings.model_validate(
        {"host": own_broker.host, "port": own_broker.port, "client_id": "review"}
    )
    issued = datetime(2024, 5, 4, tzinfo=UTC)
    publish_config(
        review, NODE, ConfigMessage(node_id=NODE, version=5, issued_at=issued, cameras={"cam-01": ZONES})
    )
    ids = iter(f"00000000-0000-4000-8000-{i:012d}" for i in range(1, 100))
    runtime = NodeRuntime(config, NodeSeams(detector_factory=nanodet, id_factory=lambda: next(ids)))
    runtime.start()
    try:
        assert runtime.wait_cameras_done(240), "the video was not analysed in time"
        samples = _scrape(runtime.endpoint.port)
        assert runtime.config_sync.applied_version == 5 and runtime.pipelines["cam-01"].zone_version == 5
    finally:
        unsent = runtime.stop()
    subscriber_messages: list[IncidentMessage] = []
    try:
        assert unsent == 0
        outbox = _edge_outbox(tmp_path / "node.yaml")
        _wait(lambda: len(subscriber.received()) == len(outbox), 20, "the subscriber to get every event")
        subscriber_messages = subscriber.received()
        _wait(lambda: len(_centre_events(ingest)) == len(outbox), 20, "the centre to store every event")
    finally:
        subscriber.close()

    # One incident on the van bay: opened at seq 0, then updates, in order, nothing else.
    first = "00000000-0000-4000-8000-000000000001"
    assert [(str(m.incident_id), m.seq, m.event.value) for m in subscriber_messages] == [
        (first, seq, "opened" if seq == 0 else "updated") for seq in range(len(outbox))
    ]
    assert 5 <= len(outbox) <= 9  # opened at ~5-10 s, an update every 10 s of the 79.5 s video
    opened = subscriber_messages[0]
    assert (opened.node_id, opened.camera_id, opened.zone_id, opened.shop.id) == (
        NODE,
        "cam-01",
        "van-bay",
        "shop-9",
    )
    assert opened.label == "truck" and opened.confidence > 0.4
    x1, y1, x2, y2 = opened.bbox
    assert 0.82 < x1 < 0.87 and 0.05 < y1 < 0.09 and 0.92 < x2 < 0.96 and 0.15 < y2 < 0.19
    assert 5.0 <= (opened.dwell_s or 0.0) <= 12.0
    assert opened.evidence is not None
    jpeg = opened.evidence.jpeg()
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None and picture.shape == (576, 768, 3) and len(jpeg) <= 200_000
    # The objects as numbered in the picture: tag 1 is the truck the message is about.
    assert opened.evidence_objects and opened.evidence_objects[0].label == "truck"
    assert opened.evidence_objects[0].bbox == pytest.approx(opened.bbox, abs=1e-6)

    assert _centre_events(ingest) == [
        (first, s, "opened" if s == 0 else "updated") for s in range(len(outbox))
    ]
    incidents = _centre_rows(ingest, "SELECT incident_id, state, shop_name, evidence_path FROM incidents")
    assert len(incidents) == 1 and incidents[0][:3] == (first, "open", "示例商店")
    assert (ingest.parent / "evidence" / str(incidents[0][3])).is_file()
    # The centre also heard the camera status, a snapshot, and health with the node online.
    cameras = _centre_rows(ingest, "SELECT camera_id, state, snapshot_path FROM cameras")
    assert cameras and cameras[0][0] == "cam-01" and cameras[0][2]
    nodes = _centre_rows(ingest, "SELECT node_id, status, health, config_version FROM nodes")
    assert nodes[0][0] == NODE and nodes[0][1] == "offline"  # stop() published offline last
    assert nodes[0][3] == 5  # the applied config version, from the node's health
    health = json.loads(str(nodes[0][2]))
    assert health["schema"] == "curbwatch.health/4" and health["outbox_backlog"] >= 0
    assert health["config"] == {"applied_version": 5, "problems": []}
    assert [camera["camera_id"] for camera in health["cameras"]] == ["cam-01"]
    # What the box runs: one detector worker of detector.threads 1, the camera's capture thread
    # (or none: the file may have ended before the last report), NanoDet's time per frame, and the
    # camera's capture CPU share.
    runtime = health["runtime"]
    assert (runtime["detector_threads"], runtime["detector_workers"]) == (1, 1)
    assert runtime["capture_threads"] in (0, 1)
    assert 0 < runtime["detect_ms_mean"] <= runtime["detect_ms_p95"] < 5000
    assert health["cameras"][0]["decode_share"] >= 0

    # Metrics counted what happened (scraped over HTTP while running).
    cam = (("camera", "cam-01"),)
    assert samples[("curbwatch_frames_analysed_total", cam)] >= 75
    latency = samples[("curbwatch_detection_latency_seconds_count", cam)]
    assert latency == samples[("curbwatch_frames_analysed_total", cam)]
    assert samples[("curbwatch_incidents_opened_total", (*cam, ("zone", "van-bay")))] == 1
    assert samples[("curbwatch_events_enqueued_total", cam)] == len(outbox)
    # What the box is doing: one detector worker of detector.threads, the camera's capture CPU.
    assert samples[("curbwatch_detector_threads", ())] == samples[("curbwatch_detector_workers", ())] == 1
    assert samples[("curbwatch_capture_cpu_seconds_total", (*cam, ("stage", "decode")))] > 0
    assert all(sent for _, _, sent in outbox)


class ThreadRecordingDetector:
    """NanoDet, noting which threads call it (one copy per detector worker)."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.class_names = detector.class_names
        self.input_size_wh = detector.input_size_wh
        self.threads: set[str] = set()

    def detect(self, image: np.ndarray, conf_threshold: float | None = None) -> Detections:
        self.threads.add(threading.current_thread().name)
        return self.detector.detect(image, conf_threshold)


def test_two_detector_workers_each_with_its_own_model_serve_two_cameras_alike(
    own_broker: MosquittoBroker, tmp_path: Path, vtest_avi: Path
) -> None:
    path = _node_yaml(tmp_path, own_broker, vtest_avi)
    (tmp_path / "zones-02.yaml").write_text(ZONES.replace("camera_id: cam-01", "camera_id: cam-02"))
    second = f"""  - id: cam-02
    url: file://{vtest_avi}
    sample_interval_s: 1
    zones: zones-02.yaml
    keyframes_only: "off"
"""
    text = path.read_text().replace("{threads: 1, conf: 0.25}", "{threads: 1, workers: 2, conf: 0.25}")
    path.write_text(text.replace("metrics:", second + "metrics:"))
    copies: list[ThreadRecordingDetector] = []

    def factory(section: DetectorSection) -> Detector:
        copies.append(ThreadRecordingDetector(nanodet(section)))
        return copies[-1]

    runtime = NodeRuntime(load_node_config(path), NodeSeams(detector_factory=factory))
    runtime.start()
    try:
        assert runtime.wait_cameras_done(240), "the videos were not analysed in time"
        reading = runtime._runtime_reading()
    finally:
        assert runtime.stop() == 0
    assert (reading.detector_workers, reading.detector_threads) == (2, 1)
    # Two copies of the model, each run by its own worker thread.
    assert len(copies) == 2
    assert sorted(name for copy in copies for name in copy.threads) == ["detector-0", "detector-1"]
    conn = sqlite3.connect(tmp_path / "state" / "edge.sqlite")
    try:
        rows = conn.execute("SELECT topic, payload FROM outbox ORDER BY position").fetchall()
    finally:
        conn.close()
    by_camera: dict[str, list[tuple[int, str]]] = {}
    for topic, payload in rows:
        message = IncidentMessage.model_validate_json(payload)
        by_camera.setdefault(message.camera_id, []).append((message.seq, message.event.value))
        assert str(topic).endswith(f"/{message.camera_id}/incident")
    # The same footage on both cameras: the same incident story, each in order.
    assert set(by_camera) == {"cam-01", "cam-02"}
    assert by_camera["cam-01"] == by_camera["cam-02"]
    assert by_camera["cam-01"][0] == (0, "opened") and len(by_camera["cam-01"]) >= 5


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _run_node(config_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    curbwatch = Path(sys.executable).with_name("curbwatch")
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [str(curbwatch), "-v", "edge", "run", "--config", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def test_kill_9_while_publishing_loses_nothing_duplicates_nothing_and_resumes(
    own_broker: MosquittoBroker, tmp_path: Path, vtest_avi: Path, ingest: Path
) -> None:
    """kill -9 with events committed but unacknowledged (the broker went away), then restart."""
    config_path = _node_yaml(tmp_path, own_broker, vtest_avi)
    subscriber = IncidentSubscriber(own_broker)
    log_path = tmp_path / "node.log"

    def unsent() -> int:
        return sum(not sent for _, _, sent in _edge_outbox(config_path))

    try:
        first = _run_node(config_path, log_path)
        try:
            _wait(lambda: len(subscriber.received()) >= 1, 180, "the opened event to arrive")
            own_broker.stop()  # events keep being committed, none can be acknowledged
            _wait(lambda: unsent() >= 2, 120, "events to wait in the outbox")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        after_crash = _edge_outbox(config_path)
        assert unsent() >= 2
        own_broker.start()

        second = _run_node(config_path, log_path)
        try:
            # The file replays from the start; the van is still there: the same incident goes on.
            _wait(lambda: _edge_outbox(config_path)[-1][1] >= after_crash[-1][1] + 3, 180, "new updates")
            _wait(lambda: unsent() == 0, 30, "the outbox to drain")
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(60) == 0, log_path.read_text(errors="replace")[-3000:]
        outbox = _edge_outbox(config_path)
        _wait(lambda: len(_centre_events(ingest)) == len(outbox), 30, "the centre to store every event")
    finally:
        subscriber.close()

    incident_ids = {incident_id for incident_id, _, _ in outbox}
    assert len(incident_ids) == 1, "the restart resumed the open incident instead of opening another"
    (incident_id,) = incident_ids
    UUID(incident_id)
    # Every event the edge committed reached the centre exactly once, seq without gaps.
    assert [seq for _, seq, _ in outbox] == list(range(len(outbox)))
    assert _centre_events(ingest) == [
        (incident_id, seq, "opened" if seq == 0 else "updated") for seq in range(len(outbox))
    ]
    assert "Traceback" not in log_path.read_text(errors="replace")


def test_a_live_node_sees_the_fruit_display_with_its_scene_model_and_the_centre_gets_it_all(
    own_broker: MosquittoBroker, tmp_path: Path, ingest: Path
) -> None:
    """The demo clip through the real node: capture tap -> scene thread -> pipeline -> Mosquitto."""
    from edge.demo.config import CLIP
    from edge.demo.config import ZONES as DEMO_ZONES

    config_path = _node_yaml(tmp_path, own_broker, CLIP, metrics_port=free_port())
    (tmp_path / "zones.yaml").write_text(DEMO_ZONES.read_text(encoding="utf-8"))
    text = config_path.read_text().replace('keyframes_only: "off"', 'keyframes_only: "on"')
    config_path.write_text(text)
    runtime = NodeRuntime(load_node_config(config_path), NodeSeams(detector_factory=nanodet))
    runtime.start()
    try:
        assert runtime.wait_cameras_done(240), "the clip was not analysed in time"
        samples = _scrape(runtime.endpoint.port)
        scene = runtime.pipelines["cam-01"].scene
        assert scene is not None and scene.snapshot().reading is not None
    finally:
        assert runtime.stop() == 0
    _wait(
        lambda: len(_centre_rows(ingest, "SELECT 1 FROM incidents WHERE label = 'static object'")) == 1,
        20,
        "the fruit display's incident at the centre",
    )
    ((zone, before_now),) = _centre_rows(
        ingest, "SELECT zone_id, before_now_path FROM incidents WHERE label = 'static object'"
    )
    assert zone == "west-walkway" and before_now
    assert (ingest.parent / "evidence" / str(before_now)).read_bytes().startswith(b"\xff\xd8\xff")
    ((view,),) = _centre_rows(ingest, "SELECT view FROM cameras WHERE camera_id = 'cam-01'")
    assert view == "watching"
    health = json.loads(str(_centre_rows(ingest, "SELECT health FROM nodes")[0][0]))
    camera = health["cameras"][0]
    assert camera["view"] == "watching" and camera["relearns"] == 0 and camera["scene_ms"] > 0
    cam = (("camera", "cam-01"),)
    assert samples[("curbwatch_scene_seconds_count", cam)] >= 40  # one picture a second, 60 s clip
    assert samples[("curbwatch_scene_relearns_total", cam)] == 0


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_the_node_detector_runs_on_the_configured_engine(backend: str) -> None:
    pytest.importorskip("openvino")
    detector = TimedDetector(default_detector(DetectorSection(backend=backend, threads=1)))
    assert detector.runtime.startswith(f"NanoDetDetector on {backend} ")
