"""Capture fixtures: an H.264 clip with a 1 s keyframe interval, as a file and over RTSP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rtsp import H264Clip, RtspServer, encode_h264, write_matroska


@pytest.fixture(scope="session")
def h264_clip(vtest_avi: Path) -> H264Clip:
    """vtest.avi's first 15 s as camera-like H.264: 10 fps, a keyframe every 10 frames."""
    return encode_h264(vtest_avi, max_frames=150, gop=10)


@pytest.fixture(scope="session")
def h264_mkv(h264_clip: H264Clip, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clip muxed into a Matroska file (pts known, no re-encoding)."""
    path = tmp_path_factory.mktemp("h264") / "gop10.mkv"
    write_matroska(h264_clip, path)
    return path


@pytest.fixture
def rtsp_server(h264_clip: H264Clip) -> Iterator[RtspServer]:
    with RtspServer(h264_clip) as server:
        yield server


@pytest.fixture(scope="session", params=["h264", "h265"])
def recording_1080p(
    request: pytest.FixtureRequest, vtest_avi: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """vtest.avi's first 4 s scaled up to 1920x1080, H.264 or H.265, a keyframe every second."""
    from tests.support.recordings import encode_recording

    out = tmp_path_factory.mktemp("recordings") / f"vtest_1080p_{request.param}.mkv"
    return encode_recording(vtest_avi, out, codec=request.param, max_frames=40, keyframe_s=1.0)
