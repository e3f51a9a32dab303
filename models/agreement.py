"""How well one detector reproduces another's boxes on the same images (int8 vs fp32, engine vs engine)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from models.detector import Detector
from models.postprocess import box_iou_one_to_many
from models.types import Detections, FloatArray, Image, IntArray

MATCH_IOU = 0.5  # a candidate box "finds the same object" as the reference box when they overlap this much


@dataclass(frozen=True)
class Matches:
    """One image: reference box i matched candidate box j with this IoU (same class)."""

    reference: IntArray
    candidate: IntArray
    iou: FloatArray


def match_detections(reference: Detections, candidate: Detections, min_iou: float = MATCH_IOU) -> Matches:
    """Greedy one-to-one matching, best reference score first: same class and IoU >= `min_iou`."""
    free = np.ones(len(candidate), dtype=bool)
    pairs: list[tuple[int, int, float]] = []
    for index in np.argsort(-reference.confidence, kind="stable"):
        if not free.any():
            break
        same_class = candidate.class_id == reference.class_id[index]
        iou = box_iou_one_to_many(reference.xyxy[index], candidate.xyxy) * free * same_class
        best = int(iou.argmax())
        if iou[best] >= min_iou:
            free[best] = False
            pairs.append((int(index), best, float(iou[best])))
    return Matches(
        reference=np.array([p[0] for p in pairs], dtype=np.int64),
        candidate=np.array([p[1] for p in pairs], dtype=np.int64),
        iou=np.array([p[2] for p in pairs], dtype=np.float32),
    )


@dataclass(frozen=True)
class Agreement:
    """How well a candidate detector reproduces a reference's boxes on the same images."""

    reference_boxes: int
    candidate_boxes: int
    matched: int
    max_score_delta: float
    median_score_delta: float = 0.0  # signed: candidate - reference over matched boxes
    min_matched_iou: float = 1.0
    max_missed_score: float = 0.0  # the best reference score among boxes the candidate missed

    def summary(self) -> str:
        """One line for the CLI and the model cards."""
        return (
            f"{self.matched}/{self.reference_boxes} reference boxes found again (recall {self.recall:.3f}), "
            f"{self.extra} extra; score change median {self.median_score_delta:+.4f}, "
            f"largest {self.max_score_delta:.3f}; best missed score {self.max_missed_score:.3f}"
        )

    @property
    def recall(self) -> float:
        """Share of reference boxes the candidate found again (1 - missed share)."""
        return self.matched / self.reference_boxes if self.reference_boxes else 1.0

    @property
    def missed(self) -> int:
        return self.reference_boxes - self.matched

    @property
    def extra(self) -> int:
        """Candidate boxes with no reference box."""
        return self.candidate_boxes - self.matched


def compare_detectors(reference: Detector, candidate: Detector, images: Iterable[Image]) -> Agreement:
    """Match each image's boxes (`match_detections`) and sum up."""
    reference_boxes = candidate_boxes = 0
    deltas: list[float] = []
    ious: list[float] = []
    missed_scores: list[float] = []
    for image in images:
        want, got = reference.detect(image), candidate.detect(image)
        reference_boxes += len(want)
        candidate_boxes += len(got)
        matches = match_detections(want, got)
        deltas.extend((got.confidence[matches.candidate] - want.confidence[matches.reference]).tolist())
        ious.extend(matches.iou.tolist())
        missed = np.ones(len(want), dtype=bool)
        missed[matches.reference] = False
        missed_scores.extend(want.confidence[missed].tolist())
    return Agreement(
        reference_boxes,
        candidate_boxes,
        len(deltas),
        max((abs(d) for d in deltas), default=0.0),
        statistics.median(deltas) if deltas else 0.0,
        min(ious, default=1.0),
        max(missed_scores, default=0.0),
    )
