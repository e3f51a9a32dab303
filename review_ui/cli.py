"""`curbwatch review ...`: run the review server, manage users, export reviewed incidents."""

from __future__ import annotations

from pathlib import Path

import click

from review_ui.config import ConfigError, ReviewConfig, load_config, missing_files

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="review server YAML config (see docs/review.md)",
)


@click.group("review")
def review_group() -> None:
    """The review server: queue, verdicts, reminders, zone editor."""


def _load(path: Path) -> ReviewConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@review_group.command()
@CONFIG_OPTION
def serve(config_path: Path) -> None:
    """Serve the web UI and API, run the MQTT ingest and the reminder dispatcher."""
    from review_ui.service import ReviewServer

    config = _load(config_path)
    missing = missing_files(config)
    if missing:
        raise click.ClickException("\n".join(f"{config_path}: {line}" for line in missing))
    try:
        server = ReviewServer(config)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"review server on http://{config.bind}:{config.port}", err=True)
    server.serve_forever()


@review_group.command("create-user")
@CONFIG_OPTION
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["admin", "inspector", "viewer"]),
    default="inspector",
    show_default=True,
    help="what the user may do",
)
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="read the password from this file instead of prompting",
)
def create_user(config_path: Path, username: str, role: str, password_file: Path | None) -> None:
    """Create a user (the first admin, typically)."""
    from review_ui.auth import Accounts, Role, UserError
    from review_ui.clock import SystemClock
    from review_ui.service import open_store

    config = _load(config_path)
    if password_file is not None:
        password = password_file.read_text(encoding="utf-8").rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    store = open_store(config)
    try:
        Accounts(store, SystemClock(), config.session_ttl_h).create_user(
            username, password, Role(role), "cli"
        )
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
    click.echo(f"created {role} {username}")


@review_group.command("export-verdicts")
@CONFIG_OPTION
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="ZIP file to write (manifest.jsonl + images/)",
)
@click.option(
    "--since", default="", help="only verdicts from this UTC date or time on (YYYY-MM-DD[THH:MM:SSZ])"
)
def export_verdicts(config_path: Path, out_path: Path, since: str) -> None:
    """Export confirmed and rejected incidents with their evidence as training data."""
    from review_ui.clock import SystemClock
    from review_ui.exports import ExportError, VerdictExporter, check_since
    from review_ui.service import open_store

    config = _load(config_path)
    try:
        check_since(since)
    except ExportError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from exc
    store = open_store(config)
    partial = out_path.with_name(out_path.name + ".part")
    try:
        with partial.open("wb") as out:
            summary = VerdictExporter(store, SystemClock(), config.evidence_dir).write(out, since, "cli")
        partial.replace(out_path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"{out_path}: {exc}") from exc
    finally:
        store.close()
    click.echo(f"wrote {summary.verdicts} verdicts and {summary.images} images to {out_path}")
