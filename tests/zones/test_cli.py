"""`curbwatch zones validate|render` through click's runner, from the real CLI root."""

from __future__ import annotations

import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "zones" / "examples" / "vtest_cam01.yaml"

GOOD = """\
camera_id: cam-01
zones:
  - id: door-1
    kind: monitored
    polygon: [[0.1, 0.5], [0.5, 0.5], [0.5, 0.9], [0.1, 0.9]]
    shop: {id: shop-1, name: Fresh Fruit}
    fixtures:
      - {class: bench, box: [0.2, 0.6, 0.3, 0.7]}
  - id: cafe
    kind: exempt
    polygon: [[0.1, 0.5], [0.2, 0.5], [0.2, 0.9]]
"""
WARNING_ONLY = GOOD + "  - id: lost\n    kind: exempt\n    polygon: [[0.7, 0.1], [0.9, 0.1], [0.9, 0.3]]\n"
BAD = GOOD.replace("kind: monitored", "kind: monitored\n    dwell_s: -5").replace("[0.2, 0.9]]", "[2, 0.9]]")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def run(*args: str) -> tuple[int, list[str], str]:
    result = CliRunner().invoke(main, ["zones", *args])
    return result.exit_code, result.stdout.splitlines(), result.stderr


def test_validate_good_file(tmp_path: Path) -> None:
    code, lines, err = run("validate", str(write(tmp_path, "good.yaml", GOOD)))
    assert (code, lines) == (0, [])
    assert "ok, 2 zones on camera cam-01" in err


def test_validate_warnings_alone_exit_zero(tmp_path: Path) -> None:
    path = write(tmp_path, "warn.yaml", WARNING_ONLY)
    code, lines, _ = run("validate", str(path))
    assert code == 0
    assert lines == [
        f"{path}:14: zones[2].polygon: warning: "
        "exempt zone 'lost' overlaps no monitored zone, so it exempts nothing"
    ]


def test_validate_errors_in_several_files(tmp_path: Path) -> None:
    good, bad = write(tmp_path, "good.yaml", GOOD), write(tmp_path, "bad.yaml", BAD)
    code, lines, err = run("validate", str(good), str(bad))
    assert code == 1
    assert [line.split(": ")[0:2] for line in lines] == [
        [f"{bad}:5", "zones[0].dwell_s"],
        [f"{bad}:12", "zones[1].polygon[2][0]"],
    ]
    assert "2 files: 2 errors, 0 warnings" in err


def test_validate_missing_file_is_an_error_line(tmp_path: Path) -> None:
    code, lines, _ = run("validate", str(tmp_path / "absent.yaml"))
    assert code == 1
    assert lines[0].startswith(f"{tmp_path / 'absent.yaml'}: cannot read")


def test_validate_with_custom_classes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "z.yaml",
        GOOD.replace("    fixtures:\n      - {class: bench, box: [0.2, 0.6, 0.3, 0.7]}\n", "").replace(
            "shop: {id: shop-1, name: Fresh Fruit}", "shop: {id: shop-1, name: F}\n    classes: [shelf]"
        ),
    )
    assert run("validate", str(path))[0] == 1
    names = write(tmp_path, "classes.txt", "shelf\ncrate\n")
    assert run("validate", "--classes", str(names), str(path))[0] == 0


def test_render_writes_a_png_of_the_image_size(tmp_path: Path) -> None:
    image = np.full((360, 640, 3), 128, dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "snap.jpg"), image)
    out = tmp_path / "zones.png"
    code, lines, _ = run(
        "render", str(write(tmp_path, "z.yaml", GOOD)), str(tmp_path / "snap.jpg"), "--out", str(out)
    )
    assert code == 0, lines
    drawn = cv2.imread(str(out))
    assert drawn is not None and drawn.shape == (360, 640, 3)
    # The monitored zone is tinted (red-orange in BGR: more red than blue) and the rest is not.
    inside = drawn[int(0.8 * 360), int(0.4 * 640)].astype(int)
    assert inside[2] > inside[0] + 20
    assert drawn[int(0.2 * 360), int(0.7 * 640)].tolist() == [128, 128, 128]


def test_render_the_example_on_the_demo_footage(tmp_path: Path, vtest_avi: Path) -> None:
    out = tmp_path / "vtest.png"
    code, lines, _ = run("render", str(EXAMPLE), str(vtest_avi), "--out", str(out), "--at-s", "2")
    assert code == 0, lines
    assert lines == [f"wrote {out} (768x576, 3 zones)"]
    drawn = cv2.imread(str(out))
    assert drawn is not None and drawn.shape == (576, 768, 3)


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda p: [str(p / "bad.yaml"), str(p / "snap.png")], "has errors:"),
        (lambda p: [str(p / "good.yaml"), str(p / "absent.png")], "no such file"),
        (lambda p: [str(p / "good.yaml"), str(p / "good.yaml")], "not an image OpenCV can read"),
    ],
)
def test_render_user_errors_have_no_traceback(tmp_path: Path, make_args: object, message: str) -> None:
    write(tmp_path, "good.yaml", GOOD)
    write(tmp_path, "bad.yaml", BAD)
    cv2.imwrite(str(tmp_path / "snap.png"), np.zeros((10, 10, 3), np.uint8))
    args = make_args(tmp_path)  # type: ignore[operator]
    result = CliRunner().invoke(main, ["zones", "render", *args, "--out", str(tmp_path / "o.png")])
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "o.png").exists()


def test_render_unwritable_output(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", GOOD)
    cv2.imwrite(str(tmp_path / "snap.png"), np.zeros((10, 10, 3), np.uint8))
    out = tmp_path / "no-such-dir" / "o.png"
    code, _, err = run("render", str(tmp_path / "good.yaml"), str(tmp_path / "snap.png"), "--out", str(out))
    assert code == 1 and "cannot write" in err


def test_every_command_has_help() -> None:
    for command in ("validate", "render"):
        result = CliRunner().invoke(main, ["zones", command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[" * 100_000, "h.yaml:1: collections nested more than 32 deep"),
        ("a: &a [x, x, x]\nb: [*a, *a, *a]\n", "h.yaml:1: anchors and aliases"),
        ("camera_id: c\n" + "#" * 10 + "\n" + "x" * 600_000, "exceeds the limit"),
    ],
)
def test_hostile_files_get_one_line_with_file_and_line_not_a_traceback(
    tmp_path: Path, text: str, expected: str
) -> None:
    code, lines, err = run("validate", str(write(tmp_path, "h.yaml", text)))
    output = "\n".join(lines) + err
    assert code == 1 and expected in output, output
    assert "Traceback" not in output and "RecursionError" not in output
