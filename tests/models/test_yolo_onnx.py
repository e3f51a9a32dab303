"""YoloOnnxDetector against ultralytics itself, on the same ONNX files and the same pixels.

Real weights: nudenet's 320n (an ultralytics 8.2 YOLOv8n export; AGPL, used only
as a test fixture). Random weights: YOLO11n (NMS head) and YOLO26n (end-to-end
head) built from their YAML, with BatchNorm statistics taken from real images and
the class layer rescaled, so scores spread over 0..1 instead of all being equal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from models.backend import OnnxRuntimeBackend
from models.detector import ModelError
from models.letterbox import letterbox
from models.postprocess import box_iou_one_to_many
from models.types import Detections, Image
from models.yolo_onnx import (
    YoloOnnxDetector,
    decode_end2end_head,
    decode_nms_head,
    parse_ultralytics_metadata,
)

os.environ.setdefault("YOLO_OFFLINE", "1")  # before any ultralytics import: no network checks
IMGSZ = 320


@pytest.fixture(scope="module")
def ultralytics() -> Any:
    return pytest.importorskip("ultralytics")


@pytest.fixture(scope="module")
def nudenet_onnx() -> Path:
    nudenet = pytest.importorskip("nudenet")
    return Path(nudenet.__file__).parent / "320n.onnx"


@pytest.fixture(scope="module")
def images(bus_jpg: Path, leuven_jpg: Path, vtest_avi: Path) -> dict[str, Image]:
    capture = cv2.VideoCapture(str(vtest_avi))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, frame = capture.read()
    capture.release()
    bus, leuven = cv2.imread(str(bus_jpg)), cv2.imread(str(leuven_jpg))
    assert ok and bus is not None and leuven is not None
    return {
        name: np.asarray(pixels, dtype=np.uint8)
        for name, pixels in (("bus", bus), ("leuven", leuven), ("vtest", frame))
    }


def _spread_scores(model: Any, images: list[Image]) -> None:
    """Make a random-weight YOLO give varied boxes and scores (see the module docstring)."""
    import torch

    from models.letterbox import to_nchw_rgb

    net = model.model.float()
    batch = torch.from_numpy(np.concatenate([to_nchw_rgb(letterbox(i, (IMGSZ, IMGSZ))[0]) for i in images]))
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 1.0  # one training pass sets the running statistics to this batch's
    net.train()
    with torch.no_grad():
        net(batch)
    net.eval()
    head = net.model[-1]
    branches = [head.cv3, *([head.one2one_cv3] if getattr(head, "one2one_cv3", None) is not None else [])]
    class_layers = [sequence[-1] for branch in branches for sequence in branch]
    spread: dict[Any, float] = {}
    hooks = [
        layer.register_forward_hook(
            lambda mod, _, out: spread.__setitem__(mod, float((out - mod.bias.view(1, -1, 1, 1)).std()))
        )
        for layer in class_layers
    ]
    end2end = head.end2end
    with torch.no_grad():
        head.end2end = False
        net(batch)
        head.end2end = end2end
        net(batch)
    for hook in hooks:
        hook.remove()
    with torch.no_grad():
        for layer in class_layers:
            layer.weight.mul_(0.75 / spread[layer])
            layer.bias.fill_(-2.0)


@pytest.fixture(scope="module")
def random_exports(
    ultralytics: Any, images: dict[str, Image], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Static YOLO11n, dynamic YOLO11n and end-to-end YOLO26n ONNX files, built once per run."""
    import torch

    folder = tmp_path_factory.mktemp("yolo_exports")
    exports = {}
    for name, yaml, end2end in (("yolo11n", "yolo11n.yaml", False), ("yolo26n", "yolo26n.yaml", True)):
        torch.manual_seed(0)
        model = ultralytics.YOLO(yaml)
        _spread_scores(model, list(images.values()))
        for dynamic in (False, True) if not end2end else (False,):
            exported = model.export(
                format="onnx", imgsz=IMGSZ, dynamic=dynamic, nms=False if end2end else None, verbose=False
            )
            key = f"{name}{'-dynamic' if dynamic else ''}"
            exports[key] = Path(exported).rename(folder / f"{key}.onnx")
    return exports


def _reference(ultralytics: Any, model_path: Path, image: Image, conf: float) -> Detections:
    result = ultralytics.YOLO(str(model_path), task="detect").predict(
        image, conf=conf, imgsz=IMGSZ, verbose=False
    )[0]
    names = tuple(result.names[i] for i in range(len(result.names)))
    boxes = result.boxes
    return Detections(boxes.xyxy.numpy(), boxes.conf.numpy(), boxes.cls.numpy().astype(np.int64), names)


def assert_same_detections(ours: Detections, theirs: Detections) -> None:
    """Same count; each of ours has its own partner: same class, IoU > 0.99, score within 1e-3."""
    assert len(ours) == len(theirs)
    free = np.ones(len(theirs), dtype=bool)
    for box, score, class_id in zip(ours.xyxy, ours.confidence, ours.class_id, strict=True):
        # Random weights can yield inverted boxes (x2 < x1), where IoU means nothing: then corners must agree.
        same_box = (box_iou_one_to_many(box, theirs.xyxy) > 0.99) | (
            np.abs(theirs.xyxy - box).max(axis=1) < 0.05
        )
        fits = same_box & (np.abs(theirs.confidence - score) < 1e-3) & (theirs.class_id == class_id) & free
        assert fits.any(), f"no ultralytics box matches {box} {score:.4f} class {class_id}"
        free[int(np.flatnonzero(fits)[0])] = False


def _busy_threshold(detector: YoloOnnxDetector, image: Image) -> float:
    """A threshold a few percent of the anchors pass: enough boxes to exercise NMS and max_det."""
    output, _ = detector.raw_output(image)
    scores = output[:, 4] if detector.end2end else output[4:].max(axis=0)
    return float(np.quantile(scores, 0.97))


@pytest.mark.parametrize("conf", [0.25, 0.03])
def test_matches_ultralytics_on_a_real_model(
    ultralytics: Any, nudenet_onnx: Path, images: dict[str, Image], conf: float
) -> None:
    detector = YoloOnnxDetector(nudenet_onnx, conf_threshold=conf, imgsz=IMGSZ)
    ours = detector.detect(images["bus"])
    assert len(ours) >= 2  # the pedestrians' feet and faces: the comparison has substance
    assert_same_detections(ours, _reference(ultralytics, nudenet_onnx, images["bus"], conf))
    for name in ("leuven", "vtest"):
        assert_same_detections(
            detector.detect(images[name]), _reference(ultralytics, nudenet_onnx, images[name], conf)
        )


@pytest.mark.parametrize("export", ["yolo11n", "yolo11n-dynamic", "yolo26n"])
@pytest.mark.parametrize("image_name", ["bus", "leuven", "vtest"])
def test_matches_ultralytics_on_random_weights(
    ultralytics: Any, random_exports: dict[str, Path], images: dict[str, Image], export: str, image_name: str
) -> None:
    path = random_exports[export]
    detector = YoloOnnxDetector(path)
    image = images[image_name]
    conf = _busy_threshold(detector, image)
    ours = detector.detect(image, conf_threshold=conf)
    assert 5 <= len(ours) < detector.max_det
    assert_same_detections(ours, _reference(ultralytics, path, image, conf))


def test_heads_are_recognised(random_exports: dict[str, Path]) -> None:
    assert not YoloOnnxDetector(random_exports["yolo11n"]).end2end
    assert YoloOnnxDetector(random_exports["yolo26n"]).end2end


def test_dynamic_export_uses_the_smallest_padded_rectangle(
    random_exports: dict[str, Path], images: dict[str, Image]
) -> None:
    static = YoloOnnxDetector(random_exports["yolo11n"])
    dynamic = YoloOnnxDetector(random_exports["yolo11n-dynamic"])
    assert dynamic.dynamic and not static.dynamic
    static_out, _ = static.raw_output(images["bus"])  # 810x1080 portrait
    dynamic_out, geometry = dynamic.raw_output(images["bus"])
    assert geometry.input_wh == (256, 320)  # 240 wide, padded to the next multiple of 32
    assert dynamic_out.shape[1] < static_out.shape[1]  # fewer anchors, less compute
    bigger = YoloOnnxDetector(random_exports["yolo11n-dynamic"], imgsz=640)
    assert bigger.input_size_wh == (640, 640)
    assert bigger.raw_output(images["bus"])[1].input_wh == (480, 640)


@pytest.mark.parametrize("export", ["yolo11n", "yolo11n-dynamic"])
def test_graph_rewrites_apply_to_real_exports_and_keep_the_output(
    random_exports: dict[str, Path], images: dict[str, Image], export: str
) -> None:
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort

    from models.letterbox import to_nchw_rgb
    from models.onnx_rewrite import rewrite_model

    assert rewrite_model(onnx.load(str(random_exports[export]))) == ["dfl", "split_conv"]
    # The rewrite is ONNX Runtime's: only that engine loads the rewritten graph.
    detector = YoloOnnxDetector(random_exports[export], backend=OnnxRuntimeBackend())
    ours, _ = detector.raw_output(images["vtest"])
    padded, _ = letterbox(images["vtest"], (IMGSZ, IMGSZ), auto=detector.dynamic)
    plain = ort.InferenceSession(str(random_exports[export]), providers=["CPUExecutionProvider"])
    theirs = plain.run(None, {"images": to_nchw_rgb(padded)})[0][0]
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-3)  # boxes in pixels, scores in 0..1


def test_threads_do_not_change_results(random_exports: dict[str, Path], images: dict[str, Image]) -> None:
    one = YoloOnnxDetector(random_exports["yolo11n"], threads=1).detect(images["leuven"], 0.3)
    two = YoloOnnxDetector(random_exports["yolo11n"], threads=2).detect(images["leuven"], 0.3)
    assert_same_detections(one, two)


def test_detect_leaves_the_image_untouched(nudenet_onnx: Path, images: dict[str, Image]) -> None:
    image = images["bus"].copy()
    YoloOnnxDetector(nudenet_onnx).detect(image)
    np.testing.assert_array_equal(image, images["bus"])


@pytest.mark.parametrize("source_hw", [(1080, 810), (576, 768), (333, 1000), (320, 320), (7, 900)])
@pytest.mark.parametrize("auto", [False, True])
def test_letterbox_is_pixel_identical_to_ultralytics(
    ultralytics: Any, source_hw: tuple[int, int], auto: bool
) -> None:
    from ultralytics.data.augment import LetterBox

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*source_hw, 3), dtype=np.uint8)
    ours, geometry = letterbox(image, (IMGSZ, IMGSZ), auto=auto)
    theirs = np.asarray(LetterBox((IMGSZ, IMGSZ), auto=auto, stride=32)(image=image))
    np.testing.assert_array_equal(ours, theirs)
    assert geometry.input_wh == (theirs.shape[1], theirs.shape[0])


def _rows(*boxes: tuple[float, float, float, float, int, float], nc: int = 3) -> np.ndarray:
    """An NMS-head output (4 + nc, n) from (cx, cy, w, h, class, score) rows."""
    output = np.zeros((4 + nc, len(boxes)), dtype=np.float32)
    for i, (cx, cy, w, h, class_id, score) in enumerate(boxes):
        output[:4, i] = cx, cy, w, h
        output[4 + class_id, i] = score
    return output


@pytest.mark.parametrize(
    ("output", "conf", "max_det", "expected_scores"),
    [
        (_rows((50, 50, 20, 20, 0, 0.9), (51, 50, 20, 20, 0, 0.8)), 0.25, 300, [0.9]),  # overlap: one kept
        (_rows((50, 50, 20, 20, 0, 0.9), (51, 50, 20, 20, 1, 0.8)), 0.25, 300, [0.9, 0.8]),  # classes apart
        (_rows((50, 50, 20, 20, 0, 0.9), (150, 50, 20, 20, 0, 0.8)), 0.25, 1, [0.9]),  # max_det
        (_rows((50, 50, 20, 20, 0, 0.25)), 0.25, 300, []),  # strictly above the threshold
    ],
)
def test_decode_nms_head(output: np.ndarray, conf: float, max_det: int, expected_scores: list[float]) -> None:
    xyxy, score, _ = decode_nms_head(output, conf, 0.7, max_det)
    np.testing.assert_allclose(score, expected_scores)
    if len(score):
        np.testing.assert_allclose(xyxy[0], [40, 40, 60, 60])


def test_decode_end2end_head_filters_and_caps() -> None:
    rows = np.array([[0, 0, 10, 10, 0.9, 2], [5, 5, 9, 9, 0.5, 1], [1, 1, 2, 2, 0.1, 0]], dtype=np.float32)
    _, score, class_id = decode_end2end_head(rows, 0.3, 300)
    np.testing.assert_allclose(score, [0.9, 0.5])
    assert class_id.tolist() == [2, 1]
    assert len(decode_end2end_head(rows, 0.3, 1)[0]) == 1


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"names": "__import__('os').system('false')", "stride": "32"}, "malformed"),
        ({"names": "{0: 'a', 2: 'b'}", "stride": "32"}, "mapping"),
        ({"names": "[1, 2]", "stride": "32"}, "mapping"),
    ],
)
def test_bad_metadata_is_refused_without_running_it(metadata: dict[str, str], error: str) -> None:
    with pytest.raises(ModelError, match=error):
        parse_ultralytics_metadata(metadata)


def test_metadata_of_other_tools_is_not_ultralytics() -> None:
    assert parse_ultralytics_metadata({"producer": "nanodet"}) is None


def test_unloadable_files_raise_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        YoloOnnxDetector(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        YoloOnnxDetector(garbage)


def test_importing_models_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import models.config, models.yolo_onnx, models.cli, models.ultralytics_backend, sys; "
    code += "print('torch' in sys.modules or 'ultralytics' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
