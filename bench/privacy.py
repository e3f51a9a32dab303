"""How many faces survive the evidence blur on real CCTV: person boxes only, and with the face model.

On vtest.avi at one picture per second (80 pictures, 768x576), the bundled face detector
(BlazeFace on 256 px tiles) is the judge: it counts the faces it finds in the original picture,
then in the picture as evidence leaves the box (a) with only the detector's person boxes blurred
(the obvious way, and curbwatch before the face model) and (b) with the faces blurred as well
(edge.evidence.render.blur_people with faces). What it still finds after blurring are faces
that stayed recognisable enough to be found. It is an imperfect judge (about one box in six it
reports on vtest is a torso, a cone or a wall: see models/weights/blazeface_back.md), so the
figures are relative, in the same run.

    .venv/bin/python -m bench.privacy
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np

from edge.evidence.render import blur_people
from models.faces import load_face_detector
from models.nanodet import DEFAULT_MODEL_PATH, NanoDetDetector
from models.postprocess import box_iou

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = Path(os.environ.get("CURBWATCH_TESTDATA", ROOT / ".cache" / "testdata"))


def matched(found: np.ndarray, originals: np.ndarray) -> int:
    """Faces found after blurring that are faces of the original picture (IoU >= 0.3)."""
    if not len(found) or not len(originals):
        return 0
    return int((box_iou(found, originals).max(axis=1) >= 0.3).sum())


def main() -> None:
    cv2.setNumThreads(1)
    detector = NanoDetDetector(DEFAULT_MODEL_PATH, threads=1)
    faces = load_face_detector()
    cap = cv2.VideoCapture(str(TESTDATA / "opencv" / "vtest.avi"))
    index = 0
    totals = {"faces": 0, "outside_people": 0, "left_people_only": 0, "left_with_faces": 0}
    face_ms: list[float] = []
    while True:
        ok, pixels = cap.read()
        if not ok:
            break
        index += 1
        if (index - 1) % 10:
            continue
        detections = detector.detect(pixels, 0.25)
        started = time.perf_counter()
        found = faces.detect(pixels)
        face_ms.append((time.perf_counter() - started) * 1000)
        boxes = found.xyxy
        totals["faces"] += len(boxes)
        people = detections[detections.class_mask({"person"})].xyxy
        if len(boxes):
            inside = box_iou(boxes, people).max(axis=1) > 0 if len(people) else np.zeros(len(boxes), bool)
            totals["outside_people"] += int((~inside).sum())
        people_only = blur_people(pixels, detections)
        with_faces = blur_people(pixels, detections, faces=found)
        totals["left_people_only"] += matched(faces.detect(people_only).xyxy, boxes)
        totals["left_with_faces"] += matched(faces.detect(with_faces).xyxy, boxes)
    cap.release()
    n = totals["faces"]
    left_people, left_faces = totals["left_people_only"], totals["left_with_faces"]
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} pictures={index // 10} (vtest.avi, 1/s)")
    outside = totals["outside_people"]
    print(f"faces the face model finds in the originals: {n}; outside any person box: {outside}")
    print(f"still found after blurring person boxes only:  {left_people} ({left_people / max(n, 1):.0%})")
    print(f"still found after blurring people and faces:   {left_faces} ({left_faces / max(n, 1):.0%})")
    print(f"face model: {np.median(face_ms):.1f} ms per picture (median, 256 px tiles, 1 thread)")


if __name__ == "__main__":
    main()
