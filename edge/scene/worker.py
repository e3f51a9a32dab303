"""The node's one scene thread: every camera's scene model, fed by the capture threads.

Running the scene models in the capture threads themselves (24 threads of numpy work) starved
the detector thread of the GIL: bench/cameras.py saw 24 cameras miss samples with the scene
model on. One worker holds the newest claimed picture per camera (LATEST_WINS: a picture not
yet processed is replaced by a newer one, and counted) and updates the cameras in turn.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from edge.scene.static_objects import StaticObjects
from models.types import Image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Pending:
    eye: StaticObjects
    pixels: Image
    ts: float


class SceneWorker:
    """Updates scene models off the capture threads; one thread, one stop event."""

    def __init__(self, stop_event: threading.Event | None = None) -> None:
        self._stop = stop_event or threading.Event()
        self._lock = threading.Condition()
        self._pending: dict[str, _Pending] = {}
        self.replaced = 0  # pictures replaced before they were processed (LATEST_WINS)
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="edge-scene", daemon=True)

    def submit(
        self, camera_id: str, eye: StaticObjects, pixels: Image, ts: float, *, wait: bool = False
    ) -> None:
        """Called by a capture thread with a picture its eye claimed. Live cameras never block
        (LATEST_WINS); a file replayed faster than real time waits for its previous picture
        (WAIT), so the scene model sees every picture of the file, as offline analysis does."""
        with self._lock:
            while wait and camera_id in self._pending and not self._stop.is_set():
                self._lock.wait(0.1)
            if camera_id in self._pending:
                self.replaced += 1
            self._pending[camera_id] = _Pending(eye, pixels, ts)
            self._lock.notify_all()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()

    def join(self, timeout_s: float | None = None) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                while not self._pending and not self._stop.is_set():
                    self._lock.wait(0.5)
                if self._stop.is_set():
                    return
                camera_id = next(iter(self._pending))  # the oldest submitted first
                item = self._pending.pop(camera_id)
                self._lock.notify_all()  # a waiting file camera may hand over its next picture
            try:
                item.eye.update(item.pixels, item.ts)
            except Exception:
                if self.failures % 100 == 0:
                    log.exception("camera %s: scene model update failed", camera_id)
                self.failures += 1
