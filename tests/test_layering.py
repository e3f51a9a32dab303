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


@pytest.mark.parametrize(
    ("package", "module", "expected"),
    [
        ("zones", "models.types", True),
        ("zones", "models.nanodet", False),
        ("uplink", "edge.node", False),
        ("review_ui", "uplink.ingest", True),
        ("review_ui", "edge.pipeline", False),
        ("edge", "review_ui.cli", False),
        ("models", "numpy", True),
    ],
)
def test_rule(package: str, module: str, expected: bool) -> None:
    assert allowed(package, module) is expected
