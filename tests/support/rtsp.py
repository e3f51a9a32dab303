"""A small RTSP server on loopback that streams a real H.264 clip, for capture tests.

Why our own: Debian has no mediamtx, and FFmpeg's ``-rtsp_flags listen`` is an
*input* option (it receives a pushed stream), not a server players can pull
from. The protocol subset a camera needs is small: OPTIONS, DESCRIBE (SDP),
SETUP with RTP over the RTSP TCP connection (interleaved, what curbwatch uses),
PLAY, GET_PARAMETER keep-alives, TEARDOWN. H.264 is packetised per RFC 6184
(single NAL units and FU-A fragments) and paced in real time.

The server can be stopped and started again on the same port (an outage) and
can stall its open sessions: connections stay up but no more packets flow
(what a hung camera or a dead uplink behind a switch looks like).

The clip is encoded once from a real video (vtest.avi) with PyAV's libx264,
with a fixed keyframe interval, so tests need nothing outside the venv.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av

from tests.support.broker import free_port

RTP_CLOCK_HZ = 90_000
PAYLOAD_TYPE = 96
MAX_RTP_PAYLOAD = 1400
_START_CODE = re.compile(b"\x00\x00\x01")


@dataclass(frozen=True)
class H264Clip:
    """Annex B access units (one per frame) of a constant-rate clip."""

    access_units: tuple[bytes, ...]
    keyframes: tuple[bool, ...]
    fps: int
    width: int
    height: int
    sps: bytes
    pps: bytes

    @property
    def duration_s(self) -> float:
        return len(self.access_units) / self.fps


def encode_h264(video: Path, *, max_frames: int = 200, gop: int = 10, scale: float = 1.0) -> H264Clip:
    """Re-encode the first `max_frames` of `video` to H.264 with one keyframe every `gop` frames."""
    units: list[bytes] = []
    keys: list[bool] = []
    with av.open(str(video)) as source:
        stream = source.streams.video[0]
        fps = round(float(stream.average_rate or 10))
        width = int(stream.codec_context.width * scale) // 2 * 2
        height = int(stream.codec_context.height * scale) // 2 * 2
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        encoder.time_base = Fraction(1, fps)
        encoder.framerate = Fraction(fps, 1)
        encoder.gop_size = gop
        encoder.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",  # no B-frames, no lookahead: a camera-like stream
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
        }

        def collect(packets: list[av.Packet]) -> None:
            for packet in packets:
                units.append(bytes(packet))
                keys.append(bool(packet.is_keyframe))

        for index, frame in enumerate(source.decode(stream)):
            if index >= max_frames:
                break
            picture = frame.reformat(width=width, height=height, format="yuv420p")
            picture.pts = index
            picture.time_base = encoder.time_base
            collect(encoder.encode(picture))
        collect(encoder.encode(None))
    nals = list(split_annexb(units[0]))
    sps = next(nal for nal in nals if nal[0] & 0x1F == 7)
    pps = next(nal for nal in nals if nal[0] & 0x1F == 8)
    return H264Clip(tuple(units), tuple(keys), fps, width, height, sps, pps)


def write_matroska(clip: H264Clip, path: Path) -> None:
    """Mux the clip into a Matroska file as it is (no re-encoding): a camera recording."""
    frame_time_base = Fraction(1, clip.fps)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("h264", rate=clip.fps)
        stream.width, stream.height = clip.width, clip.height
        for index, (unit, key) in enumerate(zip(clip.access_units, clip.keyframes, strict=True)):
            packet = av.Packet(unit)
            packet.pts = packet.dts = index
            packet.time_base = frame_time_base
            packet.is_keyframe = key
            packet.stream = stream
            out.mux(packet)


def split_annexb(access_unit: bytes) -> list[bytes]:
    """NAL units of an Annex B byte stream, without start codes."""
    starts = [m.start() for m in _START_CODE.finditer(access_unit)]
    nals = []
    for begin, end in itertools.pairwise([*starts, len(access_unit)]):
        # A 4-byte start code leaves its leading zero at the end of the previous unit;
        # a NAL unit never ends in a zero byte (rbsp trailing bits), so strip them.
        nal = access_unit[begin + 3 : end].rstrip(b"\x00")
        if nal:
            nals.append(nal)
    return nals


def packetise(nal: bytes) -> list[bytes]:
    """RTP payloads for one NAL unit: the unit itself, or FU-A fragments (RFC 6184 5.8)."""
    if len(nal) <= MAX_RTP_PAYLOAD:
        return [nal]
    header = nal[0]
    indicator = (header & 0xE0) | 28
    body = nal[1:]
    chunks = [body[i : i + MAX_RTP_PAYLOAD - 2] for i in range(0, len(body), MAX_RTP_PAYLOAD - 2)]
    payloads = []
    for index, chunk in enumerate(chunks):
        fu_header = header & 0x1F
        if index == 0:
            fu_header |= 0x80
        if index == len(chunks) - 1:
            fu_header |= 0x40
        payloads.append(bytes([indicator, fu_header]) + chunk)
    return payloads


class _Session:
    """One client connection: answers requests, streams after PLAY."""

    def __init__(self, server: RtspServer, conn: socket.socket) -> None:
        self.server = server
        self.conn = conn
        self.send_lock = threading.Lock()
        self.closed = threading.Event()
        self.stalled = threading.Event()
        self.session_id = f"{id(self):08x}"[-8:]
        self.ssrc = id(self) & 0xFFFFFFFF
        self.streamer: threading.Thread | None = None
        self.reader = threading.Thread(target=self._read_loop, name="rtsp-session", daemon=True)

    def start(self) -> None:
        self.reader.start()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)
        self.conn.close()

    def _send(self, data: bytes) -> None:
        with self.send_lock:
            self.conn.sendall(data)

    def _read_loop(self) -> None:
        buffer = b""
        try:
            while not self.closed.is_set():
                data = self.conn.recv(65536)
                if not data:
                    break
                buffer += data
                buffer = self._consume(buffer)
        except OSError:
            pass
        finally:
            self.close()

    def _consume(self, buffer: bytes) -> bytes:
        while buffer:
            if buffer[:1] == b"$":  # the client's interleaved RTCP receiver reports
                if len(buffer) < 4:
                    return buffer
                length = struct.unpack("!H", buffer[2:4])[0]
                if len(buffer) < 4 + length:
                    return buffer
                buffer = buffer[4 + length :]
                continue
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return buffer
            head = buffer[:end].decode("latin-1")
            lines = head.split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body_length = int(headers.get("content-length", "0"))
            if len(buffer) < end + 4 + body_length:
                return buffer
            buffer = buffer[end + 4 + body_length :]
            method, url, _ = lines[0].split(" ", 2)
            self._answer(method, url, headers)
        return buffer

    def _answer(self, method: str, url: str, headers: dict[str, str]) -> None:
        cseq = headers.get("cseq", "0")
        extra: dict[str, str] = {}
        body = b""
        status = "200 OK"
        if method == "OPTIONS":
            extra["Public"] = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"
        elif method == "DESCRIBE":
            body = self.server.sdp().encode()
            extra["Content-Type"] = "application/sdp"
            extra["Content-Base"] = url.rstrip("/") + "/"
        elif method == "SETUP":
            transport = headers.get("transport", "")
            if "RTP/AVP/TCP" not in transport:
                status = "461 Unsupported Transport"
            else:
                extra["Transport"] = "RTP/AVP/TCP;unicast;interleaved=0-1"
                extra["Session"] = f"{self.session_id};timeout=60"
        elif method == "PLAY":
            extra["Session"] = self.session_id
            extra["Range"] = "npt=0.000-"
            if self.streamer is None:
                self.streamer = threading.Thread(target=self._stream, name="rtsp-stream", daemon=True)
                self.streamer.start()
        elif method in ("GET_PARAMETER", "SET_PARAMETER"):
            extra["Session"] = self.session_id
        elif method == "TEARDOWN":
            self._reply("200 OK", cseq, {"Session": self.session_id}, b"")
            self.close()
            return
        else:
            status = "501 Not Implemented"
        self._reply(status, cseq, extra, body)

    def _reply(self, status: str, cseq: str, extra: dict[str, str], body: bytes) -> None:
        lines = [f"RTSP/1.0 {status}", f"CSeq: {cseq}", "Server: curbwatch-test-rtsp"]
        lines += [f"{name}: {value}" for name, value in extra.items()]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self._send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _stream(self) -> None:
        clip = self.server.clip
        sequence = 0
        started = time.monotonic()
        try:
            for index in itertools.count():
                if self.closed.is_set():
                    return
                while self.stalled.is_set() and not self.closed.is_set():
                    self.closed.wait(0.05)
                delay = started + index / clip.fps - time.monotonic()
                if delay > 0 and self.closed.wait(delay):
                    return
                unit = clip.access_units[index % len(clip.access_units)]
                timestamp = (index * RTP_CLOCK_HZ // clip.fps) & 0xFFFFFFFF
                payloads = [p for nal in split_annexb(unit) for p in packetise(nal)]
                for number, payload in enumerate(payloads):
                    marker = 0x80 if number == len(payloads) - 1 else 0
                    rtp = struct.pack(
                        "!BBHII", 0x80, marker | PAYLOAD_TYPE, sequence & 0xFFFF, timestamp, self.ssrc
                    )
                    sequence += 1
                    packet = rtp + payload
                    self._send(struct.pack("!cBH", b"$", 0, len(packet)) + packet)
                self.server.frames_sent += 1
        except OSError:
            self.close()


class RtspServer:
    """Serves `clip` at ``rtsp://127.0.0.1:{port}/{path}``; `stop()` then `start()` = an outage."""

    host = "127.0.0.1"

    def __init__(self, clip: H264Clip, port: int | None = None, path: str = "cam") -> None:
        self.clip = clip
        self.port = port or free_port()
        self.path = path
        self.frames_sent = 0
        self.connections = 0
        self._listener: socket.socket | None = None
        self._sessions: list[_Session] = []
        self._accepter: threading.Thread | None = None
        self._lock = threading.Lock()

    def url(self, userinfo: str | None = None) -> str:
        auth = f"{userinfo}@" if userinfo else ""
        return f"rtsp://{auth}{self.host}:{self.port}/{self.path}"

    def sdp(self) -> str:
        sprop = ",".join(base64.b64encode(nal).decode() for nal in (self.clip.sps, self.clip.pps))
        profile = self.clip.sps[1:4].hex()
        return (
            "v=0\r\n"
            f"o=- 0 0 IN IP4 {self.host}\r\n"
            "s=curbwatch test camera\r\n"
            f"c=IN IP4 {self.host}\r\n"
            "t=0 0\r\n"
            "a=control:*\r\n"
            f"m=video 0 RTP/AVP {PAYLOAD_TYPE}\r\n"
            f"a=rtpmap:{PAYLOAD_TYPE} H264/{RTP_CLOCK_HZ}\r\n"
            f"a=fmtp:{PAYLOAD_TYPE} packetization-mode=1;profile-level-id={profile};"
            f"sprop-parameter-sets={sprop}\r\n"
            f"a=framerate:{self.clip.fps}\r\n"
            "a=control:trackID=0\r\n"
        )

    def start(self) -> None:
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(16)
        self._listener = listener
        self._accepter = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True)
        self._accepter.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # listener closed by stop()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = _Session(self, conn)
            with self._lock:
                self._sessions = [s for s in self._sessions if not s.closed.is_set()]
                self._sessions.append(session)
                self.connections += 1
            session.start()

    def stall(self) -> None:
        """Open sessions stop sending but stay connected; new sessions stream normally."""
        with self._lock:
            for session in self._sessions:
                session.stalled.set()

    def stop(self) -> None:
        """Close the listener and every connection: clients see the camera go away."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if self._accepter is not None:
            self._accepter.join(5)
            self._accepter = None
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def __enter__(self) -> RtspServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
