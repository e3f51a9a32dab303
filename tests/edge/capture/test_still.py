"""A camera's main stream, one picture at a time: grabbed ahead of need in its own thread, taken at once."""

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


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _wait_for_grabs(camera: StillCamera, timeout_s: float = 5.0) -> None:
    """Until no grab is in flight (prepare and take start them in their own threads)."""
    deadline = time.monotonic() + timeout_s
    while camera._in_flight is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert camera._in_flight is None


def test_a_prepared_picture_is_taken_at_once_and_counts_nothing() -> None:
    reasons: list[str] = []
    camera = StillCamera(
        "cam-1", "rtsp://cam/main", timeout_s=1.0, grab=lambda: PICTURE, on_fallback=reasons.append
    )
    camera.prepare()
    _wait_for_grabs(camera)
    camera.prepare()  # the picture is fresh: no second grab
    assert camera.take() is PICTURE and camera.take() is PICTURE
    assert reasons == [] and camera.grabs == 1


def test_take_without_a_fresh_picture_falls_back_at_once_and_grabs_for_the_next_time() -> None:
    clock = FakeClock()
    reasons: list[str] = []
    camera = StillCamera(
        "cam-1",
        "rtsp://cam/main",
        timeout_s=2.0,
        max_age_s=10.0,
        grab=lambda: PICTURE,
        on_fallback=reasons.append,
        clock=clock,
    )
    assert camera.take() is None  # nothing prepared: no wait, the analysed frame is used
    _wait_for_grabs(camera)
    assert camera.take() is PICTURE
    clock.now += 10.5  # older than max_age_s
    assert camera.take() is None
    assert reasons == ["no picture read yet", "newest picture 10 s old (at most 10 s)"]
    assert camera.grabs == 2


def test_prepare_refreshes_the_picture_before_it_expires() -> None:
    clock = FakeClock()
    camera = StillCamera(
        "cam-1", "rtsp://cam/main", timeout_s=3.0, max_age_s=10.0, grab=lambda: PICTURE, clock=clock
    )
    assert camera.refresh_after_s == 7.0  # max_age_s - timeout_s: the new one is in before 10 s
    camera.prepare()
    _wait_for_grabs(camera)
    clock.now += 6.9
    camera.prepare()
    assert camera.grabs == 1
    clock.now += 0.2
    camera.prepare()
    _wait_for_grabs(camera)
    assert camera.grabs == 2
    clock.now += 9.0  # 9 s after the second grab: still fresh
    assert camera.take() is PICTURE


def test_a_failed_grab_falls_back_logged_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    def refused() -> Image:
        raise SourceError("cannot open rtsp://admin:hunter2@10.0.0.7/main: Connection refused")

    reasons: list[str] = []
    camera = StillCamera(
        "cam-1", "rtsp://admin:hunter2@10.0.0.7/main", timeout_s=1.0, grab=refused, on_fallback=reasons.append
    )
    with caplog.at_level(logging.WARNING, "edge.capture.still"):
        assert camera.take(wait_s=2.0) is None
    assert len(reasons) == 1 and "Connection refused" in reasons[0]
    assert "camera cam-1: evidence from the analysed stream" in caplog.text
    assert "hunter2" not in caplog.text + reasons[0]


def test_a_hanging_grab_never_blocks_prepare_and_never_doubles() -> None:
    release = threading.Event()
    calls: list[float] = []

    def hangs() -> Image:
        calls.append(time.monotonic())
        release.wait(10)
        return PICTURE

    reasons: list[str] = []
    camera = StillCamera("cam-1", "rtsp://cam/main", timeout_s=0.3, grab=hangs, on_fallback=reasons.append)
    started = time.monotonic()
    for _ in range(5):
        camera.prepare()
    assert camera.take() is None  # a live camera's evidence: no wait
    assert time.monotonic() - started < 0.1
    started = time.monotonic()
    assert camera.take(wait_s=0.3) is None  # a replay waits, once, for the grab in flight
    assert 0.25 < time.monotonic() - started < 2.0
    assert len(calls) == 1 and camera.grabs == 1
    assert reasons == ["no picture read yet", "not read within 0.3 s"]
    release.set()
    _wait_for_grabs(camera)
    assert camera.take() is PICTURE


@pytest.mark.parametrize(("timeout_s", "max_age_s"), [(0.0, 10.0), (-1.0, 10.0), (1.0, 0.0)])
def test_timeout_and_max_age_must_be_positive(timeout_s: float, max_age_s: float) -> None:
    with pytest.raises(ValueError, match="expected > 0"):
        StillCamera("cam-1", "rtsp://cam/main", timeout_s=timeout_s, max_age_s=max_age_s)


def test_grab_keyframe_reads_a_1080p_recording_scaled_while_converting(recording_1080p: Path) -> None:
    picture = grab_keyframe(str(recording_1080p), 1280, 5.0)
    assert picture.shape == (720, 1280, 3) and picture.dtype == np.uint8 and picture.std() > 10
    assert grab_keyframe(str(recording_1080p), None, 5.0).shape == (1080, 1920, 3)


def test_grab_keyframe_raises_for_a_dead_stream(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        grab_keyframe(f"rtsp://127.0.0.1:{free_port()}/main", 1280, 2.0)
    with pytest.raises(SourceError):
        grab_keyframe(str(tmp_path / "missing.mkv"), 1280, 2.0)
