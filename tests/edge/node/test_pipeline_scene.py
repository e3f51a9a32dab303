"""The node's camera pipeline with the scene model and the face detector, on real footage.

A cardboard box (no COCO class) left on vtest.avi's walkway becomes a `static object`
incident in the outbox, with evidence and the BEFORE / NOW picture; a zone that does not
count static objects does not run the scene model at all.
"""

from __future__ import annotations

import itertools
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
from edge.scene.config import SceneSettings
from edge.scene.static_objects import StaticObjects
from models.faces import load_face_detector
from models.nanodet import DEFAULT_MODEL_PATH, NanoDetDetector
from models.types import Detections, Frame
from tests.scenarios.footage import Placement, vtest_frames
from tests.scenarios.static_cases import load_box
from uplink.messages import IncidentMessage
from uplink.outbox import Outbox
from uplink.topics import Topics
from zones.loader import parse_zone_document

pytestmark = pytest.mark.slow

ZONES = """\
camera_id: cam-01
zones:
  - id: door-a
    kind: monitored
    polygon: [[0.12, 0.30], [0.45, 0.30], [0.45, 0.62], [0.12, 0.62]]
    shop: {{id: shop-a, name: 东街水果店}}
    classes: [{classes}]
    dwell_s: 10
    clear_s: 8
"""


@pytest.fixture(scope="module")
def analysed(vtest_avi: Path, opencv_data: Path) -> list[tuple[Frame, Detections]]:
    detector = NanoDetDetector(DEFAULT_MODEL_PATH, conf_threshold=0.25, threads=1)
    placement = Placement(load_box(opencv_data), (150, 200), 15.0, 70.0)
    frames = [Frame(f.pixels, "cam-01", f.ts) for f in vtest_frames(vtest_avi, 1.0, (placement,))]
    return [(frame, detector.detect(frame.pixels)) for frame in frames[:60]]


def pipeline(tmp_path: Path, classes: str, faces: bool) -> tuple[CameraPipeline, Outbox, StaticObjects]:
    db = open_edge_database(tmp_path / "edge.sqlite")
    outbox = Outbox(db, max_bytes=64 * 1024 * 1024)
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
        faces=load_face_detector() if faces else None,
    )
    scene = StaticObjects(SceneSettings())
    zones = parse_zone_document(ZONES.format(classes=classes), "zones.yaml")
    return CameraPipeline("cam-01", zones, parts, live=False, scene=scene), outbox, scene


def messages(outbox: Outbox) -> list[IncidentMessage]:
    return [IncidentMessage.model_validate_json(row.payload) for row in outbox.pending(limit=1000)]


def test_a_box_no_detector_can_name_becomes_an_incident_with_before_and_now(
    tmp_path: Path, analysed: list[tuple[Frame, Detections]]
) -> None:
    line, outbox, scene = pipeline(tmp_path, "static object, chair", faces=True)
    for frame, detections in analysed:
        line.process(frame, detections)
    sent = messages(outbox)
    assert [m.event.value for m in sent][:1] == ["opened"]
    opened = sent[0]
    assert opened.label == "static object" and opened.zone_id == "door-a"
    assert opened.schema_ == "curbwatch.incident/3"
    x1, y1, x2, _ = opened.bbox
    assert abs(x1 - 150 / 768) < 0.03 and abs(y1 - 200 / 576) < 0.06 and abs(x2 - 312 / 768) < 0.03
    assert opened.evidence is not None and opened.before_now is not None
    strip = cv2.imdecode(np.frombuffer(opened.before_now.jpeg(), np.uint8), cv2.IMREAD_COLOR)
    w = strip.shape[1]
    before, now = strip[:, : w // 2], strip[:, w // 2 :]
    # The box is in NOW, not in BEFORE: the two halves differ a lot where it stands.
    assert float(np.abs(before.astype(int) - now.astype(int)).mean()) > 10.0
    assert scene.snapshot().reading is not None and line.uses_scene


def test_a_zone_without_static_classes_does_not_run_the_scene_model(
    tmp_path: Path, analysed: list[tuple[Frame, Detections]]
) -> None:
    line, outbox, scene = pipeline(tmp_path, "chair, bench", faces=False)
    for frame, detections in analysed[:20]:
        line.process(frame, detections)
    assert not line.uses_scene and scene.snapshot().reading is None
    assert messages(outbox) == []
