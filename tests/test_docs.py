"""Documentation that cannot go stale: CLI help everywhere, the generated config reference."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click
import pytest

from edge.cli import SUBCOMMANDS, main

ROOT = Path(__file__).resolve().parent.parent


def walk(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            child = command.get_command(ctx, name)
            assert child is not None, f"{path} {name}: listed but cannot be loaded"
            found += walk(child, f"{path} {name}")
    return found


ALL_COMMANDS = walk(main, "curbwatch")


def test_every_package_command_is_installed() -> None:
    names = {path for path, _ in ALL_COMMANDS}
    for name in SUBCOMMANDS:
        assert f"curbwatch {name}" in names


@pytest.mark.parametrize(("path", "command"), ALL_COMMANDS, ids=[path for path, _ in ALL_COMMANDS])
def test_every_command_and_option_has_help(path: str, command: click.Command) -> None:
    assert command.help or command.short_help, f"{path} has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{path} {param.opts[0]} has no help text"


def _load_generator():  # type: ignore[no-untyped-def]
    path = ROOT / "docs" / "gen_config_reference.py"
    spec = importlib.util.spec_from_file_location("gen_config_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_is_current() -> None:
    generator = _load_generator()
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == generator.render(), "run `python docs/gen_config_reference.py` and commit the result"


def test_readme_names_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "bash .ci/setup demo && .venv/bin/curbwatch demo" in readme
    test_command = "bash .ci/setup && bash .ci/test"
    assert test_command in readme
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
