"""node.yaml validation: every problem at its exact file:line and key; the example validates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.node.cli import edge_group
from edge.node.config import KeyframesOnly, load_node_config, validate_node_file
from zones.yaml_source import ConfigFileError, Severity

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "deploy" / "node.example.yaml"

ZONES = """\
camera_id: cam-01
zones:
  - id: door-1
    kind: monitored
    polygon: [[0.1, 0.5], [0.9, 0.5], [0.9, 0.9], [0.1, 0.9]]
    shop: {id: shop-1, name: Shop}
"""

GOOD = """\
node_id: node-1
mqtt:
  host: 127.0.0.1
  port: 1883
outbox:
  path: state/edge.sqlite
cameras:
  - id: cam-01
    url: file:///videos/street.mp4
    zones: zones.yaml
"""


def _write(tmp_path: Path, text: str, zones: str = ZONES) -> Path:
    (tmp_path / "zones.yaml").write_text(zones)
    (tmp_path / "pw").write_text("s3cret-value\n")
    path = tmp_path / "node.yaml"
    path.write_text(text)
    return path


def test_good_config_loads_with_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = load_node_config(_write(tmp_path, GOOD))
    assert config.node_id == "node-1"
    assert config.outbox.path == tmp_path / "state" / "edge.sqlite"
    assert config.config_cache_path == tmp_path / "state" / "applied-config.json"
    camera = config.cameras[0]
    assert camera.zones == tmp_path / "zones.yaml"
    assert camera.sample_interval_s == 2.0 and camera.enabled and camera.keyframes_only is KeyframesOnly.AUTO
    assert config.metrics.port == 9108 and config.detector.model is None
    with pytest.raises(ValueError, match="frozen"):
        config.node_id = "other"


def _replace(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


SECOND_CAMERA = "  - id: cam-01\n    url: usb:0\n    zones: zones.yaml\n"

# (node.yaml text, expected line, key path, message fragment)
CASES = [
    (_replace("node_id: node-1", "node_id: node/1"), 1, "node_id", "should match pattern"),
    (_replace("  port: 1883", "  port: 99999"), 4, "mqtt.port", "less than or equal to 65535"),
    (_replace("  port: 1883", '  port: "1883"'), 4, "mqtt.port", "valid integer"),
    (_replace("  host: 127.0.0.1", "  hots: 127.0.0.1"), 3, "mqtt.hots", "Extra inputs are not permitted"),
    (_replace("    url: file:///videos/street.mp4", "    url: ftp://cam/x"), 9, "cameras[0].url", "rtsp://"),
    (_replace("    zones: zones.yaml", "    zones: zones.yaml\n    sample_interval_s: 0"), 11,
     "cameras[0].sample_interval_s", "greater than or equal to 0.1"),
    (_replace("    zones: zones.yaml", "    zones: zones.yaml\n    keyframes_only: sometimes"), 11,
     "cameras[0].keyframes_only", "'auto', 'on' or 'off'"),
    (_replace("    zones: zones.yaml", "    zones: zones.yaml\n    enabled: yes"), 11,
     "cameras[0].enabled", "valid boolean"),
    (_replace("    zones: zones.yaml\n", "    zones: zones.yaml\n" + SECOND_CAMERA), 11,
     "cameras[1].id", "camera id 'cam-01' is used twice"),
    (_replace("  port: 1883", "  port: 1883\n  password: secret"), 2, "mqtt.username",
     "a password needs a username"),
    (_replace("  port: 1883", "  port: 1883\n  username: u\n  password: s\n  password_file: pw"), 7,
     "mqtt.password_file", "not both"),
    (_replace(GOOD[GOOD.index("cameras:"):], "cameras: []\n"), 7, "cameras", "list 1 to 64 cameras, got 0"),
    (_replace("    url: file:///videos/street.mp4\n", ""), 8, "cameras[0].url", "Field required"),
    (GOOD + "metrics:\n  port: -1\n", 12, "metrics.port", "greater than or equal to 0"),
    (GOOD + "detector:\n  model: missing.onnx\n", 12, "detector.model", "is not a readable file"),
    (_replace("  port: 1883", "  port: 1883\n  reconnect_min_s: 10\n  reconnect_max_s: 5"), 6,
     "mqtt.reconnect_max_s", "must be >= reconnect_min_s"),
    (_replace("    zones: zones.yaml", "    zones: zones.yaml\n    main_stream_url: usb:1"), 11,
     "cameras[0].main_stream_url", "main_stream_url must be rtsp://"),
    (_replace("    zones: zones.yaml", "    zones: zones.yaml\n    main_stream_timeout_s: 0.1"), 11,
     "cameras[0].main_stream_timeout_s", "greater than or equal to 0.5"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "key", "message"), CASES)
def test_each_problem_points_at_its_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigFileError) as info:
        load_node_config(path)
    errors = [p for p in info.value.problems if p.severity is Severity.ERROR]
    assert [(p.file, p.line, p.key_path) for p in errors] == [(str(path), line, key)]
    assert message in errors[0].message
    assert str(errors[0]).startswith(f"{path}:{line}: {key}: ")


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD + "metrics: [unclosed\n")
    with pytest.raises(ConfigFileError) as info:
        load_node_config(path)
    assert info.value.problems[0].line == 12 and "invalid YAML" in info.value.problems[0].message


def test_validate_also_checks_each_zone_file(tmp_path: Path) -> None:
    bad_zones = ZONES.replace("[0.9, 0.9]", "[1.9, 0.9]")
    path = _write(tmp_path, GOOD, zones=bad_zones.replace("camera_id: cam-01", "camera_id: cam-09"))
    _, problems = validate_node_file(path)
    assert [str(p).split(": ", 2)[:2] for p in problems] == [
        [f"{tmp_path / 'zones.yaml'}:5", "zones[0].polygon[2][0]"]
    ]
    # With the polygon fixed, the camera id mismatch is reported at the camera's `zones:` key.
    path = _write(tmp_path, GOOD, zones=ZONES.replace("camera_id: cam-01", "camera_id: cam-09"))
    _, problems = validate_node_file(path)
    assert [(p.file, p.line, p.key_path) for p in problems] == [(str(path), 10, "cameras[0].zones")]
    assert "drawn for camera 'cam-09', not 'cam-01'" in problems[0].message


def test_password_file_is_read_and_never_shown(tmp_path: Path) -> None:
    path = _write(tmp_path, _replace("  port: 1883", "  port: 1883\n  username: node-1\n  password_file: pw"))
    config = load_node_config(path)
    settings = config.mqtt.settings(config.node_id)
    assert settings.password is not None and settings.password.get_secret_value() == "s3cret-value"
    assert settings.client_id == "node-1"
    assert "s3cret" not in repr(config) and "s3cret" not in repr(settings)


def test_cli_prints_file_line_key_and_exits_1(tmp_path: Path) -> None:
    path = _write(tmp_path, _replace("  port: 1883", "  port: 0"))
    result = CliRunner().invoke(edge_group, ["validate-config", str(path)])
    assert result.exit_code == 1
    assert f"{path}:4: mqtt.port: Input should be greater than or equal to 1" in result.output


def test_cli_accepts_a_good_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(edge_group, ["validate-config", str(_write(tmp_path, GOOD))])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("node.yaml: ok")


def test_example_config_validates_through_the_installed_command() -> None:
    curbwatch = Path(sys.executable).with_name("curbwatch")
    result = subprocess.run(
        [str(curbwatch), "edge", "validate-config", str(EXAMPLE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Only the files that exist on a real box (TLS CA, password) may be missing here.
    warnings = [line for line in result.stdout.splitlines() if "warning:" in line]
    assert all("is not a readable file" in line for line in warnings), warnings
    assert result.stdout.strip().endswith("ok (2 warnings)")


def test_scene_and_evidence_settings_per_node_and_per_camera(tmp_path: Path) -> None:
    node_wide = "scene:\n  static_after_s: 20\nevidence:\n  blur_outside_zones: true\ncameras:\n"
    second_camera = "  - id: cam-02\n    url: file:///videos/b.mp4\n    zones: zones.yaml\n"
    text = GOOD.replace("cameras:\n", node_wide) + "    scene:\n      enabled: false\n" + second_camera
    config = load_node_config(_write(tmp_path, text, ZONES))
    first, second = config.cameras
    assert not config.scene_for(first).enabled
    assert config.scene_for(second).static_after_s == 20.0 and config.scene_for(second).width_px == 384
    assert config.evidence.blur_outside_zones and config.evidence.blur_faces


def test_a_main_stream_beside_the_analysed_sub_stream(tmp_path: Path) -> None:
    main = "    main_stream_url: rtsp://cam/Streaming/Channels/101\n    main_stream_timeout_s: 5\n"
    config = load_node_config(_write(tmp_path, GOOD + main))
    camera = config.cameras[0]
    assert (
        camera.main_stream_url == "rtsp://cam/Streaming/Channels/101" and camera.main_stream_timeout_s == 5.0
    )
    assert load_node_config(_write(tmp_path, GOOD)).cameras[0].main_stream_url is None
    same = GOOD + "    main_stream_url: file:///videos/street.mp4\n"
    _, problems = validate_node_file(_write(tmp_path, same))
    assert [(p.line, p.key_path, p.severity) for p in problems] == [
        (11, "cameras[0].main_stream_url", Severity.WARNING)
    ]


def test_main_stream_max_age_defaults_and_bounds(tmp_path: Path) -> None:
    main = "    main_stream_url: rtsp://cam/Streaming/Channels/101\n"
    assert load_node_config(_write(tmp_path, GOOD + main)).cameras[0].main_stream_max_age_s == 15.0
    older = main + "    main_stream_max_age_s: 60\n"
    assert load_node_config(_write(tmp_path, GOOD + older)).cameras[0].main_stream_max_age_s == 60.0
    with pytest.raises(ConfigFileError, match="main_stream_max_age_s"):
        load_node_config(_write(tmp_path, GOOD + main + "    main_stream_max_age_s: 1\n"))


def test_detector_workers_and_a_warning_when_they_outnumber_the_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert load_node_config(_write(tmp_path, GOOD)).detector.workers == 1
    fits = GOOD + "detector:\n  workers: 2\n  threads: 2\n"
    config, problems = validate_node_file(_write(tmp_path, fits))
    assert config is not None and config.detector.workers == 2 and problems == []
    crowded = GOOD + "detector:\n  workers: 3\n  threads: 2\n"
    _, problems = validate_node_file(_write(tmp_path, crowded))
    assert [(p.key_path, p.severity) for p in problems] == [("detector.workers", Severity.WARNING)]
    assert "6 inference threads on 4 cores" in problems[0].message
    with pytest.raises(ConfigFileError, match=r"detector\.workers"):
        load_node_config(_write(tmp_path, GOOD + "detector:\n  workers: 0\n"))


def test_a_bad_scene_key_points_at_its_line(tmp_path: Path) -> None:
    text = GOOD + "scene:\n  static_after_s: -1\n  min_area: 0.5\n"
    with pytest.raises(ConfigFileError) as caught:
        load_node_config(_write(tmp_path, text))
    message = str(caught.value)
    assert "node.yaml:12: scene.static_after_s" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD, "auto"),
        (GOOD + "detector:\n  backend: onnxruntime\n", "onnxruntime"),
        (GOOD + "detector:\n  backend: {type: openvino, performance_hint: THROUGHPUT}\n", "openvino"),
    ],
)
def test_detector_backend_by_name_or_mapping(tmp_path: Path, text: str, expected: str) -> None:
    assert load_node_config(_write(tmp_path, text)).detector.backend.type == expected


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (GOOD + "detector:\n  backend: tensorrt\n", 12, "detector.backend: Input tag 'tensorrt'"),
        (GOOD + "detector:\n  backend:\n    type: openvino\n    precision: fp8\n", 14, "precision"),
    ],
)
def test_a_bad_backend_points_at_its_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_node_config(_write(tmp_path, text))
    message = str(caught.value)
    assert f"node.yaml:{line}: " in message and fragment in message, message
