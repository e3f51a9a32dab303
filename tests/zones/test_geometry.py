"""Footprints and exact box-in-polygon areas, checked against shapely."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from zones.geometry import FOOTPRINT_HEIGHT_FRACTION, PolygonSet, box_iou, footprint_xyxy

SQUARE = [(100.0, 100.0), (300.0, 100.0), (300.0, 300.0), (100.0, 300.0)]
# A U shape: concave, so a box across the gap overlaps two arms but not the gap.
U_SHAPE = [(0, 0), (30, 0), (30, 100), (70, 100), (70, 0), (100, 0), (100, 130), (0, 130)]


def test_footprint_is_bottom_quarter_full_width() -> None:
    assert FOOTPRINT_HEIGHT_FRACTION == 0.25
    np.testing.assert_allclose(footprint_xyxy([[10, 20, 30, 100]]), [[10, 80, 30, 100]])


def test_footprint_does_not_touch_its_input() -> None:
    boxes = np.array([[10.0, 20.0, 30.0, 100.0]])
    footprint_xyxy(boxes)
    np.testing.assert_array_equal(boxes, [[10, 20, 30, 100]])


@pytest.mark.parametrize(
    ("rect", "fraction"),
    [
        ((150, 150, 250, 250), 1.0),  # fully inside
        ((50, 150, 150, 250), 0.5),  # straddling the left edge
        ((250, 250, 350, 350), 0.25),  # over a corner
        ((400, 400, 500, 500), 0.0),  # outside
        ((300, 150, 400, 250), 0.0),  # touching the edge from outside
        ((0, 0, 400, 400), 0.25),  # the polygon inside the box
        ((150, 150, 150, 250), 0.0),  # empty box: inside nothing
    ],
)
def test_overlap_fraction_square(rect: tuple[float, ...], fraction: float) -> None:
    assert PolygonSet([SQUARE]).overlap_fractions([rect])[0, 0] == pytest.approx(fraction, abs=1e-12)


@pytest.mark.parametrize(
    ("rect", "area"),
    [
        ((10, 50, 90, 60), 2 * 20 * 10),  # across the gap: only the arms count
        ((40, 50, 60, 60), 0.0),  # inside the gap
        ((40, 110, 60, 120), 20 * 10),  # below the gap, in the base
        ((-50, -50, 200, 200), 100 * 130 - 40 * 100),  # the whole shape
    ],
)
def test_concave_polygon(rect: tuple[float, ...], area: float) -> None:
    assert PolygonSet([U_SHAPE]).intersection_areas([rect])[0, 0] == pytest.approx(area, abs=1e-9)


def test_orientation_does_not_matter() -> None:
    rects = [[50, 150, 150, 250], [120, 80, 170, 320]]
    clockwise = PolygonSet([SQUARE]).intersection_areas(rects)
    counter = PolygonSet([SQUARE[::-1]]).intersection_areas(rects)
    np.testing.assert_allclose(clockwise, counter)


def _star(rng: np.random.Generator, points: int) -> np.ndarray:
    """A simple, mostly concave polygon: every gap between angles stays below pi."""
    angles = (np.arange(points) + rng.uniform(0.0, 0.5, points)) * 2 * np.pi / points
    radius = rng.uniform(20.0, 300.0, points)
    centre = rng.uniform(200.0, 800.0, 2)
    return np.stack([centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)], axis=1)


def test_matches_shapely_on_random_polygons_and_boxes() -> None:
    rng = np.random.default_rng(20240501)
    polygons = [_star(rng, int(k)) for k in rng.integers(4, 12, 12)]
    assert all(shapely.Polygon(p).is_valid for p in polygons)
    corner = rng.uniform(-200.0, 1100.0, (400, 2))
    size = rng.uniform(0.0, 400.0, (400, 2))
    size[:20, 1] = 0.0  # flat boxes
    rects = np.concatenate([corner, corner + size], axis=1)
    # Boxes sharing x or y with a vertex: the edge cases of the slice integral.
    vertex = polygons[0][0]
    rects[20:30] = [[vertex[0], vertex[1], vertex[0] + 50.0 + i, vertex[1] + 40.0] for i in range(10)]
    rects[30:40] = [[vertex[0] - 50.0 - i, vertex[1] - 40.0, vertex[0], vertex[1]] for i in range(10)]

    got = PolygonSet(polygons).intersection_areas(rects)
    shapes = [shapely.Polygon(p) for p in polygons]
    expected = np.array([[shapely.box(*r).intersection(s).area for s in shapes] for r in rects])
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=1e-9)
    np.testing.assert_allclose(PolygonSet(polygons).areas, [s.area for s in shapes])


def test_near_horizontal_and_vertical_edges() -> None:
    sliver = [(0.0, 100.0), (500.0, 100.000001), (500.0, 200.0), (0.0, 200.0)]
    rects = [(100.0, 50.0, 200.0, 150.0), (0.0, 99.0, 500.0, 101.0), (499.9999, 0.0, 600.0, 300.0)]
    expected = [shapely.box(*r).intersection(shapely.Polygon(sliver)).area for r in rects]
    np.testing.assert_allclose(PolygonSet([sliver]).intersection_areas(rects)[:, 0], expected, atol=1e-6)


def test_no_polygons_or_no_boxes() -> None:
    assert PolygonSet([]).overlap_fractions([[0, 0, 1, 1]]).shape == (1, 0)
    assert PolygonSet([SQUARE]).overlap_fractions(np.zeros((0, 4))).shape == (0, 1)


def test_polygon_needs_three_points() -> None:
    with pytest.raises(ValueError, match="at least 3 points"):
        PolygonSet([[(0, 0), (1, 1)]])


@pytest.mark.parametrize(
    ("a", "b", "iou"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),  # empty boxes: no division by zero
    ],
)
def test_box_iou(a: tuple[float, ...], b: tuple[float, ...], iou: float) -> None:
    assert box_iou([a], [b])[0, 0] == pytest.approx(iou)
