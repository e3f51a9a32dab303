"""`curbwatch demo`: the bundled clip, its zones, the helpers, and the whole loop headless."""

from __future__ import annotations

import importlib.util
import json
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from types import ModuleType

import av
import cv2
import pytest

from edge.demo.broker import BrokerChoice, BrokerUnavailable, provide_broker
from edge.demo.config import CLIP, ZONES
from edge.demo.mail import CaughtMail, MailCatcher
from edge.demo.processes import ChildExited, Children
from edge.demo.review_client import ReviewSession
from tests.support.broker import free_port

ROOT = Path(__file__).resolve().parents[3]


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_demo_clip", ROOT / "tools" / "make_demo_clip.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


# -- the bundled footage -----------------------------------------------------------------------


def test_clip_is_small_and_decodes_with_pyav_and_opencv() -> None:
    assert CLIP.stat().st_size < 6 * 1024 * 1024
    with av.open(str(CLIP)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (768, 576)
        assert sum(1 for _ in container.decode(stream)) == 600
    cap = cv2.VideoCapture(str(CLIP))
    try:
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
        frames = 0
        while cap.grab():
            frames += 1
        assert frames == 600
    finally:
        cap.release()


def test_clip_builder_is_deterministic(tmp_path: Path, vtest_avi: Path, leuven_jpg: Path) -> None:
    tool = load_tool()
    outputs = []
    for name in ("a.mp4", "b.mp4"):
        out = tmp_path / name
        args = ["--vtest", str(vtest_avi), "--leuven", str(leuven_jpg), "--out", str(out), "--seconds", "8"]
        assert tool.main(args) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    cap = cv2.VideoCapture(str(tmp_path / "a.mp4"))
    try:
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 80
    finally:
        cap.release()


def test_the_script_puts_the_bicycles_on_the_pavement_for_thirty_seconds() -> None:
    script = load_tool().Script()
    assert script.where(4.9) is None
    assert script.where(5.0) == script.enter_from_xy
    assert script.where(20.0) == script.rest_xy
    assert script.where(36.0) is not None
    assert script.where(37.0) is None


@pytest.mark.slow
def test_analyze_finds_the_bicycles_and_the_fruit_display_each_once(tmp_path: Path) -> None:
    """The real default detector and scene model on the bundled clip and zones, via `curbwatch analyze`."""
    events_out = tmp_path / "events.jsonl"
    subprocess.run(
        [*cli(), "analyze", str(CLIP), "--zones", str(ZONES), "--events-out", str(events_out)],
        check=True,
        timeout=240,
    )
    every = [json.loads(line) for line in events_out.read_text().splitlines()]
    assert {event["zone_id"] for event in every} == {"east-pavement", "west-walkway"}
    for zone_id, label, opens, clears in (
        # On the pavement from 0:05 to 0:37 (still from 0:07); dwell 10 s, clear 8 s.
        ("east-pavement", "bicycle", (14.0, 20.0), (40.0, 48.0)),
        # On the walkway from 0:12 to 0:48 (still from 0:14): static after 15 s, dwell 10 s.
        ("west-walkway", "static object", (38.0, 46.0), (50.0, 58.0)),
    ):
        events = [event for event in every if event["zone_id"] == zone_id]
        kinds = [event["event"] for event in events]
        assert kinds[0] == "opened" and kinds[-1] == "cleared"
        assert set(kinds[1:-1]) <= {"updated"}
        assert len({event["incident_id"] for event in events}) == 1
        opened, cleared = events[0], events[-1]
        assert opened["label"] == label
        assert opens[0] <= opened["t"] <= opens[1] and clears[0] <= cleared["t"] <= clears[1]


# -- the pieces ----------------------------------------------------------------------------------


def test_mail_catcher_keeps_each_mail_as_eml(tmp_path: Path) -> None:
    caught: list[CaughtMail] = []
    port = free_port()
    catcher = MailCatcher(tmp_path / "mail", port, caught.append)
    catcher.start()
    try:
        message = EmailMessage()
        message["From"] = "curbwatch@localhost"
        message["To"] = "shop@example.com"
        message["Subject"] = "整改提醒: goods on the pavement"
        message["X-Curbwatch-Incident"] = "abc-123"
        message.set_content("Please clear the pavement.")
        message.add_attachment(b"\xff\xd8jpeg", maintype="image", subtype="jpeg", filename="evidence.jpg")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(message)
    finally:
        catcher.stop()
    assert len(caught) == 1
    mail = caught[0]
    assert mail.recipients == ("shop@example.com",)
    assert mail.subject == "整改提醒: goods on the pavement"
    assert mail.incident_id == "abc-123"
    assert mail.attachments == ("evidence.jpg",)
    assert mail.path == tmp_path / "mail" / "0001.eml"
    assert b"Please clear the pavement." in mail.path.read_bytes()


def test_children_stop_in_reverse_order_and_kill_the_stubborn(tmp_path: Path) -> None:
    children = Children(tmp_path / "logs")
    ignore_sigint = (
        "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN);"
        " print('up', flush=True); time.sleep(60)"
    )
    polite = children.start("polite", [sys.executable, "-c", "import time; time.sleep(60)"])
    stubborn = children.start("stubborn", [sys.executable, "-c", ignore_sigint])
    deadline = time.monotonic() + 10
    while b"up" not in stubborn.log_path.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    children.stop_all(grace_s=1.0)
    assert time.monotonic() - started < 8
    assert stubborn.process.returncode == -signal.SIGKILL
    assert polite.process.returncode is not None
    assert children.pids == {}


def test_a_child_that_dies_is_reported_with_its_log(tmp_path: Path) -> None:
    children = Children(tmp_path / "logs")
    children.start("broken", [sys.executable, "-c", "print('cannot bind'); raise SystemExit(3)"])
    deadline = time.monotonic() + 10
    with pytest.raises(ChildExited, match=r"(?s)broken exited with 3.*cannot bind"):
        while time.monotonic() < deadline:
            children.raise_if_any_exited()
            time.sleep(0.05)
    children.stop_all()


def test_embedded_broker_needs_amqtt_or_says_what_to_install(tmp_path: Path) -> None:
    children = Children(tmp_path / "logs")
    try:
        if importlib.util.find_spec("amqtt") is None:
            with pytest.raises(BrokerUnavailable, match="pip install amqtt"):
                provide_broker(BrokerChoice.EMBEDDED, tmp_path, children)
        else:
            broker = provide_broker(BrokerChoice.EMBEDDED, tmp_path, children)
            assert broker.kind is BrokerChoice.EMBEDDED and not broker.shared
    finally:
        children.stop_all(grace_s=5.0)


# -- the whole loop ------------------------------------------------------------------------------


def cli() -> list[str]:
    return [sys.executable, "-c", "from edge.cli import main; main(prog_name='curbwatch')"]


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class DemoOutput:
    """The demo's stdout, collected by a thread so the test never blocks on a read."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text())
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in the demo's output:\n{self.text()}")

    def finish(self) -> None:
        self._reader.join(10)


@pytest.mark.slow
@pytest.mark.timeout(170)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the children")
def test_demo_runs_the_whole_loop_and_leaves_nothing_behind(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    process = subprocess.Popen(
        [*cli(), "demo", "--fast", "--port", "0", "--duration", "150", "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = DemoOutput(process)
    try:
        url = output.wait_for(r"review UI\s+(http://127\.0\.0\.1:\d+)/queue", 60).group(1)
        inspector = output.wait_for(r"inspector\s+user (\S+)\s+password (\S+)", 5)
        running = children_of(process.pid)
        assert len(running) >= 3  # broker, review server, edge node

        incident = output.wait_for(
            r"incident: bicycle in zone east-pavement .*/incidents/([0-9a-f-]{36})", 90
        )
        output.wait_for(r"incident: static object in zone west-walkway .*/incidents/[0-9a-f-]{36}", 90)
        incident_id = incident.group(1)
        session = ReviewSession(url)
        session.login(inspector.group(1), inspector.group(2))
        assert incident_id in {row["incident_id"] for row in session.incidents("pending")}

        # By the time the fruit display has stayed long enough, the bicycles may have gone:
        # the inspector then chooses to remind anyway.
        verdict = session.confirm(
            incident_id, note="checked by tests/edge/demo/test_demo.py", cleared_action="remind"
        )
        assert verdict["status"] == "confirmed" and verdict["reminder_ids"]
        mail = output.wait_for(r"reminder mail to east-fruit@shops\.example: .* -> (\S+\.eml)", 30)
        eml = Path(mail.group(1))
        assert eml.parent == workdir / "mail"
        # One reminder for the case: it names the newest occurrence the verdict decided.
        assert incident_id in verdict["decided"]
        assert any(decided.encode() in eml.read_bytes() for decided in verdict["decided"])

        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
        output.finish()
        assert "stopped;" in output.lines[-1]
        assert not [pid for pid in running if alive(pid)]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_demo_names_the_packages_it_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from edge.demo import cli as demo_cli

    monkeypatch.setattr(demo_cli, "_installed", lambda name: name != "aiosmtpd")
    result = CliRunner().invoke(demo_cli.demo, ["--duration", "5"])
    assert result.exit_code == 1
    assert "aiosmtpd (extra [dev])" in result.output
