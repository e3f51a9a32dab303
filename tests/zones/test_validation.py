"""Zone files in, problems out: each at its exact line and key."""

from __future__ import annotations

import json
import textwrap
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from models.classes import DEFAULT_GOODS_CLASSES
from zones.loader import ZoneFileError, check_zone_file, load_zone_file, parse_zone_document
from zones.schema import ZoneFile, ZoneKind
from zones.yaml_source import Severity

E, W = Severity.ERROR, Severity.WARNING

HEAD = """\
camera_id: cam-01
zones:
  - id: door-1
    kind: monitored
    polygon: [[0.1, 0.5], [0.5, 0.5], [0.5, 0.9], [0.1, 0.9]]
    shop: {id: shop-1, name: 水果店}
"""  # lines 1-6; cases append from line 7


def write(tmp_path: Path, text: str, name: str = "zones.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


CASES = [
    pytest.param(HEAD, [], id="valid"),
    pytest.param(
        HEAD + "    classes:\n      - chair\n      - shelf\n",
        [(9, "zones[0].classes[1]", E, "unknown class 'shelf'")],
        id="unknown-class-block-list",
    ),
    pytest.param(
        HEAD + "    classes: [chair, person]\n",
        [(7, "zones[0].classes[1]", E, "'person' is never goods")],
        id="person-is-never-goods",
    ),
    pytest.param(
        HEAD + "    classes: []\n",
        [(7, "zones[0].classes", E, "at least 1 item")],
        id="no-classes",
    ),
    pytest.param(
        HEAD.replace("[0.5, 0.9], [0.1, 0.9]]", "[0.5, 0.5]]"),
        [(5, "zones[0].polygon", E, "at least 3 distinct points, got 2")],
        id="too-few-points",
    ),
    pytest.param(
        HEAD.replace("[0.5, 0.9], [0.1, 0.9]", "[0.1, 0.9], [0.5, 0.9]"),
        [(5, "zones[0].polygon", E, "polygon is not simple (Self-intersection")],
        id="bow-tie",
    ),
    pytest.param(
        HEAD.replace(
            "[[0.1, 0.5], [0.5, 0.5], [0.5, 0.9], [0.1, 0.9]]", "[[0.1, 0.5], [0.3, 0.7], [0.5, 0.9]]"
        ),
        [(5, "zones[0].polygon", E, "polygon encloses no area")],
        id="collinear",
    ),
    pytest.param(
        HEAD.replace("[0.5, 0.9]", "[1.5, 0.9]"),
        [(5, "zones[0].polygon[2][0]", E, "coordinate 1.5 is outside 0..1")],
        id="coordinate-out-of-frame",
    ),
    pytest.param(
        HEAD.replace("[0.5, 0.9]", "[0.5]"),
        [(5, "zones[0].polygon[2][1]", E, "Field required")],
        id="point-without-y",
    ),
    pytest.param(
        HEAD + "  - id: door-1\n    kind: exempt\n    polygon: [[0.1, 0.5], [0.3, 0.5], [0.3, 0.7]]\n",
        [(7, "zones[1].id", E, "zone id 'door-1' is already used by zones[0]")],
        id="duplicate-id",
    ),
    pytest.param(
        HEAD.replace("    shop: {id: shop-1, name: 水果店}\n", ""),
        [(3, "zones[0]", E, "monitored zone 'door-1' needs `shop`")],
        id="monitored-without-shop",
    ),
    pytest.param(
        HEAD + "    colour: red\n",
        [(7, "zones[0].colour", E, "Extra inputs are not permitted")],
        id="unknown-key",
    ),
    pytest.param(
        HEAD + '    min_overlap: "0.5"\n',
        [(7, "zones[0].min_overlap", E, "valid number, got '0.5'")],
        id="quoted-number",
    ),
    pytest.param(
        HEAD + "    min_overlap: 1.5\n",
        [(7, "zones[0].min_overlap", E, "less than or equal to 1")],
        id="overlap-above-one",
    ),
    pytest.param(
        HEAD + "    min_area: 0.3\n    max_area: 0.2\n",
        [(3, "zones[0]", E, "min_area 0.3 must be below max_area 0.2")],
        id="area-bounds-reversed",
    ),
    pytest.param(
        HEAD + "    dwell_s: 0\n",
        [(7, "zones[0].dwell_s", E, "greater than or equal to 1")],
        id="dwell-zero",
    ),
    pytest.param(
        "timezone: Mars/Olympus\n" + HEAD,
        [(1, "timezone", E, "unknown time zone 'Mars/Olympus'")],
        id="bad-timezone",
    ),
    pytest.param(
        HEAD.replace("camera_id: cam-01\n", ""),
        [(1, "camera_id", E, "Field required")],
        id="missing-camera-id",
    ),
    pytest.param(
        HEAD.replace("cam-01", "cam/01"),
        [(1, "camera_id", E, "'cam/01' is not an id")],
        id="id-with-slash",
    ),
    pytest.param(
        "schema_version: 2\n" + HEAD,
        [(1, "schema_version", E, "Input should be 1")],
        id="future-schema",
    ),
    pytest.param(
        HEAD
        + "    schedule:\n      weekly:\n        - {days: [mon, funday], start: '08:00', end: '25:00'}\n",
        [
            (9, "zones[0].schedule.weekly[0].end", E, "'25:00' is not a time"),
            (9, "zones[0].schedule.weekly[0].days[1]", E, "Input should be 'mon'"),
        ],
        id="schedule-bad-day-and-time",
    ),
    pytest.param(
        HEAD + "    schedule:\n      weekly:\n        - days: [mon]\n          start: '08:00'\n"
        "          end: '08:00'\n",
        [(9, "zones[0].schedule.weekly[0]", E, 'start and end are both "08:00"')],
        id="schedule-empty-window",
    ),
    pytest.param(
        HEAD + "    schedule:\n      exceptions:\n        - date: 2025-02-30\n          active: false\n",
        [(9, "zones[0].schedule.exceptions[0].date", E, "valid date")],
        id="schedule-impossible-date",
    ),
    pytest.param(
        HEAD + "    schedule:\n      exceptions:\n        - date: 2025-10-01\n          active: false\n"
        "          windows: [{start: '08:00', end: '12:00'}]\n",
        [(9, "zones[0].schedule.exceptions[0]", E, "windows are only allowed with active: true")],
        id="schedule-windows-on-inactive-date",
    ),
    pytest.param(
        HEAD + "    schedule:\n      exceptions:\n        - {date: 2025-10-01, active: false}\n"
        "        - {date: 2025-10-01, active: true}\n",
        [(7, "zones[0].schedule", E, "exceptions list a date more than once: 2025-10-01")],
        id="schedule-duplicate-date",
    ),
    pytest.param(
        HEAD + "    schedule: {}\n",
        [(7, "zones[0].schedule", E, "schedule has no weekly windows or exceptions")],
        id="schedule-empty",
    ),
    pytest.param(
        HEAD + "    schedule:\n      exceptions:\n        - {date: 2025-10-01, active: 'yes'}\n",
        [(9, "zones[0].schedule.exceptions[0].active", E, "valid boolean, got 'yes'")],
        id="schedule-quoted-bool",
    ),
    pytest.param(
        HEAD + "    fixtures:\n      - {class: benchh, box: [0.2, 0.6, 0.1, 0.7]}\n",
        [
            (
                8,
                "zones[0].fixtures[0].class",
                E,
                "unknown class 'benchh': the detector has no such class (did you mean 'bench'?)",
            ),
            (8, "zones[0].fixtures[0].box", E, "x1 < x2"),
        ],
        id="fixture-bad-class-and-box",
    ),
    pytest.param(
        HEAD + "  - id: door-2\n    kind: monitored\n    polygon: [[0.3, 0.5], [0.9, 0.5], [0.9, 0.9]]\n"
        "    shop: {id: shop-2, name: Two}\n",
        [(9, "zones[1].polygon", W, "overlaps zones[0] ('door-1', shop 'shop-1')")],
        id="shops-overlap-warning",
    ),
    pytest.param(
        HEAD + "  - id: cafe\n    kind: exempt\n    polygon: [[0.6, 0.1], [0.9, 0.1], [0.9, 0.3]]\n",
        [(9, "zones[1].polygon", W, "exempt zone 'cafe' overlaps no monitored zone")],
        id="exempt-elsewhere-warning",
    ),
    pytest.param(
        "camera_id: cam-01\nzones: []\n",
        [(2, "zones", W, "no monitored zone")],
        id="no-monitored-warning",
    ),
    pytest.param("- just\n- a list\n", [(1, "", E, "expected a mapping")], id="not-a-mapping"),
    pytest.param("", [(1, "", E, "got an empty document")], id="empty"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_problems_at_exact_lines(
    tmp_path: Path, text: str, expected: list[tuple[int, str, Severity, str]]
) -> None:
    path = write(tmp_path, text)
    zone_file, problems = check_zone_file(path)
    got = [(p.line, p.key_path, p.severity) for p in problems]
    assert got == [(line, key, severity) for line, key, severity, _ in expected], [str(p) for p in problems]
    for problem, (*_, fragment) in zip(problems, expected, strict=True):
        assert fragment in problem.message
        assert problem.file == str(path)
    assert (zone_file is None) == any(severity is E for _, _, severity, _ in expected)


def test_error_string_lists_file_line_key(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "    classes: [chair, person]\n    colour: red\n")
    with pytest.raises(ZoneFileError) as caught:
        load_zone_file(path)
    assert str(caught.value).splitlines() == [
        f"{path}:7: zones[0].classes[1]: "
        "'person' is never goods: people are blurred in evidence, not reported",
        f"{path}:8: zones[0].colour: Extra inputs are not permitted",
    ]


@pytest.mark.parametrize(
    ("known", "classes", "error"),
    [
        (None, "[shelf]", "unknown class 'shelf'"),
        (("shelf", "crate"), "[shelf, crate]", None),
        (("shelf", "crate"), "[chair]", "unknown class 'chair'"),  # COCO no longer applies
        (("shelf", "person"), "[person]", "'person' is never goods"),  # not even a custom model's
    ],
)
def test_custom_model_classes(
    tmp_path: Path, known: tuple[str, ...] | None, classes: str, error: str | None
) -> None:
    path = write(tmp_path, HEAD + f"    classes: {classes}\n")
    if error is None:
        assert load_zone_file(path, known_classes=known).zones[0].classes == frozenset(known or ())
    else:
        with pytest.raises(ZoneFileError, match=error):
            load_zone_file(path, known_classes=known)


def test_defaults_and_frozen(tmp_path: Path) -> None:
    zone_file = load_zone_file(write(tmp_path, HEAD))
    zone = zone_file.zones[0]
    assert zone_file.timezone == "Asia/Shanghai"
    assert zone.kind is ZoneKind.MONITORED
    assert zone.classes == DEFAULT_GOODS_CLASSES
    assert (zone.min_overlap, zone.min_confidence, zone.dwell_s, zone.clear_s) == (0.5, 0.35, 60, 30)
    assert (zone.update_every_s, zone.cooldown_s, zone.schedule, zone.fixtures) == (300, 120, None, ())
    assert zone.polygon == ((0.1, 0.5), (0.5, 0.5), (0.5, 0.9), (0.1, 0.9))
    with pytest.raises(ValueError, match="frozen"):
        zone.dwell_s = 5


def test_closed_ring_drops_repeated_point(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD.replace("[0.1, 0.9]]", "[0.1, 0.9], [0.1, 0.5]]"))
    assert len(load_zone_file(path).zones[0].polygon) == 4


def test_json_is_accepted_with_lines(tmp_path: Path) -> None:
    zones = {
        "camera_id": "cam-01",
        "zones": [
            {
                "id": "door-1",
                "kind": "monitored",
                "polygon": [[0.1, 0.5], [0.5, 0.5], [0.5, 0.9]],
                "shop": {"id": "shop-1", "name": "Shop"},
            }
        ],
    }
    good = tmp_path / "zones.json"
    good.write_text(json.dumps(zones, indent=2), encoding="utf-8")
    assert load_zone_file(good).zones[0].id == "door-1"

    zones["zones"][0]["min_confidence"] = 2  # type: ignore[index]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(zones, indent=2), encoding="utf-8")
    _, problems = check_zone_file(bad)
    (problem,) = problems
    expected_line = json.dumps(zones, indent=2).splitlines().index('      "min_confidence": 2') + 1
    assert (problem.line, problem.key_path) == (expected_line, "zones[0].min_confidence")


def test_parse_zone_document_names_the_source() -> None:
    text = textwrap.dedent(HEAD) + "    dwell_s: -1\n"
    with pytest.raises(ZoneFileError) as caught:
        parse_zone_document(text, "mqtt:curbwatch/v1/node-1/config")
    assert str(caught.value).startswith("mqtt:curbwatch/v1/node-1/config:7: zones[0].dwell_s: ")
    assert parse_zone_document(textwrap.dedent(HEAD), "mqtt:x").camera_id == "cam-01"


def test_direct_construction_still_enforces_cross_zone_errors() -> None:
    zone = {"id": "a", "kind": "exempt", "polygon": [[0, 0], [1, 0], [1, 1]]}
    with pytest.raises(ValueError, match=r"zones\[1\].id: zone id 'a' is already used"):
        ZoneFile.model_validate({"camera_id": "c", "zones": [zone, zone]})


def _models(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    yield model
    for field in model.model_fields.values():
        for candidate in (field.annotation, *typing.get_args(field.annotation)):
            for inner in (candidate, *typing.get_args(candidate)):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    yield from _models(inner)


def test_every_field_is_described() -> None:
    """The configuration reference is generated from these descriptions."""
    missing = [
        f"{model.__name__}.{name}"
        for model in set(_models(ZoneFile))
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert missing == []
    assert {m.__name__ for m in _models(ZoneFile)} >= {"Zone", "Shop", "Schedule", "Fixture", "DateException"}


def test_the_scene_classes_are_known_to_every_detector_and_fixtures_may_name_them() -> None:
    from zones.loader import parse_zone_document

    text = """\
camera_id: cam-01
zones:
  - id: door-1
    kind: monitored
    polygon: [[0.1, 0.5], [0.9, 0.5], [0.9, 0.9], [0.1, 0.9]]
    shop: {id: shop-1, name: Shop}
    classes: [static object, signboard]
    min_area: 0.002
    fixtures:
      - {class: static object, box: [0.2, 0.6, 0.3, 0.8], name: the shop's own bollard}
"""
    zone = parse_zone_document(text, "zones.yaml", known_classes=("widget",)).zones[0]
    assert zone.classes == frozenset({"static object", "signboard"})
    assert zone.fixtures[0].class_name == "static object"
