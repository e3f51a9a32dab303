"""One thread per camera: connect, decode, sample, hand frames over; reconnect forever.

State machine (every change is reported through `on_state`, so the node can publish
``{prefix}/{node}/{camera}/status`` retained)::

    STARTING --first picture--> STREAMING --error / stall--> RECONNECTING
    RECONNECTING --first picture--> STREAMING
    RECONNECTING --down longer than offline_after_s--> OFFLINE (still retrying)
    OFFLINE --first picture--> STREAMING
    any --stop() / end of a file--> STOPPED

The watchdog is the loop itself: `FrameSource.read` is bounded in time, and when
no picture arrived for `stall_timeout_s` the source is closed and reopened. A
camera's failures stay in its own thread: the queue never blocks a live camera
(LATEST_WINS) and exceptions never leave `run`.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.capture.backoff import Backoff, BackoffPolicy
from edge.capture.queue import DropPolicy, FrameQueue
from edge.capture.sources import (
    DecodeMode,
    DecodeTimings,
    EndOfStream,
    FrameSource,
    Picture,
    PyAVOptions,
    SourceError,
    SourceFactory,
    SourceKind,
    make_source,
    source_kind,
)
from edge.logscrub import redact_url
from models.types import Frame

log = logging.getLogger(__name__)


class CameraState(enum.Enum):
    STARTING = "starting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"
    STOPPED = "stopped"


StateCallback = Callable[[str, CameraState], None]


@dataclass(frozen=True)
class CameraSpec:
    """One camera: where it is and how to read it."""

    camera_id: str
    url: str  # rtsp(s)://, http(s)://, /dev/videoN or a device index, or a video file path
    sample_interval_s: float = 2.0
    decode: DecodeMode = DecodeMode.AUTO
    stall_timeout_s: float = 10.0  # watchdog: no picture this long -> reconnect
    open_timeout_s: float = 10.0
    offline_after_s: float = 60.0  # reconnecting this long -> report OFFLINE (retries go on)
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    realtime: bool = False  # files only: replay at recorded speed, like a camera
    loop: bool = False  # files only: replay forever
    # Sampled frames are at most this wide, scaled while converting from the decoder's YUV in
    # this thread: detector, tracker, zones and evidence then share that one picture, and a
    # 1080p camera never makes a full-size BGR copy. None: full resolution.
    analysis_width_px: int | None = None

    def __post_init__(self) -> None:
        if self.sample_interval_s <= 0:
            raise ValueError(f"CameraSpec.sample_interval_s: expected > 0, got {self.sample_interval_s}")
        if self.analysis_width_px is not None and self.analysis_width_px < 32:
            raise ValueError(
                f"CameraSpec.analysis_width_px: expected >= 32 or None, got {self.analysis_width_px}"
            )
        if self.stall_timeout_s <= 0:
            raise ValueError(f"CameraSpec.stall_timeout_s: expected > 0, got {self.stall_timeout_s}")

    @property
    def kind(self) -> SourceKind:
        return source_kind(self.url)

    @property
    def drop_policy(self) -> DropPolicy:
        """Live streams (and files replayed in real time) keep the newest frame; file replay waits."""
        return DropPolicy.LATEST_WINS if self.kind.live or self.realtime else DropPolicy.WAIT

    def make_queue(self, on_ready: Callable[[], None] | None = None) -> FrameQueue:
        capacity = 1 if self.drop_policy is DropPolicy.LATEST_WINS else 2
        return FrameQueue(capacity, self.drop_policy, on_ready=on_ready)

    def pyav_options(self) -> PyAVOptions:
        return PyAVOptions(
            open_timeout_s=self.open_timeout_s,
            # FFmpeg's own read timeout stays inside the watchdog's window.
            read_timeout_s=self.stall_timeout_s,
            decode=self.decode,
            keyframe_fit_s=self.sample_interval_s,
            realtime=self.realtime,
            loop=self.loop,
        )


def default_source_factory(spec: CameraSpec, clock: Callable[[], float] = time.monotonic) -> SourceFactory:
    """The producer a worker calls on every (re)connect: a fresh source for `spec.url`."""
    return lambda: make_source(spec.url, spec.pyav_options(), clock=clock)


class Sampler:
    """Pick one picture per `interval_s` of picture time.

    A picture is taken when it is the one nearest the due time: it may be early
    by up to half the spacing between pictures (keyframes 0.96 s apart still give
    one sample every second keyframe; at 10 fps the picture at the due time
    wins). After a gap longer than one interval (reconnect, stall) the schedule
    restarts at the next picture instead of catching up with a burst.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.next_due: float | None = None
        self.last_lateness_s = 0.0
        self._previous_ts: float | None = None

    def offer(self, ts: float) -> bool:
        due = self.next_due
        spacing = ts - self._previous_ts if self._previous_ts is not None else 0.0
        self._previous_ts = ts
        early_ok_s = min(max(spacing, 0.0) / 2, self.interval_s / 4) + 1e-9
        if due is not None and ts < due - early_ok_s:
            return False
        if due is None or ts - due >= self.interval_s:
            self.last_lateness_s = 0.0
            self.next_due = ts + self.interval_s
        else:
            self.last_lateness_s = ts - due
            self.next_due = due + self.interval_s
        return True

    def reset(self) -> None:
        self.next_due = None
        self._previous_ts = None


@dataclass(frozen=True)
class CaptureStats:
    """Counters of one camera worker (read them for metrics; a snapshot)."""

    state: CameraState
    pictures: int  # decoded
    sampled: int  # converted and queued
    connects: int  # successful opens
    failures: int  # failed opens and broken streams
    stalls: int  # watchdog reconnects
    last_picture_at: float | None  # clock()
    last_lateness_s: float  # how late the last sample was against its schedule (picture time)
    # CPU seconds of this camera's thread, by stage (all connections so far):
    demux_s: float = 0.0
    decode_s: float = 0.0
    convert_s: float = 0.0  # YUV -> BGR of the sampled frames, scaled to analysis_width_px


class _Stalled(SourceError):
    pass


class CameraWorker:
    """Reads one camera in its own thread and puts sampled `Frame`s on `queue`."""

    def __init__(
        self,
        spec: CameraSpec,
        queue: FrameQueue,
        *,
        source_factory: SourceFactory | None = None,
        on_state: StateCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        stop_event: threading.Event | None = None,
        on_picture: Callable[[Picture], None] | None = None,
    ) -> None:
        self.spec = spec
        self.queue = queue
        # Sees every decoded picture, sampled or not (the scene model); runs in this thread.
        self._on_picture = on_picture
        self._picture_failures = 0
        self._factory = source_factory or default_source_factory(spec, clock)
        self._on_state = on_state or (lambda camera_id, state: None)
        self._clock = clock
        self._stop = stop_event or threading.Event()
        self._backoff = Backoff(spec.backoff, rng)
        self._sampler = Sampler(spec.sample_interval_s)
        self._thread = threading.Thread(target=self.run, name=f"camera-{spec.camera_id}", daemon=True)
        self._state = CameraState.STARTING
        self._down_since: float | None = None
        self._pictures = 0
        self._sampled = 0
        self._connects = 0
        self._failures = 0
        self._stalls = 0
        self._last_picture_at: float | None = None
        self._closed_timings = DecodeTimings()  # of sources already closed
        self._source_timings = DecodeTimings()  # of the open one
        self._convert_s = 0.0

    @property
    def camera_id(self) -> str:
        return self.spec.camera_id

    @property
    def state(self) -> CameraState:
        return self._state

    def stats(self) -> CaptureStats:
        return CaptureStats(
            self._state,
            self._pictures,
            self._sampled,
            self._connects,
            self._failures,
            self._stalls,
            self._last_picture_at,
            self._sampler.last_lateness_s,
            self._closed_timings.demux_s + self._source_timings.demux_s,
            self._closed_timings.decode_s + self._source_timings.decode_s,
            self._convert_s,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to finish; it does within one bounded `read()` (see FrameSource)."""
        self._stop.set()

    def join(self, timeout_s: float | None = None) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def run(self) -> None:
        self._set_state(CameraState.STARTING)
        try:
            while not self._stop.is_set():
                if self._session():
                    break  # a file ended
                if self._stop.is_set():
                    break
                self._wait_before_retry()
        finally:
            self._set_state(CameraState.STOPPED)
            self.queue.close()

    def _session(self) -> bool:
        """Open, stream until failure or stop; True when a file source ended."""
        url = redact_url(self.spec.url)
        try:
            source: FrameSource = self._factory()
            source.open()
        except Exception as error:
            self._failures += 1
            log.warning("camera %s: cannot open %s: %s", self.camera_id, url, redact_url(str(error)))
            return False
        self._connects += 1
        self._source_timings = source.timings
        try:
            self._stream(source)
        except EndOfStream:
            log.info("camera %s: end of %s", self.camera_id, url)
            return True
        except _Stalled as error:
            self._stalls += 1
            log.warning("camera %s: %s; reconnecting", self.camera_id, error)
        except Exception as error:
            self._failures += 1
            log.warning("camera %s: stream %s failed: %s", self.camera_id, url, redact_url(str(error)))
        finally:
            self._closed_timings.demux_s += source.timings.demux_s
            self._closed_timings.decode_s += source.timings.decode_s
            self._source_timings = DecodeTimings()
            try:
                source.close()
            except Exception:
                log.debug("camera %s: error closing source", self.camera_id, exc_info=True)
        return False

    def _stream(self, source: FrameSource) -> None:
        opened_at = self._clock()
        last_picture_at: float | None = None
        while not self._stop.is_set():
            picture = source.read()
            now = self._clock()
            if picture is None:
                silent_s = now - (last_picture_at if last_picture_at is not None else opened_at)
                if silent_s > self.spec.stall_timeout_s:
                    raise _Stalled(f"no picture for {silent_s:.1f} s (watchdog)")
                continue
            last_picture_at = now
            self._last_picture_at = now
            self._pictures += 1
            if self._state is not CameraState.STREAMING:
                self._backoff.reset()
                self._down_since = None
                self._sampler.reset()
                self._set_state(CameraState.STREAMING)
            if self._on_picture is not None:
                self._tap(picture)
            if not self._sampler.offer(picture.ts):
                continue
            started = time.thread_time()
            width = self.spec.analysis_width_px
            pixels = picture.to_bgr() if width is None else picture.to_bgr_width(width)
            self._convert_s += time.thread_time() - started
            frame = Frame(pixels, self.camera_id, picture.ts)
            if self.queue.put(frame, self._stop):
                self._sampled += 1

    def _tap(self, picture: Picture) -> None:
        """The picture callback; its failure never stops the capture (logged once per 100)."""
        assert self._on_picture is not None
        try:
            self._on_picture(picture)
        except Exception:
            if self._picture_failures % 100 == 0:
                log.exception("camera %s: picture callback failed", self.camera_id)
            self._picture_failures += 1

    def _wait_before_retry(self) -> None:
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
        down_s = now - self._down_since
        if self._state is CameraState.OFFLINE or down_s >= self.spec.offline_after_s:
            self._set_state(CameraState.OFFLINE)
        else:
            self._set_state(CameraState.RECONNECTING)
        delay = self._backoff.next_delay_s()
        log.info("camera %s: retry %d in %.1f s", self.camera_id, self._backoff.attempt, delay)
        self._stop.wait(delay)

    def _set_state(self, state: CameraState) -> None:
        if state is self._state and state is not CameraState.STARTING:
            return
        previous, self._state = self._state, state
        if previous is not state:
            log.info("camera %s: %s -> %s", self.camera_id, previous.value, state.value)
        try:
            self._on_state(self.camera_id, state)
        except Exception:
            log.exception("camera %s: state callback failed", self.camera_id)
