"""Bad input to `curbwatch models train` ends with one line and exit status 2, never a traceback."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.cli import main
from tests.models.verdict_export import Sent


def _one_camera_day(export: Path, folder: Path) -> Path:
    """The export cut down to the verdicts of one camera on one day."""
    out = folder / "one-day.zip"
    with zipfile.ZipFile(export) as source, zipfile.ZipFile(out, "w") as target:
        records = [json.loads(line) for line in source.read("manifest.jsonl").decode().splitlines()]
        kept = [
            r for r in records if r["camera"] == "cam-plaza" and r["first_seen_at"].startswith("2026-05-01")
        ]
        for record in kept:
            target.writestr(record["image"], source.read(record["image"]))
        target.writestr("manifest.jsonl", "".join(json.dumps(r) + "\n" for r in kept))
    return out


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "no such file"),
        ("not_a_zip", "not a ZIP file"),
        ("no_manifest", "not a verdict export (no manifest.jsonl)"),
        ("empty", "holds no confirmed or rejected verdict with a picture and a box"),
        ("bad_line", "manifest.jsonl line 2 is not JSON"),
        ("missing_image", "which the ZIP does not hold"),
        ("one_camera_day", "at least two camera-days"),
        ("missing_base", "no such file (bring the checkpoint"),
        ("onnx_base", "expected an ultralytics .pt checkpoint or a model .yaml"),
        ("remote_base", "curbwatch never downloads models"),
        ("unknown_yaml", "yolo99z.yaml: not an ultralytics model definition"),
        ("used_out", "exists and is not an empty folder"),
    ],
)
def test_bad_input_is_one_line(
    tmp_path: Path, verdict_export: tuple[Path, list[Sent]], case: str, expected: str
) -> None:
    export, _sent = verdict_export
    record = {"incident_id": "a1", "camera": "c", "verdict": "confirmed", "image": "images/a1.jpg"}
    record |= {"label": "chair", "bbox": [0.1, 0.1, 0.5, 0.5], "decided_at": "2026-05-01T02:00:00Z"}
    verdicts, base, out = export, "yolo11n.yaml", tmp_path / "out"
    if case == "missing":
        verdicts = tmp_path / "nope.zip"
    elif case == "not_a_zip":
        verdicts = tmp_path / "notes.zip"
        verdicts.write_text("not a zip")
    elif case == "no_manifest":
        verdicts = _zip(tmp_path / "other.zip", {"readme.txt": "hello"})
    elif case == "empty":
        verdicts = _zip(tmp_path / "empty.zip", {"manifest.jsonl": "", "data.yaml": "names: {}\n"})
    elif case == "bad_line":
        verdicts = _zip(
            tmp_path / "bad.zip", {"manifest.jsonl": json.dumps(record) + "\n{oops\n", "images/a1.jpg": ""}
        )
    elif case == "missing_image":
        verdicts = _zip(tmp_path / "bare.zip", {"manifest.jsonl": json.dumps(record) + "\n"})
    elif case == "one_camera_day":
        verdicts = _one_camera_day(export, tmp_path)
    elif case == "missing_base":
        base = str(tmp_path / "yolo11n.pt")
    elif case == "onnx_base":
        base = str(tmp_path / "yolo11n.onnx")
    elif case == "remote_base":
        base = "https://example.com/yolo11n.pt"
    elif case == "unknown_yaml":
        base = "yolo99z.yaml"
    elif case == "used_out":
        out.mkdir()
        (out / "keep.txt").write_text("someone's file")
    result = CliRunner().invoke(main, ["models", "train", str(verdicts), "--base", base, "--out", str(out)])
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and expected in lines[0], result.output
    if case == "used_out":
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    elif case == "unknown_yaml":
        assert list(out.iterdir()) == []  # an empty folder: a rerun may use it
    elif case != "missing_base":
        assert not out.exists()  # nothing written before the input is known to be good
