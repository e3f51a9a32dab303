"""The parts of `models train` that decide what counts: matching, the split, classes, base labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.config import load_detector
from models.postprocess import box_iou_one_to_many
from models.training.dataset import JUDGED_OVERLAP_IOU, class_names, write_dataset
from models.training.evaluate import Counts, judge
from models.training.holdout import split_by_camera_day
from models.training.verdicts import JudgedBox, JudgedPicture, TrainingError, Verdict, read_export
from models.types import Detections
from tests.models.verdict_export import Sent

NAMES = ("chair", "bench")
SIZE_WH = (200, 100)
CHAIR = JudgedBox("chair", (0.1, 0.1, 0.3, 0.5))  # pixels 20, 10, 60, 50
BENCH = JudgedBox("bench", (0.5, 0.5, 0.9, 0.9))  # pixels 100, 50, 180, 90


def picture(
    verdict: Verdict, *boxes: JudgedBox, camera: str = "cam", day: str = "2026-05-01"
) -> JudgedPicture:
    return JudgedPicture(f"{camera}-{day}-{len(boxes)}", camera, day, verdict, boxes, "images/x.jpg")


def detections(*rows: tuple[str, tuple[float, float, float, float]]) -> Detections:
    return Detections(
        xyxy=np.array([box for _, box in rows], np.float32).reshape(-1, 4),
        confidence=np.full(len(rows), 0.9, np.float32),
        class_id=np.array([NAMES.index(label) for label, _ in rows], np.int64),
        class_names=NAMES,
    )


@pytest.mark.parametrize(
    ("verdict", "boxes", "found", "expected"),
    [
        pytest.param(Verdict.CONFIRMED, (CHAIR,), [("chair", (20, 10, 60, 50))], Counts(tp=1), id="found"),
        pytest.param(Verdict.CONFIRMED, (CHAIR,), [], Counts(fn=1), id="missed"),
        pytest.param(
            Verdict.CONFIRMED,
            (CHAIR,),
            [("bench", (20, 10, 60, 50))],
            Counts(fn=1, unjudged=1),
            id="other-label",
        ),
        # IoU of (20,10,60,50) with (40,10,80,50) is 1/3: not the same object.
        pytest.param(
            Verdict.CONFIRMED, (CHAIR,), [("chair", (40, 10, 80, 50))], Counts(fn=1, unjudged=1), id="shifted"
        ),
        pytest.param(
            Verdict.CONFIRMED,
            (CHAIR, JudgedBox("chair", (0.1, 0.1, 0.3, 0.5))),
            [("chair", (21, 10, 61, 50))],
            Counts(tp=1, fn=1),
            id="one-detection-one-box",
        ),
        pytest.param(Verdict.REJECTED, (BENCH,), [("bench", (100, 50, 180, 90))], Counts(fp=1), id="again"),
        pytest.param(Verdict.REJECTED, (BENCH,), [], Counts(tn=1), id="gone"),
        pytest.param(
            Verdict.REJECTED,
            (CHAIR, BENCH),
            [("chair", (20, 10, 60, 50)), ("chair", (150, 0, 190, 20))],
            Counts(fp=1, tn=1, unjudged=1),
            id="mixed",
        ),
    ],
)
def test_judged_boxes_count_as(
    verdict: Verdict,
    boxes: tuple[JudgedBox, ...],
    found: list[tuple[str, tuple[float, float, float, float]]],
    expected: Counts,
) -> None:
    assert judge(picture(verdict, *boxes), detections(*found), SIZE_WH) == expected


def test_precision_and_recall() -> None:
    counts = Counts(tp=1, fp=1, fn=2, tn=5, unjudged=3)
    assert (counts.precision, counts.recall) == (0.5, pytest.approx(1 / 3))
    assert counts.line() == "precision=0.500 recall=0.333 tp=1 fp=1 fn=2 tn=5 unjudged=3"
    assert Counts(tn=2).line().startswith("precision=n/a recall=n/a ")
    assert Counts(tp=1) + Counts(fn=1, tn=2) == Counts(tp=1, fn=1, tn=2)


DAYS = [(f"cam-{c:02d}", f"2026-05-{d:02d}") for c in range(5) for d in range(1, 5)]


def test_the_split_keeps_camera_days_whole_and_stable() -> None:
    pictures = [picture(Verdict.CONFIRMED, CHAIR, camera=c, day=d) for c, d in DAYS for _ in range(2)]
    split = split_by_camera_day(pictures, 0.25)
    assert split_by_camera_day(list(reversed(pictures)), 0.25).held_out_days == split.held_out_days
    held = set(split.held_out_days)
    assert all(p.camera_day in held for p in split.held_out)
    assert not any(p.camera_day in held for p in split.train)
    assert 0 < len(held) < len(DAYS) and len(split.train) + len(split.held_out) == len(pictures)
    # A later export with more days: the days seen before stay on their side.
    more = pictures + [
        picture(Verdict.REJECTED, BENCH, camera="cam-new", day=f"2026-06-{d:02d}") for d in range(1, 9)
    ]
    assert held <= set(split_by_camera_day(more, 0.25).held_out_days)


@pytest.mark.parametrize("fraction", [0.01, 0.99])
def test_both_sides_get_a_camera_day(fraction: float) -> None:
    pictures = [picture(Verdict.CONFIRMED, CHAIR, camera="a"), picture(Verdict.CONFIRMED, CHAIR, camera="b")]
    split = split_by_camera_day(pictures, fraction)
    assert len(split.held_out) == 1 and len(split.train) == 1


def test_one_camera_day_cannot_be_split() -> None:
    with pytest.raises(TrainingError, match=r"at least two camera-days.*cam 2026-05-01"):
        split_by_camera_day([picture(Verdict.CONFIRMED, CHAIR), picture(Verdict.REJECTED, BENCH)], 0.2)


@pytest.mark.parametrize(
    ("base", "pictures", "expected"),
    [
        (
            ("person", "bicycle"),
            [picture(Verdict.CONFIRMED, CHAIR, BENCH)],
            ("person", "bicycle", "bench", "chair"),
        ),
        (("person", "chair"), [picture(Verdict.CONFIRMED, CHAIR)], ("person", "chair")),
        (("0", "1", "2"), [picture(Verdict.CONFIRMED, CHAIR), picture(Verdict.REJECTED, BENCH)], ("chair",)),
        (("person",), [picture(Verdict.REJECTED, BENCH)], ("person",)),
    ],
)
def test_class_names(base: tuple[str, ...], pictures: list[JudgedPicture], expected: tuple[str, ...]) -> None:
    assert class_names(base, pictures) == expected


def test_no_class_at_all_is_an_error() -> None:
    with pytest.raises(TrainingError, match="no confirmed box"):
        class_names(("0", "1"), [picture(Verdict.REJECTED, BENCH)])


def test_a_named_base_keeps_its_objects_away_from_the_judged_boxes(
    tmp_path: Path, verdict_export: tuple[Path, list[Sent]]
) -> None:
    """The bundled NanoDet (COCO names) as the base: people and cars around the incidents stay labelled,
    nothing it finds on a judged box is (the verdict decides there)."""
    export, _sent = verdict_export
    pictures = read_export(export)
    base = load_detector(None)
    names = class_names(base.class_names, pictures)
    assert names[: len(base.class_names)] == base.class_names
    split = split_by_camera_day(pictures, 0.2)
    dataset = write_dataset(export, split, names, tmp_path / "dataset", base)
    assert dataset.base_boxes > 0 and dataset.confirmed_boxes == sum(
        len(p.boxes) for p in pictures if p.verdict is Verdict.CONFIRMED
    )
    for p in pictures:
        side = "val" if p in split.held_out else "train"
        lines = [
            line.split()
            for line in (dataset.root / "labels" / side / f"{p.incident_id}.txt").read_text().splitlines()
        ]
        judged = len(p.boxes) if p.verdict is Verdict.CONFIRMED else 0
        boxes = np.array([b.bbox for b in p.boxes], np.float32)
        for cls, cx, cy, w, h in lines[judged:]:  # the base model's, after the verdict's own
            assert 0 <= int(cls) < len(base.class_names)
            xyxy = np.array(
                [
                    float(cx) - float(w) / 2,
                    float(cy) - float(h) / 2,
                    float(cx) + float(w) / 2,
                    float(cy) + float(h) / 2,
                ],
                np.float32,
            )
            assert box_iou_one_to_many(xyxy, boxes).max() < JUDGED_OVERLAP_IOU
