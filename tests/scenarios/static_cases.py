"""Scenario cases for the scene model: goods COCO has no class for, on real CCTV, with ground truth.

The objects are real photos: a cardboard box (opencv-doc box.png) and a fruit display
(fruits.jpg), pasted onto vtest.avi pedestrians like tests/scenarios/footage.py does for the
bicycles. The bad days are applied to the whole picture: light ramps, a lamp switched on,
a soft shadow moving over the walkers, the camera nudged by a few pixels, a hand over the lens,
the camera turned to another view. Pedestrians walk in front of everything, as they do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.analyze.run import AnalyzePipeline
from edge.incidents.types import IncidentEvent
from edge.scene.config import SceneSettings
from edge.scene.model import SceneReading
from edge.scene.static_objects import StaticObjects, goods_classes
from models.detector import Detector
from models.types import Frame
from tests.scenarios.cases import CLEAR_S, DWELL_S, SAMPLE_FPS, START, ZONES_YAML, Truth
from tests.scenarios.footage import Placement, vtest_frames
from zones.loader import load_zone_file

Transform = Callable[[np.ndarray, float], np.ndarray]

STATIC_CLASSES = (
    "classes: [static object, signboard, chair, dining table, bench, umbrella, suitcase, bicycle]"
)
IN_ZONE_A = (150, 200)  # top-left in the 768x576 frame: inside door-a
IN_ZONE_B = (520, 300)  # inside door-b
OUTSIDE = (480, 200)  # on the pavement, in neither zone
APPEAR_S = 15.0  # after the scene model's learn_s of the clean walkway


def load_box(opencv_data: Path) -> np.ndarray:
    image = cv2.imread(str(opencv_data / "box.png"))
    if image is None:
        raise FileNotFoundError(opencv_data / "box.png")
    return cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)  # 162 x 112


def load_fruit(opencv_data: Path) -> np.ndarray:
    image = cv2.imread(str(opencv_data / "fruits.jpg"))
    if image is None:
        raise FileNotFoundError(opencv_data / "fruits.jpg")
    return cv2.resize(image, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)  # 154 x 144


def person_patch(vtest_avi: Path, detector: Detector) -> np.ndarray:
    """A real walker cut out of vtest.avi at its detector box: someone to stand still in a zone."""
    cap = cv2.VideoCapture(str(vtest_avi))
    ok, pixels = cap.read()
    cap.release()
    assert ok
    found = detector.detect(pixels, 0.5)
    people = found[found.class_mask({"person"})]
    best = int(np.argmax(people.confidence))
    x1, y1, x2, y2 = (round(float(v)) for v in people.xyxy[best])
    return pixels[y1:y2, x1:x2].copy()


# --- whole-picture transforms (t in stream seconds) ---


def light_ramp(t: float) -> float:
    """Clouds: the light falls to 55% over 30 s, stays, and comes back over 20 s."""
    return float(np.interp(t, [20.0, 50.0, 60.0, 80.0], [1.0, 0.55, 0.55, 1.0]))


def slow_light(pixels: np.ndarray, t: float) -> np.ndarray:
    return np.clip(pixels.astype(np.float32) * light_ramp(t), 0, 255).astype(np.uint8)


def lamp_on(pixels: np.ndarray, t: float) -> np.ndarray:
    """A street lamp switched on at 40 s: 1.5x brighter at once."""
    gain = 1.5 if t >= 40.0 else 1.0
    return np.clip(pixels.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def moving_shadow(pixels: np.ndarray, t: float) -> np.ndarray:
    """A soft shadow (a cloud edge, an awning's shade) sweeping across the walkway at 8 px/s."""
    h, w = pixels.shape[:2]
    mask = np.zeros((h, w), np.float32)
    cx = int(-150 + 8.0 * t)
    cv2.ellipse(mask, (cx, h // 2), (160, 110), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 25)
    shade = 1.0 - 0.4 * mask
    return np.clip(pixels.astype(np.float32) * shade[..., None], 0, 255).astype(np.uint8)


def nudged(dx: float, dy: float, at_s: float) -> Transform:
    def apply(pixels: np.ndarray, t: float) -> np.ndarray:
        if t < at_s:
            return pixels
        matrix = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
        return cv2.warpAffine(
            pixels, matrix, (pixels.shape[1], pixels.shape[0]), borderMode=cv2.BORDER_REPLICATE
        )

    return apply


def blocked(start_s: float, end_s: float) -> Transform:
    """A hand (or a bag) over the lens: dark and without detail."""

    def apply(pixels: np.ndarray, t: float) -> np.ndarray:
        if not start_s <= t < end_s:
            return pixels
        return (cv2.GaussianBlur(pixels, (0, 0), 40) * 0.15).astype(np.uint8)

    return apply


def turned(at_s: float) -> Transform:
    """The camera turned to another view: here the same street seen mirrored and tilted."""

    def apply(pixels: np.ndarray, t: float) -> np.ndarray:
        if t < at_s:
            return pixels
        h, w = pixels.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 12.0, 1.25)
        return cv2.warpAffine(cv2.flip(pixels, 1), matrix, (w, h), borderMode=cv2.BORDER_REFLECT)

    return apply


@dataclass(frozen=True)
class StaticCase:
    name: str
    objects: tuple[tuple[str, tuple[int, int], float, float], ...] = ()  # (kind, xy, start, end)
    path: tuple[tuple[float, int, int], ...] = ()  # the box carried through
    transform: Transform | None = None
    truth: tuple[Truth, ...] = ()
    pedestrians_only: bool = False  # counts toward false static regions per hour


STATIC_CASES: tuple[StaticCase, ...] = (
    StaticCase("pedestrians only", pedestrians_only=True),
    StaticCase(
        "box left in zone, then removed",
        (("box", IN_ZONE_A, APPEAR_S, 65.0),),
        truth=(Truth("door-a", APPEAR_S, 65.0),),
    ),
    StaticCase(
        "fruit display left in the east zone",
        (("fruit", IN_ZONE_B, APPEAR_S, 79.0),),
        truth=(Truth("door-b", APPEAR_S, 79.0),),
    ),
    StaticCase("box left outside every zone", (("box", OUTSIDE, APPEAR_S, 79.0),)),
    StaticCase("box carried through", path=((15.0, 10, 200), (30.0, 580, 200))),
    StaticCase("box staying less than dwell", (("box", IN_ZONE_A, APPEAR_S, APPEAR_S + 18.0),)),
    StaticCase("person standing still in a zone", (("person", (230, 230), 12.0, 75.0),)),
    StaticCase("light falls and returns", transform=slow_light, pedestrians_only=True),
    StaticCase("lamp switched on", transform=lamp_on, pedestrians_only=True),
    StaticCase("soft shadow moving over the walkers", transform=moving_shadow, pedestrians_only=True),
    StaticCase(
        "camera nudged with a box present",
        (("box", IN_ZONE_A, APPEAR_S, 79.0),),
        transform=nudged(4.0, 3.0, 50.0),
        truth=(Truth("door-a", APPEAR_S, 79.0),),
    ),
    StaticCase("camera blocked", transform=blocked(40.0, 60.0), pedestrians_only=True),
    StaticCase("camera turned away", transform=turned(40.0), pedestrians_only=True),
)


@dataclass
class CaseRun:
    events: list[IncidentEvent]
    readings: list[SceneReading] = field(default_factory=list)
    relearns: int = 0
    nudges: int = 0


def static_zone_file(directory: Path, name: str) -> Path:
    text = ZONES_YAML.format(dwell=DWELL_S, clear=CLEAR_S, schedule="", exempt="")
    text = text.replace(
        "classes: [chair, dining table, bench, umbrella, potted plant, suitcase, bicycle]", STATIC_CLASSES
    )
    path = directory / f"static_{name.replace(' ', '_').replace(',', '')}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _frames(case: StaticCase, vtest_avi: Path, patches: dict[str, np.ndarray]) -> Iterator[Frame]:
    placements = [Placement(patches[kind], xy, a, b) for kind, xy, a, b in case.objects]
    if case.path:
        placements.append(
            Placement(patches["box"], case.path[0][1:], case.path[0][0], case.path[-1][0], path=case.path)
        )
    for frame in vtest_frames(vtest_avi, SAMPLE_FPS, tuple(placements)):
        if case.transform is None:
            yield frame
        else:
            yield Frame(
                np.ascontiguousarray(case.transform(frame.pixels, frame.ts)), frame.camera_id, frame.ts
            )


def run_static_case(
    case: StaticCase, detector: Detector, vtest_avi: Path, patches: dict[str, np.ndarray], directory: Path
) -> CaseRun:
    zone_file = load_zone_file(static_zone_file(directory, case.name))
    run = CaseRun(events=[])
    eye = StaticObjects(SceneSettings(), on_reading=run.readings.append, goods=goods_classes(zone_file))
    pipeline = AnalyzePipeline(detector, zone_file, START, scene=eye)
    run.events = list(pipeline.run(_frames(case, vtest_avi, patches)))
    run.relearns = eye.model.relearns
    run.nudges = eye.model.nudges
    return run


def false_regions(run: CaseRun) -> int:
    """Distinct static regions that appeared (a region is new when no region stood there before)."""
    count = 0
    previous = np.zeros((0, 4), np.float32)
    for reading in run.readings:
        boxes = reading.regions.xyxy
        for box in boxes:
            if not len(previous):
                count += 1
                continue
            ix = np.clip(np.minimum(box[2], previous[:, 2]) - np.maximum(box[0], previous[:, 0]), 0, None)
            iy = np.clip(np.minimum(box[3], previous[:, 3]) - np.maximum(box[1], previous[:, 1]), 0, None)
            if not ((ix * iy) > 0).any():
                count += 1
        previous = boxes
    return count
