"""Fake frame sources for worker tests (injected through the source factory)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from edge.capture import CameraState, Picture, SourceError
from edge.capture.sources import DecodeTimings
from models.types import Image

PIXELS: Image = np.full((8, 8, 3), 7, np.uint8)


class ScriptedSource:
    """Delivers `pictures` pictures every `period_s`, then stalls or fails, or never opens."""

    def __init__(
        self,
        pictures: int = 10**9,
        period_s: float = 0.01,
        after: str = "stall",  # "stall": read() returns None forever; "fail": raises
        fail_open: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pictures = pictures
        self.period_s = period_s
        self.after = after
        self.fail_open = fail_open
        self.clock = clock
        self.delivered = 0
        self.closed = False
        self.timings = DecodeTimings()

    def open(self) -> None:
        if self.fail_open:
            raise SourceError("connection refused")

    def read(self) -> Picture | None:
        time.sleep(self.period_s)
        if self.delivered >= self.pictures:
            if self.after == "fail":
                raise SourceError("connection reset")
            return None
        self.delivered += 1
        return Picture(self.clock(), True, lambda: PIXELS)

    def close(self) -> None:
        self.closed = True


class StateLog:
    """Records state changes; `wait_for` blocks (bounded) until a given sequence was seen."""

    def __init__(self) -> None:
        self.states: list[CameraState] = []
        self._changed = threading.Condition()

    def __call__(self, camera_id: str, state: CameraState) -> None:
        with self._changed:
            self.states.append(state)
            self._changed.notify_all()

    def wait_for(self, *sequence: CameraState, timeout_s: float = 10.0, start: int = 0) -> int:
        """Index after the last state of `sequence` found in order from `start`; fails on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                found = _find_in_order(self.states, sequence, start)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"states {[s.value for s in self.states]} lack {sequence}")
                self._changed.wait(remaining)


def _find_in_order(states: list[CameraState], sequence: tuple[CameraState, ...], start: int) -> int | None:
    position = start
    for wanted in sequence:
        while position < len(states) and states[position] is not wanted:
            position += 1
        if position == len(states):
            return None
        position += 1
    return position
