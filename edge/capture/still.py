"""One picture from a camera's main stream, on request: open it, decode the first keyframe, close.

Street cameras send a small sub-stream (704x576, 640x360), which the node analyses, and a
1080p main stream. Decoding the main stream all the time would cost a decoder per camera for
pictures nobody looks at; an evidence picture needs one now and then. `StillCamera.take` grabs
it in a thread of its own (never a capture or detector thread's work); the caller waits at most
`timeout_s` and gets None when the stream was not readable in time, so it can use the frame it
already has. A grab that outlives that wait (an RTSP open that hangs) keeps the one slot until
FFmpeg's own timeouts end it: the next `take` falls back at once instead of piling up threads
on a dead camera.
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
    """Pictures of one camera's main stream, each grabbed in its own thread and waited for a bounded time.

    grab: the seam; by default `grab_keyframe` on `url`. on_fallback(reason) is called (and a
    warning logged) whenever `take` returns None, so the node can count it.
    """

    def __init__(
        self,
        camera_id: str,
        url: str,
        *,
        timeout_s: float,
        width_px: int | None = None,
        grab: Callable[[], Image] | None = None,
        on_fallback: Callable[[str], None] = lambda _reason: None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"StillCamera.timeout_s: expected > 0, got {timeout_s}")
        self.camera_id = camera_id
        self.url = url
        self.timeout_s = timeout_s
        self._grab = grab or partial(grab_keyframe, url, width_px, timeout_s)
        self._on_fallback = on_fallback
        self._slot = threading.Lock()  # held by the grab in progress

    def take(self) -> Image | None:
        """A fresh picture of the main stream, or None (logged, counted) if not read within timeout_s."""
        if not self._slot.acquire(blocking=False):
            self._fall_back("an earlier grab has not finished")
            return None
        outcome: list[Image | Exception] = []
        done = threading.Event()

        def run() -> None:
            try:
                outcome.append(self._grab())
            except Exception as error:  # SourceError, or anything a decoder raises
                outcome.append(error)
            finally:
                self._slot.release()
                done.set()

        threading.Thread(target=run, name=f"main-stream-{self.camera_id}", daemon=True).start()
        if not done.wait(self.timeout_s):
            self._fall_back(f"not read within {self.timeout_s:g} s")
            return None
        result = outcome[0]
        if isinstance(result, Exception):
            self._fall_back(redact_url(str(result)))
            return None
        return result

    def _fall_back(self, reason: str) -> None:
        log.warning(
            "camera %s: evidence from the analysed stream: main stream %s: %s",
            self.camera_id,
            redact_url(self.url),
            reason,
        )
        self._on_fallback(reason)
