"""The demo's child processes: started in order, stopped in reverse, none left behind.

Each child gets its own session, so a Ctrl-C in the terminal reaches only the demo,
which then stops the children one by one (SIGINT, a grace period, SIGKILL). On Linux
each child also asks the kernel for SIGTERM should the demo itself die (SIGKILL,
OOM), so even then no broker or server is left running.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


class ChildExited(Exception):
    """A child stopped while the demo still needed it; the message quotes its log."""


def _die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def log_tail(self, lines: int = 15) -> str:
        self.log_file.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


class Children:
    """The processes one demo run started; `stop_all` ends them in reverse order."""

    def __init__(self, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.env = env
        self._children: list[Child] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    @property
    def pids(self) -> dict[str, int]:
        return {child.name: child.process.pid for child in self._children}

    def start(self, name: str, command: list[str], cwd: Path | None = None) -> Child:
        log_path = self.log_dir / f"{name}.log"
        log_file = log_path.open("ab")
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=self.env,
            start_new_session=True,
            preexec_fn=_die_with_parent(),  # only prctl and getppid: safe between fork and exec
        )
        child = Child(name, process, log_path, log_file)
        self._children.append(child)
        log.info("started %s (pid %d), log %s", name, process.pid, log_path)
        return child

    def run(self, name: str, command: list[str], timeout_s: float = 60.0) -> None:
        """A short-lived command that must succeed (e.g. creating a user)."""
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log_file:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=self.env,
                timeout=timeout_s,
                check=False,
            )
        if result.returncode != 0:
            tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
            raise ChildExited(f"{name} failed (exit {result.returncode}):\n{tail}")

    def raise_if_any_exited(self) -> None:
        for child in self._children:
            code = child.process.poll()
            if code is not None:
                raise ChildExited(
                    f"{child.name} exited with {code}; last lines of {child.log_path}:\n{child.log_tail()}"
                )

    def stop_all(self, grace_s: float = 20.0) -> None:
        """SIGINT to each child, newest first; SIGKILL after `grace_s`; reap all."""
        while self._children:
            child = self._children.pop()
            stop(child.process, grace_s)
            child.log_file.close()
            log.info("stopped %s (exit %s)", child.name, child.process.returncode)


def stop(process: subprocess.Popen[bytes], grace_s: float) -> None:
    if process.poll() is not None:
        return
    try:
        process.send_signal(signal.SIGINT)
        process.wait(grace_s)
        return
    except subprocess.TimeoutExpired:
        log.warning("pid %d ignored SIGINT for %.0f s: killing it", process.pid, grace_s)
    except ProcessLookupError:
        pass
    process.kill()
    process.wait(5.0)
