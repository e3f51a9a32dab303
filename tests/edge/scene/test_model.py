"""The scene model on real CCTV: a box that stays becomes a region; walkers, light and nudges do not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from edge.scene.config import SceneSettings
from edge.scene.light import ShiftEstimator, gain_field, gray, shadow_mask
from edge.scene.model import SceneModel, SceneReading, SceneState
from edge.scene.regions import find_regions
from models.postprocess import box_iou
from tests.edge.scene.conftest import box_truth, shifted


def run(
    model: SceneModel, frames: list[np.ndarray], people: list[np.ndarray], extra: np.ndarray | None = None
) -> list[SceneReading]:
    """Each frame with its detector's people held (and `extra` boxes, as if people stood there)."""
    readings = []
    for t, pixels in enumerate(frames):
        hold = people[t] if extra is None else np.concatenate([people[t], extra])
        readings.append(model.update(pixels, float(t), hold))
    return readings


def best_iou(reading: SceneReading, truth: np.ndarray) -> float:
    if not len(reading.regions):
        return 0.0
    return float(box_iou(reading.regions.xyxy, truth[None, :]).max())


def test_learns_first_then_watches_and_pedestrians_leave_no_region(
    street: list[np.ndarray], street_people: list[np.ndarray]
) -> None:
    readings = run(SceneModel(SceneSettings()), street, street_people)
    assert [r.state for r in readings[:10]] == [SceneState.LEARNING] * 10
    assert all(r.state is SceneState.WATCHING for r in readings[10:])
    assert sum(len(r.regions) for r in readings) == 0


def test_a_box_that_stays_becomes_one_region_where_it_is_and_goes_when_it_goes(
    street_with_box: list[np.ndarray], street_with_box_people: list[np.ndarray], box_patch: np.ndarray
) -> None:
    readings = run(SceneModel(SceneSettings()), street_with_box, street_with_box_people)
    truth = box_truth(box_patch)
    # Not before it has been static for static_after_s (15 s from its arrival at 15 s) ...
    assert all(best_iou(r, truth) == 0.0 for r in readings[:30])
    # ... then found, and kept while walkers pass in front of it.
    found_at = next(i for i, r in enumerate(readings) if best_iou(r, truth) > 0.5)
    assert 30 <= found_at <= 45
    assert all(best_iou(r, truth) > 0.3 for r in readings[found_at:60])
    # Removed at 60 s: the clean pavement shows again and the region is gone within 2 s.
    assert all(best_iou(r, truth) == 0.0 for r in readings[62:])


def test_people_boxes_hold_evidence_so_a_person_standing_never_becomes_an_object(
    street_with_box: list[np.ndarray], street_with_box_people: list[np.ndarray], box_patch: np.ndarray
) -> None:
    # The detector says a person stands where the box is, the whole time: nothing may grow there.
    standing = box_truth(box_patch)[None, :]
    readings = run(SceneModel(SceneSettings()), street_with_box, street_with_box_people, standing)
    assert all(best_iou(r, box_truth(box_patch)) == 0.0 for r in readings)


def test_a_passer_by_box_over_a_standing_object_does_not_reset_it(
    street_with_box: list[np.ndarray], street_with_box_people: list[np.ndarray], box_patch: np.ndarray
) -> None:
    model = SceneModel(SceneSettings())
    truth = box_truth(box_patch)
    run(model, street_with_box[:50], street_with_box_people)
    before = model.update(street_with_box[50], 50.0, street_with_box_people[50])
    assert best_iou(before, truth) > 0.5
    # Someone stands in front of it (a person box over its middle) for 5 s: the region stays.
    person = np.array([[truth[0] + 0.05, truth[1] - 0.05, truth[2] - 0.05, truth[3] + 0.02]], np.float32)
    during = [
        model.update(street_with_box[t], float(t), np.concatenate([street_with_box_people[t], person]))
        for t in range(51, 56)
    ]
    assert all(best_iou(r, truth) > 0.5 for r in during)


def test_a_camera_nudged_a_few_pixels_is_followed_and_the_box_keeps_its_region(
    street_with_box: list[np.ndarray], street_with_box_people: list[np.ndarray], box_patch: np.ndarray
) -> None:
    model = SceneModel(SceneSettings())
    frames = [shifted(p, 4.0, 3.0) if t >= 40 else p for t, p in enumerate(street_with_box[:60])]
    readings = run(model, frames, street_with_box_people)
    assert model.nudges == 1 and model.relearns == 0
    moved = box_truth(box_patch, (4.0, 3.0))
    assert all(best_iou(r, moved) > 0.5 for r in readings[41:60])
    assert max(len(r.regions) for r in readings[41:60]) <= 2  # no edge regions from the shift


def test_a_camera_turned_away_relearns_once(
    street: list[np.ndarray], street_people: list[np.ndarray]
) -> None:
    model = SceneModel(SceneSettings())
    turned = [cv2.flip(p, 1) if t >= 30 else p for t, p in enumerate(street[:60])]
    mirrored = [b if t < 30 else b[:, [2, 1, 0, 3]] * np.array([-1, 1, -1, 1]) + np.array([1, 0, 1, 0])
                for t, b in enumerate(street_people[:60])]  # fmt: skip
    readings = run(model, turned, [m.astype(np.float32) for m in mirrored])
    states = [r.state for r in readings]
    assert model.relearns == 1
    assert SceneState.VIEW_CHANGED in states[30:40]
    assert states[-1] is SceneState.WATCHING
    assert sum(len(r.regions) for r in readings) == 0


def test_a_covered_lens_is_obstructed_and_nothing_is_learned_from_it(
    street: list[np.ndarray], street_people: list[np.ndarray]
) -> None:
    model = SceneModel(SceneSettings())
    covered = [
        (cv2.GaussianBlur(p, (0, 0), 40) * 0.15).astype(np.uint8) if 30 <= t < 45 else p
        for t, p in enumerate(street[:60])
    ]
    people = [np.zeros((0, 4), np.float32) if 30 <= t < 45 else b for t, b in enumerate(street_people[:60])]
    readings = run(model, covered, people)
    states = [r.state for r in readings]
    assert SceneState.OBSTRUCTED in states[30:45]
    assert all(s is SceneState.WATCHING for s in states[47:])
    assert model.relearns == 0
    assert sum(len(r.regions) for r in readings) == 0


@pytest.mark.parametrize("gain", [0.5, 1.6])
def test_a_sudden_change_of_light_is_compensated(
    street: list[np.ndarray], street_people: list[np.ndarray], gain: float
) -> None:
    model = SceneModel(SceneSettings())
    lit = [
        np.clip(p * (gain if t >= 20 else 1.0), 0, 255).astype(np.uint8) for t, p in enumerate(street[:60])
    ]
    readings = run(model, lit, street_people)
    assert all(r.state is SceneState.WATCHING for r in readings[10:])
    assert max(r.new_fraction for r in readings[20:]) < 0.2


def test_gain_field_reads_the_light_and_ignores_a_small_object(street: list[np.ndarray]) -> None:
    background = cv2.resize(street[0], (384, 288)).astype(np.float32)
    current = background * 0.6
    current[106:126, 110:130] = 255.0  # a bright object a sixth of a 48 px cell
    field = gain_field(gray(current), gray(background))
    assert field.shape == (288, 384)
    assert abs(float(np.median(field)) - 0.6) < 0.03
    assert abs(float(field[116, 120]) - 0.6) < 0.1


def test_shadow_mask_is_an_even_darkening_only() -> None:
    lit = np.full((4, 4, 3), (80.0, 120.0, 160.0), np.float32)
    assert shadow_mask(lit * 0.6, lit).all()
    tinted = lit * np.array([0.6, 0.9, 0.3], np.float32)
    assert not shadow_mask(tinted, lit).any()
    assert not shadow_mask(lit, lit).any()  # no darkening: not a shadow, just the same


def test_shift_estimator_measures_a_shift_to_a_fraction_of_a_pixel(street: list[np.ndarray]) -> None:
    a = cv2.resize(street[0], (384, 288), interpolation=cv2.INTER_AREA).astype(np.float32)
    b = cv2.resize(shifted(street[0], 4.0, 3.0), (384, 288), interpolation=cv2.INTER_AREA).astype(np.float32)
    estimator = ShiftEstimator((384, 288))
    ga, gb = gray(a), gray(b)
    kept = ga.copy(), gb.copy()
    dx, dy, response = estimator.shift(ga, gb)
    assert response > 0.3 and abs(dx - 2.0) < 0.5 and abs(dy - 1.5) < 0.5
    rx, ry, _ = estimator.refine(ga, gb)
    assert abs(rx - 2.0) < 0.25 and abs(ry - 1.5) < 0.35
    # phaseCorrelate applies its window in place: the estimator must hand it copies.
    assert np.array_equal(ga, kept[0]) and np.array_equal(gb, kept[1])


def test_find_regions_keeps_sizes_in_range_and_normalises() -> None:
    static = np.zeros((100, 200), bool)
    static[10:40, 20:60] = True  # 1200 px = 6% of the frame
    static[80:82, 150:152] = True  # 4 px: noise
    regions = find_regions(static, min_area=0.01, max_area=0.5)
    assert len(regions) == 1
    np.testing.assert_allclose(regions.xyxy[0], [0.1, 0.1, 0.3, 0.4], atol=0.011)
    assert 0.5 <= float(regions.score[0]) <= 1.0
    assert len(find_regions(static, min_area=0.1, max_area=0.5)) == 0


def test_the_model_never_writes_to_the_picture(street: list[np.ndarray]) -> None:
    model = SceneModel(SceneSettings(learn_s=0.0))
    pixels = street[0].copy()
    pixels.flags.writeable = False
    model.update(pixels, 0.0)
    model.update(pixels, 1.0)


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"min_area": 0.3, "max_area": 0.2}, "min_area"),
        ({"width_px": 10}, "width_px"),
        ({"static_after_s": 0}, "static_after_s"),
        ({"colour": True}, "Extra inputs"),
    ],
)
def test_settings_are_checked(settings: dict[str, object], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        SceneSettings.model_validate(settings)
