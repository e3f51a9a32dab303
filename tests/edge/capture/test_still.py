"""A camera's main stream, one picture at a time: grabbed in its own thread, waited for a bounded time."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge.capture import SourceError, StillCamera, grab_keyframe
from models.types import Image
from tests.support.broker import free_port

PICTURE: Image = np.full((720, 1280, 3), 50, np.uint8)


def test_take_returns_the_grabbed_picture_and_counts_nothing() -> None:
    reasons: list[str] = []
    camera = StillCamera(
        "cam-1", "rtsp://cam/main", timeout_s=1.0, grab=lambda: PICTURE, on_fallback=reasons.append
    )
    assert camera.take() is PICTURE and camera.take() is PICTURE
    assert reasons == []


def test_a_failed_grab_falls_back_logged_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    def refused() -> Image:
        raise SourceError("cannot open rtsp://admin:hunter2@10.0.0.7/main: Connection refused")

    reasons: list[str] = []
    camera = StillCamera(
        "cam-1", "rtsp://admin:hunter2@10.0.0.7/main", timeout_s=1.0, grab=refused, on_fallback=reasons.append
    )
    with caplog.at_level(logging.WARNING, "edge.capture.still"):
        assert camera.take() is None
    assert len(reasons) == 1 and "Connection refused" in reasons[0]
    assert "camera cam-1: evidence from the analysed stream" in caplog.text
    assert "hunter2" not in caplog.text + reasons[0]


def test_a_hanging_grab_costs_the_caller_the_timeout_once_then_nothing_until_it_ends() -> None:
    release = threading.Event()
    calls: list[float] = []

    def hangs() -> Image:
        calls.append(time.monotonic())
        release.wait(10)
        return PICTURE

    reasons: list[str] = []
    camera = StillCamera("cam-1", "rtsp://cam/main", timeout_s=0.3, grab=hangs, on_fallback=reasons.append)
    started = time.monotonic()
    assert camera.take() is None
    assert 0.25 < time.monotonic() - started < 2.0
    started = time.monotonic()
    assert camera.take() is None  # the first grab still holds the slot: no second thread, no wait
    assert time.monotonic() - started < 0.1 and len(calls) == 1
    assert reasons == ["not read within 0.3 s", "an earlier grab has not finished"]
    release.set()
    deadline = time.monotonic() + 5
    while camera.take() is None and time.monotonic() < deadline:  # the slot frees when the grab ends
        time.sleep(0.05)
    assert len(calls) >= 2


@pytest.mark.parametrize("timeout_s", [0.0, -1.0])
def test_timeout_must_be_positive(timeout_s: float) -> None:
    with pytest.raises(ValueError, match="timeout_s: expected > 0"):
        StillCamera("cam-1", "rtsp://cam/main", timeout_s=timeout_s)


def test_grab_keyframe_reads_a_1080p_recording_scaled_while_converting(recording_1080p: Path) -> None:
    picture = grab_keyframe(str(recording_1080p), 1280, 5.0)
    assert picture.shape == (720, 1280, 3) and picture.dtype == np.uint8 and picture.std() > 10
    assert grab_keyframe(str(recording_1080p), None, 5.0).shape == (1080, 1920, 3)


def test_grab_keyframe_raises_for_a_dead_stream(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        grab_keyframe(f"rtsp://127.0.0.1:{free_port()}/main", 1280, 2.0)
    with pytest.raises(SourceError):
        grab_keyframe(str(tmp_path / "missing.mkv"), 1280, 2.0)
