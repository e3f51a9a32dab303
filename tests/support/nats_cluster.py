"""Three nats-server processes in one cluster with JetStream and MQTT, each started on
deploy/brokers/nats-cluster.conf as written (addresses, ports, paths and secrets swapped)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.broker import end_process, free_port
from tests.support.templates import DEPLOY, render
from tests.support.tls import Certificates

TEMPLATE = DEPLOY / "brokers" / "nats-cluster.conf"
CENTRE_USER = "review-server"
NODE_USER = "gulou-node-01"  # the template's example node
PASSWORDS = {"CHANGE-ME-ROUTES": "pw-routes", "CHANGE-ME-REVIEW": "pw-review", "CHANGE-ME-NODE": "pw-node"}
TEMPLATE_HOSTS = ("nats-1.example.org", "nats-2.example.org", "nats-3.example.org")


def password_of(user: str) -> str:
    return PASSWORDS["CHANGE-ME-REVIEW" if user == CENTRE_USER else "CHANGE-ME-NODE"]


class NatsMember:
    host = "127.0.0.1"

    def __init__(self, workdir: Path, config: str, name: str, mqtt_port: int, http_port: int) -> None:
        self.workdir = workdir
        self.name = name
        self.port = mqtt_port  # MQTT
        self.http_port = http_port
        self.log_path = workdir / "nats.log"
        self.config_path = workdir / "nats.conf"
        self.config_path.write_text(config + f'\nlog_file: "{self.log_path}"\n')
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            raise FileNotFoundError("nats-server not found: `apt-get install -y nats-server` (.ci/run)")
        self.process = subprocess.Popen(
            [binary, "-c", str(self.config_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def healthy(self) -> bool:
        """/healthz: 200 once this member's JetStream has a meta leader and its assets are current."""
        if self.process is None or self.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.http_port}/healthz", timeout=1) as reply:
                return bool(json.load(reply).get("status") == "ok")
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else "(no log)"

    def kill(self) -> None:
        """SIGKILL: the member is gone with its connections, as when its machine dies."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        end_process(self.process)
        self.process = None


class NatsCluster:
    """The template's three members (its routes name three hosts)."""

    def __init__(self, workdir: Path, certs: Certificates) -> None:
        route_ports = [free_port() for _ in TEMPLATE_HOSTS]
        routes = {
            f"{host}:6222": f"127.0.0.1:{port}"
            for host, port in zip(TEMPLATE_HOSTS, route_ports, strict=True)
        }
        self.members: list[NatsMember] = []
        for index in range(len(TEMPLATE_HOSTS)):
            member_dir = workdir / f"nats-{index + 1}"
            member_dir.mkdir(parents=True)
            mqtt_port, http_port = free_port(), free_port()
            replacements = {
                "server_name: nats-1": f"server_name: nats-{index + 1}",
                "listen: 127.0.0.1:4222": f"listen: 127.0.0.1:{free_port()}",
                "http: 127.0.0.1:8222": f"http: 127.0.0.1:{http_port}",
                "/var/lib/nats/jetstream": str(member_dir / "jetstream"),
                "listen: 0.0.0.0:6222": f"listen: 127.0.0.1:{route_ports[index]}",
                "listen: 0.0.0.0:8883": f"listen: 127.0.0.1:{mqtt_port}",
                "/etc/nats/certs/broker.crt": str(certs.cert_file),
                "/etc/nats/certs/broker.key": str(certs.key_file),
                **routes,
                **PASSWORDS,
            }
            config = render(TEMPLATE, replacements)
            self.members.append(NatsMember(member_dir, config, f"nats-{index + 1}", mqtt_port, http_port))

    def start(self, timeout_s: float = 20.0) -> None:
        for member in self.members:
            member.start()
        deadline = time.monotonic() + timeout_s
        while not all(member.healthy() for member in self.members):
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {m.name}\n{m.log_tail()}" for m in self.members)
                raise RuntimeError(f"the NATS cluster was not healthy within {timeout_s} s:\n{logs}")
            time.sleep(0.1)

    def stop(self) -> None:
        for member in self.members:
            member.stop()
