"""Run the broker configurations under deploy/ as they are written, on private ports and paths.

A template is a real configuration with real-looking addresses and paths (what an operator
copies and edits); `render` swaps exactly those for a test's own, and fails when one is no longer
in the file, so a test cannot drift away from the template it claims to run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from tests.support.broker import MosquittoBroker

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


class TemplateDrift(AssertionError):
    """The template no longer contains what the test replaces."""


def render(template: Path, replacements: Mapping[str, str]) -> str:
    text = template.read_text()
    for old, new in replacements.items():
        if old not in text:
            raise TemplateDrift(f"{template.relative_to(ROOT)} no longer contains {old!r}")
        text = text.replace(old, new)
    return text


class TemplateMosquitto(MosquittoBroker):
    """A Mosquitto started on a rendered template (stop, kill and start as MosquittoBroker)."""

    def __init__(self, workdir: Path, config: str, port: int) -> None:
        super().__init__(workdir, port)
        # Replaces the generic config MosquittoBroker wrote; logging to where start() looks.
        self.config_path.write_text(
            config
            + f"\nlog_dest file {workdir}/mosquitto.log\n"
            + "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            + ("user root\n" if os.geteuid() == 0 else "")
        )
