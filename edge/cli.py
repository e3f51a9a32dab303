"""The `curbwatch` command: one click group whose subcommands each package owns.

Subcommands load lazily, so `curbwatch zones validate` never imports onnxruntime
and the edge never imports the review server. Each entry names "module:attribute".
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import Any

import click

SUBCOMMANDS: dict[str, str] = {
    "detect": "models.cli:detect",
    "models": "models.cli:models_group",
    "zones": "zones.cli:zones_group",
    "analyze": "edge.analyze.cli:analyze",
    "edge": "edge.node.cli:edge_group",
    "review": "review_ui.cli:review_group",
    "demo": "edge.demo.cli:demo",
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand runs."""

    def __init__(self, *args: Any, lazy_subcommands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = lazy_subcommands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.available()})

    def available(self) -> list[str]:
        """Subcommands whose module exists in this installation."""
        names = []
        for name, target in self.lazy_subcommands.items():
            module_name = target.split(":")[0]
            if importlib.util.find_spec(module_name) is not None:
                names.append(name)
        return names

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_subcommands:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = self.lazy_subcommands[cmd_name].split(":")
        if importlib.util.find_spec(module_name) is None:
            return None
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}:{attribute} is not a click command")
        return command


@click.group(cls=LazyGroup, lazy_subcommands=SUBCOMMANDS)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """curbwatch: find goods left on the sidewalk, review them, remind the shop."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
