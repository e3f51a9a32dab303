"""The bundled example zones for the demo footage (vtest.avi) are valid and where they should be."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from models.classes import COCO_CLASSES
from models.types import Detections
from zones.loader import check_zone_file
from zones.membership import ZoneMembership

EXAMPLE = Path(__file__).resolve().parents[2] / "zones" / "examples" / "vtest_cam01.yaml"
VTEST_WH = (768, 576)
CHAIR = COCO_CLASSES.index("chair")


def test_example_has_no_problems() -> None:
    zone_file, problems = check_zone_file(EXAMPLE)
    assert problems == ()
    assert zone_file is not None
    assert [z.id for z in zone_file.monitored] == ["walkway-west", "plaza-east"]
    assert [z.id for z in zone_file.exempt] == ["assembly-point"]


@pytest.mark.parametrize(
    ("feet_xy", "zone_id"),
    [
        ((120, 225), "walkway-west"),  # on the left walkway
        ((650, 360), "plaza-east"),  # on the plaza, where a pedestrian walks in the footage
        ((410, 270), None),  # at the fire assembly point sign: exempt
        ((200, 450), None),  # on the lawn
    ],
)
def test_example_zones_lie_on_the_pavement(feet_xy: tuple[int, int], zone_id: str | None) -> None:
    zone_file, _ = check_zone_file(EXAMPLE)
    assert zone_file is not None
    x, y = feet_xy
    found = Detections(
        np.array([[x - 20, y - 40, x + 20, y]]), np.array([0.9]), np.array([CHAIR]), COCO_CLASSES
    )
    monday_10am = dt.datetime(2025, 5, 5, 10, tzinfo=zone_file.tz)
    result = ZoneMembership(zone_file, VTEST_WH).evaluate(found, monday_10am)
    assert [zid for zid, check in result.items() if check.mask[0]] == ([zone_id] if zone_id else [])
