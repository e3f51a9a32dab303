"""OpenVINO int8 of our ONNX detectors by NNCF post-training quantisation, calibrated on real footage.

`quantize_openvino_int8` reads the fp32 ONNX file with OpenVINO, lets NNCF collect
activation ranges on calibration frames fed through the detector's own
preprocessing (`input_feeds`, so the int8 model sees exactly what the fp32 one
does), and writes an OpenVINO IR (.xml + .bin) that `load_detector` runs on
OpenVINO. Needs the [quantize] extra (nncf); the edge only needs [openvino].

Calibration frames should be footage of the cameras the model will watch; the
model card of NanoDet reports the agreement with fp32 on vtest.avi and the demo clip.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import av
import cv2
import numpy as np

from models.backend import OpenVinoBackend
from models.config import NanoDetConfig, YoloOnnxConfig, build_detector, config_for_path
from models.detector import ModelError
from models.nanodet import NanoDetDetector
from models.types import Image
from models.yolo_onnx import YoloOnnxDetector

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


def calibration_frames(sources: Sequence[Path], count: int, every_s: float = 1.0) -> list[Image]:
    """Up to `count` BGR frames: images as they are, videos one frame per `every_s` of stream time."""
    if count < 1:
        raise ModelError(f"calibration: expected at least 1 frame, got {count}")
    files = sorted(f for p in sources for f in (sorted(p.iterdir()) if p.is_dir() else [p]))
    frames: list[Image] = []
    for path in files:
        if len(frames) >= count:
            break
        if path.suffix.lower() in IMAGE_SUFFIXES:
            image = cv2.imread(str(path))
            if image is not None:
                frames.append(np.asarray(image, dtype=np.uint8))
            continue
        frames.extend(_video_frames(path, count - len(frames), every_s))
    if not frames:
        raise ModelError(f"calibration: no readable images or videos in {[str(s) for s in sources]}")
    return frames


def _video_frames(path: Path, count: int, every_s: float) -> list[Image]:
    frames: list[Image] = []
    due = 0.0
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                if frame.time is None or frame.time + 1e-6 < due:
                    continue
                frames.append(np.ascontiguousarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8))
                due = frame.time + every_s
                if len(frames) == count:
                    break
    except (av.FFmpegError, OSError) as error:
        raise ModelError(f"calibration: cannot decode {path}: {error}") from error
    return frames


def quantize_openvino_int8(model_path: Path, out: Path, calibration: Sequence[Image]) -> Path:
    """Write an int8 OpenVINO IR of a NanoDet or YOLO ONNX file to `out` (.xml; weights in .bin beside)."""
    import nncf
    import openvino as ov

    if out.suffix.lower() != ".xml":
        raise ModelError(f"{out}: the int8 model is an OpenVINO IR; name it .xml")
    if not calibration:
        raise ModelError("int8 quantisation needs at least one calibration frame")
    config = config_for_path(model_path)
    if not isinstance(config, NanoDetConfig | YoloOnnxConfig):
        raise ModelError(f"{model_path}: only our ONNX detectors (NanoDet, YOLO exports) are quantised here")
    # The fp32 detector on OpenVINO, one thread: only its preprocessing is used for calibration.
    fp32 = build_detector(config.model_copy(update={"backend": OpenVinoBackend(), "threads": 1}))
    if not isinstance(fp32, NanoDetDetector | YoloOnnxDetector):  # the configs above build only these
        raise ModelError(f"{model_path}: not a NanoDet or YOLO ONNX model")
    model = ov.Core().read_model(str(model_path))

    def transform(image: Image) -> object:
        feeds, _ = fp32.input_feeds(image)
        return feeds

    quantized = nncf.quantize(
        model,
        nncf.Dataset(list(calibration), transform),
        # Asymmetric activations: ranges after PReLU and in the heads are lopsided. Keeping the
        # three head convolutions float found 3 more of 351 boxes on the demo clip: not worth a
        # model-specific list.
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(calibration),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    log.info("wrote %s (int8, %d calibration frames)", out, len(calibration))
    return out
