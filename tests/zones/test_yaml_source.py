"""The generic YAML/JSON position machinery (reused by the node config validator)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from zones.yaml_source import (
    ConfigFileError,
    Problem,
    Severity,
    format_key_path,
    line_of,
    load_with_positions,
    problems_from_validation_error,
)

DOC = textwrap.dedent(
    """\
    # a comment
    camera_id: cam-01
    zones:
      - id: a
        polygon: [[0.1, 0.2],
                  [0.3, 0.4]]
        shop:
          id: s1
      - id: b
        polygon:
          - [0, 0]
          - [1, 1]
    """
)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("camera_id",), 2),
        (("zones",), 3),
        (("zones", 0), 4),
        (("zones", 0, "polygon"), 5),
        (("zones", 0, "polygon", 1), 6),  # flow sequence items keep their own line
        (("zones", 0, "polygon", 1, 0), 6),
        (("zones", 0, "shop", "id"), 8),
        (("zones", 0, "shop", "name"), 7),  # missing key: the mapping that should hold it
        (("zones", 1), 9),
        (("zones", 1, "polygon", 1), 12),
        (("zones", 1, "missing", "deeper"), 9),
        (("zones", 7), 3),  # index past the end: the sequence's key
        ((), 2),
    ],
)
def test_line_of_is_exact(path: tuple[str | int, ...], line: int) -> None:
    doc = load_with_positions(DOC, "doc.yaml")
    assert line_of(doc.root, path) == line


def test_plain_data_has_no_ruamel_types() -> None:
    data = load_with_positions(DOC, "doc.yaml").data
    assert type(data) is dict and type(data["zones"]) is list
    assert type(data["zones"][0]["polygon"][0][0]) is float
    assert type(data["camera_id"]) is str


def test_dates_stay_text_for_pydantic() -> None:
    assert load_with_positions("d: 2024-13-01\ne: 2024-05-01\n", "x.yaml").data == {
        "d": "2024-13-01",
        "e": "2024-05-01",
    }


def test_json_with_tabs_keeps_lines() -> None:
    text = '{\n\t"camera_id": "c",\n\t"zones": [\n\t\t{"id": "a"}\n\t]\n}\n'
    doc = load_with_positions(text, "zones.json")
    assert doc.data == {"camera_id": "c", "zones": [{"id": "a"}]}
    assert line_of(doc.root, ("zones", 0, "id")) == 4


@pytest.mark.parametrize(
    ("name", "text", "line", "fragment"),
    [
        ("bad.yaml", "a: 1\nb: [1, 2\nc: 3\n", 3, "invalid YAML"),
        ("bad.yaml", "a: 1\na: 2\n", 2, "duplicate key"),
        ("bad.yaml", "a:\n  - 1\n - 2\n", 3, "invalid YAML"),
        ("bad.json", '{"a": 1,\n "b": }\n', 2, "invalid JSON"),  # YAML would read null
        ("bad.json", '{"a": 1,\n "a": 2}\n', 2, "duplicate key"),
    ],
)
def test_syntax_errors_carry_their_line(name: str, text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_with_positions(text, name)
    (problem,) = caught.value.problems
    assert problem.line == line
    assert fragment in problem.message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as caught:
        load_with_positions(tmp_path / "absent.yaml")
    assert caught.value.problems[0].line is None
    assert str(caught.value).startswith(f"{tmp_path / 'absent.yaml'}: cannot read")


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("zones", 1, "polygon", 2, 0), "zones[1].polygon[2][0]"),
        (("camera_id",), "camera_id"),
        ((), ""),
        ((0, "a"), "[0].a"),
    ],
)
def test_format_key_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_key_path(path) == text


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        (Problem("f.yaml", 3, "zones[0].id", "bad"), "f.yaml:3: zones[0].id: bad"),
        (Problem("f.yaml", 3, "zones", "hm", Severity.WARNING), "f.yaml:3: zones: warning: hm"),
        (Problem("f.yaml", None, "", "cannot read"), "f.yaml: cannot read"),
    ],
)
def test_problem_format(problem: Problem, text: str) -> None:
    assert str(problem) == text


class _Node(BaseModel):
    """Stands in for another config (node.yaml): the machinery knows nothing of zones."""

    model_config = ConfigDict(extra="forbid")

    class Mqtt(BaseModel):
        model_config = ConfigDict(extra="forbid")
        host: str
        port: int

    mqtt: Mqtt
    cameras: list[str]


def test_problems_from_any_model() -> None:
    text = "mqtt:\n  host: broker\n  port: nope\n  tls: true\ncameras:\n  - a\n  - [b]\n"
    doc = load_with_positions(text, "node.yaml")
    with pytest.raises(ValidationError) as caught:
        _Node.model_validate(doc.data)
    lines = [str(p) for p in problems_from_validation_error(caught.value, doc)]
    assert lines == [
        "node.yaml:3: mqtt.port: "
        "Input should be a valid integer, unable to parse string as an integer, got 'nope'",
        "node.yaml:4: mqtt.tls: Extra inputs are not permitted",
        "node.yaml:7: cameras[1]: Input should be a valid string",
    ]
