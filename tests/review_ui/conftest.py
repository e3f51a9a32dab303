"""Fixtures: a real review database (the ingest's schema + ours), the app over in-process ASGI."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from review_ui.auth import Role
from review_ui.clock import ManualClock
from review_ui.config import ReviewConfig
from review_ui.service import ReviewServer
from tests.review_ui.support import PASSWORD, T0, Inbox, incident_topic, login, payload
from tests.support.broker import free_port
from tests.support.database import UsersTemplate, database_for, on_postgres
from uplink.ingest import Ingest
from uplink.messages import IncidentMessage
from uplink.review_db import open_review_database


def make_config(tmp_path: Path, **overrides: object) -> ReviewConfig:
    secret = tmp_path / "secret.key"
    if not secret.exists():
        secret.write_text(secrets.token_hex(32))
    values: dict[str, object] = {
        **database_for(tmp_path),
        "evidence_dir": tmp_path / "evidence",
        "secret_key_file": secret,
        "public_base_url": "https://review.example",
        # Most tests decide one incident and see its reminder leave at once; test_cases.py
        # turns grouping and the undo window on.
        "reminders": {
            "backoff_base_s": 5,
            "backoff_max_s": 60,
            "max_attempts": 3,
            "poll_s": 0.2,
            "undo_s": 0,
        },
        "cases": {"window_h": 0},
    }
    values.update(overrides)
    return ReviewConfig.model_validate(values)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def config(tmp_path: Path) -> ReviewConfig:
    return make_config(tmp_path)


@pytest.fixture(scope="session")
def users_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UsersTemplate]:
    """A migrated database with admin, inspector and viewer: argon2 hashing once per session."""
    folder = tmp_path_factory.mktemp("template")
    config = make_config(folder)
    built = ReviewServer(config, clock=ManualClock(T0))
    for name, role in (("admin", Role.ADMIN), ("inspector", Role.INSPECTOR), ("viewer", Role.VIEWER)):
        built.accounts.create_user(name, PASSWORD, role, "test")
    built.store.close()
    if on_postgres():
        yield UsersTemplate(postgres=config.database.target.rsplit("/", 1)[1])
    else:
        yield UsersTemplate(path=config.database.path)


@pytest.fixture
def server(config: ReviewConfig, clock: ManualClock, users_db: UsersTemplate) -> Iterator[ReviewServer]:
    """Built, background threads not started: tests drive the dispatcher and checker by hand."""
    users_db.seed(config)
    built = ReviewServer(config, clock=clock)
    yield built
    built.store.close()


@pytest.fixture
def client(server: ReviewServer) -> Iterator[TestClient]:
    with TestClient(server.app, base_url="https://testserver") as http:
        yield http


class Feed:
    """The uplink ingest's own insert path, on its own connection, as in production."""

    def __init__(self, config: ReviewConfig) -> None:
        self.db = open_review_database(config.database)
        self.ingest = Ingest(self.db, config.evidence_dir)

    def send(self, message: IncidentMessage) -> str:
        outcome = self.ingest.handle(incident_topic(message.camera_id), payload(message))
        assert outcome.kind.value in ("stored", "late"), outcome
        return str(message.incident_id)

    def raw(self, topic: str, body: bytes) -> None:
        self.ingest.handle(topic, body)


@pytest.fixture
def feed(server: ReviewServer, config: ReviewConfig) -> Iterator[Feed]:
    fed = Feed(config)
    yield fed
    fed.db.close()


@pytest.fixture
def as_admin(client: TestClient) -> str:
    return login(client, "admin")


@pytest.fixture
def as_inspector(client: TestClient) -> str:
    return login(client, "inspector")


@pytest.fixture
def as_viewer(client: TestClient) -> str:
    return login(client, "viewer")


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()
