from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.capture import (
    DecodeMode,
    EndOfStream,
    OpenCVSource,
    Picture,
    PyAVOptions,
    PyAVSource,
    SourceError,
    SourceKind,
    make_source,
    source_kind,
)
from edge.capture.sources import FrameSource


def read_all(source: FrameSource, limit: int = 5000) -> list[Picture]:
    pictures: list[Picture] = []
    source.open()
    try:
        while len(pictures) < limit:
            try:
                picture = source.read()
            except EndOfStream:
                break
            if picture is not None:
                pictures.append(picture)
    finally:
        source.close()
    return pictures


def test_file_source_decodes_every_frame_with_stream_timestamps(vtest_avi: Path) -> None:
    pictures = read_all(PyAVSource(str(vtest_avi), PyAVOptions(decode=DecodeMode.FULL)))
    assert len(pictures) == 795
    ts = np.array([p.ts for p in pictures])
    np.testing.assert_allclose(ts, np.arange(795) / 10, atol=1e-6)  # pts * time_base, 10 fps
    image = pictures[-1].to_bgr()  # the last picture's frame is still valid
    assert image.shape == (576, 768, 3) and image.dtype == np.uint8
    assert image.std() > 10  # a real picture, not a blank buffer


def test_keyframe_mode_returns_keyframes_only(vtest_avi: Path) -> None:
    pictures = read_all(PyAVSource(str(vtest_avi), PyAVOptions(decode=DecodeMode.KEYFRAMES)))
    assert [p.ts for p in pictures] == pytest.approx([0.0, 25.0, 50.0, 75.0])  # vtest.avi: GOP 250
    assert all(p.is_keyframe for p in pictures)
    assert pictures[1].to_bgr().shape == (576, 768, 3)


def test_auto_decodes_everything_when_keyframes_are_too_rare(vtest_avi: Path) -> None:
    source = PyAVSource(str(vtest_avi), PyAVOptions(decode=DecodeMode.AUTO, keyframe_fit_s=2.0))
    pictures = read_all(source)
    assert len(pictures) == 795
    assert source.keyframe_interval_s == pytest.approx(25.0)
    assert not source.keyframes_only


def test_auto_switches_to_keyframes_when_the_interval_fits(h264_mkv: Path) -> None:
    source = PyAVSource(str(h264_mkv), PyAVOptions(decode=DecodeMode.AUTO, keyframe_fit_s=2.0))
    pictures = read_all(source)
    assert source.keyframe_interval_s == pytest.approx(1.0)
    assert source.keyframes_only
    # Full decoding until the interval was measured at the second keyframe, keyframes only from there.
    assert [p.ts for p in pictures[:10]] == pytest.approx([i / 10 for i in range(10)])
    assert [p.ts for p in pictures[10:]] == pytest.approx([1.0 + i for i in range(14)])
    assert all(p.is_keyframe for p in pictures[10:])


def test_keyframe_mode_on_h264(h264_mkv: Path) -> None:
    pictures = read_all(PyAVSource(str(h264_mkv), PyAVOptions(decode=DecodeMode.KEYFRAMES)))
    assert [p.ts for p in pictures] == pytest.approx([float(i) for i in range(15)])
    assert all(p.is_keyframe for p in pictures)


def test_loop_keeps_time_increasing(h264_mkv: Path) -> None:
    source = PyAVSource(str(h264_mkv), PyAVOptions(decode=DecodeMode.KEYFRAMES, loop=True))
    pictures = read_all(source, limit=40)
    ts = [p.ts for p in pictures]
    assert ts == pytest.approx([float(i) for i in range(40)])


def test_realtime_pacing_sleeps_to_stream_time(h264_mkv: Path) -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    source = PyAVSource(
        str(h264_mkv),
        PyAVOptions(decode=DecodeMode.KEYFRAMES, realtime=True),
        clock=lambda: now[0],
        sleep=sleep,
    )
    read_all(source, limit=5)
    assert sleeps == pytest.approx([1.0, 1.0, 1.0, 1.0])


def test_missing_file_fails_on_open(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot open"):
        PyAVSource(str(tmp_path / "nope.mp4")).open()


def test_opencv_source_grabs_and_converts_on_demand(vtest_avi: Path) -> None:
    """The USB path, exercised on a file: OpenCV opens both the same way."""
    clock = iter(range(1000))
    source = OpenCVSource(str(vtest_avi), clock=lambda: float(next(clock)))
    source.open()
    try:
        pictures = [source.read() for _ in range(3)]
        assert [p.ts for p in pictures if p] == [0.0, 1.0, 2.0]
        last = pictures[-1]
        assert last is not None
        assert last.to_bgr().shape == (576, 768, 3)
    finally:
        source.close()


def test_opencv_source_reports_a_missing_device() -> None:
    with pytest.raises(SourceError, match="cannot open device"):
        OpenCVSource("/dev/video99", open_timeout_s=1).open()


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("rtsp://u:p@10.0.0.7/s", SourceKind.RTSP),
        ("RTSPS://cam/s", SourceKind.RTSP),
        ("http://cam/video.mjpg", SourceKind.HTTP),
        ("https://cam/video.mjpg", SourceKind.HTTP),
        ("/dev/video0", SourceKind.DEVICE),
        ("0", SourceKind.DEVICE),
        ("/srv/cam01.mp4", SourceKind.FILE),
    ],
)
def test_source_kind(url: str, kind: SourceKind) -> None:
    assert source_kind(url) is kind
    expected = OpenCVSource if kind is SourceKind.DEVICE else PyAVSource
    assert isinstance(make_source(url), expected)
