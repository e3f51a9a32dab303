"""`curbwatch demo`: broker, mail catcher, review server and an edge node on the bundled clip."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click

from edge.demo.broker import BrokerChoice

# What the demo needs beyond the edge runtime: the review server and the mail catcher.
NEEDED = {"fastapi": "review", "uvicorn": "review", "jinja2": "review", "aiosmtpd": "dev"}


def missing_packages() -> list[str]:
    return sorted({f"{name} (extra [{extra}])" for name, extra in NEEDED.items() if not _installed(name)})


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@click.command("demo")
@click.option("--fast", is_flag=True, help="Replay the clip once, as fast as it decodes (not in real time).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port of the review UI (0: any free port; a busy port is replaced by a free one).",
)
@click.option(
    "--duration",
    "duration_s",
    type=click.FloatRange(min=1.0),
    default=None,
    help="Stop by itself after this many seconds (default: run until Ctrl-C).",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Keep configs, databases, mails and logs here (default: a new temporary folder).",
)
@click.option(
    "--broker",
    type=click.Choice([c.value for c in BrokerChoice]),
    default=BrokerChoice.AUTO.value,
    show_default=True,
    help="auto: own Mosquitto if installed, else one on 127.0.0.1:1883, else embedded amqtt.",
)
@click.option(
    "--locale",
    type=click.Choice(["zh-CN", "en"]),
    default="zh-CN",
    show_default=True,
    help="Language of the review UI and of the reminder mail.",
)
def demo(
    fast: bool, port: int, duration_s: float | None, workdir: Path | None, broker: str, locale: str
) -> None:
    """The whole loop on this machine: a real incident appears in the review UI within a
    minute; confirm it and watch the shop's reminder mail arrive. Ctrl-C stops everything."""
    missing = missing_packages()
    if missing:
        raise click.ClickException(
            f"the demo needs {', '.join(missing)}: pip install -e '.[review,dev]' (or bash .ci/setup)"
        )
    from edge.demo.runtime import Demo, DemoOptions

    options = DemoOptions(
        fast=fast,
        port=port,
        duration_s=duration_s,
        workdir=workdir,
        broker=BrokerChoice(broker),
        locale=locale,
    )
    code = Demo(options, lambda line: click.echo(line)).run()
    raise SystemExit(code)
