"""`Detector` over ultralytics' own runtime, for .pt checkpoints (training machines, not the edge).

ultralytics and torch are imported only when such a detector is built: the
edge image has neither, and `import models` must stay light.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from models.detector import ModelError
from models.types import Detections, Image


def import_ultralytics() -> ModuleType:
    """Import ultralytics with its network features off: no update checks, no pip auto-installs."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    try:
        import ultralytics
    except ImportError as error:
        raise ModelError(
            "ultralytics is not installed: `pip install curbwatch[train]` runs .pt models"
        ) from error
    return ultralytics


class UltralyticsDetector:
    """Runs a YOLO .pt checkpoint with `ultralytics.YOLO(...).predict`; implements `Detector`."""

    def __init__(
        self,
        model_path: Path,
        conf_threshold: float = 0.25,
        iou_threshold: float = 0.7,
        max_det: int = 300,
        imgsz: int = 640,
        device: str = "cpu",
    ) -> None:
        model_path = Path(model_path)
        if not model_path.is_file():
            # ultralytics would try to download a missing official name; we never do.
            raise ModelError(f"model file not found: {model_path}")
        ultralytics = import_ultralytics()
        try:
            self._model: Any = ultralytics.YOLO(str(model_path), task="detect")
        except Exception as error:  # ultralytics raises many kinds for a bad checkpoint
            raise ModelError(f"{model_path}: not a loadable ultralytics model ({error})") from error
        names = self._model.names
        self._class_names = tuple(str(names[i]) for i in range(len(names)))
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self.max_det = max_det
        self.imgsz = imgsz
        self.device = device
        # Warm-up: the first predict builds ultralytics' predictor and allocates buffers.
        self.detect(np.full((imgsz, imgsz, 3), 114, dtype=np.uint8))

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._class_names

    @property
    def input_size_wh(self) -> tuple[int, int]:
        return self.imgsz, self.imgsz

    def detect(self, image: Image, conf_threshold: float | None = None) -> Detections:
        result = self._model.predict(
            image,
            conf=self.conf_threshold if conf_threshold is None else conf_threshold,
            iou=self.iou_threshold,
            max_det=self.max_det,
            imgsz=self.imgsz,
            device=self.device,
            verbose=False,
        )[0]
        boxes = result.boxes
        return Detections(
            xyxy=boxes.xyxy.cpu().numpy(),
            confidence=boxes.conf.cpu().numpy(),
            class_id=boxes.cls.cpu().numpy().astype(np.int64),
            class_names=self._class_names,
        )
