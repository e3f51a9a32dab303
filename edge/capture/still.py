"""Pictures from a camera's main stream, grabbed ahead of need: open it, decode one keyframe, close.

Street cameras send a small sub-stream (704x576, 640x360), which the node analyses, and a
1080p main stream. Decoding the main stream all the time would cost a decoder per camera for
pictures nobody looks at; an evidence picture needs one now and then. So the pipeline asks
`StillCamera.prepare()` while an event with evidence may be near (an object waiting out its
zone's dwell, an update due), and each grab runs in a thread of its own: never a capture or
detector thread's work. When the event comes, `take()` hands over the newest picture if it is
at most `max_age_s` old, at once; else None, and the evidence is drawn on the analysed frame.
Only a recording replayed faster than real time waits (up to `timeout_s`) for a grab in flight.

One grab at a time per camera: one that hangs (an RTSP open on a dead camera) holds the slot
until FFmpeg's own timeouts end it, and no second thread piles up behind it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial

from edge.capture.sources import DecodeMode, PyAVOptions, PyAVSource, SourceError
from edge.logscrub import redact_url
from models.types import Image

log = logging.getLogger(__name__)


def grab_keyframe(
    url: str, width_px: int | None, timeout_s: float, *, clock: Callable[[], float] = time.monotonic
) -> Image:
    """The first keyframe of `url` as BGR, at most `width_px` wide (scaled while converting).

    Raises SourceError when the stream cannot be opened or shows no keyframe within timeout_s.
    """
    options = PyAVOptions(open_timeout_s=timeout_s, read_timeout_s=timeout_s, decode=DecodeMode.KEYFRAMES)
    source = PyAVSource(url, options, clock=clock)
    source.open()
    try:
        deadline = clock() + timeout_s
        while clock() < deadline:
            picture = source.read()  # None after half a second without a picture
            if picture is not None:
                return picture.to_bgr() if width_px is None else picture.to_bgr_width(width_px)
        raise SourceError(f"{redact_url(url)}: no keyframe within {timeout_s:.1f} s")
    finally:
        source.close()


class StillCamera:
    """The newest picture of one camera's main stream, kept fresh on request by a grab thread.

    timeout_s bounds one grab (open and read); max_age_s is how old a picture evidence may use.
    `prepare` starts a grab once the newest picture is older than `refresh_after_s` (so a fresh
    one is there before the old one expires). grab: the seam; by default `grab_keyframe` on
    `url`. on_fallback(reason) is called (and a warning logged) whenever `take` returns None.
    """

    def __init__(
        self,
        camera_id: str,
        url: str,
        *,
        timeout_s: float,
        max_age_s: float = 15.0,
        width_px: int | None = None,
        grab: Callable[[], Image] | None = None,
        on_fallback: Callable[[str], None] = lambda _reason: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"StillCamera.timeout_s: expected > 0, got {timeout_s}")
        if max_age_s <= 0:
            raise ValueError(f"StillCamera.max_age_s: expected > 0, got {max_age_s}")
        self.camera_id = camera_id
        self.url = url
        self.timeout_s = timeout_s
        self.max_age_s = max_age_s
        self.refresh_after_s = max(max_age_s / 2, max_age_s - timeout_s)
        self.grabs = 0  # grabs started so far (tests read it)
        self._grab = grab or partial(grab_keyframe, url, width_px, timeout_s)
        self._on_fallback = on_fallback
        self._clock = clock
        self._lock = threading.Lock()  # guards the fields below; never held while grabbing
        self._newest: tuple[float, Image] | None = None  # (clock() when grabbed, picture)
        self._in_flight: threading.Event | None = None  # set when the running grab ends
        self._last_error: str | None = None

    def prepare(self) -> None:
        """Start a grab unless one runs or the newest picture is still fresh; never blocks."""
        with self._lock:
            if self._in_flight is None and self._age() >= self.refresh_after_s:
                self._start()

    def take(self, wait_s: float = 0.0) -> Image | None:
        """The newest picture if at most max_age_s old, else None (logged, counted).

        With none fresh, a grab is started for the next time; wait_s > 0 waits that long for it.
        """
        with self._lock:
            if (fresh := self._fresh()) is not None:
                return fresh
            done = self._in_flight or self._start()
        if wait_s > 0 and not done.wait(wait_s):
            self._fall_back(f"not read within {wait_s:g} s")
            return None
        with self._lock:
            if (fresh := self._fresh()) is not None:
                return fresh
            reason = self._last_error or self._missing()
        self._fall_back(reason)
        return None

    def _fresh(self) -> Image | None:
        return self._newest[1] if self._newest is not None and self._age() <= self.max_age_s else None

    def _age(self) -> float:
        return float("inf") if self._newest is None else self._clock() - self._newest[0]

    def _missing(self) -> str:
        if self._newest is None:
            return "no picture read yet"
        return f"newest picture {self._age():.0f} s old (at most {self.max_age_s:g} s)"

    def _start(self) -> threading.Event:
        """Begin a grab in its own thread (the lock is held); the event it sets when it ends."""
        done = threading.Event()
        self._in_flight = done
        self.grabs += 1
        threading.Thread(
            target=self._run, args=(done,), name=f"main-stream-{self.camera_id}", daemon=True
        ).start()
        return done

    def _run(self, done: threading.Event) -> None:
        picture: Image | None = None
        error: str | None = None
        try:
            picture = self._grab()
        except Exception as failure:  # SourceError, or anything a decoder raises
            error = redact_url(str(failure))
        with self._lock:
            if picture is not None:
                self._newest = (self._clock(), picture)
            self._last_error = error
            self._in_flight = None
        done.set()

    def _fall_back(self, reason: str) -> None:
        log.warning(
            "camera %s: evidence from the analysed stream: main stream %s: %s",
            self.camera_id,
            redact_url(self.url),
            reason,
        )
        self._on_fallback(reason)
