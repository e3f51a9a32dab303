"""Precision and recall of a detector on held-out verdicts: only what an inspector judged counts.

For every held-out picture the detector runs at the edge's confidence threshold; each judged
box is matched one-to-one to a detection of the same label with IoU >= MATCH_IOU (best pairs
first). Then, per judged box:

- confirmed and matched: TP (the goods are still found)
- confirmed, no match:   FN (missed)
- rejected and matched:  FP (the false alarm would be raised again)
- rejected, no match:    TN (the false alarm is gone)

precision = TP / (TP + FP), recall = TP / (TP + FN); None when the denominator is 0. Detections
that match no judged box are counted as `unjudged`, not as errors: nobody looked at them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from models.detector import Detector
from models.postprocess import box_iou_one_to_many
from models.training.verdicts import JudgedPicture, Verdict
from models.types import Detections, Image

MATCH_IOU = 0.5


@dataclass(frozen=True)
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    unjudged: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values(), strict=True)))

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    def as_dict(self) -> dict[str, float | int | None]:
        return {"precision": self.precision, "recall": self.recall, **asdict(self)}

    def line(self) -> str:
        """`precision=0.500 recall=0.333 tp=1 fp=1 fn=2 tn=1 unjudged=4` (n/a: nothing to divide)."""

        def share(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        return f"precision={share(self.precision)} recall={share(self.recall)} " + " ".join(
            f"{key}={value}" for key, value in asdict(self).items()
        )


def judge(picture: JudgedPicture, detections: Detections, size_wh: tuple[int, int]) -> Counts:
    """Counts for one picture given the detector's boxes on it (pixels of that picture)."""
    w, h = size_wh
    labels = detections.labels
    iou = np.zeros((len(picture.boxes), len(detections)), np.float32)
    for row, box in enumerate(picture.boxes):
        if len(detections):
            pixels = np.array(box.bbox, np.float32) * np.array([w, h, w, h], np.float32)
            same_label = np.array([label == box.label for label in labels])
            iou[row] = box_iou_one_to_many(pixels, detections.xyxy) * same_label
    matched = np.zeros(len(picture.boxes), bool)
    used = np.zeros(len(detections), bool)
    while iou.size and iou.max() >= MATCH_IOU:
        row, column = (int(v) for v in np.unravel_index(int(iou.argmax()), iou.shape))
        matched[row], used[column] = True, True
        iou[row, :], iou[:, column] = 0.0, 0.0
    hits, misses = int(matched.sum()), int((~matched).sum())
    unjudged = int((~used).sum())
    if picture.verdict is Verdict.CONFIRMED:
        return Counts(tp=hits, fn=misses, unjudged=unjudged)
    return Counts(fp=hits, tn=misses, unjudged=unjudged)


def evaluate(
    detector: Detector, pictures: Iterable[tuple[JudgedPicture, Image]], conf_threshold: float
) -> Counts:
    total = Counts()
    for picture, image in pictures:
        detections = detector.detect(image, conf_threshold=conf_threshold)
        total += judge(picture, detections, (int(image.shape[1]), int(image.shape[0])))
    return total
