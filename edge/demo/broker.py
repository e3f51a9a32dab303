"""The demo's MQTT broker: our own Mosquitto, an existing one, or an embedded amqtt.

Order of preference for `--broker auto`:

1. the `mosquitto` binary on a free loopback port, private to this demo run (a clean
   broker: no retained messages or queued sessions from other runs or other programs);
2. a broker already answering on 127.0.0.1:1883 (the demo then uses client ids unique
   to its work directory, so persistent sessions of earlier runs do not interfere);
3. amqtt (pure Python, `pip install amqtt`), started as a subprocess on a free port.

Every broker this module starts is a child process owned by the caller's `Children`.
"""

from __future__ import annotations

import enum
import importlib.util
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from edge.demo.processes import Children

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
LOCAL_BROKER = ("127.0.0.1", 1883)


class BrokerChoice(enum.StrEnum):
    AUTO = "auto"
    MOSQUITTO = "mosquitto"  # start our own
    LOCAL = "local"  # use the one on 127.0.0.1:1883
    EMBEDDED = "embedded"  # start amqtt


class BrokerUnavailable(Exception):
    """No broker of the requested kind can be had; the message says what to install."""


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    kind: BrokerChoice
    shared: bool  # someone else's broker: use client ids unique to this run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout_s: float, children: Children) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        children.raise_if_any_exited()
        time.sleep(0.1)
    raise BrokerUnavailable(f"no broker answered on {host}:{port} within {timeout_s:.0f} s")


def mosquitto_binary() -> str | None:
    for candidate in MOSQUITTO_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def amqtt_available() -> bool:
    return importlib.util.find_spec("amqtt") is not None


def start_mosquitto(binary: str, workdir: Path, children: Children) -> Broker:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence false\n"
        "max_queued_messages 10000\n"
        f"log_dest file {workdir / 'mosquitto.log'}\n",
        encoding="utf-8",
    )
    children.start("broker", [binary, "-c", str(config)])
    wait_for_port("127.0.0.1", port, 10.0, children)
    return Broker("127.0.0.1", port, BrokerChoice.MOSQUITTO, shared=False)


def start_amqtt(workdir: Path, children: Children) -> Broker:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "amqtt.yaml"
    config.write_text(
        "listeners:\n"
        "  default:\n"
        "    type: tcp\n"
        f"    bind: 127.0.0.1:{port}\n"
        "plugins:\n"
        "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: true\n",
        encoding="utf-8",
    )
    command = [
        sys.executable,
        "-c",
        "from amqtt.scripts.broker_script import main; main()",
        "-c",
        str(config),
    ]
    children.start("broker", command)
    wait_for_port("127.0.0.1", port, 15.0, children)
    return Broker("127.0.0.1", port, BrokerChoice.EMBEDDED, shared=False)


def provide_broker(choice: BrokerChoice, workdir: Path, children: Children) -> Broker:
    """A running broker of the chosen kind (AUTO: the first that works, see the module doc)."""
    binary = mosquitto_binary()
    local_up = port_open(*LOCAL_BROKER)
    if choice is BrokerChoice.AUTO:
        if binary is not None:
            choice = BrokerChoice.MOSQUITTO
        elif local_up:
            choice = BrokerChoice.LOCAL
        else:
            choice = BrokerChoice.EMBEDDED
    if choice is BrokerChoice.MOSQUITTO:
        if binary is None:
            raise BrokerUnavailable("mosquitto is not installed (Debian/Ubuntu: apt-get install mosquitto)")
        return start_mosquitto(binary, workdir, children)
    if choice is BrokerChoice.LOCAL:
        if not local_up:
            raise BrokerUnavailable("no MQTT broker is listening on 127.0.0.1:1883")
        return Broker(*LOCAL_BROKER, BrokerChoice.LOCAL, shared=True)
    if not amqtt_available():
        raise BrokerUnavailable(
            "no MQTT broker: install Mosquitto (apt-get install mosquitto), start one on "
            "127.0.0.1:1883, or `pip install amqtt` for the embedded one"
        )
    return start_amqtt(workdir, children)
