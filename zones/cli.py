"""`curbwatch zones ...`: check zone files and draw them on a snapshot. A thin shell over the library."""

from __future__ import annotations

from pathlib import Path

import click
import cv2
import numpy as np

from models.types import Image
from zones.loader import ZoneFileError, check_zone_file, load_zone_file
from zones.render import draw_zones
from zones.yaml_source import Severity

VIDEO_SUFFIXES = frozenset({".avi", ".mp4", ".mkv", ".mov", ".ts", ".webm"})


def _read_class_names(path: Path | None) -> tuple[str, ...] | None:
    if path is None:
        return None
    names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if not names:
        raise click.ClickException(f"{path}: no class names (one per line expected)")
    return names


classes_option = click.option(
    "--classes",
    "classes_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Class names of a custom detector, one per line (default: the 80 COCO classes).",
)


@click.group(name="zones")
def zones_group() -> None:
    """Zone files: validate them, draw them on a camera snapshot."""


@zones_group.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@classes_option
def validate(files: tuple[Path, ...], classes_file: Path | None) -> None:
    """Check zone files; print every problem as `file:line: key: message`.

    Exits 1 if any file has an error; warnings are printed but exit 0.
    """
    known = _read_class_names(classes_file)
    errors = warnings = 0
    for path in files:
        zone_file, problems = check_zone_file(path, known)
        for problem in problems:
            click.echo(str(problem))
        errors += sum(p.severity is Severity.ERROR for p in problems)
        warnings += sum(p.severity is Severity.WARNING for p in problems)
        if zone_file is not None:
            click.echo(f"{path}: ok, {len(zone_file.zones)} zones on camera {zone_file.camera_id}", err=True)
    click.echo(f"{len(files)} files: {errors} errors, {warnings} warnings", err=True)
    if errors:
        click.get_current_context().exit(1)


def _read_snapshot(path: Path, at_s: float) -> Image:
    if not path.is_file():
        raise click.ClickException(f"{path}: no such file")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        capture = cv2.VideoCapture(str(path))
        try:
            capture.set(cv2.CAP_PROP_POS_MSEC, at_s * 1000.0)
            ok, frame = capture.read()
        finally:
            capture.release()
        if not ok or frame is None:
            raise click.ClickException(f"{path}: cannot read a frame at {at_s} s")
        return np.asarray(frame, dtype=np.uint8)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise click.ClickException(f"{path}: not an image OpenCV can read")
    return np.asarray(image, dtype=np.uint8)


@zones_group.command()
@click.argument("zone_file_path", metavar="FILE", type=click.Path(path_type=Path))
@click.argument("image_path", metavar="IMAGE", type=click.Path(path_type=Path))
@click.option(
    "--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="PNG to write."
)
@click.option("--at-s", default=0.0, show_default=True, help="When IMAGE is a video: the frame at this time.")
@classes_option
def render(
    zone_file_path: Path, image_path: Path, out_path: Path, at_s: float, classes_file: Path | None
) -> None:
    """Draw the zones of FILE onto IMAGE (a snapshot, or a video's frame) and write --out."""
    try:
        zone_file = load_zone_file(zone_file_path, _read_class_names(classes_file))
    except ZoneFileError as err:
        raise click.ClickException(f"{zone_file_path} has errors:\n{err}") from err
    drawn = draw_zones(_read_snapshot(image_path, at_s), zone_file)
    try:
        written = cv2.imwrite(str(out_path), drawn)
    except cv2.error as err:
        raise click.ClickException(f"{out_path}: cannot write: {err}") from err
    if not written:
        raise click.ClickException(f"{out_path}: cannot write (does the folder exist? is it .png?)")
    click.echo(f"wrote {out_path} ({drawn.shape[1]}x{drawn.shape[0]}, {len(zone_file.zones)} zones)")
