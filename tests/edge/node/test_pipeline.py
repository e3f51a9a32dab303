"""One camera's pipeline on real frames: one transaction per frame, live zone swaps."""

from __future__ import annotations

import dataclasses
import itertools
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.incidents.store import IncidentStore
from edge.node.app import open_edge_database
from edge.node.metrics import NodeMetrics
from edge.node.pipeline import CameraPipeline, PipelineParts
from edge.node.zone_source import ZoneDocument
from models.nanodet import DEFAULT_MODEL_PATH, NanoDetDetector
from models.types import Detections, Frame
from uplink.messages import IncidentMessage, ZoneSource
from uplink.outbox import Outbox
from uplink.topics import Topics
from zones.loader import parse_zone_document

pytestmark = pytest.mark.slow

VAN_BAY = """\
  - id: van-bay
    kind: monitored
    polygon: [[0.80, 0.0], [1.0, 0.0], [1.0, {bottom}], [0.80, {bottom}]]
    shop: {{id: shop-9, name: Shop}}
    classes: [truck, car, bus]
    min_confidence: 0.3
    dwell_s: 5
    update_every_s: 10
"""
LAWN = """\
  - id: lawn
    kind: monitored
    polygon: [[0.0, 0.6], [0.5, 0.6], [0.5, 1.0], [0.0, 1.0]]
    shop: {id: shop-2, name: Other}
    classes: [bench]
"""


def _zones(*zones: str):  # type: ignore[no-untyped-def]
    return parse_zone_document("camera_id: cam-01\nzones:\n" + "".join(zones), "test")


@pytest.fixture(scope="module")
def analysed(vtest_avi: Path) -> list[tuple[Frame, Detections]]:
    """One frame per second of the first 40 s of vtest.avi, with NanoDet's detections."""
    detector = NanoDetDetector(DEFAULT_MODEL_PATH, conf_threshold=0.25, threads=1)
    capture = cv2.VideoCapture(str(vtest_avi))
    frames = []
    for index in range(400):
        ok, pixels = capture.read()
        assert ok
        if index % 10 == 0:
            frame = Frame(np.ascontiguousarray(pixels), "cam-01", index / 10.0)
            frames.append((frame, detector.detect(frame.pixels)))
    capture.release()
    return frames


def _pipeline(
    tmp_path: Path, zone_text: str, max_bytes: int = 64 * 1024 * 1024
) -> tuple[CameraPipeline, Outbox]:
    db = open_edge_database(tmp_path / "edge.sqlite")
    outbox = Outbox(db, max_bytes=max_bytes)
    ids = (f"00000000-0000-4000-8000-{i:012d}" for i in itertools.count(1))
    parts = PipelineParts(
        node_id="node-1",
        outbox=outbox,
        store=IncidentStore(db),
        topics=Topics(),
        detector=NanoDetDetector(DEFAULT_MODEL_PATH, conf_threshold=0.25, threads=1),
        metrics=NodeMetrics(),
        clock=lambda: datetime(2024, 5, 4, 8, 0, tzinfo=UTC),
        monotonic=time.monotonic,
        id_factory=lambda: next(ids),
        conf_threshold=0.25,
        notify=lambda: None,
    )
    return CameraPipeline("cam-01", _zones(zone_text), parts, live=False), outbox


def _events(outbox: Outbox) -> list[tuple[str, int, str, str]]:
    messages = [IncidentMessage.model_validate_json(row.payload) for row in outbox.pending(limit=1000)]
    return [(str(m.incident_id)[-2:], m.seq, m.event.value, m.zone_id) for m in messages]


def test_zone_swap_keeps_the_open_incident_and_clears_a_removed_zone(
    tmp_path: Path, analysed: list[tuple[Frame, Detections]]
) -> None:
    pipeline, outbox = _pipeline(tmp_path, VAN_BAY.format(bottom=0.25))
    for frame, detections in analysed[:12]:
        pipeline.process(frame, detections)
    assert _events(outbox) == [("01", 0, "opened", "van-bay")]
    # Version 2: the van bay redrawn a little larger and a second zone added.
    pipeline.replace_zones(_zones(VAN_BAY.format(bottom=0.3), LAWN), 2)
    for frame, detections in analysed[12:30]:
        pipeline.process(frame, detections)
    assert pipeline.zone_version == 2 and [z.id for z in pipeline.zone_file.zones] == ["van-bay", "lawn"]
    events = _events(outbox)
    assert events[0] == ("01", 0, "opened", "van-bay")
    assert [e[:3] for e in events[1:]] == [("01", seq, "updated") for seq in range(1, len(events))]
    assert len(events) >= 2  # the same incident went on updating, nothing reopened
    # Version 3: the van bay is gone: its incident clears (reason zone_removed) on the next frame.
    pipeline.replace_zones(_zones(LAWN), 3)
    pipeline.process(*analysed[30])
    last = IncidentMessage.model_validate_json(outbox.pending(limit=1000)[-1].payload)
    assert (str(last.incident_id)[-2:], last.event.value, last.seq) == ("01", "cleared", len(events))
    assert last.shop.id == "shop-9"  # remembered from the earlier zone file
    for frame, detections in analysed[31:]:
        pipeline.process(frame, detections)
    assert len(_events(outbox)) == len(events) + 1


def test_state_and_outbox_commit_together_or_not_at_all(
    tmp_path: Path, analysed: list[tuple[Frame, Detections]]
) -> None:
    pipeline, outbox = _pipeline(tmp_path, VAN_BAY.format(bottom=0.25), max_bytes=1024 * 1024)
    outbox.max_bytes = 1  # every enqueue raises OutboxFull: the frame's transaction rolls back
    for frame, detections in analysed[:12]:
        pipeline.process(frame, detections)
    conn = sqlite3.connect(tmp_path / "edge.sqlite")
    try:
        assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM edge_incidents").fetchone() == (0,)  # no state either
    finally:
        conn.close()
    # Room again: the engine rebuilt from the store (no incident row, the candidate row kept) opens at seq 0.
    outbox.max_bytes = 64 * 1024 * 1024
    for frame, detections in analysed[12:20]:
        pipeline.process(frame, detections)
    events = _events(outbox)
    assert [e[1:] for e in events] == [(0, "opened", "van-bay")]
    assert (
        pipeline.parts.metrics.registry.get_sample_value(
            "curbwatch_incidents_opened_total", {"camera": "cam-01", "zone": "van-bay"}
        )
        == 1
    )


def test_incidents_name_the_zone_document_the_camera_ran(
    tmp_path: Path, analysed: list[tuple[Frame, Detections]]
) -> None:
    pipeline, outbox = _pipeline(tmp_path, VAN_BAY.format(bottom=0.25))
    reported: list[tuple[str, ZoneDocument]] = []
    pipeline.parts = dataclasses.replace(
        pipeline.parts, on_zones=lambda cam, doc: reported.append((cam, doc))
    )
    local = ZoneDocument(
        "camera_id: cam-01\nzones:\n" + VAN_BAY.format(bottom=0.25), ZoneSource.FILE, "/z.yaml"
    )
    pipeline.zone_document = local
    for frame, detections in analysed[:12]:
        pipeline.process(frame, detections)
    opened = IncidentMessage.model_validate_json(outbox.pending(limit=1000)[0].payload)
    assert (opened.zones_sha256, opened.zones_config_version) == (local.sha256, None)
    pushed = ZoneDocument("camera_id: cam-01\nzones:\n" + VAN_BAY.format(bottom=0.3), ZoneSource.CONFIG)
    pushed = dataclasses.replace(pushed, config_version=2)
    pipeline.replace_zones(_zones(VAN_BAY.format(bottom=0.3)), 2, pushed)
    assert pipeline.newest_document == pushed and reported == []  # installed with the next frame
    for frame, detections in analysed[12:30]:
        pipeline.process(frame, detections)
    assert reported == [("cam-01", pushed)]
    updated = IncidentMessage.model_validate_json(outbox.pending(limit=1000)[-1].payload)
    assert (updated.zones_sha256, updated.zones_config_version) == (pushed.sha256, 2)
