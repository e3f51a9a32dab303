from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from edge.analyze.video_file import read_frames
from edge.cli import main
from tests.scenarios.cases import CASES, IN_ZONE_A, PATCH_SCALE, zone_file_for
from tests.scenarios.footage import Placement, composite, load_patch

LEFT_IN_ZONE = next(c for c in CASES if c.name == "left in zone, then removed")


@pytest.fixture(scope="module")
def clip(vtest_avi: Path, leuven_jpg: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """First 30 s of vtest with the bicycles standing in zone door-a from 2 s on."""
    placement = Placement(load_patch(leuven_jpg, PATCH_SCALE), IN_ZONE_A, 2.0, 1e9)
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (768, 576))
    for frame in read_frames(vtest_avi, "cam", sample_fps=None):
        if frame.ts >= 30.0:
            break
        writer.write(composite(frame.pixels, placement, frame.ts))
    writer.release()
    return path


def test_read_frames_samples_by_stream_seconds(vtest_avi: Path) -> None:
    times = [f.ts for f in read_frames(vtest_avi, "cam", sample_fps=2.0)]
    assert times[:4] == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert len(times) == 159 and times[-1] == pytest.approx(79.0)  # frames 0.0 .. 79.4 s


@pytest.mark.slow
def test_analyze_writes_the_jsonl_contract_and_evidence(clip: Path, tmp_path: Path) -> None:
    zones = zone_file_for(LEFT_IN_ZONE, tmp_path)
    result = CliRunner().invoke(
        main,
        ["analyze", str(clip), "--zones", str(zones), "--evidence-dir", str(tmp_path / "ev"),
         "--start-time", "2025-06-04T10:00:00+08:00", "--threads", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["event"] for r in lines] == ["opened"]  # nothing but events on stdout
    opened = lines[0]
    assert {"event", "incident_id", "camera_id", "zone_id", "t", "label", "bbox", "confidence"} <= set(opened)
    assert opened["zone_id"] == "door-a" and opened["label"] == "bicycle" and opened["seq"] == 0
    assert 12.0 <= opened["t"] <= 14.0
    assert all(0.0 <= v <= 1.0 for v in opened["bbox"])
    assert opened["utc"] == f"2025-06-04T02:00:{opened['t']:02.0f}+00:00"  # --start-time + video time
    assert Path(opened["evidence"]).read_bytes()[:2] == b"\xff\xd8"


@pytest.mark.slow
def test_analyze_to_a_file(clip: Path, tmp_path: Path) -> None:
    zones = zone_file_for(LEFT_IN_ZONE, tmp_path)
    out = tmp_path / "events.jsonl"
    result = CliRunner().invoke(
        main, ["analyze", str(clip), "--zones", str(zones), "--events-out", str(out), "--sample-fps", "0.5"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert [json.loads(line)["event"] for line in out.read_text().splitlines()] == ["opened"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.avi", "--zones", "{zones}"], "no such file"),
        (["{video}", "--zones", "{bad}"], "bad.yaml"),
        (["{video}", "--zones", "missing.yaml"], "Error: missing.yaml: cannot read"),
        (["{video}", "--zones", "{zones}", "--start-time", "yesterday"], "ISO 8601"),
    ],
)
def test_user_mistakes_are_one_line_errors(
    vtest_avi: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    zones = zone_file_for(LEFT_IN_ZONE, tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("camera_id: x\nzones: [{id: a}]\n")
    filled = [a.format(zones=zones, bad=bad, video=vtest_avi) for a in args]
    result = CliRunner().invoke(main, ["analyze", *filled])
    assert result.exit_code == 2 if "ISO" in message else result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert sum(line.startswith("Error:") for line in result.output.splitlines()) == 1
    assert f"{bad}: {bad}" not in result.output  # not `bad.yaml: bad.yaml:2: ...`
