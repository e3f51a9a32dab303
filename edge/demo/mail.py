"""A local mail catcher for the demo: an SMTP server that keeps every mail as an .eml file.

The review server sends its rectification reminders here instead of to a real shop;
each mail is written to `<workdir>/mail/NNNN.eml` (open it with any mail program)
and announced through `on_mail` (the demo prints one line per mail).
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope


@dataclass(frozen=True)
class CaughtMail:
    path: Path
    sender: str
    recipients: tuple[str, ...]
    subject: str
    incident_id: str | None
    attachments: tuple[str, ...]


def parse_mail(path: Path, sender: str, recipients: tuple[str, ...]) -> CaughtMail:
    # policy.default builds an EmailMessage (typeshed only knows the Message base class).
    message = cast(EmailMessage, email.message_from_bytes(path.read_bytes(), policy=email.policy.default))
    return CaughtMail(
        path=path,
        sender=sender,
        recipients=recipients,
        subject=str(message.get("Subject", "")),
        incident_id=message.get("X-Curbwatch-Incident"),
        attachments=tuple(part.get_filename() or "" for part in message.iter_attachments()),
    )


class MailStore:
    """The aiosmtpd handler: numbered .eml files in one folder."""

    def __init__(self, folder: Path, on_mail: Callable[[CaughtMail], None]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.on_mail = on_mail
        self._lock = threading.Lock()
        self._count = len(list(folder.glob("*.eml")))

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8")
        with self._lock:
            self._count += 1
            path = self.folder / f"{self._count:04d}.eml"
        partial = path.with_suffix(".partial")
        partial.write_bytes(content)
        partial.replace(path)  # readers never see half a mail
        sender = str(envelope.mail_from or "")
        self.on_mail(parse_mail(path, sender, tuple(str(r) for r in envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class MailCatcher:
    """An SMTP server on 127.0.0.1:`port` in a background thread."""

    def __init__(self, folder: Path, port: int, on_mail: Callable[[CaughtMail], None]) -> None:
        self.folder = folder
        self.port = port
        self._controller = Controller(MailStore(folder, on_mail), hostname="127.0.0.1", port=port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
