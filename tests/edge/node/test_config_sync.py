"""Config sync over a real Mosquitto: valid zones applied live, invalid ones rejected, last good persisted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge.capture import CameraState as CaptureState
from edge.node.config_sync import ConfigSync
from edge.node.metrics import NodeMetrics
from edge.node.status import CameraReading, health_probe
from edge.node.zone_source import ZoneDocument
from tests.support.broker import MosquittoBroker
from uplink.config_publish import publish_config
from uplink.messages import CameraState, ConfigMessage, NodeHealth
from uplink.publisher import Publisher
from uplink.settings import MqttSettings
from uplink.topics import Topics
from zones.schema import ZoneFile

NODE = "node-7"
ZONES = """\
camera_id: {camera}
zones:
  - id: {zone}
    kind: monitored
    polygon: [[0.1, 0.5], [0.9, 0.5], [0.9, 0.9], [0.1, 0.9]]
    shop: {{id: shop-1, name: 示例商店}}
"""
BAD_POLYGON = "[[0.1, 0.5], [0.9, 0.5], [0.9, 0.5], [0.1, 0.5]]"


class RecordingCamera:
    """A ZoneTarget that remembers what it was given."""

    def __init__(self) -> None:
        self.applied: list[tuple[ZoneFile, int | None]] = []
        self.documents: list[ZoneDocument | None] = []

    def replace_zones(
        self, zone_file: ZoneFile, version: int | None, document: ZoneDocument | None = None
    ) -> None:
        self.applied.append((zone_file, version))
        self.documents.append(document)


def _message(version: int, **cameras: str) -> ConfigMessage:
    return ConfigMessage(
        node_id=NODE, version=version, issued_at=datetime(2024, 5, 4, tzinfo=UTC), cameras=cameras
    )


def _zones(camera: str, zone: str) -> str:
    return ZONES.format(camera=camera, zone=zone)


def _wait(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def _settings(broker: MosquittoBroker, client_id: str) -> MqttSettings:
    return MqttSettings.model_validate({"host": broker.host, "port": broker.port, "client_id": client_id})


class HealthWatcher:
    """Subscribes to the node's retained health topic and keeps the latest payload."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.latest: dict[str, object] | None = None
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="health-watcher")
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(Topics().node_health(NODE), qos=1)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.latest = json.loads(message.payload)

    def config_version(self) -> object:
        with self._lock:
            return None if self.latest is None else self.latest.get("config_version")

    def health(self) -> NodeHealth | None:
        with self._lock:
            return None if self.latest is None else NodeHealth.model_validate_json(json.dumps(self.latest))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def watcher(own_broker: MosquittoBroker) -> Iterator[HealthWatcher]:
    health = HealthWatcher(own_broker)
    yield health
    health.close()


def _streaming(cameras: dict[str, RecordingCamera]) -> Callable[[], dict[str, CameraReading]]:
    """Every camera streaming, its last picture a second ago, one frame a second, nothing open."""
    return lambda: {
        camera_id: CameraReading(CaptureState.STREAMING, time.monotonic() - 1.0, 1.0, 0)
        for camera_id in cameras
    }


def _start_node(
    broker: MosquittoBroker, tmp_path: Path, cameras: dict[str, RecordingCamera]
) -> tuple[ConfigSync, Publisher, NodeMetrics]:
    metrics = NodeMetrics()
    sync = ConfigSync(NODE, cameras, tmp_path / "applied-config.json", metrics=metrics)
    sync.load_cached()
    publisher = Publisher(
        _settings(broker, NODE),
        tmp_path / "edge.sqlite",
        health_interval_s=0.2,
        health_probe=health_probe(sync, "test", _streaming(cameras)),
        on_config=sync.on_config,
        on_config_rejected=sync.on_rejected,
    )
    publisher.start()
    assert publisher.wait_connected(10)
    return sync, publisher, metrics


def test_valid_config_applied_reported_and_persisted(
    own_broker: MosquittoBroker, tmp_path: Path, watcher: HealthWatcher
) -> None:
    cam1, cam2 = RecordingCamera(), RecordingCamera()
    sync, publisher, metrics = _start_node(own_broker, tmp_path, {"cam-01": cam1, "cam-02": cam2})
    try:
        assert sync.applied_version is None
        publish_config(
            _settings(own_broker, "review"), NODE, _message(3, **{"cam-01": _zones("cam-01", "door-a")})
        )
        _wait(lambda: sync.applied_version == 3)
        assert [(zf.zones[0].id, version) for zf, version in cam1.applied] == [("door-a", 3)]
        assert cam1.applied[0][0].zones[0].shop is not None
        assert cam2.applied == []  # not in the message: keeps its zones
        _wait(lambda: watcher.config_version() == 3)  # health on the broker reports it
        assert metrics.registry.get_sample_value("curbwatch_config_version") == 3
        cached = ConfigMessage.model_validate_json((tmp_path / "applied-config.json").read_bytes())
        assert cached.version == 3
    finally:
        publisher.stop(2.0)


def test_invalid_config_rejected_and_last_good_kept_across_restart(
    own_broker: MosquittoBroker, tmp_path: Path, watcher: HealthWatcher
) -> None:
    cam = RecordingCamera()
    sync, publisher, metrics = _start_node(own_broker, tmp_path, {"cam-01": cam})
    review = _settings(own_broker, "review")
    try:
        publish_config(review, NODE, _message(1, **{"cam-01": _zones("cam-01", "door-a")}))
        _wait(lambda: sync.applied_version == 1)
        bad = _zones("cam-01", "door-b").replace(
            "[[0.1, 0.5], [0.9, 0.5], [0.9, 0.9], [0.1, 0.9]]", BAD_POLYGON
        )
        publish_config(review, NODE, _message(2, **{"cam-01": bad}))
        _wait(lambda: sync.status().rejected is not None)
        status = sync.status()
        assert status.applied_version == 1
        assert status.rejected is not None and status.rejected.version == 2
        assert status.rejected.problems[0].startswith("config v2 cameras[cam-01]:5: zones[0].polygon: ")
        assert len(cam.applied) == 1  # the camera never saw version 2
        assert metrics.registry.get_sample_value("curbwatch_config_rejected_total") == 1
        time.sleep(0.5)
        assert watcher.config_version() == 1
        # A document for the wrong camera is rejected too, whatever the other cameras say.
        publish_config(review, NODE, _message(4, **{"cam-01": _zones("cam-09", "door-c")}))
        _wait(lambda: sync.status().rejected is not None and sync.status().rejected.version == 4)  # type: ignore[union-attr]
        assert "camera_id: is 'cam-09', expected 'cam-01'" in sync.status().rejected.problems[0]  # type: ignore[union-attr]
    finally:
        publisher.stop(2.0)

    # Restart with the broker down: the persisted last good config (version 1) is used.
    own_broker.stop()
    restarted = RecordingCamera()
    sync = ConfigSync(NODE, {"cam-01": restarted}, tmp_path / "applied-config.json")
    assert sync.load_cached()
    assert sync.applied_version == 1
    assert [(zf.zones[0].id, version) for zf, version in restarted.applied] == [("door-a", 1)]


def _retain_raw(broker: MosquittoBroker, payload: bytes) -> None:
    """A retained config that is not a ConfigMessage at all (the review server never sends one)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="raw-config")
    client.connect(broker.host, broker.port)
    client.loop_start()
    info = client.publish(Topics().node_config(NODE), payload, qos=1, retain=True)
    info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def test_rejection_reaches_health_with_file_line_problems_and_last_good_stays(
    own_broker: MosquittoBroker, tmp_path: Path, watcher: HealthWatcher
) -> None:
    cam = RecordingCamera()
    sync, publisher, _metrics = _start_node(own_broker, tmp_path, {"cam-01": cam})
    review = _settings(own_broker, "review")

    def health() -> NodeHealth:
        report = watcher.health()
        assert report is not None and report.config is not None
        return report

    try:
        publish_config(review, NODE, _message(1, **{"cam-01": _zones("cam-01", "door-a")}))
        _wait(lambda: watcher.health() is not None and health().config_version == 1)
        assert health().config.applied_version == 1 and health().config.rejected_at is None  # type: ignore[union-attr]
        (camera,) = health().cameras or []
        assert (camera.camera_id, camera.state, camera.fps_analysed, camera.incidents_open) == (
            "cam-01",
            CameraState.STREAMING,
            1.0,
            0,
        )

        # Retained and invalid: the node keeps version 1 and says why, with file:line.
        bad = _zones("cam-01", "door-b").replace(
            "[[0.1, 0.5], [0.9, 0.5], [0.9, 0.9], [0.1, 0.9]]", BAD_POLYGON
        )
        publish_config(review, NODE, _message(2, **{"cam-01": bad}))
        _wait(lambda: health().config.rejected_version == 2)  # type: ignore[union-attr]
        config = health().config
        assert config is not None and config.applied_version == 1 and health().config_version == 1
        assert config.rejected_at is not None and config.problems
        assert config.problems[0].startswith("config v2 cameras[cam-01]:5: zones[0].polygon: "), (
            config.problems
        )
        assert [version for _zf, version in cam.applied] == [1]

        # Not even a ConfigMessage: the publisher hands it to the same report, without a line.
        _retain_raw(own_broker, b'{"schema": "curbwatch.config/1", "node_id": "node-7", "version": 3}')
        _wait(lambda: health().config.rejected_version == 3)  # type: ignore[union-attr]
        assert any(p.startswith("config v3: issued_at: Field required") for p in health().config.problems)  # type: ignore[union-attr]
        assert health().config_version == 1 and [v for _zf, v in cam.applied] == [1]

        # A reconnect redelivers the retained bad config: still rejected, still on version 1.
        publisher.stop(2.0)
        sync, publisher, _metrics = _start_node(own_broker, tmp_path, {"cam-01": cam})
        _wait(lambda: sync.status().rejected is not None)
        assert sync.applied_version == 1  # from the cache; version 3 refused again
        _wait(lambda: health().config.rejected_version == 3 and health().config.applied_version == 1)  # type: ignore[union-attr]

        # A newer good config is applied and the rejection leaves the report.
        publish_config(review, NODE, _message(4, **{"cam-01": _zones("cam-01", "door-c")}))
        _wait(lambda: health().config_version == 4)
        assert health().config.rejected_at is None and health().config.problems == []  # type: ignore[union-attr]
    finally:
        publisher.stop(2.0)


def test_unreadable_rejection_is_recorded_unless_older_than_applied(tmp_path: Path) -> None:
    cam = RecordingCamera()
    sync = ConfigSync(NODE, {"cam-01": cam}, tmp_path / "applied-config.json")
    sync.on_rejected(None, ["config message: (message): Invalid JSON"])
    rejected = sync.status().rejected
    assert rejected is not None and rejected.version is None
    sync.on_config(_message(5, **{"cam-01": _zones("cam-01", "door-a")}))
    assert sync.status().rejected is None, "an applied config supersedes an unversioned rejection"
    sync.on_rejected(4, ["config v4: issued_at: Field required"])  # older than applied: stale
    assert sync.status().rejected is None
    sync.on_rejected(6, [f"config v6: p{i}" for i in range(15)])
    rejected = sync.status().rejected
    assert rejected is not None and rejected.version == 6 and len(rejected.problems) == 10
    assert sync.applied_version == 5


def test_redelivered_or_older_versions_are_ignored(tmp_path: Path) -> None:
    cam = RecordingCamera()
    sync = ConfigSync(NODE, {"cam-01": cam}, tmp_path / "applied-config.json")
    sync.on_config(_message(5, **{"cam-01": _zones("cam-01", "door-a")}))
    sync.on_config(_message(5, **{"cam-01": _zones("cam-01", "door-a")}))  # retained, on reconnect
    sync.on_config(_message(4, **{"cam-01": _zones("cam-01", "door-old")}))
    sync.on_config(_message(6, **{"cam-01": _zones("cam-01", "door-b"), "cam-99": "not: a zone file"}))
    assert [(zf.zones[0].id, version) for zf, version in cam.applied] == [("door-a", 5), ("door-b", 6)]
    assert sync.status().rejected is None
    # each camera gets the text it runs with its version, to report it and name it on incidents
    assert [(d.config_version, d.source.value, d.text) for d in cam.documents if d] == [
        (5, "config", _zones("cam-01", "door-a")),
        (6, "config", _zones("cam-01", "door-b")),
    ]


def test_corrupt_cache_falls_back_to_local_zones(tmp_path: Path) -> None:
    cache = tmp_path / "applied-config.json"
    cache.write_text('{"schema": "curbwatch.config/1", "version": ')
    cam = RecordingCamera()
    sync = ConfigSync(NODE, {"cam-01": cam}, cache)
    assert not sync.load_cached()
    assert sync.applied_version is None and cam.applied == []


DEEP_CONFIG = b'{"schema": "curbwatch.config/1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
DEEP_ZONES = "camera_id: cam-01\nzones: " + "[" * 40 + "]" * 40
LAUGHS = """\
camera_id: cam-01
a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
zones: [*e]
"""


@pytest.mark.parametrize(
    ("name", "payload", "problem"),
    [
        ("100,000 nested [", b"[" * 100_000, "config message: "),
        ("deep JSON config", DEEP_CONFIG, "config message: "),
        ("billion laughs", None, "anchors and aliases"),
        ("deeply nested zones", None, "nested more than 32 deep"),
    ],
)  # fmt: skip
def test_poison_configs_are_refused_off_the_network_thread_and_the_node_stays_up(
    own_broker: MosquittoBroker, tmp_path: Path, watcher: HealthWatcher, name: str, payload: bytes | None,
    problem: str,
) -> None:  # fmt: skip
    """Issue 10's cases 1 and 2 against the real broker: retained, redelivered, never fatal."""
    cam = RecordingCamera()
    sync, publisher, _metrics = _start_node(own_broker, tmp_path, {"cam-01": cam})
    try:
        if payload is None:
            document = (
                LAUGHS if name == "billion laughs" else "camera_id: cam-01\nzones: " + "[" * 40 + "]" * 40
            )
            review = _settings(own_broker, "review")
            issued = datetime(2024, 5, 4, tzinfo=UTC)
            publish_config(review, NODE, ConfigMessage(node_id=NODE, version=9, issued_at=issued,
                                                       cameras={"cam-01": document}))  # fmt: skip
        else:
            _retain_raw(own_broker, payload)
        _wait(lambda: sync.status().rejected is not None, 20)
        rejected = sync.status().rejected
        assert rejected is not None and any(problem in p for p in rejected.problems), rejected.problems
        # The node is still connected and still reports: the network thread lived.
        assert publisher.stats().connected
        before = watcher.health()
        _wait(lambda: watcher.health() is not before and watcher.health() is not None, 10)
        assert cam.applied == []
    finally:
        publisher.stop(2.0)
