"""Backend choice (config + file sniffing), `curbwatch detect`, `curbwatch models export`, int8."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import main
from models.config import NanoDetConfig, YoloOnnxConfig, config_for_path, load_detector, parse_config
from models.detector import Detector, ModelError
from models.nanodet import NanoDetDetector
from models.types import Image
from models.yolo_onnx import YoloOnnxDetector

os.environ.setdefault("YOLO_OFFLINE", "1")


@pytest.fixture(scope="module")
def nudenet_onnx() -> Path:
    nudenet = pytest.importorskip("nudenet")
    return Path(nudenet.__file__).parent / "320n.onnx"


@pytest.fixture(scope="module")
def random_yolo11n_pt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ultralytics = pytest.importorskip("ultralytics")
    path = tmp_path_factory.mktemp("pt") / "yolo11n_random.pt"
    ultralytics.YOLO("yolo11n.yaml").save(str(path))
    return path


def read_bgr(path: Path) -> Image:
    pixels = cv2.imread(str(path))
    assert pixels is not None, f"cannot read {path}"
    return np.asarray(pixels, dtype=np.uint8)


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# --- backend choice -------------------------------------------------------------------------


def test_default_is_the_bundled_nanodet() -> None:
    detector = load_detector()
    assert isinstance(detector, NanoDetDetector)
    assert isinstance(detector, Detector)


def test_backend_is_picked_from_the_file(nudenet_onnx: Path) -> None:
    from models.nanodet import DEFAULT_MODEL_PATH

    assert isinstance(config_for_path(nudenet_onnx), YoloOnnxConfig)
    assert isinstance(config_for_path(DEFAULT_MODEL_PATH), NanoDetConfig)


def test_pt_files_go_to_ultralytics(random_yolo11n_pt: Path) -> None:
    from models.config import UltralyticsConfig

    assert isinstance(config_for_path(random_yolo11n_pt), UltralyticsConfig)


def test_overrides_reach_the_detector(nudenet_onnx: Path, bus_jpg: Path) -> None:
    strict = load_detector(nudenet_onnx, conf_threshold=0.9, threads=1)
    loose = load_detector(nudenet_onnx, conf_threshold=0.03, threads=1)
    image = read_bgr(bus_jpg)
    assert len(strict.detect(image)) == 0 < len(loose.detect(image))


def test_config_file_paths_are_relative_to_the_file(nudenet_onnx: Path, tmp_path: Path) -> None:
    (tmp_path / "m.onnx").symlink_to(nudenet_onnx)
    config_file = tmp_path / "detector.yaml"
    config_file.write_text("type: yolo_onnx\npath: m.onnx\nconf_threshold: 0.4\nthreads: 1\n")
    detector = load_detector(config_file)
    assert isinstance(detector, YoloOnnxDetector)
    assert detector.conf_threshold == 0.4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "yolo_onnx", "path": "m.onnx", "colour": "red"}, "colour"),
        ({"type": "yolo_onnx", "path": "m.onnx", "conf_threshold": 1.5}, "conf_threshold"),
        ({"type": "yolo_onnx", "path": "m.onnx", "threads": 0}, "threads"),
        ({"type": "tensorrt", "path": "m.engine"}, "tensorrt"),
        ({"type": "yolo_onnx"}, "path"),
    ],
)
def test_config_is_strict(data: dict[str, object], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        parse_config(data)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.onnx", None, "not found"),
        ("weights.bin", b"\x00\x01", "unsupported model format"),
        ("broken.onnx", b"not onnx", "not a loadable ONNX model"),
        ("bad.yaml", b"type: [unclosed", "not valid YAML"),
    ],
)
def test_bad_model_files_raise_model_error(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        load_detector(path)


# --- curbwatch detect -------------------------------------------------------------------------


def test_detect_image_json_and_annotated_copy(bus_jpg: Path, tmp_path: Path) -> None:
    out = tmp_path / "annotated.jpg"
    result = _run("detect", str(bus_jpg), "--json", "--out", str(out))
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    labels = [d["label"] for d in record["detections"]]
    assert labels.count("person") >= 3 and "bus" in labels  # the bundled NanoDet on a real street photo
    assert all(len(d["xyxy"]) == 4 and 0 < d["confidence"] <= 1 for d in record["detections"])
    annotated, original = read_bgr(out), read_bgr(bus_jpg)
    assert annotated.shape == original.shape
    assert np.abs(annotated.astype(int) - original.astype(int)).mean() > 0.5  # boxes were drawn


def test_detect_with_another_model_and_threshold(bus_jpg: Path, nudenet_onnx: Path) -> None:
    result = _run("detect", str(bus_jpg), "--model", str(nudenet_onnx), "--conf", "0.2")
    assert result.exit_code == 0, result.output
    assert "FEET_COVERED" in result.output
    assert result.output.splitlines()[0].endswith("3 detections")  # 2 above 0.25, 3 above 0.2


def test_detect_video_samples_frames_and_writes_a_video(vtest_avi: Path, tmp_path: Path) -> None:
    out = tmp_path / "annotated.mp4"
    result = _run("detect", str(vtest_avi), "--sample-fps", "0.5", "--json", "--out", str(out))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    times = [r["t"] for r in records]
    assert len(records) == 40  # vtest.avi: 795 frames at 10 fps, one every 2 s
    assert np.allclose(np.diff(times), 2.0)
    assert sum(len(r["detections"]) for r in records) > 40  # pedestrians throughout
    capture = cv2.VideoCapture(str(out))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = capture.read()
    capture.release()
    assert ok and first.shape == (576, 768, 3) and frames == 40


def test_detect_every_nth_frame(vtest_avi: Path) -> None:
    result = _run("detect", str(vtest_avi), "--every", "200")
    assert result.exit_code == 0, result.output
    headers = [line for line in result.output.splitlines() if not line.startswith("  ")]
    assert [h.split(" frame ")[1].split(" ")[0] for h in headers] == ["0", "200", "400", "600"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{bus}", "--model", "{tmp}/nope.onnx"], "model file not found"),
        (["{tmp}/missing.jpg"], "missing.jpg: no such file"),
        (["{tmp}/missing.mp4"], "missing.mp4: no such file"),
        (["{tmp}/notes.txt"], "unsupported input format"),
        (["{bus}", "--model", "{tmp}/notes.txt"], "unsupported model format"),
        (["{tmp}/broken.jpg"], "cannot read the image"),
        (["{bus}", "--out", "{tmp}/x.mp4"], "must be an image"),
        (["{vtest}", "--every", "2", "--sample-fps", "1"], "give one"),
    ],
)
def test_detect_errors_are_one_line_with_exit_2(
    args: list[str], message: str, bus_jpg: Path, vtest_avi: Path, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    filled = [a.format(bus=bus_jpg, vtest=vtest_avi, tmp=tmp_path) for a in args]
    result = CliRunner().invoke(main, ["detect", *filled])
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["detect"], ["models"], ["models", "export"], ["models", "info"]])
def test_every_command_and_option_has_help(command: list[str]) -> None:
    from models.cli import detect, models_group

    result = _run(*command, "--help")
    assert result.exit_code == 0
    for cmd in (detect, models_group, *models_group.commands.values()):
        assert cmd.help
        assert all(getattr(p, "help", None) for p in cmd.params if p.param_type_name == "option")


# --- export and int8 --------------------------------------------------------------------------


def test_models_export_writes_an_onnx_our_backend_loads(random_yolo11n_pt: Path, tmp_path: Path) -> None:
    out = tmp_path / "exported.onnx"
    result = _run("models", "export", str(random_yolo11n_pt), "--imgsz", "320", "--out", str(out))
    assert result.exit_code == 0, result.output
    detector = load_detector(out)
    assert isinstance(detector, YoloOnnxDetector)
    assert detector.input_size_wh == (320, 320) and len(detector.class_names) == 80
    assert list(random_yolo11n_pt.parent.iterdir()) == [random_yolo11n_pt]  # nothing left next to the .pt
    onnx = pytest.importorskip("onnx")
    from models.onnx_rewrite.dfl import PREFIX

    outputs = [name for node in onnx.load(str(out)).graph.node for name in node.output]
    assert any(name.startswith(PREFIX) for name in outputs)  # the file holds the faster DFL graph


def test_models_export_int8_reports_agreement(random_yolo11n_pt: Path, bus_jpg: Path, tmp_path: Path) -> None:
    out = tmp_path / "exported.onnx"
    args = ["models", "export", str(random_yolo11n_pt), "--imgsz", "320", "--int8", "--out", str(out)]
    result = _run(*args, "--calibration", str(bus_jpg))
    assert result.exit_code == 0, result.output
    # Random weights may find nothing to compare; then the command must say so, not claim recall.
    assert ("fp32 boxes found again" in result.output) != ("accuracy not checked" in result.output)
    assert isinstance(load_detector(tmp_path / "exported_int8.onnx"), YoloOnnxDetector)


def test_int8_model_detects_what_fp32_does(nudenet_onnx: Path, bus_jpg: Path, tmp_path: Path) -> None:
    """A real model (nudenet 320n): int8 finds the fp32 boxes again with scores close to fp32's."""
    from models.export import compare_detectors, quantize_int8

    bus = read_bgr(bus_jpg)
    flipped = np.ascontiguousarray(bus[:, ::-1])
    int8_path = quantize_int8(nudenet_onnx, tmp_path / "320n_int8.onnx", [bus, flipped])
    fp32 = YoloOnnxDetector(nudenet_onnx, conf_threshold=0.1)
    int8 = YoloOnnxDetector(int8_path, conf_threshold=0.1)
    assert int8.class_names == fp32.class_names
    agreement = compare_detectors(fp32, int8, [bus, flipped])
    assert agreement.reference_boxes >= 4
    assert agreement.recall >= 0.75
    assert agreement.max_score_delta < 0.15
    assert int8_path.stat().st_size < nudenet_onnx.stat().st_size / 2


def test_export_refuses_non_checkpoints(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["models", "export", str(tmp_path / "model.onnx")])
    assert result.exit_code == 2 and "expected an ultralytics .pt" in result.output
