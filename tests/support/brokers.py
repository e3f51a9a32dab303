"""The three MQTT brokers the wire contract is tested on, behind one small interface.

Mosquitto and NATS run as private processes on free ports with a temporary config; RabbitMQ is
too heavy to start per test session, so the tests use the machine's RabbitMQ (its MQTT plugin on
127.0.0.1:1884, set up by .ci/run) and create their users there. Each broker says what it can
do (`Capabilities`), so one parametrized test asserts the behaviour of each, gaps included.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tests.support.broker import MosquittoBroker, end_process, free_port

CENTRE_USER = "centre"
RABBITMQ_MQTT_PORT = 1884  # .ci/run: mqtt.listeners.tcp.local = 127.0.0.1:1884 (Mosquitto has 1883)


@dataclass(frozen=True)
class Capabilities:
    shared_subscriptions: bool  # `$share/<group>/<filter>` splits a stream between subscribers
    qos2: bool  # False: the broker refuses or downgrades QoS 2 (the contract only uses QoS 1)
    retained_on_wildcard: bool  # a wildcard subscription receives the retained messages it matches


@dataclass(frozen=True)
class Account:
    username: str
    password: str


class ContractBroker(Protocol):
    name: str
    prefix: str  # the topic prefix its ACLs are written for
    host: str
    port: int
    capabilities: Capabilities

    def account(self, username: str) -> Account | None:
        """Credentials for a user of the ACL set-up; None on a broker without authentication."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


def password_of(username: str) -> str:
    return f"pw-{username}-test"


def _wait_for_port(
    host: str, port: int, process: subprocess.Popen[bytes] | None, log: Path, what: str
) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if process is not None and process.poll() is not None:
                break
            time.sleep(0.05)
    text = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log written)"
    raise RuntimeError(f"{what} did not listen on {host}:{port}:\n{text}")


# -- Mosquitto --------------------------------------------------------------------------------


class MosquittoContractBroker:
    name = "mosquitto"
    host = "127.0.0.1"
    capabilities = Capabilities(shared_subscriptions=True, qos2=True, retained_on_wildcard=True)

    def __init__(self, workdir: Path, prefix: str, nodes: tuple[str, ...] = ()) -> None:
        """nodes: with names, password authentication and per-node ACLs; without, anonymous."""
        self.prefix = prefix
        workdir.mkdir(parents=True, exist_ok=True)
        self._secured = bool(nodes)
        extra = ""
        if nodes:
            passwd = workdir / "passwd"
            passwd.touch()
            for user in (CENTRE_USER, *nodes):
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(passwd), user, password_of(user)],
                    check=True,
                    capture_output=True,
                )
            acl = workdir / "acl"
            acl.write_text(_mosquitto_acl(prefix))
            extra = f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n"
        self._broker = MosquittoBroker(workdir, persistence=False, extra_config=extra)
        self.port = self._broker.port

    def account(self, username: str) -> Account | None:
        return Account(username, password_of(username)) if self._secured else None

    def start(self) -> None:
        self._broker.start()

    def stop(self) -> None:
        self._broker.stop()


def _mosquitto_acl(prefix: str) -> str:
    # %u: the username, which is the node id (the edge's client id) for node accounts.
    return (
        f"user {CENTRE_USER}\ntopic readwrite {prefix}/#\n\n"
        f"pattern write {prefix}/%u/#\npattern read {prefix}/%u/config\npattern read {prefix}/%u/ack\n"
    )


# -- NATS (MQTT gateway, needs JetStream) -----------------------------------------------------


class NatsMqttBroker:
    name = "nats"
    host = "127.0.0.1"
    # nats-server 2.9: QoS 2 publishes close the connection; `$share/...` is accepted but a plain
    # (literal) topic, so such a subscriber receives nothing.
    capabilities = Capabilities(shared_subscriptions=False, qos2=False, retained_on_wildcard=True)

    def __init__(self, workdir: Path, prefix: str, nodes: tuple[str, ...] = ()) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.prefix = prefix
        self.port = free_port()
        self._secured = bool(nodes)
        self.log_path = workdir / "nats.log"
        self.config_path = workdir / "nats.conf"
        self.config_path.write_text(
            f"listen: 127.0.0.1:{free_port()}\n"
            # JetStream keeps MQTT sessions and retained messages; it needs a server name.
            f'server_name: "curbwatch-test-{self.port}"\n'
            f'jetstream {{ store_dir: "{workdir}/jetstream" }}\n'
            f"mqtt {{ listen: 127.0.0.1:{self.port} }}\n"
            f'log_file: "{self.log_path}"\n' + (_nats_authorization(prefix, nodes) if nodes else "")
        )
        self.process: subprocess.Popen[bytes] | None = None

    def account(self, username: str) -> Account | None:
        return Account(username, password_of(username)) if self._secured else None

    def start(self) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            raise FileNotFoundError(
                "nats-server not found: `apt-get install -y nats-server` (done by .ci/run)"
            )
        self.process = subprocess.Popen(
            [binary, "-c", str(self.config_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for_port(self.host, self.port, self.process, self.log_path, "nats-server (MQTT)")

    def stop(self) -> None:
        if self.process is None:
            return
        end_process(self.process)
        self.process = None


def _nats_authorization(prefix: str, nodes: tuple[str, ...]) -> str:
    # MQTT topics map to NATS subjects: "/" -> ".", "+" -> "*", "#" -> ">". Permissions are per
    # user (NATS knows nothing of the MQTT client id), so a node's username is its node id.
    # QoS 1 subscriptions are JetStream consumers delivering on $MQTT.sub.<id>: without that
    # permission the SUBACK still says granted, and nothing ever arrives.
    subject = prefix.replace("/", ".")
    users = [f'{{user: "{CENTRE_USER}", password: "{password_of(CENTRE_USER)}"}}']
    for node in nodes:
        users.append(
            f'{{user: "{node}", password: "{password_of(node)}", permissions: {{'
            f'publish: {{allow: ["{subject}.{node}.>"]}}, '
            f'subscribe: {{allow: ["{subject}.{node}.config", "{subject}.{node}.ack", "$MQTT.sub.>"]}}}}}}'
        )
    return "authorization {\n  users: [\n    " + ",\n    ".join(users) + "\n  ]\n}\n"


# -- RabbitMQ (MQTT plugin on the machine's server) -------------------------------------------


class RabbitMqttBroker:
    name = "rabbitmq"
    host = "127.0.0.1"
    # RabbitMQ 3.10: QoS 2 is downgraded to 1; `$share/...` is a literal topic (no shared
    # subscriptions); retained messages reach only a subscription to the exact topic.
    capabilities = Capabilities(shared_subscriptions=False, qos2=False, retained_on_wildcard=False)

    def __init__(self, workdir: Path, prefix: str, nodes: tuple[str, ...] = ()) -> None:
        self.port = RABBITMQ_MQTT_PORT
        self.prefix = prefix
        self._nodes = nodes
        self._log = workdir / "rabbitmqctl.log"
        workdir.mkdir(parents=True, exist_ok=True)

    def account(self, username: str) -> Account | None:
        return Account(username, password_of(username)) if self._nodes else None

    def start(self) -> None:
        _wait_for_port(self.host, self.port, None, self._log, "RabbitMQ's MQTT plugin (see .ci/run)")
        if not self._nodes:
            return  # anonymous MQTT logins are the plugin's default user (guest, from loopback)
        # Topic permissions: AMQP routing keys, where the MQTT "/" is "."; {username} is expanded.
        key = self.prefix.replace("/", r"\.")
        self._user(CENTRE_USER, write=f"^{key}\\.", read=f"^{key}\\.")
        for node in self._nodes:
            self._user(node, write=f"^{key}\\.{{username}}\\.", read=f"^{key}\\.{{username}}\\.(config|ack)$")

    def stop(self) -> None:
        for user in (CENTRE_USER, *self._nodes) if self._nodes else ():
            self._ctl("delete_user", user, check=False)

    def _user(self, user: str, *, write: str, read: str) -> None:
        self._ctl("delete_user", user, check=False)
        self._ctl("add_user", user, password_of(user))
        self._ctl("set_permissions", "-p", "/", user, ".*", ".*", ".*")
        self._ctl("set_topic_permissions", "-p", "/", user, "amq.topic", write, read)

    def _ctl(self, *args: str, check: bool = True) -> None:
        result = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)
        with self._log.open("a") as log:
            log.write(f"$ rabbitmqctl {' '.join(args[:2])}\n{result.stdout}{result.stderr}")
        if check and result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {args[0]} failed ({result.returncode}): {result.stderr[-500:]}")


BROKER_KINDS: dict[str, Callable[[Path, str, tuple[str, ...]], ContractBroker]] = {
    "mosquitto": MosquittoContractBroker,
    "nats": NatsMqttBroker,
    "rabbitmq": RabbitMqttBroker,
}
