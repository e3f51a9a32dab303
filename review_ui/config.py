"""The review server's configuration: one strict pydantic tree, loaded from YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from review_ui.reminders.settings import CasePushSettings, EscalationSettings, RobotSettings, SmsSettings
from uplink.database import DatabaseUrl, parse_url
from uplink.settings import MqttSettings

Locale = Literal["zh-CN", "en"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmtpSettings(Strict):
    host: str = Field("127.0.0.1", description="SMTP server host")
    port: int = Field(25, ge=1, le=65535, description="SMTP server port")
    starttls: bool = Field(False, description="upgrade the connection with STARTTLS")
    username: str | None = Field(None, description="SMTP login user")
    password_file: Path | None = Field(None, description="file holding the SMTP password")
    sender: str = Field("curbwatch@localhost", description="From address of reminder mails")
    timeout_s: float = Field(10.0, gt=0, le=120, description="socket timeout")


class WebhookSettings(Strict):
    secret_file: Path | None = Field(None, description="HMAC-SHA256 key for X-Curbwatch-Signature")
    timeout_s: float = Field(10.0, gt=0, le=120, description="HTTP timeout")


class ReminderSettings(Strict):
    deadline_h: float = Field(24.0, gt=0, le=24 * 30, description="hours a shop has to rectify")
    max_attempts: int = Field(6, ge=1, le=50, description="delivery attempts before a reminder fails")
    backoff_base_s: float = Field(5.0, gt=0, le=3600, description="first retry delay; doubles per attempt")
    backoff_max_s: float = Field(900.0, gt=0, le=86400, description="longest retry delay")
    poll_s: float = Field(2.0, gt=0, le=600, description="dispatcher / loop checker tick")
    undo_s: float = Field(
        30.0,
        ge=0,
        le=600,
        description="seconds a verdict can be undone before its reminder leaves; 0: sent at once",
    )


class CaseSettings(Strict):
    window_h: float = Field(
        24.0,
        ge=0,
        le=24 * 30,
        description="a shop's new incident joins its undecided case when that case's latest "
        "occurrence opened within this many hours; 0: every incident is its own case",
    )


class ReviewConfig(Strict):
    db_path: Path | None = Field(
        None, description="review SQLite database (shared with the uplink ingest); or database_url"
    )
    database_url: str | None = Field(
        None,
        description="postgresql://user@host:5432/dbname (the password from PGPASSWORD or ~/.pgpass,"
        " never here) or sqlite:///path; instead of db_path",
    )
    evidence_dir: Path = Field(description="directory the ingest writes evidence and snapshots into")
    secret_key_file: Path = Field(description="file with the server secret (login CSRF, signing)")
    bind: str = Field("127.0.0.1", description="HTTP bind address")
    port: int = Field(8080, ge=1, le=65535, description="HTTP port")
    public_base_url: str = Field("http://127.0.0.1:8080", description="URL used in reminder links")
    secure_cookies: bool = Field(True, description="mark the session cookie Secure (off for plain-http dev)")
    session_ttl_h: float = Field(12.0, gt=0, le=24 * 30, description="session lifetime")
    locale: Locale = Field("zh-CN", description="default locale")
    timezone: str = Field(
        "Asia/Shanghai", description="IANA timezone pages and mails show times in (the zones' own)"
    )
    login_max_failures: int = Field(
        5, ge=1, le=100, description="failed logins per account (from any address) per window"
    )
    login_max_failures_per_client: int = Field(
        20, ge=1, le=10_000, description="failed logins per client address (across accounts) per window"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses of reverse proxies whose X-Forwarded-For is believed; empty: none "
        "(the client address is the TCP peer's)",
    )
    login_window_s: float = Field(300.0, gt=0, description="rate-limit window")
    mqtt: MqttSettings | None = Field(
        None, description="broker of the ingest and config publishing; none = off"
    )
    smtp: SmtpSettings = Field(default_factory=lambda: SmtpSettings.model_validate({}))
    webhook: WebhookSettings = Field(default_factory=lambda: WebhookSettings.model_validate({}))
    reminders: ReminderSettings = Field(default_factory=lambda: ReminderSettings.model_validate({}))
    cases: CaseSettings = Field(default_factory=lambda: CaseSettings.model_validate({}))
    sms: SmsSettings = Field(default_factory=lambda: SmsSettings.model_validate({}))
    robots: RobotSettings = Field(default_factory=lambda: RobotSettings.model_validate({}))
    case_push: CasePushSettings = Field(default_factory=lambda: CasePushSettings.model_validate({}))
    escalation: EscalationSettings = Field(default_factory=lambda: EscalationSettings.model_validate({}))

    @property
    def database(self) -> DatabaseUrl:
        """Where the review database is (uplink.database): db_path or database_url."""
        return parse_url(self.database_url if self.database_url is not None else str(self.db_path))

    @model_validator(mode="after")
    def _one_database(self) -> ReviewConfig:
        if (self.db_path is None) == (self.database_url is None):
            raise ValueError("give db_path (SQLite) or database_url (PostgreSQL or sqlite:///), not both")
        if self.database_url is not None:
            try:
                parse_url(self.database_url)
            except ValueError as exc:
                raise ValueError(f"database_url: {exc}") from None
            if "@" in self.database_url and ":" in self.database_url.split("://", 1)[1].split("@")[0]:
                raise ValueError("database_url: no password in the config; use PGPASSWORD or ~/.pgpass")
        return self

    @model_validator(mode="after")
    def _backoff_bounds(self) -> ReviewConfig:
        if self.reminders.backoff_max_s < self.reminders.backoff_base_s:
            raise ValueError("reminders.backoff_max_s must be >= reminders.backoff_base_s")
        if self.escalation.inspector_group_after_h is not None and self.robots.inspector_channel is None:
            raise ValueError("escalation.inspector_group_after_h needs robots.inspector_channel")
        if self.escalation.case_push_after_h is not None and self.case_push.url is None:
            raise ValueError("escalation.case_push_after_h needs case_push.url")
        return self


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file and the keys."""


# Every file a review.yaml names; relative ones are relative to the config file.
_PATH_KEYS: tuple[tuple[str, ...], ...] = (
    ("db_path",),
    ("evidence_dir",),
    ("secret_key_file",),
    ("smtp", "password_file"),
    ("webhook", "secret_file"),
    ("sms", "credentials_file"),
    ("robots", "wecom_url_file"),
    ("robots", "dingtalk_url_file"),
    ("robots", "dingtalk_secret_file"),
    ("case_push", "token_file"),
    ("mqtt", "tls", "ca_file"),
    ("mqtt", "tls", "cert_file"),
    ("mqtt", "tls", "key_file"),
)


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    for *sections, key in _PATH_KEYS:
        node: Any = raw
        for section in sections:
            node = node.get(section) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(key), str) and not Path(node[key]).is_absolute():
            node[key] = str(base / node[key])


def load_config(path: Path) -> ReviewConfig:
    """Read a YAML (or JSON) config; relative paths are resolved against the file's folder."""
    from ruamel.yaml import YAML

    try:
        raw = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except Exception as exc:  # ruamel raises many parser error types
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    _resolve_paths(raw, path.parent)
    try:
        return ReviewConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from exc


def missing_files(config: ReviewConfig) -> list[str]:
    """`key: path: not a readable file` for each file the server reads at start that is not there."""
    named: list[tuple[str, Path | None]] = [
        ("secret_key_file", config.secret_key_file),
        ("smtp.password_file", config.smtp.password_file),
        ("webhook.secret_file", config.webhook.secret_file),
        ("sms.credentials_file", config.sms.credentials_file),
        ("robots.wecom_url_file", config.robots.wecom_url_file),
        ("robots.dingtalk_url_file", config.robots.dingtalk_url_file),
        ("robots.dingtalk_secret_file", config.robots.dingtalk_secret_file),
        ("case_push.token_file", config.case_push.token_file),
    ]
    if config.mqtt is not None and config.mqtt.tls is not None:
        tls = config.mqtt.tls
        named += [("mqtt.tls.ca_file", tls.ca_file), ("mqtt.tls.cert_file", tls.cert_file)]
        named += [("mqtt.tls.key_file", tls.key_file)]
    missing = [(key, path) for key, path in named if path is not None and not path.is_file()]
    return [f"{key}: {path}: not a readable file" for key, path in missing]


def read_secret(path: Path | None) -> str | None:
    if path is None:
        return None
    return path.read_text(encoding="utf-8").strip()
