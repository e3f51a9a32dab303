"""Which detections count in which monitored zone, frame by frame.

A detection qualifies in a monitored zone when all of these hold:
  - its class is one of the zone's `classes`, confidence >= `min_confidence`,
    and its box area (as a fraction of the frame) lies in [min_area, max_area];
  - at least `min_overlap` of its footprint (geometry.footprint_xyxy) lies inside;
  - it is not a fixture of the zone (same class, IoU with the fixture box >= tolerance);
  - it is not exempted: no active exempt zone listing its class holds at least
    that exempt zone's `min_overlap` of its footprint, even if a monitored zone holds more.
One object counts in at most one monitored zone: among the zones it qualifies in,
the one holding the largest fraction of its footprint (file order breaks ties).
supervision counted one object in two zones; two shops must not both be reminded
for one table. The zone's schedule is applied last: an object whose zone is off
duty is not handed to a neighbouring zone that is on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.types import Detections
from zones.geometry import PolygonSet, box_area, box_iou, footprint_xyxy
from zones.schedule import is_active
from zones.schema import Zone, ZoneFile

BoolArray = npt.NDArray[np.bool_]
Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class ZoneCheck:
    """One monitored zone's verdict on one frame's detections (arrays of length n)."""

    zone: Zone
    active: bool  # the schedule says the rule applies at the evaluated instant
    mask: BoolArray  # detections that qualify here; all False when not active
    overlap: Float32Array  # fraction of each footprint inside the zone, whatever the filters


def _class_table(class_names: tuple[str, ...], allowed: list[frozenset[str]]) -> npt.NDArray[np.bool_]:
    """(len(class_names), len(allowed)) bool: class i is one of allowed[j]."""
    table = np.array([[name in names for names in allowed] for name in class_names], dtype=bool)
    return table.reshape(len(class_names), len(allowed))


class ZoneMembership:
    """Configured once per zone file and resolution; `evaluate` runs on every frame."""

    def __init__(self, zone_file: ZoneFile, resolution_wh: tuple[int, int]) -> None:
        width, height = resolution_wh
        if width <= 0 or height <= 0:
            raise ValueError(f"resolution_wh must be positive, got {resolution_wh}")
        self.zone_file = zone_file
        self.resolution_wh = (int(width), int(height))
        self._frame_area_px = float(width * height)
        self._monitored = zone_file.monitored
        self._exempt = zone_file.exempt
        self._tz = zone_file.tz
        zones = self._monitored + self._exempt
        scale = np.array([width, height], dtype=np.float64)
        self._polygons = PolygonSet([np.asarray(z.polygon, dtype=np.float64) * scale for z in zones])
        self._zone_classes = [z.classes for z in zones]
        self._min_overlap = np.array([z.min_overlap for z in zones])
        self._min_confidence = np.array([z.min_confidence for z in self._monitored], dtype=np.float32)
        self._min_area = np.array([z.min_area for z in self._monitored])
        self._max_area = np.array([z.max_area for z in self._monitored])
        # All fixtures of all monitored zones in flat arrays, one IoU call per frame.
        fixtures = [(j, f) for j, z in enumerate(self._monitored) for f in z.fixtures]
        self._fixture_classes = [frozenset({f.class_name}) for _, f in fixtures]
        self._fixture_box_px = np.array([f.box for _, f in fixtures]).reshape(-1, 4) * np.tile(scale, 2)
        self._fixture_tolerance = np.array([f.tolerance for _, f in fixtures])
        self._fixture_zone = np.zeros((len(fixtures), len(self._monitored)), dtype=bool)
        for k, (j, _) in enumerate(fixtures):
            self._fixture_zone[k, j] = True
        self._tables: dict[tuple[str, ...], tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]] = {}
        self._active_minute: int | None = None
        self._active: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)

    def _class_tables(
        self, class_names: tuple[str, ...]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        found = self._tables.get(class_names)
        if found is None:
            found = (
                _class_table(class_names, self._zone_classes),
                _class_table(class_names, self._fixture_classes),
            )
            self._tables[class_names] = found
        return found

    def _activity(self, when: dt.datetime) -> npt.NDArray[np.bool_]:
        """Schedule state of every zone (monitored, then exempt) at `when`.

        Windows start and end on whole local minutes, so the state cannot change
        within one UTC minute: one schedule look-up per minute, not per frame.
        """
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"evaluate needs an aware datetime, got naive {when.isoformat()}")
        minute = int(when.timestamp() // 60)
        if minute != self._active_minute:
            zones = self._monitored + self._exempt
            self._active = np.array([is_active(z.schedule, when, self._tz) for z in zones], dtype=bool)
            self._active_minute = minute
        return self._active

    def evaluate(self, detections: Detections, when: dt.datetime) -> dict[str, ZoneCheck]:
        """Verdicts keyed by monitored zone id; `when` is an aware datetime (the frame's time)."""
        n, m = len(detections), len(self._monitored)
        active = self._activity(when)
        if m == 0:
            return {}
        zone_table, fixture_table = self._class_tables(detections.class_names)
        xyxy = detections.xyxy.astype(np.float64)
        overlap = self._polygons.overlap_fractions(footprint_xyxy(xyxy))  # (n, zones)
        inside = overlap >= self._min_overlap
        inside &= zone_table[detections.class_id]
        # An object standing in an active exempt zone that lists its class never counts.
        exempted: BoolArray = np.any(inside[:, m:] & active[m:], axis=1)

        area_fraction = box_area(xyxy)[:, None] / self._frame_area_px
        qualifies = inside[:, :m]
        qualifies &= detections.confidence[:, None] >= self._min_confidence
        qualifies &= area_fraction >= self._min_area
        qualifies &= area_fraction <= self._max_area
        qualifies &= ~exempted[:, None]
        fixture_class = fixture_table[detections.class_id]  # (n, fixtures)
        if fixture_class.any():  # the IoU only when a detection has a fixture's class
            is_fixture = fixture_class & (box_iou(xyxy, self._fixture_box_px) >= self._fixture_tolerance)
            qualifies &= ~(is_fixture.astype(np.float64) @ self._fixture_zone > 0)

        # At most one zone per detection: the qualifying zone with the largest overlap.
        best = np.argmax(np.where(qualifies, overlap[:, :m], -1.0), axis=1)
        owner = np.zeros((n, m), dtype=bool)
        owner[np.arange(n), best] = True
        owner &= qualifies & active[:m]
        overlap32 = overlap.astype(np.float32)
        return {
            zone.id: ZoneCheck(zone=zone, active=bool(active[j]), mask=owner[:, j], overlap=overlap32[:, j])
            for j, zone in enumerate(self._monitored)
        }
