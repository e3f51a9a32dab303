"""`curbwatch edge ...`: validate a node.yaml, run the edge node."""

from __future__ import annotations

from pathlib import Path

import click

from edge.node.config import validate_node_file
from zones.yaml_source import ConfigFileError, Severity


@click.group("edge")
def edge_group() -> None:
    """The edge node: the runtime beside the cameras."""


@edge_group.command("validate-config")
@click.argument("config_path", metavar="NODE_YAML", type=click.Path(path_type=Path, dir_okay=False))
def validate_config(config_path: Path) -> None:
    """Check NODE_YAML and every zone file it names; print `file:line: key: message` per problem."""
    _, problems = validate_node_file(config_path)
    for problem in problems:
        click.echo(str(problem), err=problem.severity is Severity.ERROR)
    errors = sum(problem.severity is Severity.ERROR for problem in problems)
    if errors:
        raise SystemExit(1)
    click.echo(f"{config_path}: ok ({len(problems)} warnings)" if problems else f"{config_path}: ok")


@edge_group.command("run")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The node.yaml to run.",
)
def run(config_path: Path) -> None:
    """Run the edge node until SIGINT or SIGTERM."""
    from edge.node.app import run_node  # heavy imports (onnxruntime, av) only when running

    try:
        code = run_node(config_path)
    except ConfigFileError as err:
        raise click.ClickException(f"invalid configuration:\n{err}") from err
    raise SystemExit(code)
