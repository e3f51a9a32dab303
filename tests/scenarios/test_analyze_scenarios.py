"""End to end on real footage: NanoDet -> tracker -> zones -> incidents, against ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.analyze.run import AnalyzePipeline
from edge.analyze.video_file import read_frames
from edge.incidents.types import IncidentEvent, IncidentEventKind
from models.detector import Detector
from models.nanodet import DEFAULT_MODEL_PATH, NanoDetDetector
from models.postprocess import box_iou
from tests.scenarios.cases import (
    CASES,
    CLEAR_S,
    DWELL_S,
    IN_ZONE_A,
    INTERVAL_S,
    OUTSIDE,
    PATCH_SCALE,
    SAMPLE_FPS,
    START,
    Case,
    run_case,
    score,
)
from tests.scenarios.footage import Placement, load_patch, vtest_frames
from zones.loader import load_zone_file

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def detector() -> Detector:
    return NanoDetDetector(DEFAULT_MODEL_PATH, threads=1)


@pytest.fixture(scope="module")
def results(
    detector: Detector, vtest_avi: Path, leuven_jpg: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[tuple[Case, list[IncidentEvent]]]:
    directory = tmp_path_factory.mktemp("scenario-zones")
    return [(case, run_case(case, detector, vtest_avi, leuven_jpg, directory)) for case in CASES]


@pytest.mark.parametrize("xy", [IN_ZONE_A, OUTSIDE])
def test_the_detector_sees_the_composited_bicycles(
    detector: Detector, vtest_avi: Path, leuven_jpg: Path, xy: tuple[int, int]
) -> None:
    """The premise of every case below: the object is found where it was put, most frames."""
    placement = Placement(load_patch(leuven_jpg, PATCH_SCALE), xy, 0.0, 1e9)
    hits = []
    for frame in vtest_frames(vtest_avi, 0.2, (placement,)):
        found = detector.detect(frame.pixels, 0.3)
        truth = np.array([placement.box_at(frame.ts)], np.float32)
        iou = box_iou(truth, found.xyxy)[0]
        hits.append(bool(((iou > 0.3) & (np.array(found.labels) == "bicycle")).any()))
    assert np.mean(hits) >= 0.8


def test_pedestrians_only_open_nothing_in_the_example_zones_over_all_795_frames(
    detector: Detector, vtest_avi: Path
) -> None:
    zone_file = load_zone_file(ROOT / "zones" / "examples" / "vtest_cam01.yaml")
    pipeline = AnalyzePipeline(detector, zone_file, START)
    events = list(pipeline.run(read_frames(vtest_avi, zone_file.camera_id, sample_fps=None)))
    assert pipeline.times.frames == 795
    assert events == []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_opens_exactly_the_expected_incidents(
    results: list[tuple[Case, list[IncidentEvent]]], case: Case
) -> None:
    events = next(e for c, e in results if c is case)
    opened = [e for e in events if e.event is IncidentEventKind.OPENED]
    assert [e.zone_id for e in opened] == [t.zone_id for t in case.truth]
    for event, truth in zip(opened, case.truth, strict=True):
        # Opened between dwell_s and dwell_s + 2 sampling intervals after it appeared.
        assert truth.appear_s + DWELL_S <= event.t <= truth.appear_s + DWELL_S + 2 * INTERVAL_S
        assert event.evidence_frame is not None
        assert {o.label for o in event.objects} == {"bicycle"}
        lifecycle = [e for e in events if e.incident_id == event.incident_id]
        assert [e.seq for e in lifecycle] == list(range(len(lifecycle)))
        cleared = [e for e in lifecycle if e.event is IncidentEventKind.CLEARED]
        if truth.remove_s + CLEAR_S + 2 * INTERVAL_S < 79.0:
            assert len(cleared) == 1
            assert truth.remove_s + CLEAR_S - 2 * INTERVAL_S <= cleared[0].t
            assert cleared[0].t <= truth.remove_s + CLEAR_S + 2 * INTERVAL_S
        # Updates at a slow cadence, never once per frame.
        updates = [e for e in lifecycle if e.event is IncidentEventKind.UPDATED]
        assert len(updates) <= (truth.remove_s - truth.appear_s) / 10.0


def test_precision_recall_and_open_delay_over_all_cases(
    results: list[tuple[Case, list[IncidentEvent]]],
) -> None:
    s = score(results)
    print(
        f"\nscenarios: {len(results)} cases, sample {SAMPLE_FPS} fps, dwell {DWELL_S}s, clear {CLEAR_S}s\n"
        f"  precision {s.precision:.2f} ({s.true_positives}/{s.predicted}), "
        f"recall {s.recall:.2f} ({s.true_positives}/{s.expected})\n"
        f"  open delay after appearing: {list(s.open_delays_s)} s (dwell {DWELL_S} s)\n"
        f"  clear delay after removal: {list(s.clear_delays_s)} s (clear {CLEAR_S} s)"
    )
    assert s.precision == 1.0
    assert s.recall == 1.0
    assert all(DWELL_S <= d <= DWELL_S + 2 * INTERVAL_S for d in s.open_delays_s)
    assert all(CLEAR_S - 2 * INTERVAL_S <= d <= CLEAR_S + 2 * INTERVAL_S for d in s.clear_delays_s)
