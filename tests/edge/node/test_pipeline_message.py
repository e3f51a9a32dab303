"""The wire form of an engine event (edge.node.pipeline.incident_message)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from edge.incidents.types import IncidentEvent, IncidentEventKind, IncidentObject
from edge.node.pipeline import incident_message
from uplink.messages import Shop

START = datetime(2025, 6, 4, 2, 0, tzinfo=UTC)
TABLE = IncidentObject("dining table", 0.8, (100.0, 200.0, 180.0, 260.0), (0.15, 0.4, 0.28, 0.54), 7)


def event(t: float, first_seen_t: float, dwell_s: float) -> IncidentEvent:
    return IncidentEvent(
        event=IncidentEventKind.UPDATED,
        incident_id=str(uuid.UUID(int=1)),
        seq=1,
        camera_id="cam-1",
        zone_id="door-1",
        shop_id=None,
        shop_name=None,
        t=t,
        first_seen_t=first_seen_t,
        utc=START + timedelta(seconds=40),
        objects=(TABLE,),
        dwell_s=dwell_s,
    )


@pytest.mark.parametrize(
    ("name", "t", "first_seen_t", "dwell_s", "expected_dwell_s"),
    [
        ("fresh: dwell is t - first_seen_t", 40.0, 0.0, 40.0, 40.0),
        ("resumed after a restart: first_seen_t is the stream's start, dwell carried", 20.0, 0.0, 40.0, 40.0),
        ("clock stepped back: never a negative dwell", 20.0, 20.0, -3.0, 0.0),
    ],
)
def test_dwell_and_first_seen_at_come_from_the_events_carried_age(
    name: str, t: float, first_seen_t: float, dwell_s: float, expected_dwell_s: float
) -> None:
    message = incident_message(event(t, first_seen_t, dwell_s), "node-1", Shop(id="shop-1", name=""), None)
    assert message.dwell_s == expected_dwell_s, name
    assert message.first_seen_at == START + timedelta(seconds=40 - expected_dwell_s), name
    assert message.at == START + timedelta(seconds=40)


def test_the_message_carries_the_objects_as_numbered_in_its_picture() -> None:
    import cv2
    import numpy as np

    from edge.evidence.render import DrawnObject

    ok, picture = cv2.imencode(".jpg", np.full((36, 48, 3), 90, np.uint8))
    assert ok
    drawn = (DrawnObject("chair", 0.9, (0.1, 0.2, 0.3, 0.4)), DrawnObject("bench", 0.6, (0.5, 0.5, 0.7, 0.9)))
    shop = Shop(id="shop-1", name="")
    message = incident_message(event(40.0, 0.0, 40.0), "node-1", shop, picture.tobytes(), None, drawn)
    assert message.evidence_objects is not None
    assert [(o.label, o.confidence, o.bbox) for o in message.evidence_objects] == [
        ("chair", 0.9, (0.1, 0.2, 0.3, 0.4)),
        ("bench", 0.6, (0.5, 0.5, 0.7, 0.9)),
    ]
    assert incident_message(event(40.0, 0.0, 40.0), "node-1", shop, None).evidence_objects is None
