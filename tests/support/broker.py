"""Run a real Mosquitto on a free loopback port with a temporary config."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto")


def end_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s: a test's server stops, or is made to."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _mosquitto_binary() -> str:
    for candidate in MOSQUITTO_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise FileNotFoundError("mosquitto not found: `apt-get install -y mosquitto` (done by .ci/run)")


class MosquittoBroker:
    """A broker process that a test can stop and start again on the same port.

    Persistence is on, so retained messages and queued QoS 1 messages for
    persistent sessions survive a restart, as on a real deployment.
    """

    host = "127.0.0.1"

    def __init__(
        self, workdir: Path, port: int | None = None, *, persistence: bool = True, extra_config: str = ""
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "mosquitto.conf"
        stored = f"persistence true\npersistence_location {workdir}/\nautosave_interval 1\n"
        self.config_path.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            + (stored if persistence else "persistence false\n")
            + extra_config
            + "max_queued_messages 100000\n"
            "message_size_limit 0\n"
            f"log_dest file {workdir}/mosquitto.log\n" + ("user root\n" if os.geteuid() == 0 else "")
            # As root, mosquitto drops to the `mosquitto` user, which cannot write into
            # pytest's root-only temp dirs: persistence would silently fail.
        )

    def start(self) -> None:
        if self.process is not None:
            return
        self.process = subprocess.Popen(
            [_mosquitto_binary(), "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        log_path = self.workdir / "mosquitto.log"
        log = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else "(no log written)"
        raise RuntimeError(f"mosquitto did not start on port {self.port}:\n{log}")

    def kill(self) -> None:
        """SIGKILL: what the broker had not written to disk is gone (all of it without persistence)."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        end_process(self.process)
        self.process = None

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
