"""Frame sources: a recorded file, an RTSP or HTTP stream (PyAV), a USB device (OpenCV).

A source decodes; it does not convert. `read()` returns a `Picture` whose BGR
pixels are produced only when `to_bgr()` is called, so a camera sampled at one
frame per 2 s pays the colour conversion once per 2 s, not 10 or 25 times.

Scaling happens in the same pass as the colour conversion (`Picture.to_bgr_width`:
swscale from the decoder's YUV straight to a smaller BGR picture, with one scaler
context per source, kept between pictures), so a 1080p camera never produces a
full-resolution BGR copy when its consumers want less.

H.264 and H.265 (HEVC) streams decode alike; both decoders honour keyframe-only skipping.

With PyAV the decoder itself can be told to skip work: `DecodeMode.KEYFRAMES`
sets ``skip_frame = "NONKEY"`` so only keyframes are decoded at all. That is
only right when keyframes come at least as often as the sampling interval;
`DecodeMode.AUTO` measures the keyframe interval from the stream and switches
between keyframe-only and full decoding at keyframe boundaries.

Timestamps: stream time (``pts * time_base``) for files, `clock()` at decode
for live sources (the clock is injected; the worker's clock by default).
"""

from __future__ import annotations

import enum
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import av
import cv2
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from edge.logscrub import redact_url
from models.types import Image

log = logging.getLogger(__name__)


class SourceError(Exception):
    """The source could not be opened or stopped delivering (reconnect)."""


class EndOfStream(SourceError):
    """A file source reached its end (not an error: the camera worker stops)."""


class DecodeMode(enum.Enum):
    FULL = "full"  # decode every frame; convert only the sampled ones
    KEYFRAMES = "keyframes"  # decoder skips non-key frames (skip_frame = NONKEY)
    AUTO = "auto"  # keyframes when the measured keyframe interval fits the sampling interval


class SourceKind(enum.Enum):
    FILE = "file"
    RTSP = "rtsp"
    HTTP = "http"
    DEVICE = "device"

    @property
    def live(self) -> bool:
        return self is not SourceKind.FILE


def source_kind(url: str) -> SourceKind:
    """Which kind of source a camera URL names: rtsp(s)://, http(s)://, /dev/videoN or "0", else a file."""
    lowered = url.lower()
    if lowered.startswith(("rtsp://", "rtsps://")):
        return SourceKind.RTSP
    if lowered.startswith(("http://", "https://")):
        return SourceKind.HTTP
    if url.isdigit() or url.startswith("/dev/video"):
        return SourceKind.DEVICE
    return SourceKind.FILE


@dataclass(frozen=True, eq=False)
class Picture:
    """A decoded picture before colour conversion; `to_bgr*` are valid until the next `read()`.

    `convert_scaled(width)` converts and scales in one pass (PyAV's swscale), much cheaper
    than converting the full picture first; sources without one are scaled after converting.
    """

    ts: float
    is_keyframe: bool
    convert: Callable[[], Image]
    convert_scaled: Callable[[int], Image] | None = None

    def to_bgr(self) -> Image:
        return self.convert()

    def to_bgr_width(self, width: int) -> Image:
        """BGR scaled to `width` (never up), keeping the aspect ratio."""
        if self.convert_scaled is not None:
            return self.convert_scaled(width)
        image = self.convert()
        h, w = image.shape[:2]
        if w <= width:
            return image
        size = (width, max(1, round(h * width / w)))
        return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


@dataclass
class DecodeTimings:
    """CPU seconds a source spent in its own thread, by stage (for health and bench/cameras)."""

    demux_s: float = 0.0  # reading and splitting the container / network stream into packets
    decode_s: float = 0.0  # the video decoder


class FrameSource(Protocol):
    """What a camera worker reads from; tests inject their own through a source factory.

    `open` raises `SourceError`. `read` returns the next picture, or None when
    nothing decodable arrived within a bounded time (the worker's watchdog
    counts those); it raises `EndOfStream` at the end of a file and
    `SourceError` when the stream failed. `read` must never block without bound.
    `timings` accumulates the source's own CPU time (thread time) while it reads.
    """

    timings: DecodeTimings

    def open(self) -> None: ...

    def read(self) -> Picture | None: ...

    def close(self) -> None: ...


SourceFactory = Callable[[], FrameSource]


@dataclass(frozen=True)
class PyAVOptions:
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    decode: DecodeMode = DecodeMode.AUTO
    keyframe_fit_s: float = 2.0  # AUTO uses keyframes when the keyframe interval is at most this
    decode_threads: int = 1  # many cameras share few cores: one decoder thread each, no frame-thread lag
    realtime: bool = False  # files: pace pictures at recorded speed (to simulate a camera)
    loop: bool = False  # files: start again at the end, timestamps keep increasing
    no_picture_slice_s: float = 0.5  # read() returns None after this long without a picture
    format: str | None = None  # e.g. "mpjpeg" for a multipart MJPEG HTTP stream


def ffmpeg_options(kind: SourceKind, options: PyAVOptions) -> dict[str, str]:
    """FFmpeg protocol options: TCP for RTSP (no UDP loss/NAT trouble), socket timeouts in µs."""
    micros = str(int(options.read_timeout_s * 1_000_000))
    # FFmpeg's default probing buffers ~5 s of a live stream before the first picture.
    probe = {"analyzeduration": "1000000", "probesize": "1000000"}
    if kind is SourceKind.RTSP:
        return {"rtsp_transport": "tcp", "timeout": micros, "allowed_media_types": "video", **probe}
    if kind is SourceKind.HTTP:
        return {"timeout": micros, "reconnect": "0", **probe}
    return {}


class PyAVSource:
    """A file, RTSP or HTTP source decoded with PyAV (FFmpeg)."""

    def __init__(
        self,
        url: str,
        options: PyAVOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.url = url
        self.kind = source_kind(url)
        self.options = options or PyAVOptions()
        self._clock = clock
        self._sleep = sleep
        self._container: Any = None
        self._stream: Any = None
        self._packets: Iterator[Any] | None = None
        self._pending: deque[Picture] = deque()
        self._keyframe_ts: deque[float] = deque(maxlen=4)
        self._keyframes_only = self.options.decode is DecodeMode.KEYFRAMES
        self._ts_offset = 0.0  # added to file timestamps after each loop
        self._last_ts = 0.0
        self._last_packet_ts = 0.0
        self._frame_duration = 0.0
        self._pace_origin: tuple[float, float] | None = None  # (clock, ts) of the first paced picture
        # One scaler for every picture: swscale keeps its context while sizes stay the same.
        self._reformatter = VideoReformatter()
        self.keyframe_interval_s: float | None = None
        self.timings = DecodeTimings()

    @property
    def keyframes_only(self) -> bool:
        """Whether the decoder is currently skipping non-key frames."""
        return self._keyframes_only

    def open(self) -> None:
        try:
            self._container = av.open(
                self.url,
                format=self.options.format,
                options=ffmpeg_options(self.kind, self.options),
                timeout=(self.options.open_timeout_s, self.options.read_timeout_s),
            )
            if not self._container.streams.video:
                raise SourceError(f"{redact_url(self.url)}: no video stream")
            self._stream = self._container.streams.video[0]
            context = self._stream.codec_context
            context.thread_count = self.options.decode_threads
            context.skip_frame = "NONKEY" if self._keyframes_only else "DEFAULT"
            rate = self._stream.average_rate or self._stream.guessed_rate
            self._frame_duration = float(1 / rate) if rate else 0.0
            self._packets = self._container.demux(self._stream)
        except (av.FFmpegError, OSError) as error:
            self.close()
            raise SourceError(f"cannot open {redact_url(self.url)}: {redact_url(str(error))}") from error
        log.debug("opened %s (%s)", redact_url(self.url), self._stream.codec_context.name)

    def read(self) -> Picture | None:
        if self._packets is None:
            raise SourceError("read() before open()")
        deadline = self._clock() + self.options.no_picture_slice_s
        while not self._pending:
            if self._clock() > deadline:
                return None
            started = time.thread_time()
            try:
                packet = next(self._packets)
            except StopIteration:
                self._end_of_file()
                continue
            except av.FFmpegError as error:
                raise SourceError(f"{redact_url(self.url)}: {redact_url(str(error))}") from error
            finally:
                self.timings.demux_s += time.thread_time() - started
            self._decode(packet)
        picture = self._pending.popleft()
        if self.options.realtime and not self.kind.live:
            self._pace(picture.ts)
        return picture

    def _decode(self, packet: Any) -> None:
        if packet.size == 0 or (packet.pts is None and packet.dts is None):
            return
        if packet.pts is not None and packet.time_base is not None:
            self._last_packet_ts = float(packet.pts * packet.time_base)
        if packet.is_keyframe:
            self._on_keyframe_packet(packet)
        started = time.thread_time()
        try:
            frames = packet.decode()
        except av.FFmpegError as error:
            # One corrupt packet (lost RTP data) is not a dead stream; the watchdog decides that.
            log.debug("%s: decode error: %s", redact_url(self.url), error)
            return
        finally:
            self.timings.decode_s += time.thread_time() - started
        for frame in frames:
            self._pending.append(self._picture(frame))

    def _picture(self, frame: Any) -> Picture:
        if self.kind.live:
            ts = self._clock()
        else:
            # A flushed frame at the end of a file can carry no (or a NaN) time.
            if frame.time is not None and math.isfinite(frame.time):
                self._last_ts = float(frame.time)
            ts = self._last_ts + self._ts_offset
        return Picture(
            ts, bool(frame.key_frame), _bgr_converter(frame), _scaled_bgr_converter(frame, self._reformatter)
        )

    def _on_keyframe_packet(self, packet: Any) -> None:
        if packet.pts is None or packet.time_base is None:
            return
        ts = float(packet.pts * packet.time_base)
        if self._keyframe_ts and ts > self._keyframe_ts[-1]:
            self.keyframe_interval_s = max(b - a for a, b in itertools.pairwise([*self._keyframe_ts, ts]))
        elif self._keyframe_ts and ts <= self._keyframe_ts[-1]:
            self._keyframe_ts.clear()  # a loop or a timestamp reset: measure again
        self._keyframe_ts.append(ts)
        if self.options.decode is DecodeMode.AUTO and self.keyframe_interval_s is not None:
            # Switch only here, at a keyframe, so the decoder never starts on a frame
            # whose references it skipped.
            fits = self.keyframe_interval_s <= self.options.keyframe_fit_s + 1e-6
            if fits != self._keyframes_only:
                self._keyframes_only = fits
                self._stream.codec_context.skip_frame = "NONKEY" if fits else "DEFAULT"
                log.info(
                    "%s: keyframe interval %.2f s, %s decoding",
                    redact_url(self.url),
                    self.keyframe_interval_s,
                    "keyframe-only" if fits else "full",
                )

    def _end_of_file(self) -> None:
        if self.kind.live:
            raise SourceError(f"{redact_url(self.url)}: stream ended")
        # Flush the frames the decoder still holds.
        try:
            for frame in self._stream.codec_context.decode(None):
                self._pending.append(self._picture(frame))
        except av.FFmpegError:
            pass
        if not self.options.loop:
            if self._pending:
                return
            raise EndOfStream(redact_url(self.url))
        # The next loop starts one frame after the last packet (not the last decoded
        # picture: in keyframe mode that can be a whole GOP earlier).
        self._ts_offset += max(self._last_ts, self._last_packet_ts) + self._frame_duration
        self._last_ts = self._last_packet_ts = 0.0
        self._close_container()
        self.open()

    def _pace(self, ts: float) -> None:
        now = self._clock()
        if self._pace_origin is None:
            self._pace_origin = (now, ts)
            return
        origin_clock, origin_ts = self._pace_origin
        delay = origin_clock + (ts - origin_ts) - now
        if delay > 0:
            self._sleep(delay)

    def _close_container(self) -> None:
        container, self._container = self._container, None
        self._packets = None
        self._stream = None
        if container is not None:
            try:
                container.close()
            except (av.FFmpegError, OSError):
                log.debug("%s: error while closing", redact_url(self.url), exc_info=True)

    def close(self) -> None:
        self._pending.clear()
        self._close_container()


def _bgr_converter(frame: Any) -> Callable[[], Image]:
    def convert() -> Image:
        image: Image = frame.to_ndarray(format="bgr24")
        return image

    return convert


def _scaled_bgr_converter(frame: Any, reformatter: VideoReformatter) -> Callable[[int], Image]:
    def convert(width: int) -> Image:
        if frame.width <= width:
            full: Image = frame.to_ndarray(format="bgr24")
            return full
        height = max(2, round(frame.height * width / frame.width))
        # AREA: a proper average when shrinking 2x or more (no aliasing on fine street texture).
        small = reformatter.reformat(frame, width, height, "bgr24", interpolation=Interpolation.AREA)
        image: Image = np.asarray(small.to_ndarray(), dtype=np.uint8)  # no copy: already uint8
        return image

    return convert


class OpenCVSource:
    """A USB/V4L2 device (index or /dev/videoN) or anything else OpenCV's VideoCapture opens.

    ``grab()`` decodes, ``retrieve()`` converts: only sampled pictures are retrieved.
    Timestamps are `clock()` at grab: OpenCV's device timestamps are not reliable.
    """

    def __init__(
        self,
        device: int | str,
        *,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device = int(device) if isinstance(device, str) and device.isdigit() else device
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self._clock = clock
        self._capture: cv2.VideoCapture | None = None
        self.timings = DecodeTimings()  # grab() demuxes and decodes: all of it counts as decode

    def open(self) -> None:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self.read_timeout_s * 1000),
        ]
        name = redact_url(str(self.device))
        capture = cv2.VideoCapture(self.device, cv2.CAP_ANY, params)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot open device {name}")
        self._capture = capture

    def read(self) -> Picture | None:
        capture = self._capture
        if capture is None:
            raise SourceError("read() before open()")
        started = time.thread_time()
        grabbed = capture.grab()
        self.timings.decode_s += time.thread_time() - started
        if not grabbed:
            raise SourceError(f"device {redact_url(str(self.device))}: no frame")
        ts = self._clock()

        def convert() -> Image:
            ok, image = capture.retrieve()
            if not ok or image is None:
                raise SourceError(f"device {redact_url(str(self.device))}: retrieve failed")
            if image.ndim == 2:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            return np.ascontiguousarray(image, dtype=np.uint8)

        return Picture(ts, True, convert)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def make_source(
    url: str,
    options: PyAVOptions | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> FrameSource:
    """The default source for a camera URL (see `source_kind`)."""
    options = options or PyAVOptions()
    if source_kind(url) is SourceKind.DEVICE:
        return OpenCVSource(
            url, open_timeout_s=options.open_timeout_s, read_timeout_s=options.read_timeout_s, clock=clock
        )
    return PyAVSource(url, options, clock=clock)
