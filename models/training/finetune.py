"""`curbwatch models train`: verdict export -> dataset -> ultralytics fine-tuning -> ONNX -> figures.

Both figures come from the ONNX files the edge would run (the base exported as it is, the
fine-tuned model exported through the same `models.export.export_onnx`), on the same held-out
pictures at the same confidence threshold, so before and after differ only in the weights.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from models.detector import ModelError
from models.training.dataset import Dataset, class_names, has_real_names, held_out_images, write_dataset
from models.training.evaluate import MATCH_IOU, Counts, evaluate
from models.training.holdout import Split, split_by_camera_day
from models.training.verdicts import TrainingError, read_export
from models.yolo_onnx import YoloOnnxDetector

MODEL_SUFFIXES = (".pt", ".yaml", ".yml")


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 30
    imgsz: int = 640
    batch: int = 16
    device: str | None = None  # ultralytics' choice: a GPU when there is one
    conf_threshold: float = 0.25  # the edge backends' default, so the figures are the edge's
    held_out_fraction: float = 0.2
    base_labels: bool = True


@dataclass(frozen=True)
class TrainReport:
    split: Split
    dataset: Dataset
    base_onnx: Path
    onnx: Path
    before: Counts
    after: Counts


def check_base(base: str) -> Path:
    """The --base argument, checked before anything is written or imported."""
    if "://" in base:
        raise TrainingError(f"{base}: --base must be a local file; curbwatch never downloads models")
    path = Path(base)
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise TrainingError(f"{base}: expected an ultralytics .pt checkpoint or a model .yaml (yolo11n.yaml)")
    if path.suffix.lower() == ".pt" and not path.is_file():
        # ultralytics would fetch a missing official name from the internet; we never do.
        raise TrainingError(f"{base}: no such file (bring the checkpoint, e.g. yolo11n.pt, to this machine)")
    return path


def _ultralytics() -> ModuleType:
    from models.ultralytics_backend import import_ultralytics

    try:
        return import_ultralytics()
    except ModelError as error:
        raise TrainingError(str(error)) from error


def base_checkpoint(base: Path, out_dir: Path) -> Path:
    """A .pt to start from: the user's, or one built from a model definition (random weights)."""
    if base.suffix.lower() == ".pt":
        return base
    ultralytics = _ultralytics()
    import torch

    torch.manual_seed(0)  # the same random weights on every run, so reruns print the same figures
    try:
        model = ultralytics.YOLO(str(base), task="detect")
    except Exception as error:  # ultralytics raises many kinds for a bad or unknown definition
        raise TrainingError(f"{base}: not an ultralytics model definition ({error})") from error
    checkpoint = out_dir / "base.pt"
    model.save(str(checkpoint))
    return checkpoint


def _export(checkpoint: Path, out: Path, imgsz: int, conf_threshold: float) -> YoloOnnxDetector:
    from models.export import export_onnx

    try:
        return YoloOnnxDetector(export_onnx(checkpoint, out, imgsz=imgsz), conf_threshold=conf_threshold)
    except ModelError as error:
        raise TrainingError(str(error)) from error


def _train(checkpoint: Path, dataset: Dataset, settings: TrainSettings, run_dir: Path) -> Path:
    model = _ultralytics().YOLO(str(checkpoint), task="detect")
    try:
        model.train(
            data=str(dataset.data_yaml),
            epochs=settings.epochs,
            imgsz=settings.imgsz,
            batch=settings.batch,
            device=settings.device,
            project=str(run_dir.parent),
            name=run_dir.name,
            exist_ok=True,
            plots=False,  # plotting wants a font from the internet
            seed=0,
            deterministic=True,
            verbose=False,
        )
    except Exception as error:  # torch and ultralytics raise many unrelated types
        raise TrainingError(f"training failed: {error}") from error
    # The last epoch, not ultralytics' "best": best is chosen on the held-out pictures, which
    # would then flatter the after figures.
    return Path(model.trainer.last)


def _empty_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise TrainingError(f"{out_dir}: exists and is not an empty folder; choose a new --out")
    out_dir.mkdir(parents=True, exist_ok=True)


def fine_tune(
    export_zip: Path, base: str, out_dir: Path, settings: TrainSettings, say: Callable[[str], None]
) -> TrainReport:
    pictures = read_export(export_zip)
    split = split_by_camera_day(pictures, settings.held_out_fraction)
    base_path = check_base(base)
    _empty_out_dir(out_dir)
    checkpoint = base_checkpoint(base_path, out_dir)
    say(f"exporting the base model {base} for the before figures and its labels")
    before_model = _export(checkpoint, out_dir / "base.onnx", settings.imgsz, settings.conf_threshold)
    names = class_names(before_model.class_names, pictures)
    keeps_base = settings.base_labels and has_real_names(before_model.class_names)
    dataset = write_dataset(
        export_zip, split, names, out_dir / "dataset", before_model if keeps_base else None
    )
    say(
        f"dataset {dataset.root}: {len(split.train)} pictures to train on, {len(split.held_out)} held out; "
        f"{dataset.confirmed_boxes} confirmed boxes, {dataset.base_boxes} from the base model, "
        f"{dataset.background_images} background pictures"
    )
    last = _train(checkpoint, dataset, settings, out_dir / "train")
    after_model = _export(last, out_dir / "model.onnx", settings.imgsz, settings.conf_threshold)
    before = evaluate(before_model, held_out_images(dataset, split), settings.conf_threshold)
    after = evaluate(after_model, held_out_images(dataset, split), settings.conf_threshold)
    report = TrainReport(split, dataset, before_model.model_path, after_model.model_path, before, after)
    (out_dir / "metrics.json").write_text(json.dumps(_metrics(report, settings), indent=2) + "\n")
    return report


def _metrics(report: TrainReport, settings: TrainSettings) -> dict[str, object]:
    return {
        "held_out_camera_days": [list(d) for d in report.split.held_out_days],
        "held_out_pictures": len(report.split.held_out),
        "conf_threshold": settings.conf_threshold,
        "match_iou": MATCH_IOU,
        "names": list(report.dataset.names),
        "before": report.before.as_dict(),
        "after": report.after.as_dict(),
    }
