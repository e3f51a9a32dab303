"""`curbwatch detect` and `curbwatch models ...`: run a detector on files, export YOLO models.

User mistakes (missing model, unreadable image, unknown format) end with one
line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import cv2
import numpy as np

from models.backend import BACKEND_NAMES
from models.detector import Detector, ModelError
from models.types import Detections, Image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".ts"})
VIDEO_FOURCC = {".avi": "MJPG"}  # everything else gets mp4v, which OpenCV's bundled FFmpeg writes


class UserError(click.ClickException):
    """A problem with what the user asked for: one line, exit status 2."""

    exit_code = 2


@dataclass(frozen=True)
class SampledFrame:
    index: int
    t: float  # seconds of stream time
    pixels: Image


def _load(model: str | None, conf: float | None, threads: int | None, backend: str | None = None) -> Detector:
    from models.backend import parse_backend
    from models.config import load_detector

    try:
        chosen = parse_backend(backend) if backend is not None else None
        return load_detector(model, conf_threshold=conf, threads=threads, backend=chosen)
    except ModelError as error:
        raise UserError(str(error)) from error


BACKEND_OPTION = click.option(
    "--backend",
    type=click.Choice(BACKEND_NAMES),
    help="Inference engine for ONNX models: auto (OpenVINO where installed, else ONNX Runtime), "
    "openvino or onnxruntime; default: the model config's own, else auto.",
)


def _read_image(path: Path) -> Image:
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if pixels is None:
        raise UserError(f"{path}: cannot read the image (missing, unreadable or not an image)")
    return np.asarray(pixels, dtype=np.uint8)


def _video_frames(path: Path, every: int, sample_fps: float | None) -> tuple[Iterator[SampledFrame], float]:
    """Sampled frames of a video file and the rate they come at (frames per second of stream time)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise UserError(f"{path}: cannot open the video (missing, unreadable or unsupported codec)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0  # some containers do not say; 25 is the common camera rate
    out_fps = sample_fps if sample_fps is not None else fps / every

    def frames() -> Iterator[SampledFrame]:
        next_t = 0.0
        index = 0
        try:
            while True:
                ok, pixels = capture.read()
                if not ok:
                    return
                t = index / fps
                if sample_fps is not None:
                    keep = t + 1e-9 >= next_t
                    if keep:
                        next_t += 1.0 / sample_fps
                else:
                    keep = index % every == 0
                if keep:
                    yield SampledFrame(index, t, np.asarray(pixels, dtype=np.uint8))
                index += 1
        finally:
            capture.release()

    return frames(), out_fps


def _as_json(source: str, frame: SampledFrame, detections: Detections) -> str:
    return json.dumps(
        {
            "source": source,
            "frame": frame.index,
            "t": round(frame.t, 3),
            "detections": [
                {
                    "label": label,
                    "class_id": int(class_id),
                    "confidence": round(float(confidence), 4),
                    "xyxy": [round(float(v), 1) for v in xyxy],
                }
                for xyxy, confidence, class_id, label in zip(
                    detections.xyxy,
                    detections.confidence,
                    detections.class_id,
                    detections.labels,
                    strict=True,
                )
            ],
        }
    )


def _as_text(source: str, frame: SampledFrame, detections: Detections, is_video: bool) -> str:
    where = f"{source} frame {frame.index} t={frame.t:.2f}s" if is_video else source
    lines = [f"{where}: {len(detections)} detection{'s' if len(detections) != 1 else ''}"]
    for xyxy, confidence, label in zip(
        detections.xyxy, detections.confidence, detections.labels, strict=True
    ):
        box = ", ".join(f"{float(v):.0f}" for v in xyxy)
        lines.append(f"  {label} {confidence:.2f} [{box}]")
    return "\n".join(lines)


class _VideoOut:
    """Writes annotated frames; opened on the first frame, when the size is known."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self._writer: cv2.VideoWriter | None = None

    def write(self, pixels: Image) -> None:
        if self._writer is None:
            fourcc = cv2.VideoWriter.fourcc(*VIDEO_FOURCC.get(self.path.suffix.lower(), "mp4v"))
            height, width = pixels.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
            if not self._writer.isOpened():
                raise UserError(f"{self.path}: cannot write a video there")
        self._writer.write(pixels)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--model", "-m", help="Model (.onnx, .pt) or detector config (.yaml); default: bundled NanoDet."
)
@click.option("--conf", type=click.FloatRange(0.0, 1.0), help="Minimum confidence; default: the model's own.")
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), help="Write an annotated copy (image or .mp4/.avi)."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image or frame instead of text.")
@click.option(
    "--every", type=click.IntRange(min=1), default=1, show_default=True, help="Video: every Nth frame."
)
@click.option(
    "--sample-fps", type=click.FloatRange(min=0.01), help="Video: frames per second of video to detect."
)
@click.option("--threads", type=click.IntRange(1, 64), help="Inference threads; default: all cores.")
@BACKEND_OPTION
def detect(
    source: Path,
    model: str | None,
    conf: float | None,
    out: Path | None,
    as_json: bool,
    every: int,
    sample_fps: float | None,
    threads: int | None,
    backend: str | None,
) -> None:
    """Detect objects in an image or a video file and print them (label, confidence, box in pixels)."""
    if not source.is_file():  # checked here: OpenCV would print its own warning first
        raise UserError(f"{source}: no such file")
    suffix = source.suffix.lower()
    is_video = suffix in VIDEO_SUFFIXES
    if not is_video and suffix not in IMAGE_SUFFIXES:
        raise UserError(f"{source}: unsupported input format {suffix or '(no suffix)'!r}")
    if every != 1 and sample_fps is not None:
        raise UserError("--every and --sample-fps choose the frames two ways; give one")
    if out is not None and (out.suffix.lower() in VIDEO_SUFFIXES) != is_video:
        kind = "a video (.mp4, .avi)" if is_video else "an image (.jpg, .png)"
        raise UserError(f"--out {out}: the annotated copy of {source.name} must be {kind}")
    if is_video:
        frames, out_fps = _video_frames(source, every, sample_fps)
    else:
        frames, out_fps = iter([SampledFrame(0, 0.0, _read_image(source))]), 0.0
    detector = _load(model, conf, threads, backend)
    video_out = _VideoOut(out, out_fps) if out is not None and is_video else None
    from models.annotate import annotate

    try:
        for frame in frames:
            detections = detector.detect(frame.pixels)
            line = (
                _as_json(str(source), frame, detections)
                if as_json
                else _as_text(str(source), frame, detections, is_video)
            )
            click.echo(line)
            if out is not None:
                annotated = annotate(frame.pixels, detections)
                if video_out is not None:
                    video_out.write(annotated)
                elif not cv2.imwrite(str(out), annotated):
                    raise UserError(f"{out}: cannot write the annotated image there")
    finally:
        if video_out is not None:
            video_out.close()


@click.group("models")
def models_group() -> None:
    """Inspect detector models, export YOLO checkpoints to ONNX, fine-tune them on verdicts."""


@models_group.command("info")
@click.argument("model", required=False)
@BACKEND_OPTION
@click.option("--threads", type=click.IntRange(1, 64), help="Inference threads; default: all cores.")
def info(model: str | None, backend: str | None, threads: int | None) -> None:
    """Show which backend and engine run MODEL (default: the bundled NanoDet), its input size and classes."""
    detector = _load(model, None, threads, backend)
    click.echo(f"backend: {type(detector).__name__}")
    runtime = getattr(detector, "runtime", None)  # the ONNX backends say which engine runs them
    click.echo(f"runtime: {runtime if isinstance(runtime, str) else 'torch (ultralytics)'}")
    click.echo(f"input: {detector.input_size_wh[0]}x{detector.input_size_wh[1]}")
    click.echo(f"classes ({len(detector.class_names)}): {', '.join(detector.class_names)}")


@models_group.command("export")
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--imgsz", type=click.IntRange(32, 4096), default=640, show_default=True, help="Input size (px)."
)
@click.option(
    "--int8", is_flag=True, help="Also quantise to int8 (static, calibrated) and check it against fp32."
)
@click.option("--dynamic", is_flag=True, help="Dynamic input shape instead of a fixed imgsz x imgsz.")
@click.option("--out", "-o", type=click.Path(path_type=Path), help="Output .onnx; default: next to MODEL.")
@click.option(
    "--calibration",
    type=click.Path(exists=True, path_type=Path),
    multiple=True,
    help="Int8 calibration images (files or folders, repeatable); default: ultralytics' sample images.",
)
def export(
    model: Path, imgsz: int, int8: bool, dynamic: bool, out: Path | None, calibration: tuple[Path, ...]
) -> None:
    """Export an ultralytics .pt checkpoint (e.g. yolo11n.pt, yolo26n.pt) to ONNX for the edge backend."""
    from models.export import compare_detectors, export_onnx, quantize_int8
    from models.yolo_onnx import YoloOnnxDetector

    if model.suffix.lower() != ".pt":
        raise UserError(f"{model}: expected an ultralytics .pt checkpoint")
    target = out or model.with_suffix(".onnx")
    try:
        fp32_path = export_onnx(model, target, imgsz=imgsz, dynamic=dynamic)
        fp32 = YoloOnnxDetector(fp32_path)  # proves the export loads in our backend
        click.echo(
            f"wrote {fp32_path} ({'end-to-end' if fp32.end2end else 'NMS'} head, {fp32.input_size_wh})"
        )
        if not int8:
            return
        images = _calibration_images(calibration)
        int8_path = quantize_int8(fp32_path, fp32_path.with_name(f"{fp32_path.stem}_int8.onnx"), images)
        agreement = compare_detectors(fp32, YoloOnnxDetector(int8_path), images)
    except ModelError as error:
        raise UserError(str(error)) from error
    if agreement.reference_boxes == 0:
        # Nothing to compare against (e.g. random weights): say so rather than print recall 1.00.
        click.echo(f"wrote {int8_path}: the fp32 model found no boxes on these images; accuracy not checked")
        return
    click.echo(
        f"wrote {int8_path}: {agreement.matched}/{agreement.reference_boxes} fp32 boxes found again "
        f"(recall {agreement.recall:.2f}), largest score change {agreement.max_score_delta:.3f}"
    )


@models_group.command("train")
@click.argument("verdicts", type=click.Path(path_type=Path))
@click.option(
    "--base",
    required=True,
    help="Start from an ultralytics .pt checkpoint (e.g. yolo11n.pt) or a model .yaml (random weights).",
)
@click.option("--epochs", type=click.IntRange(1, 10_000), default=30, show_default=True, help="Epochs.")
@click.option(
    "--imgsz", type=click.IntRange(32, 4096), default=640, show_default=True, help="Training and ONNX size."
)
@click.option("--batch", type=click.IntRange(1, 1024), default=16, show_default=True, help="Batch size.")
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="New or empty folder for the dataset, the run and model.onnx; default: VERDICTS-trained beside it.",
)
@click.option(
    "--held-out",
    type=click.FloatRange(0.01, 0.99),
    default=0.2,
    show_default=True,
    help="Share of camera-days held out for the before/after figures.",
)
@click.option(
    "--conf",
    type=click.FloatRange(0.0, 1.0),
    default=0.25,
    show_default=True,
    help="Confidence threshold of the before/after figures (the edge's default).",
)
@click.option("--device", help="ultralytics training device (cpu, 0, 0,1); default: a GPU when there is one.")
@click.option(
    "--base-labels/--no-base-labels",
    default=True,
    show_default=True,
    help="Keep what a base model with class names finds away from the judged boxes as labels.",
)
def train(
    verdicts: Path,
    base: str,
    epochs: int,
    imgsz: int,
    batch: int,
    out: Path | None,
    held_out: float,
    conf: float,
    device: str | None,
    base_labels: bool,
) -> None:
    """Fine-tune a YOLO detector on a verdict export (`curbwatch review export-verdicts`), export it to
    ONNX and print precision and recall before and after on held-out camera-days (docs/training.md)."""
    from models.training.finetune import TrainSettings, fine_tune
    from models.training.verdicts import TrainingError

    settings = TrainSettings(epochs, imgsz, batch, device, conf, held_out, base_labels)
    out_dir = out or verdicts.with_name(f"{verdicts.stem}-trained")
    try:
        report = fine_tune(verdicts, base, out_dir, settings, click.echo)
    except TrainingError as error:
        # ultralytics' own messages (wrapped in some of these) span lines; ours is one.
        raise UserError(" ".join(str(error).split())) from error
    days = ", ".join(" ".join(day) for day in report.split.held_out_days)
    click.echo(f"held out: {len(report.split.held_out)} verdicts from {days}")
    click.echo(
        f"wrote {report.onnx} ({len(report.dataset.names)} classes); figures in {out_dir / 'metrics.json'}"
    )
    click.echo(f"before: {report.before.line()}")
    click.echo(f"after: {report.after.line()}")


def _calibration_images(paths: tuple[Path, ...]) -> list[Image]:
    if not paths:
        from models.ultralytics_backend import import_ultralytics

        assets = Path(str(import_ultralytics().__file__)).parent / "assets"
        paths = (assets,)
    files = sorted(
        f for p in paths for f in (p.iterdir() if p.is_dir() else [p]) if f.suffix.lower() in IMAGE_SUFFIXES
    )
    images = [
        np.asarray(image, dtype=np.uint8) for image in map(cv2.imread, map(str, files)) if image is not None
    ]
    if not images:
        raise UserError("no readable calibration images found")
    return images


@models_group.command("quantize")
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--calibration",
    type=click.Path(exists=True, path_type=Path),
    multiple=True,
    required=True,
    help="Footage of the cameras to watch: videos (one frame per --every-s) or images, repeatable.",
)
@click.option(
    "--frames", type=click.IntRange(1, 10_000), default=100, show_default=True, help="Calibration frames."
)
@click.option(
    "--every-s", type=click.FloatRange(min=0.04), default=2.0, show_default=True, help="Video sampling."
)
@click.option("--out", "-o", type=click.Path(path_type=Path), help="Output .xml; default: MODEL_int8.xml.")
def quantize(
    model: Path, calibration: tuple[Path, ...], frames: int, every_s: float, out: Path | None
) -> None:
    """Quantise a NanoDet or YOLO ONNX model to an OpenVINO int8 IR (NNCF) and check it against fp32.

    Every second calibration frame calibrates, the others check: how many fp32 boxes the
    int8 model finds again and how far scores move. Needs `pip install curbwatch[quantize]`.
    """
    from models.agreement import compare_detectors
    from models.backend import OpenVinoBackend
    from models.config import load_detector
    from models.quantize import calibration_frames, quantize_openvino_int8

    if not model.is_file():
        raise UserError(f"{model}: no such file")
    target = out or model.with_name(f"{model.stem}_int8.xml")
    if target.suffix.lower() != ".xml":
        raise UserError(f"--out {target}: the int8 model is an OpenVINO IR; name it .xml")
    if importlib.util.find_spec("nncf") is None:  # said before any footage is read
        raise UserError("int8 needs NNCF: pip install curbwatch[quantize]")
    try:
        images = calibration_frames(calibration, frames, every_s)
        calibrate, check = images[::2], images[1::2] or images
        quantize_openvino_int8(model, target, calibrate)
        fp32 = load_detector(model, backend=OpenVinoBackend())
        agreement = compare_detectors(fp32, load_detector(target), check)
    except ModelError as error:
        raise UserError(str(error)) from error
    click.echo(f"wrote {target} (int8, {len(calibrate)} calibration frames)")
    click.echo(f"against fp32 on {len(check)} other frames: {agreement.summary()}")
