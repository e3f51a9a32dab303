"""`curbwatch models train` end to end on a verdict export made from real footage.

yolo11n.yaml (random weights), 1 epoch, 160 px: this checks the plumbing (export -> dataset ->
split -> ultralytics -> ONNX our backend runs) and the evaluation's bookkeeping, not accuracy.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result

from edge.cli import main
from models.training.holdout import split_by_camera_day
from models.training.verdicts import read_export
from models.yolo_onnx import YoloOnnxDetector
from review_ui.review import Verdict
from tests.models.verdict_export import Sent

pytestmark = pytest.mark.slow

FIGURES = re.compile(
    r"^(before|after): precision=(n/a|[01]\.\d{3}) recall=(n/a|[01]\.\d{3}) "
    r"tp=(\d+) fp=(\d+) fn=(\d+) tn=(\d+) unjudged=(\d+)$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Trained:
    export: Path
    sent: list[Sent]
    out: Path
    result: Result


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, verdict_export: tuple[Path, list[Sent]]) -> Trained:
    zip_path, sent = verdict_export
    out = tmp_path_factory.mktemp("trained") / "run"
    args = ["models", "train", str(zip_path), "--base", "yolo11n.yaml", "--epochs", "1", "--imgsz", "160"]
    result = CliRunner().invoke(main, [*args, "--batch", "4", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return Trained(zip_path, sent, out, result)


def _stems(folder: Path, suffix: str) -> set[str]:
    return {p.name.removesuffix(suffix) for p in folder.iterdir()}


def test_the_dataset_holds_out_whole_camera_days(trained: Trained) -> None:
    dataset = trained.out / "dataset"
    split = json.loads((dataset / "split.json").read_text())
    held_days = {tuple(d) for d in split["held_out"]}
    train_days = {tuple(d) for d in split["train"]}
    every_day = {(s.camera, s.day) for s in trained.sent}
    assert held_days and train_days and held_days.isdisjoint(train_days)
    assert (
        held_days | train_days
        == every_day
        == {(c, d) for c in ("cam-plaza", "cam-street") for d in ("2026-05-01", "2026-05-02")}
    )
    held = {s.incident_id for s in trained.sent if (s.camera, s.day) in held_days}
    assert _stems(dataset / "images" / "val", ".jpg") == _stems(dataset / "labels" / "val", ".txt") == held
    rest = {s.incident_id for s in trained.sent} - held
    assert (
        _stems(dataset / "images" / "train", ".jpg") == _stems(dataset / "labels" / "train", ".txt") == rest
    )
    # Deterministic: the same export splits the same way again.
    again = split_by_camera_day(read_export(trained.export), 0.2)
    assert {p.incident_id for p in again.held_out} == held == set(split["held_out_incidents"])


def test_labels_are_the_confirmed_boxes_and_rejections_are_background(trained: Trained) -> None:
    dataset = trained.out / "dataset"
    data = (dataset / "data.yaml").read_text()
    # yolo11n.yaml names no classes ('0', '1', ...): the confirmed labels are the classes.
    confirmed = sorted({label for s in trained.sent if s.verdict is Verdict.CONFIRMED for label in s.labels})
    assert f"names: {json.dumps(confirmed)}" in data and confirmed == ["bicycle", "car", "truck"]
    with zipfile.ZipFile(trained.export) as archive:
        lines_of_manifest = archive.read("manifest.jsonl").decode().splitlines()
    drawn = {r["incident_id"]: r["objects"] for r in map(json.loads, lines_of_manifest)}
    for s in trained.sent:
        side = "val" if (dataset / "images" / "val" / f"{s.incident_id}.jpg").exists() else "train"
        lines = (dataset / "labels" / side / f"{s.incident_id}.txt").read_text().splitlines()
        if s.verdict is Verdict.REJECTED:
            assert lines == [], s
            continue
        assert [confirmed[int(line.split()[0])] for line in lines] == list(s.labels)
        for line, obj in zip(lines, drawn[s.incident_id], strict=True):
            x1, y1, x2, y2 = obj["bbox"]
            want = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
            assert [float(v) for v in line.split()[1:]] == pytest.approx(want, abs=1e-6)
    # The pictures are the evidence exactly as exported (boxes burnt in: docs/training.md).
    with zipfile.ZipFile(trained.export) as archive:
        first = trained.sent[0].incident_id
        side = "val" if (dataset / "images" / "val" / f"{first}.jpg").exists() else "train"
        assert (
            archive.read(f"images/{first}.jpg") == (dataset / "images" / side / f"{first}.jpg").read_bytes()
        )


def test_the_fine_tuned_onnx_runs_in_the_edge_backend(trained: Trained, vtest_avi: Path) -> None:
    detector = YoloOnnxDetector(trained.out / "model.onnx")
    assert detector.class_names == ("bicycle", "car", "truck") and detector.input_size_wh == (160, 160)
    capture = cv2.VideoCapture(str(vtest_avi))
    ok, frame = capture.read()
    capture.release()
    assert ok
    found = detector.detect(np.asarray(frame, np.uint8), conf_threshold=0.0)  # random weights: keep all
    h, w = frame.shape[:2]
    assert len(found) > 0
    assert (
        found.xyxy.min() >= -1
        and found.xyxy[:, [0, 2]].max() <= w + 1
        and found.xyxy[:, [1, 3]].max() <= h + 1
    )
    assert YoloOnnxDetector(trained.out / "base.onnx").input_size_wh == (160, 160)


def test_before_and_after_figures_are_printed_and_add_up(trained: Trained) -> None:
    figures = {m[0]: m[1:] for m in FIGURES.findall(trained.result.output)}
    assert set(figures) == {"before", "after"}, trained.result.output[-2000:]
    split = json.loads((trained.out / "dataset" / "split.json").read_text())
    held = [s for s in trained.sent if s.incident_id in split["held_out_incidents"]]
    confirmed = sum(len(s.labels) for s in held if s.verdict is Verdict.CONFIRMED)
    rejected = sum(len(s.labels) for s in held if s.verdict is Verdict.REJECTED)
    metrics = json.loads((trained.out / "metrics.json").read_text())
    for name, (precision, recall, *counts) in figures.items():
        tp, fp, fn, tn, unjudged = (int(c) for c in counts)
        assert tp + fn == confirmed and fp + tn == rejected, (name, counts)
        assert precision == ("n/a" if tp + fp == 0 else f"{tp / (tp + fp):.3f}")
        assert recall == ("n/a" if tp + fn == 0 else f"{tp / (tp + fn):.3f}")
        assert metrics[name] == {
            "precision": None if precision == "n/a" else pytest.approx(float(precision), abs=5e-4),
            "recall": None if recall == "n/a" else pytest.approx(float(recall), abs=5e-4),
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "tn": tn,
            "unjudged": unjudged,
        }
    assert f"held out: {len(held)} verdicts from" in trained.result.output
