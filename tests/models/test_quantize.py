"""OpenVINO int8 (NNCF post-training quantisation) of NanoDet, checked against fp32 on real footage.

Calibrated on vtest.avi and the demo clip every 4 s from 0 s; checked on the frames 2 s
later (never seen in calibration). Tolerances, from a run on 2026-12-02 (OpenVINO 2026.4,
NNCF 3.4): 319 of 351 fp32 boxes found again (recall 0.91), median score change -0.0006,
largest 0.091, and every missed box scored below 0.41 in fp32, i.e. within 0.06 of the
0.35 threshold: int8 loses borderline boxes, not objects.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from models.agreement import compare_detectors
from models.backend import OpenVinoBackend
from models.cli import models_group
from models.config import load_detector
from models.detector import ModelError
from models.nanodet import DEFAULT_MODEL_PATH, NanoDetDetector
from models.quantize import calibration_frames, quantize_openvino_int8
from models.types import Image
from tests.models.footage import DEMO_CLIP, video_frames

pytest.importorskip("nncf")
ov = pytest.importorskip("openvino")

CONF = 0.35  # NanoDet's default threshold
MIN_RECALL = 0.85
MAX_MEDIAN_SCORE_CHANGE = 0.01
MAX_SCORE_CHANGE = 0.15
CONFIDENT = CONF + 0.1  # fp32 boxes at least this sure must all be found again


def footage(vtest_avi: Path, start_s: float) -> list[Image]:
    return video_frames(vtest_avi, start_s=start_s, every_s=4.0, count=15) + video_frames(
        DEMO_CLIP, start_s=start_s, every_s=4.0, count=15
    )


@pytest.fixture(scope="module")
def int8_model(vtest_avi: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("int8") / "nanodet_int8.xml"
    return quantize_openvino_int8(DEFAULT_MODEL_PATH, out, footage(vtest_avi, start_s=0.0))


@pytest.mark.slow
def test_int8_agrees_with_fp32_on_unseen_footage(int8_model: Path, vtest_avi: Path) -> None:
    fp32 = NanoDetDetector(DEFAULT_MODEL_PATH, CONF, threads=1, backend=OpenVinoBackend())
    int8 = load_detector(int8_model, threads=1, conf_threshold=CONF)
    agreement = compare_detectors(fp32, int8, footage(vtest_avi, start_s=2.0))
    assert agreement.reference_boxes >= 200, agreement  # a street's worth of boxes, not an empty check
    assert agreement.recall >= MIN_RECALL, agreement.summary()
    assert agreement.max_missed_score < CONFIDENT, agreement.summary()
    assert abs(agreement.median_score_delta) < MAX_MEDIAN_SCORE_CHANGE, agreement.summary()
    assert agreement.max_score_delta < MAX_SCORE_CHANGE, agreement.summary()
    assert agreement.extra <= 0.1 * agreement.reference_boxes, agreement.summary()


def test_int8_model_is_quantised_and_runs_on_openvino(int8_model: Path) -> None:
    ops = {op.get_type_name() for op in ov.Core().read_model(str(int8_model)).get_ops()}
    assert "FakeQuantize" in ops  # what NNCF inserts; the CPU plugin runs those layers in int8
    assert int8_model.with_suffix(".bin").is_file()
    assert getattr(load_detector(int8_model, threads=1), "runtime", "").startswith("openvino")


def test_calibration_frames_from_videos_and_images(vtest_avi: Path, leuven_jpg: Path, tmp_path: Path) -> None:
    frames = calibration_frames([vtest_avi, leuven_jpg], count=5, every_s=2.0)
    assert len(frames) == 5 and {f.shape for f in frames} >= {(576, 768, 3)}
    with pytest.raises(ModelError, match="no readable images or videos"):
        calibration_frames([tmp_path], count=5)  # an empty folder
    (tmp_path / "notes.txt").write_text("not a picture")
    with pytest.raises(ModelError, match=r"cannot decode .*notes\.txt"):
        calibration_frames([tmp_path], count=5)


def test_output_must_be_an_ir(tmp_path: Path, leuven_jpg: Path) -> None:
    with pytest.raises(ModelError, match=r"name it \.xml"):
        quantize_openvino_int8(
            DEFAULT_MODEL_PATH, tmp_path / "int8.onnx", calibration_frames([leuven_jpg], 1)
        )


def test_cli_quantizes_and_reports_agreement(tmp_path: Path, vtest_avi: Path) -> None:
    out = tmp_path / "nanodet_int8.xml"
    args = ["quantize", str(DEFAULT_MODEL_PATH), "--calibration", str(vtest_avi), "--frames", "8"]
    result = CliRunner().invoke(models_group, [*args, "--every-s", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (int8, 4 calibration frames)" in result.output
    assert "against fp32 on 4 other frames: " in result.output and "recall" in result.output
    assert out.is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.onnx", "--calibration", "."], "missing.onnx: no such file"),
        ([str(DEFAULT_MODEL_PATH), "--calibration", ".", "--out", "x.onnx"], "name it .xml"),
    ],
)
def test_cli_errors_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(models_group, ["quantize", *args])
    assert result.exit_code == 2 and message in result.output, result.output
