"""`curbwatch demo`: the whole loop on one machine, as separate processes.

Start order: broker -> mail catcher -> configs and users -> review server -> demo shop
-> edge node. The demo then follows the queue and the mail folder and prints what
happens. One stop event (SIGINT, SIGTERM, --duration); shutdown in reverse order.
The demo never imports the review server or the node: it runs them through their
own CLIs, the way a deployment does.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from edge.demo.broker import Broker, BrokerChoice, BrokerUnavailable, free_port, port_open, provide_broker
from edge.demo.config import (
    CAMERA_ID,
    CLIP,
    SHOPS,
    Account,
    DemoFiles,
    DemoPorts,
    demo_accounts,
    save_accounts,
    write_configs,
    write_private,
)
from edge.demo.mail import CaughtMail, MailCatcher
from edge.demo.processes import ChildExited, Children
from edge.demo.review_client import ReviewHttpError, ReviewSession, wait_until_up

Echo = Callable[[str], None]
POLL_S = 1.0


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived while the demo was still starting."""


@dataclass(frozen=True)
class DemoOptions:
    fast: bool = False
    port: int = 8080  # 0: any free port
    duration_s: float | None = None
    workdir: Path | None = None
    broker: BrokerChoice = BrokerChoice.AUTO
    locale: str = "zh-CN"


def curbwatch_command(*args: str) -> list[str]:
    """Run a curbwatch subcommand with this interpreter (no PATH lookup, same venv)."""
    return [sys.executable, "-c", "from edge.cli import main; main(prog_name='curbwatch')", "-v", *args]


def camera_fields() -> set[str]:
    """The keys node.yaml accepts for a camera (the replay options are used when present)."""
    from edge.node.config import CameraSection  # edge's own config model; pydantic only

    return set(CameraSection.model_fields)


class Demo:
    def __init__(self, options: DemoOptions, echo: Echo) -> None:
        self.options = options
        self.echo = echo
        self.stop_event = threading.Event()
        workdir = options.workdir or Path(tempfile.mkdtemp(prefix="curbwatch-demo-"))
        self.files = DemoFiles(workdir.resolve())
        self.children = Children(self.files.log_dir)
        self.mail: MailCatcher | None = None
        self.seen_incidents: set[str] = set()

    # -- lifecycle ------------------------------------------------------------------------

    def run(self) -> int:
        """Start everything, follow it until stopped; 0 on a clean stop, 1 when something failed."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        code = 0
        try:
            session = self.start()
            self.follow(session)
        except Interrupted:
            pass
        except (ChildExited, BrokerUnavailable, ReviewHttpError, OSError) as exc:
            self.echo(f"demo failed: {exc}")
            code = 1
        finally:
            self.echo("stopping ...")
            self.shutdown()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        self.echo(f"stopped; everything this run made is in {self.files.workdir}")
        return code

    def start(self) -> ReviewSession:
        self.files.workdir.mkdir(parents=True, exist_ok=True)
        broker = provide_broker(self.options.broker, self.files.workdir / "broker", self.children)
        self._check_stop()
        ports = DemoPorts(self._http_port(), free_port(), broker.host, broker.port)
        self.mail = MailCatcher(self.files.mail_dir, ports.smtp, self._on_mail)
        self.mail.start()
        fields = camera_fields()
        write_configs(
            self.files,
            ports,
            fast=self.options.fast,
            locale=self.options.locale,
            unique_ids=broker.shared,
            camera_fields=fields,
        )
        accounts = self._create_users()
        self._check_stop()
        self.children.start(
            "review", curbwatch_command("review", "serve", "--config", str(self.files.review_yaml))
        )
        base_url = f"http://127.0.0.1:{ports.http}"
        wait_until_up(base_url, 60.0, self._alive)
        admin = next(a for a in accounts if a.role == "admin")
        session = ReviewSession(base_url)
        session.login(admin.username, admin.password)
        self._register_shop(session)
        self._check_stop()
        self.children.start("edge", curbwatch_command("edge", "run", "--config", str(self.files.node_yaml)))
        self._banner(base_url, accounts, broker, ports, replay_ok={"realtime", "loop"} <= fields)
        return session

    def follow(self, session: ReviewSession) -> None:
        deadline = None if self.options.duration_s is None else time.monotonic() + self.options.duration_s
        while not self.stop_event.wait(POLL_S):
            self.children.raise_if_any_exited()
            try:
                pending = session.incidents("pending")
            except ReviewHttpError as exc:  # a slow moment of the server; a dead one is caught above
                self.echo(f"(queue not readable just now: {exc})")
                continue
            for incident in pending:
                self._announce(session.base_url, incident)
            if deadline is not None and time.monotonic() >= deadline:
                self.echo(f"--duration {self.options.duration_s:g} s reached")
                return

    def shutdown(self) -> None:
        self.children.stop_all()
        if self.mail is not None:
            self.mail.stop()
            self.mail = None

    # -- steps ----------------------------------------------------------------------------

    def _http_port(self) -> int:
        wanted = self.options.port
        if wanted == 0:
            return free_port()
        if port_open("127.0.0.1", wanted):
            chosen = free_port()
            self.echo(f"port {wanted} is in use: the review UI takes port {chosen} instead")
            return chosen
        return wanted

    def _create_users(self) -> list[Account]:
        accounts, create = demo_accounts(self.files)
        if not create:
            return accounts
        for account in accounts:
            password_file = self.files.workdir / "review" / f".{account.username}.password"
            write_private(password_file, account.password + "\n")
            try:
                self.children.run(
                    f"create-user-{account.username}",
                    curbwatch_command(
                        "review",
                        "create-user",
                        "--config",
                        str(self.files.review_yaml),
                        account.username,
                        "--role",
                        account.role,
                        "--password-file",
                        str(password_file),
                    ),
                )
            finally:
                password_file.unlink(missing_ok=True)
        save_accounts(self.files, accounts)
        return accounts

    def _register_shop(self, session: ReviewSession) -> None:
        """The shops the demo zones name, with the e-mail addresses the mail catcher receives for."""
        for shop in SHOPS:
            try:
                session.api("POST", "/shops", {**shop, "locale": self.options.locale})
            except ReviewHttpError as exc:
                if "HTTP 409" not in str(exc):  # the shop exists: a reused work dir
                    raise

    # -- reporting ------------------------------------------------------------------------

    def _banner(
        self, base_url: str, accounts: list[Account], broker: Broker, ports: DemoPorts, replay_ok: bool
    ) -> None:
        if replay_ok:
            mode = "once, as fast as it decodes" if self.options.fast else "at recorded speed, looping"
        else:
            mode = "once, as fast as it decodes (this edge node has no real-time replay option)"
        lines = [
            "",
            "curbwatch demo is running",
            f"  review UI   {base_url}/queue   <- open this in a browser",
            *(f"  {a.role:<10}  user {a.username}  password {a.password}" for a in accounts),
            f"  camera      {CAMERA_ID} plays {CLIP.name} {mode}",
            f"  broker      {broker.kind.value} on {broker.host}:{broker.port}",
            f"  mail        reminders are caught on 127.0.0.1:{ports.smtp}, saved in {self.files.mail_dir}",
            f"  work dir    {self.files.workdir} (configs, databases, logs)",
            "",
            "Two bicycles are wheeled onto the east pavement at 0:05 in the clip; after the zone's",
            "10 s dwell an incident opens. Log in as the inspector, open it, confirm it, and the",
            "shop's reminder mail arrives here. Ctrl-C stops everything.",
            "",
        ]
        for line in lines:
            self.echo(line)

    def _announce(self, base_url: str, incident: dict[str, object]) -> None:
        incident_id = str(incident.get("incident_id", ""))
        if not incident_id or incident_id in self.seen_incidents:
            return
        self.seen_incidents.add(incident_id)
        what = incident.get("label", "object")
        where = incident.get("zone_id", "?")
        shop = incident.get("shop_name") or incident.get("shop_id", "")
        self.echo(f"incident: {what} in zone {where} ({shop}) -> {base_url}/incidents/{incident_id}")

    def _on_mail(self, mail: CaughtMail) -> None:
        attached = f", attached {', '.join(mail.attachments)}" if mail.attachments else ""
        self.echo(f"reminder mail to {', '.join(mail.recipients)}: {mail.subject!r}{attached} -> {mail.path}")

    # -- stopping -------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_event.set()

    def _check_stop(self) -> None:
        if self.stop_event.is_set():
            raise Interrupted

    def _alive(self) -> None:
        self._check_stop()
        self.children.raise_if_any_exited()
