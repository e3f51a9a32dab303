"""Micro-benchmark: zone membership for 20 detections x 5 zones, vectorised vs a naive loop.

    .venv/bin/python bench/zones_membership.py [--detections 20] [--zones 5]

Prints the best-of-repeats CPU time per frame for:
  evaluate      ZoneMembership.evaluate (schedules, filters, exemptions, fixtures, ownership)
  overlap       PolygonSet.overlap_fractions alone (the numpy area integral)
  shapely-vec   the same overlaps with shapely 2's broadcast intersection + area
  naive-loop    one shapely.box(...).intersection(polygon).area per box and zone
and checks that all three overlap methods agree. Process CPU time and best-of-N
because the machine may be shared: the minimum is the least disturbed run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import timeit
from collections.abc import Callable

import numpy as np
import shapely

from models.classes import COCO_CLASSES
from models.types import Detections
from zones.geometry import footprint_xyxy
from zones.membership import ZoneMembership
from zones.schema import ZoneFile

RESOLUTION_WH = (1280, 720)


def make_zone_file(zone_count: int) -> ZoneFile:
    zones = []
    width = 0.9 / zone_count
    for k in range(zone_count):
        x = 0.05 + width * k
        zones.append(
            {
                "id": f"door-{k}",
                "kind": "monitored",
                "polygon": [
                    [x, 0.5],
                    [x + 0.9 * width, 0.5],
                    [x + width, 0.9],
                    [x + 0.5 * width, 0.95],
                    [x, 0.9],
                ],
                "shop": {"id": f"shop-{k}", "name": f"Shop {k}"},
                "schedule": {"weekly": [{"days": ["mon", "tue", "wed"], "start": "08:00", "end": "20:00"}]},
                "fixtures": [{"class": "bench", "box": [x, 0.6, x + 0.05, 0.7]}],
            }
        )
    return ZoneFile.model_validate({"camera_id": "bench", "zones": zones})


def make_detections(count: int, seed: int = 7) -> Detections:
    rng = np.random.default_rng(seed)
    corner = rng.uniform([0, 0], [RESOLUTION_WH[0] - 40, RESOLUTION_WH[1] - 40], (count, 2))
    size = rng.uniform(20, 240, (count, 2))
    return Detections(
        xyxy=np.concatenate([corner, corner + size], axis=1).astype(np.float32),
        confidence=rng.uniform(0.2, 1.0, count).astype(np.float32),
        class_id=rng.integers(0, len(COCO_CLASSES), count),
        class_names=COCO_CLASSES,
    )


def best_us(function: Callable[[], object], number: int = 200, repeat: int = 15) -> float:
    # CPU time of this process, not wall time: on a shared machine other jobs' time stays out.
    runs = timeit.repeat(function, number=number, repeat=repeat, timer=time.process_time)
    return min(runs) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--detections", type=int, default=20)
    parser.add_argument("--zones", type=int, default=5)
    args = parser.parse_args()

    zone_file = make_zone_file(args.zones)
    detections = make_detections(args.detections)
    membership = ZoneMembership(zone_file, RESOLUTION_WH)
    when = dt.datetime(2025, 5, 6, 10, 30, tzinfo=dt.UTC)
    footprints = footprint_xyxy(detections.xyxy)
    scale = np.array(RESOLUTION_WH, dtype=np.float64)
    polygons = shapely.polygons([np.asarray(z.polygon) * scale for z in zone_file.zones])
    polygon_set = membership._polygons  # the instance evaluate uses

    def shapely_vectorised() -> np.ndarray:
        boxes = shapely.box(footprints[:, 0], footprints[:, 1], footprints[:, 2], footprints[:, 3])
        inside = shapely.area(shapely.intersection(boxes[:, None], polygons[None, :]))
        return inside / shapely.area(boxes)[:, None]

    def naive_loop() -> np.ndarray:
        result = np.zeros((len(footprints), len(polygons)))
        for i, (x1, y1, x2, y2) in enumerate(footprints):
            box = shapely.box(x1, y1, x2, y2)
            for j, polygon in enumerate(polygons):
                result[i, j] = box.intersection(polygon).area / box.area
        return result

    ours = polygon_set.overlap_fractions(footprints)
    for name, other in (("shapely-vec", shapely_vectorised()), ("naive-loop", naive_loop())):
        difference = float(np.abs(ours - other).max())
        if difference > 1e-9:
            raise SystemExit(f"overlap mismatch against {name}: {difference}")

    print(f"{args.detections} detections x {args.zones} zones, best per frame:")
    for name, function in (
        ("evaluate", lambda: membership.evaluate(detections, when)),
        ("overlap", lambda: polygon_set.overlap_fractions(footprints)),
        ("shapely-vec", shapely_vectorised),
        ("naive-loop", naive_loop),
    ):
        print(f"  {name:12s} {best_us(function):8.1f} us")


if __name__ == "__main__":
    main()
