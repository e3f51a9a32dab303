"""`curbwatch analyze VIDEO --zones ZONES.yaml`: incidents of a recorded video as JSON Lines.

The wall clock is read here, once, for the default --start-time; everything
below works in video time.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

import click

from models.detector import Detector
from models.types import Frame


def _load_detector(model: Path | None, threads: int | None) -> Detector:
    """models.config.load_detector when it exists, else the bundled NanoDet."""
    if importlib.util.find_spec("models.config") is not None:
        loader = importlib.import_module("models.config").load_detector
        detector: Detector = loader(model, threads=threads)
        return detector
    from models.nanodet import DEFAULT_MODEL_PATH, NanoDetDetector

    return NanoDetDetector(model or DEFAULT_MODEL_PATH, threads=threads)


def _start_time(value: str | None, timezone_name: str) -> datetime:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(timezone_name)
    if value is None:
        return datetime.now(tz)  # the one wall-clock read of `analyze`
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        raise click.BadParameter(f"not ISO 8601: {value!r}", param_hint="--start-time") from err
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


@click.command()
@click.argument("video", type=click.Path(path_type=Path))
@click.option(
    "--zones", "zones_path", required=True, type=click.Path(path_type=Path), help="Zone file (YAML/JSON)."
)
@click.option(
    "--model", type=click.Path(path_type=Path), default=None, help="Detector model (default: bundled)."
)
@click.option("--sample-fps", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Frames analysed per second of video.")  # fmt: skip
@click.option("--events-out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write JSON Lines here instead of stdout.")  # fmt: skip
@click.option("--evidence-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Write an annotated JPEG per opened incident here (people and faces blurred; "
                   "with the scene model also ID-before-now.jpg).")  # fmt: skip
@click.option("--start-time", default=None,
              help="Wall time of the first frame, ISO 8601 (default: now, zone timezone).")  # fmt: skip
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Detector CPU threads.")
@click.option("--scene/--no-scene", "scene", default=None,
              help="Run the scene model (static objects of any kind). Default: when a zone's classes "
                   "name `static object` or `signboard`.")  # fmt: skip
def analyze(
    video: Path,
    zones_path: Path,
    model: Path | None,
    sample_fps: float,
    events_out: Path | None,
    evidence_dir: Path | None,
    start_time: str | None,
    threads: int | None,
    scene: bool | None,
) -> None:
    """Find incidents in VIDEO using ZONES; one JSON object per incident event."""
    from edge.analyze.run import AnalyzePipeline, event_record, write_evidence
    from edge.analyze.video_file import VideoFileError, probe, read_frames
    from models.detector import ModelError
    from zones.loader import ZoneFileError, load_zone_file

    try:
        zone_file = load_zone_file(zones_path)
    except Exception as err:  # ZoneFileError and unreadable files: one line for the user
        # A ZoneFileError's problems already start with `file:line:`.
        message = str(err) if isinstance(err, ZoneFileError) else f"{zones_path}: {err}"
        raise click.ClickException(message.replace("\n", "; ")) from err
    started = _start_time(start_time, zone_file.timezone)
    try:
        info = probe(video)
        detector = _load_detector(model, threads)
    except (VideoFileError, ModelError, ValueError, OSError) as err:
        raise click.ClickException(str(err).replace("\n", "; ")) from err

    from edge.scene.config import SceneSettings
    from edge.scene.static_objects import StaticObjects, goods_classes, used_by

    wanted = used_by(zone_file) if scene is None else scene
    eye = None
    faces = None
    try:
        if wanted:
            from models.text import load_text_detector

            eye = StaticObjects(SceneSettings(), load_text_detector(), goods=goods_classes(zone_file))
        if evidence_dir:
            from models.faces import load_face_detector

            faces = load_face_detector()
    except (ModelError, OSError) as err:
        raise click.ClickException(str(err).replace("\n", "; ")) from err
    pipeline = AnalyzePipeline(detector, zone_file, started, scene=eye)
    frames: Iterator[Frame] = read_frames(video, zone_file.camera_id, sample_fps)
    show_progress = sys.stderr.isatty()
    out: IO[str] = events_out.open("w", encoding="utf-8") if events_out else sys.stdout
    try:
        with contextlib.ExitStack() as stack:
            if show_progress:
                expected = max(1, int(info.duration_s * sample_fps))
                bar = stack.enter_context(
                    click.progressbar(length=expected, label="analyzing", file=sys.stderr)
                )
                frames = _counted(frames, bar.update)
            for event in pipeline.run(frames):
                evidence = (
                    write_evidence(event, zone_file, detector, evidence_dir, eye, faces)
                    if evidence_dir
                    else None
                )
                out.write(json.dumps(event_record(event, evidence), ensure_ascii=False) + "\n")
                out.flush()
    except VideoFileError as err:
        raise click.ClickException(str(err)) from err
    finally:
        if events_out:
            out.close()
    times = pipeline.times
    if show_progress and times.frames:
        click.echo(
            f"{times.frames} frames, {times.frames / max(times.total_s, 1e-9):.1f} fps "
            f"(decode {times.decode_s:.1f}s, detect {times.detect_s:.1f}s, logic {times.logic_s:.2f}s)",
            err=True,
        )


def _counted(frames: Iterator[Frame], tick: Callable[[int], None]) -> Iterator[Frame]:
    for frame in frames:
        tick(1)
        yield frame
