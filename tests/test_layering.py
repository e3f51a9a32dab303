"""Dependencies point one way (ARCHITECTURE.md): a stage never imports a later one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("edge", "models", "zones", "uplink", "review_ui")

# What each package may import from the others. zones reads models' data types and
# class map (models/types.py, models/classes.py), never a model.
ALLOWED: dict[str, set[str]] = {
    "models": set(),
    "zones": {"models.types", "models.classes"},
    "uplink": set(),
    "edge": {"models", "zones", "uplink"},
    "review_ui": {"uplink", "zones"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def allowed(package: str, module: str) -> bool:
    top = module.split(".")[0]
    if top not in PACKAGES or top == package:
        return True
    return any(module == rule or module.startswith(rule + ".") for rule in ALLOWED[package])


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_it_may(package: str) -> None:
    offences = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for module in sorted(imported_modules(path))
        if not allowed(package, module)
    ]
    assert not offences, "\n".join(offences)


# The rooms of edge/ (ARCHITECTURE.md) and which other rooms each may import. A room is a
# subpackage or a top-level module of edge/; the CLI root names every room's command.
EDGE_ROOMS: dict[str, set[str]] = {
    "logscrub": set(),
    "capture": {"logscrub"},
    "track": set(),
    "incidents": {"track"},
    "evidence": set(),
    "scene": set(),  # (edge/scene/worker.py: the node's scene thread)
    "node": {"capture", "track", "incidents", "evidence", "scene", "logscrub"},
    "analyze": {"track", "incidents", "evidence", "scene"},
    "demo": {"node"},
}


def edge_room(path_or_module: str) -> str:
    parts = path_or_module.removesuffix(".py").replace("/", ".").split(".")
    return parts[1] if len(parts) > 1 else ""


def room_allowed(room: str, module: str) -> bool:
    if not module.startswith("edge."):
        return True
    target = edge_room(module)
    return target == room or target in EDGE_ROOMS[room]


def test_every_edge_room_is_declared() -> None:
    found = {
        edge_room(str(p.relative_to(ROOT))) for p in (ROOT / "edge").glob("*") if p.name != "__pycache__"
    }
    found -= {"__init__", "cli"}
    assert found == set(EDGE_ROOMS), f"rooms on disk {sorted(found)} != declared {sorted(EDGE_ROOMS)}"


@pytest.mark.parametrize("room", sorted(EDGE_ROOMS))
def test_edge_room_imports_only_what_it_may(room: str) -> None:
    base = ROOT / "edge" / room
    paths = sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    offences = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in paths
        for module in sorted(imported_modules(path))
        if not room_allowed(room, module)
    ]
    assert not offences, "\n".join(offences)


@pytest.mark.parametrize(
    ("room", "module", "expected"),
    [
        ("incidents", "edge.track", True),
        ("incidents", "edge.node.pipeline", False),
        ("capture", "edge.logscrub", True),
        ("evidence", "edge.incidents.types", False),
        ("demo", "edge.node.config", True),
        ("node", "edge.demo.runtime", False),
        ("analyze", "numpy", True),
    ],
)
def test_room_rule(room: str, module: str, expected: bool) -> None:
    assert room_allowed(room, module) is expected


@pytest.mark.parametrize(
    ("package", "module", "expected"),
    [
        ("zones", "models.types", True),
        ("zones", "models.nanodet", False),
        ("uplink", "edge.node.app", False),
        ("review_ui", "uplink.ingest", True),
        ("review_ui", "edge.node.pipeline", False),
        ("edge", "review_ui.cli", False),
        ("models", "numpy", True),
    ],
)
def test_rule(package: str, module: str, expected: bool) -> None:
    assert allowed(package, module) is expected
