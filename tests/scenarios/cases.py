"""Scenario cases on vtest.avi with ground truth, and the metrics over them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.analyze.run import AnalyzePipeline
from edge.incidents.types import IncidentEvent, IncidentEventKind
from models.detector import Detector
from tests.scenarios.footage import Placement, load_patch, vtest_frames
from zones.loader import load_zone_file

SAMPLE_FPS = 1.0
INTERVAL_S = 1.0 / SAMPLE_FPS
DWELL_S = 10.0
CLEAR_S = 8.0
PATCH_SCALE = 1.3  # the bicycles are then 179x112 px: NanoDet finds them in every sampled frame

# Places the detector was checked to find the patch at (top-left, pixels of the 768x576 frame).
IN_ZONE_A = (150, 200)  # on the west walkway, inside zone door-a
IN_ZONE_B = (520, 300)  # on the east pavement, inside zone door-b
OUTSIDE = (480, 230)  # on the pavement, in neither zone

# Start of the video in local time: a Wednesday, 10:00 in Fuzhou.
START = datetime(2025, 6, 4, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))

ZONES_YAML = """\
schema_version: 1
camera_id: vtest-cam01
timezone: Asia/Shanghai
zones:
  - id: door-a
    kind: monitored
    polygon: [[0.12, 0.30], [0.45, 0.30], [0.45, 0.62], [0.12, 0.62]]
    shop: {{id: shop-a, name: "Shop A"}}
    classes: [chair, dining table, bench, umbrella, potted plant, suitcase, bicycle]
    min_confidence: 0.3
    dwell_s: {dwell}
    clear_s: {clear}
    update_every_s: 30
    cooldown_s: 30
{schedule}
  - id: door-b
    kind: monitored
    polygon: [[0.62, 0.62], [0.98, 0.62], [0.98, 0.85], [0.62, 0.85]]
    shop: {{id: shop-b, name: "Shop B"}}
    classes: [chair, dining table, bench, umbrella, potted plant, suitcase, bicycle]
    min_confidence: 0.3
    dwell_s: {dwell}
    clear_s: {clear}
    update_every_s: 30
    cooldown_s: 30
{exempt}
"""

SCHEDULE_OFF_AT_10 = """\
    schedule:
      weekly:
        - {days: [mon, tue, wed, thu, fri, sat, sun], start: "18:00", end: "22:00"}
"""

EXEMPT_OVER_A = """\
  - id: cafe-licence
    kind: exempt
    polygon: [[0.10, 0.28], [0.47, 0.28], [0.47, 0.64], [0.10, 0.64]]
    classes: [bicycle, chair, dining table]
"""


@dataclass(frozen=True)
class Truth:
    """An incident that must happen: zone, object appears at `appear_s`, removed at `remove_s`."""

    zone_id: str
    appear_s: float
    remove_s: float


@dataclass(frozen=True)
class Case:
    name: str
    placements: tuple[tuple[tuple[int, int], float, float], ...] = ()  # (xy, start, end)
    path: tuple[tuple[float, int, int], ...] = ()  # a carried object
    occluded: tuple[tuple[float, float], ...] = ()
    schedule: bool = False
    exempt: bool = False
    truth: tuple[Truth, ...] = ()


CASES: tuple[Case, ...] = (
    Case("pedestrians only"),
    Case("left in zone, then removed", ((IN_ZONE_A, 10.0, 45.0),), truth=(Truth("door-a", 10.0, 45.0),)),
    Case("left in the east zone", ((IN_ZONE_B, 5.0, 79.0),), truth=(Truth("door-b", 5.0, 79.0),)),
    Case("left outside any zone", ((OUTSIDE, 5.0, 70.0),)),
    Case("carried through", path=((10.0, 10, 200), (25.0, 580, 200))),
    Case(
        "occluded by passers-by",
        ((IN_ZONE_A, 5.0, 60.0),),
        occluded=((22.0, 27.0), (33.0, 36.0), (44.0, 49.0)),
        truth=(Truth("door-a", 5.0, 60.0),),
    ),
    Case("in an exempt area", ((IN_ZONE_A, 5.0, 70.0),), exempt=True),
    Case("outside schedule", ((IN_ZONE_A, 5.0, 70.0),), schedule=True),
)


def zone_file_for(case: Case, directory: Path) -> Path:
    text = ZONES_YAML.format(
        dwell=DWELL_S,
        clear=CLEAR_S,
        schedule=SCHEDULE_OFF_AT_10 if case.schedule else "",
        exempt=EXEMPT_OVER_A if case.exempt else "",
    )
    path = directory / f"{case.name.replace(' ', '_').replace(',', '')}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def placements_for(case: Case, leuven_jpg: Path) -> tuple[Placement, ...]:
    patch = load_patch(leuven_jpg, PATCH_SCALE)
    found = [Placement(patch, xy, a, b, occluded=case.occluded) for xy, a, b in case.placements]
    if case.path:
        found.append(Placement(patch, case.path[0][1:], case.path[0][0], case.path[-1][0], path=case.path))
    return tuple(found)


def run_case(
    case: Case, detector: Detector, vtest_avi: Path, leuven_jpg: Path, directory: Path
) -> list[IncidentEvent]:
    zone_file = load_zone_file(zone_file_for(case, directory))
    pipeline = AnalyzePipeline(detector, zone_file, START)
    frames = vtest_frames(vtest_avi, SAMPLE_FPS, placements_for(case, leuven_jpg))
    return list(pipeline.run(frames))


@dataclass(frozen=True)
class Score:
    true_positives: int
    predicted: int
    expected: int
    open_delays_s: tuple[float, ...]  # opened t - appear_s, per matched incident
    clear_delays_s: tuple[float, ...]  # cleared t - remove_s, per matched incident cleared in the clip

    @property
    def precision(self) -> float:
        return self.true_positives / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.expected if self.expected else 1.0


def score(results: list[tuple[Case, list[IncidentEvent]]]) -> Score:
    tp = predicted = expected = 0
    open_delays: list[float] = []
    clear_delays: list[float] = []
    for case, events in results:
        opened = [e for e in events if e.event is IncidentEventKind.OPENED]
        predicted += len(opened)
        expected += len(case.truth)
        unmatched = list(case.truth)
        for event in opened:
            match = next(
                (g for g in unmatched if g.zone_id == event.zone_id and g.appear_s <= event.t < g.remove_s),
                None,
            )
            if match is None:
                continue
            unmatched.remove(match)
            tp += 1
            open_delays.append(event.t - match.appear_s)
            cleared = [
                e
                for e in events
                if e.incident_id == event.incident_id and e.event is IncidentEventKind.CLEARED
            ]
            if cleared:
                clear_delays.append(cleared[0].t - match.remove_s)
    return Score(tp, predicted, expected, tuple(open_delays), tuple(clear_delays))
