"""The node's scene thread: latest picture per camera wins, failures are contained, stop is prompt."""

from __future__ import annotations

import threading
import time

import numpy as np

from edge.scene.config import SceneSettings
from edge.scene.static_objects import StaticObjects
from edge.scene.worker import SceneWorker
from models.types import Image


class Recording(StaticObjects):
    def __init__(self, gate: threading.Event | None = None, fail: bool = False) -> None:
        super().__init__(SceneSettings(learn_s=0.0))
        self.seen: list[float] = []
        self.gate = gate
        self.fail = fail

    def update(self, pixels: Image, ts: float):  # type: ignore[no-untyped-def]
        if self.gate is not None:
            self.gate.wait(5)
        self.seen.append(ts)
        if self.fail:
            raise RuntimeError("broken picture")
        return super().update(pixels, ts)


def wait_until(condition, timeout_s: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


PICTURE = np.full((96, 128, 3), 120, np.uint8)


def test_every_camera_is_updated_and_a_newer_picture_replaces_a_waiting_one() -> None:
    gate = threading.Event()
    busy, other = Recording(gate), Recording()
    worker = SceneWorker()
    worker.start()
    try:
        worker.submit("cam-a", busy, PICTURE, 0.0)  # the worker is now stuck on it until the gate opens
        assert wait_until(lambda: not worker._pending)
        worker.submit("cam-a", busy, PICTURE, 1.0)
        worker.submit("cam-a", busy, PICTURE, 2.0)  # replaces 1.0 unseen
        worker.submit("cam-b", other, PICTURE, 0.0)
        gate.set()
        assert wait_until(lambda: busy.seen == [0.0, 2.0] and other.seen == [0.0])
        assert worker.replaced == 1
        assert busy.snapshot().reading is not None
    finally:
        worker.stop()
        assert worker.join(5)


def test_a_failing_update_does_not_stop_the_thread() -> None:
    broken, fine = Recording(fail=True), Recording()
    worker = SceneWorker()
    worker.start()
    try:
        worker.submit("cam-a", broken, PICTURE, 0.0)
        assert wait_until(lambda: worker.failures == 1)
        worker.submit("cam-b", fine, PICTURE, 0.0)
        assert wait_until(lambda: fine.seen == [0.0])
    finally:
        worker.stop()
        assert worker.join(5)
