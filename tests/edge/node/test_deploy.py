"""Deployment files: the Mosquitto ACL really confines a node to its own prefix; the unit is sane."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.support.broker import MosquittoBroker

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


class AclBroker(MosquittoBroker):
    """The test broker with passwords and deploy/mosquitto-acl.example."""

    def __init__(self, workdir: Path, users: dict[str, str]) -> None:
        super().__init__(workdir)
        passwd = workdir / "passwd"
        passwd.write_text("".join(f"{user}:{password}\n" for user, password in users.items()))
        passwd.chmod(0o600)
        subprocess.run(
            [shutil.which("mosquitto_passwd") or "mosquitto_passwd", "-U", str(passwd)], check=True
        )
        acl = workdir / "acl"
        acl.write_text((DEPLOY / "mosquitto-acl.example").read_text())
        acl.chmod(0o600)
        text = self.config_path.read_text().replace("allow_anonymous true", "allow_anonymous false")
        # The base config already keeps a root-started mosquitto as root, so it can read these 0600 files.
        self.config_path.write_text(text + f"password_file {passwd}\nacl_file {acl}\n")


def _client(broker: MosquittoBroker, user: str, password: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=user)
    client.username_pw_set(user, password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd is not installed")
def test_acl_lets_a_node_publish_only_under_its_own_prefix(tmp_path: Path) -> None:
    users = {"node-a": "pa", "node-b": "pb", "review-server": "pr"}
    with AclBroker(tmp_path / "broker", users) as broker:
        received: list[str] = []
        lock = threading.Lock()
        subscribed = threading.Event()
        review = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="review-server")
        review.username_pw_set("review-server", "pr")
        review.on_message = lambda _c, _u, m: (lock.acquire(), received.append(m.topic), lock.release())
        review.on_subscribe = lambda *_: subscribed.set()
        review.connect(broker.host, broker.port)
        review.subscribe("curbwatch/v1/#", qos=1)
        review.loop_start()
        assert subscribed.wait(5)
        node_a = _client(broker, "node-a", "pa")
        try:
            allowed = ["curbwatch/v1/node-a/status", "curbwatch/v1/node-a/cam-1/incident"]
            denied = [
                "curbwatch/v1/node-b/cam-1/incident",
                "curbwatch/v1/node-b/status",
                "curbwatch/v1/node-a/config",
            ]
            for topic in denied + allowed:
                node_a.publish(topic, b"x", qos=1).wait_for_publish(5)
            review.publish("curbwatch/v1/node-a/config", b"{}", qos=1).wait_for_publish(5)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len(received) < 3:
                time.sleep(0.05)
            time.sleep(0.3)  # anything denied that would still arrive
            with lock:
                assert sorted(received) == sorted([*allowed, "curbwatch/v1/node-a/config"])
        finally:
            node_a.loop_stop()
            review.loop_stop()


def test_systemd_unit_restarts_confines_and_bounds_the_node() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "curbwatch-edge.service")
    service = unit["Service"]
    assert service["Restart"] == "always"
    assert service["User"] == "curbwatch" != "root"
    assert "/var/lib/curbwatch" in service["ReadWritePaths"]
    assert service["ProtectSystem"] == "strict"
    assert service["MemoryMax"] and service["CPUQuota"].endswith("%")
    assert "edge run --config /etc/curbwatch/node.yaml" in service["ExecStart"]
    assert "StartLimitBurst" in unit["Unit"]
