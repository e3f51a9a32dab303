"""The demo's files: review.yaml, node.yaml, the secret key and the demo users, in one work dir.

Everything the demo runs is configured through the same files a real deployment
uses, written here so a newcomer can open them and see what a node and a review
server need. Paths in them are absolute: the files name the bundled clip and zones.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

DEMO_DIR = Path(__file__).resolve().parent  # the clip and zones live beside this code
CLIP = DEMO_DIR / "demo_cam01.mp4"
ZONES = DEMO_DIR / "zones_cam01.yaml"
CAMERA_ID = "cam-01"
# The shops the demo zones name: the bicycles stand before the first, the fruit display
# (which only the scene model sees) before the second.
SHOPS = (
    {
        "id": "shop-demo-01",
        "name": "East Fruit 东水果店",
        "address": "1 Demo Road, Gulou, Fuzhou",
        "operator": "Ms Lin",
        "contact": "+86 591 0000 0001",
        "channel": "email",
        "target": "east-fruit@shops.example",
    },
    {
        "id": "shop-demo-02",
        "name": "West Fruit Stall 西水果摊",
        "address": "3 Demo Road, Gulou, Fuzhou",
        "operator": "Mr Chen",
        "contact": "+86 591 0000 0002",
        "channel": "email",
        "target": "west-fruit@shops.example",
    },
)


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    password: str


@dataclass(frozen=True)
class DemoPorts:
    http: int
    smtp: int
    mqtt_host: str
    mqtt: int


@dataclass(frozen=True)
class DemoFiles:
    """Where one demo run keeps its state."""

    workdir: Path

    @property
    def review_yaml(self) -> Path:
        return self.workdir / "review" / "review.yaml"

    @property
    def node_yaml(self) -> Path:
        return self.workdir / "edge" / "node.yaml"

    @property
    def review_db(self) -> Path:
        return self.workdir / "review" / "review.sqlite"

    @property
    def mail_dir(self) -> Path:
        return self.workdir / "mail"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def credentials(self) -> Path:
        return self.workdir / "credentials.json"


def write_private(path: Path, text: str) -> None:
    """Create `path` readable by its owner only (secrets, passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)


def write_yaml(path: Path, data: dict[str, Any], header: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    with path.open("w", encoding="utf-8") as file:
        file.write(header)
        yaml.dump(data, file)


def demo_accounts(files: DemoFiles) -> tuple[list[Account], bool]:
    """The demo admin and inspector, and whether they still have to be created.

    A work dir that is used again keeps its users: their passwords are read back.
    """
    if files.credentials.is_file():
        stored = json.loads(files.credentials.read_text(encoding="utf-8"))
        return [Account(**item) for item in stored], False
    accounts = [
        Account("demo-admin", "admin", secrets.token_urlsafe(9)),
        Account("demo-inspector", "inspector", secrets.token_urlsafe(9)),
    ]
    return accounts, True


def save_accounts(files: DemoFiles, accounts: list[Account]) -> None:
    write_private(files.credentials, json.dumps([a.__dict__ for a in accounts], indent=2) + "\n")


def review_config(files: DemoFiles, ports: DemoPorts, locale: str, client_suffix: str) -> dict[str, Any]:
    review = files.review_yaml.parent
    return {
        "db_path": str(files.review_db),
        "evidence_dir": str(review / "evidence"),
        "secret_key_file": str(review / "secret.key"),
        "bind": "127.0.0.1",
        "port": ports.http,
        "public_base_url": f"http://127.0.0.1:{ports.http}",
        "secure_cookies": False,  # plain http on loopback
        "locale": locale,
        "mqtt": {"host": ports.mqtt_host, "port": ports.mqtt, "client_id": f"review-demo{client_suffix}"},
        "smtp": {"host": "127.0.0.1", "port": ports.smtp, "sender": "curbwatch-demo@localhost"},
        # A short undo window, so the demo's mail follows a confirmation within seconds.
        "reminders": {"poll_s": 1.0, "backoff_base_s": 2.0, "backoff_max_s": 30.0, "undo_s": 10.0},
    }


def camera_config(fast: bool, supported: set[str]) -> dict[str, Any]:
    camera: dict[str, Any] = {
        "id": CAMERA_ID,
        "url": CLIP.as_uri(),
        "sample_interval_s": 1.0,
        "zones": str(ZONES),
    }
    # Replay like a camera: at recorded speed, over and over. --fast: once, as fast as it decodes.
    if "realtime" in supported:
        camera["realtime"] = not fast
    if "loop" in supported:
        camera["loop"] = not fast
    return camera


def node_config(
    files: DemoFiles, ports: DemoPorts, node_id: str, fast: bool, camera_fields: set[str]
) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "mqtt": {"host": ports.mqtt_host, "port": ports.mqtt, "keepalive_s": 10},
        "outbox": {"path": str(files.node_yaml.parent / "edge.sqlite")},
        "detector": {"threads": 2},
        "cameras": [camera_config(fast, camera_fields)],
        "metrics": {"port": 0},
        "health": {"interval_s": 10.0, "snapshot_interval_s": 20.0},
    }


def write_configs(
    files: DemoFiles,
    ports: DemoPorts,
    *,
    fast: bool,
    locale: str,
    unique_ids: bool,
    camera_fields: set[str],
) -> None:
    """review.yaml, node.yaml and the server secret (kept when the work dir is reused)."""
    suffix = "-" + secrets.token_hex(3) if unique_ids else ""
    header = "# Written by `curbwatch demo`; a real deployment's file looks the same.\n"
    write_yaml(files.review_yaml, review_config(files, ports, locale, suffix), header)
    node = node_config(files, ports, f"demo-node{suffix}", fast, camera_fields)
    write_yaml(files.node_yaml, node, header)
    secret = files.review_yaml.parent / "secret.key"
    if not secret.is_file():
        write_private(secret, secrets.token_hex(32) + "\n")
