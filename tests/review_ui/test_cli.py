"""`curbwatch review create-user` and config errors through the real CLI root."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.cli import main
from review_ui.auth import Accounts
from review_ui.clock import SystemClock
from review_ui.config import load_config
from review_ui.service import open_store


def write_config(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "secret.key").write_text("0123456789abcdef0123456789abcdef")
    path = tmp_path / "review.yaml"
    path.write_text(f"db_path: review.db\nevidence_dir: evidence\nsecret_key_file: secret.key\n{extra}")
    return path


def test_create_user_from_password_file(tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    (tmp_path / "pw").write_text("a long admin password\n")
    result = CliRunner().invoke(
        main,
        [
            "review",
            "create-user",
            "--config",
            str(config_path),
            "boss",
            "--role",
            "admin",
            "--password-file",
            str(tmp_path / "pw"),
        ],
    )
    assert result.exit_code == 0, result.output
    config = load_config(config_path)
    store = open_store(config)
    principal = Accounts(store, SystemClock(), 1).verify("boss", "a long admin password")
    assert principal is not None and principal.role.value == "admin"
    store.close()
    again = CliRunner().invoke(
        main,
        [
            "review",
            "create-user",
            "--config",
            str(config_path),
            "boss",
            "--password-file",
            str(tmp_path / "pw"),
        ],
    )
    assert again.exit_code == 1 and "exists" in again.output


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, "port: 99999\nbogus: 1\n")
    result = CliRunner().invoke(main, ["review", "serve", "--config", str(config_path)])
    assert result.exit_code == 1
    assert "port" in result.output and "bogus" in result.output and "Traceback" not in result.output


def test_help_for_every_command() -> None:
    for command in (["review", "--help"], ["review", "serve", "--help"], ["review", "create-user", "--help"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 0 and "Usage" in result.output


def test_every_relative_path_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = (
        "smtp: {password_file: smtp.pw}\n"
        "webhook: {secret_file: webhook.key}\n"
        "mqtt: {client_id: review, tls: {ca_file: ca.pem, cert_file: /abs/c.pem, key_file: k.pem}}\n"
    )
    config_path = write_config(tmp_path, extra)
    monkeypatch.chdir("/")
    config = load_config(config_path)
    assert config.secret_key_file == tmp_path / "secret.key"
    assert config.smtp.password_file == tmp_path / "smtp.pw"
    assert config.webhook.secret_file == tmp_path / "webhook.key"
    assert config.mqtt is not None and config.mqtt.tls is not None
    assert config.mqtt.tls.ca_file == tmp_path / "ca.pem"
    assert config.mqtt.tls.cert_file == Path("/abs/c.pem")
    assert config.mqtt.tls.key_file == tmp_path / "k.pem"


def test_serve_names_every_missing_file(tmp_path: Path) -> None:
    config_path = write_config(tmp_path, "webhook: {secret_file: webhook.key}\n")
    (tmp_path / "secret.key").unlink()
    result = CliRunner().invoke(main, ["review", "serve", "--config", str(config_path)])
    assert result.exit_code == 1
    assert f"secret_key_file: {tmp_path / 'secret.key'}: not a readable file" in result.output
    assert f"webhook.secret_file: {tmp_path / 'webhook.key'}: not a readable file" in result.output
    assert "Traceback" not in result.output
