"""An ultralytics dataset from judged pictures: images/{train,val}, labels/{train,val}, data.yaml.

Labels of a picture:
- each confirmed box, as its label's class;
- nothing for a rejected box: a picture with only rejected boxes is a background image, so the
  model learns not to fire there (hard negatives);
- with a base model that names its classes (yolo11n.pt: COCO), what the base finds with
  confidence >= BASE_LABEL_CONF away from every judged box. An inspector judges one incident's
  boxes, not the people and cars around them; without these labels fine-tuning would teach the
  model that they are background, and the edge needs its person boxes (privacy blur, the scene
  model).

The class names are the base model's followed by confirmed labels it lacks (so a COCO model keeps
its class ids); a base without real names (built from yolo11n.yaml: '0', '1', ...) gets the
confirmed labels alone.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.detector import Detector
from models.postprocess import box_iou_one_to_many
from models.training.holdout import Split
from models.training.verdicts import JudgedPicture, TrainingError, Verdict
from models.types import Image

BASE_LABEL_CONF = 0.5
JUDGED_OVERLAP_IOU = 0.3  # a base box this close to a judged one is that object: the verdict decides
TRAIN, HELD_OUT = "train", "val"  # ultralytics' folder names


@dataclass(frozen=True)
class Dataset:
    root: Path
    data_yaml: Path
    names: tuple[str, ...]
    confirmed_boxes: int  # labels from verdicts, both sides
    base_boxes: int  # labels kept from the base model
    background_images: int  # pictures with no label at all


def has_real_names(names: Sequence[str]) -> bool:
    return any(name != str(index) for index, name in enumerate(names))


def class_names(base_names: Sequence[str], pictures: Sequence[JudgedPicture]) -> tuple[str, ...]:
    confirmed = sorted({b.label for p in pictures if p.verdict is Verdict.CONFIRMED for b in p.boxes})
    if has_real_names(base_names):
        names = (*base_names, *(label for label in confirmed if label not in base_names))
    else:
        names = tuple(confirmed)
    if not names:
        raise TrainingError("no confirmed box to learn from, and the base model names no classes")
    return names


def _yolo_line(class_index: int, xyxy_norm: Sequence[float]) -> str | None:
    x1, y1, x2, y2 = (min(max(float(v), 0.0), 1.0) for v in xyxy_norm)
    if x2 <= x1 or y2 <= y1:
        return None
    return f"{class_index} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {x2 - x1:.6f} {y2 - y1:.6f}"


def _base_lines(picture: JudgedPicture, image: Image, base: Detector) -> list[str]:
    h, w = image.shape[:2]
    scale = np.array([w, h, w, h], np.float32)
    found = base.detect(image, conf_threshold=BASE_LABEL_CONF)
    judged = np.array([b.bbox for b in picture.boxes], np.float32).reshape(-1, 4) * scale
    lines = []
    for xyxy, class_id in zip(found.xyxy, found.class_id, strict=True):
        if len(judged) and box_iou_one_to_many(xyxy, judged).max() >= JUDGED_OVERLAP_IOU:
            continue
        line = _yolo_line(int(class_id), xyxy / scale)
        if line is not None:
            lines.append(line)
    return lines


def decode(data: bytes, where: str) -> Image:
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise TrainingError(f"{where}: the picture cannot be decoded")
    return np.asarray(pixels, dtype=np.uint8)


def write_dataset(
    export_zip: Path, split: Split, names: tuple[str, ...], root: Path, base: Detector | None
) -> Dataset:
    """Write the dataset under `root` (which must not hold one yet)."""
    index = {name: n for n, name in enumerate(names)}
    confirmed = base_boxes = background = 0
    with zipfile.ZipFile(export_zip) as archive:
        for side, pictures in ((TRAIN, split.train), (HELD_OUT, split.held_out)):
            (root / "images" / side).mkdir(parents=True)
            (root / "labels" / side).mkdir(parents=True)
            for picture in pictures:
                data = archive.read(picture.image_name)
                lines = []
                if picture.verdict is Verdict.CONFIRMED:
                    lines = [_yolo_line(index[b.label], b.bbox) for b in picture.boxes]
                    confirmed += len(lines)
                if base is not None:
                    from_base = _base_lines(picture, decode(data, picture.image_name), base)
                    base_boxes += len(from_base)
                    lines += from_base
                background += not any(lines)
                (root / "images" / side / f"{picture.incident_id}.jpg").write_bytes(data)
                text = "".join(f"{line}\n" for line in lines if line)
                (root / "labels" / side / f"{picture.incident_id}.txt").write_text(text)
    data_yaml = root / "data.yaml"
    # JSON is YAML: every label reads back as written, whatever characters it has.
    data_yaml.write_text(
        f"path: {json.dumps(str(root.resolve()))}\ntrain: images/{TRAIN}\nval: images/{HELD_OUT}\n"
        f"names: {json.dumps(list(names), ensure_ascii=False)}\n",
        encoding="utf-8",
    )
    (root / "split.json").write_text(
        json.dumps(
            {
                "held_out": [list(d) for d in split.held_out_days],
                "train": [list(d) for d in split.train_days],
                "held_out_incidents": [p.incident_id for p in split.held_out],
            },
            indent=2,
        )
    )
    return Dataset(root, data_yaml, names, confirmed, base_boxes, background)


def held_out_images(dataset: Dataset, split: Split) -> Iterator[tuple[JudgedPicture, Image]]:
    for picture in split.held_out:
        path = dataset.root / "images" / HELD_OUT / f"{picture.incident_id}.jpg"
        yield picture, decode(path.read_bytes(), str(path))
