from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from edge.logscrub import CredentialScrubber, install, redact_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rtsp://admin:secret@10.0.0.7:554/stream1", "rtsp://***@10.0.0.7:554/stream1"),
        ("rtsp://admin@10.0.0.7/s", "rtsp://***@10.0.0.7/s"),
        ("rtsp://u:p@ss:w0rd@cam.local/live", "rtsp://***@cam.local/live"),
        (
            "http://cam/video.mjpg?user=admin&password=hunter2&res=hd",
            "http://cam/video.mjpg?user=***&password=***&res=hd",
        ),
        ("http://cam/snap.cgi?pwd=abc;channel=1", "http://cam/snap.cgi?pwd=***;channel=1"),
        ("a rtsp://x:y@h1/a and rtsp://z:w@h2/b", "a rtsp://***@h1/a and rtsp://***@h2/b"),
        ("rtsp://10.0.0.7:554/stream1", "rtsp://10.0.0.7:554/stream1"),
        ("/srv/video/cam-01.mp4", "/srv/video/cam-01.mp4"),
        ("token=abc123", "token=***"),
        ("compassword=1 bypass=ok", "compassword=1 bypass=ok"),
    ],
)
def test_redact_url(text: str, expected: str) -> None:
    assert redact_url(text) == expected


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("curbwatch-test-root")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    root.propagate = False
    try:
        yield root, stream
    finally:
        root.removeHandler(handler)


def test_filter_on_handler_scrubs_child_records_args_and_tracebacks(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    root, stream = captured
    install(root)
    child = logging.getLogger("curbwatch-test-root.capture.cam01")
    url = "rtsp://admin:Sup3rS3cret@10.1.2.3/Streaming/Channels/101"
    child.warning("cannot open %s after %d tries", url, 3)
    try:
        raise ConnectionError(f"Connection refused: {url}")
    except ConnectionError:
        child.exception("camera failed")
    child.info("stack", stack_info=True, extra={})
    output = stream.getvalue()
    assert "Sup3rS3cret" not in output
    assert "admin" not in output
    assert "cannot open rtsp://***@10.1.2.3/Streaming/Channels/101 after 3 tries" in output
    assert "ConnectionError: Connection refused: rtsp://***@10.1.2.3" in output


def test_install_is_idempotent(captured: tuple[logging.Logger, io.StringIO]) -> None:
    root, _ = captured
    first = install(root)
    second = install(root)
    assert first is second
    assert sum(isinstance(f, CredentialScrubber) for f in root.handlers[0].filters) == 1


def test_broken_format_string_is_kept_and_scrubbed(captured: tuple[logging.Logger, io.StringIO]) -> None:
    root, stream = captured
    root.handlers[0].addFilter(CredentialScrubber())
    root.warning("only %s %s", "rtsp://a:b@h/x")  # too few args
    assert "rtsp://***@h/x" in stream.getvalue()
    assert ":b@" not in stream.getvalue()
