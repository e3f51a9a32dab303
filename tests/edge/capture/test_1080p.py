"""1080p H.264 and H.265 through the real capture path: keyframe-only decoding, one scaled conversion.

The recordings are vtest.avi scaled up to 1920x1080 and re-encoded at test time
(tests/support/recordings.py), 10 fps with a keyframe every 10 frames, like a camera's
main stream: 40 frames, so 4 keyframes.
"""

from __future__ import annotations

import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from edge.capture import CameraSpec, CameraWorker, DecodeMode, PyAVOptions, PyAVSource
from tests.edge.capture.test_sources import read_all
from tests.models.footage import video_frames

FRAMES, GOP = 40, 10


def test_recording_is_a_1080p_camera_stream(recording_1080p: Path) -> None:
    with av.open(str(recording_1080p)) as container:
        stream = container.streams.video[0]
        keyframes = [packet.is_keyframe for packet in container.demux(stream) if packet.size]
        assert (stream.width, stream.height) == (1920, 1080)
        assert stream.codec_context.name in ("h264", "hevc")
    assert [i for i, key in enumerate(keyframes) if key] == list(range(0, FRAMES, GOP))


def test_keyframe_only_decoding_decodes_keyframes_only(recording_1080p: Path) -> None:
    source = PyAVSource(str(recording_1080p), PyAVOptions(decode=DecodeMode.KEYFRAMES))
    pictures = read_all(source)
    assert [p.ts for p in pictures] == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert all(p.is_keyframe for p in pictures)
    full = PyAVSource(str(recording_1080p), PyAVOptions(decode=DecodeMode.FULL))
    assert len(read_all(full)) == FRAMES
    # Skipping the other nine frames of each GOP is what saves the decoder's time.
    assert 0 < source.timings.decode_s < full.timings.decode_s
    assert source.timings.demux_s > 0


def test_auto_mode_finds_the_one_second_gop_and_skips(recording_1080p: Path) -> None:
    source = PyAVSource(str(recording_1080p), PyAVOptions(decode=DecodeMode.AUTO, keyframe_fit_s=2.0))
    pictures = read_all(source)
    assert source.keyframe_interval_s == pytest.approx(1.0) and source.keyframes_only
    assert len(pictures) < FRAMES  # full decoding only until the second keyframe measured the GOP


def test_scaled_conversion_is_the_picture_scaled(recording_1080p: Path, vtest_avi: Path) -> None:
    source = PyAVSource(str(recording_1080p), PyAVOptions(decode=DecodeMode.KEYFRAMES))
    source.open()
    try:
        picture = source.read()
        assert picture is not None
        small = picture.to_bgr_width(960)
        full = picture.to_bgr()
    finally:
        source.close()
    assert small.shape == (540, 960, 3) and small.dtype == np.uint8 and small.flags.c_contiguous
    assert full.shape == (1080, 1920, 3)
    scaled_after = cv2.resize(full, (960, 540), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(np.int16) - scaled_after).mean() < 2.0  # one pass = convert, then scale
    original = cv2.resize(video_frames(vtest_avi, count=1)[0], (960, 540), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(np.int16) - original).mean() < 8.0  # vtest's first frame, through the codec


def test_worker_hands_over_frames_at_the_analysis_width(recording_1080p: Path) -> None:
    spec = CameraSpec("cam-1080p", str(recording_1080p), sample_interval_s=1.0, analysis_width_px=960)
    queue = spec.make_queue()
    worker = CameraWorker(spec, queue, stop_event=threading.Event())
    worker.start()
    shapes, stamps = [], []
    while (item := queue.get(timeout_s=30)) is not None:
        shapes.append(item.frame.pixels.shape)
        stamps.append(item.frame.ts)
    assert worker.join(10)
    assert stamps == pytest.approx([0.0, 1.0, 2.0, 3.0]) and set(shapes) == {(540, 960, 3)}
    stats = worker.stats()
    assert stats.sampled == 4 and stats.decode_s > 0 and stats.convert_s > 0 and stats.demux_s > 0


def test_full_resolution_when_no_analysis_width(recording_1080p: Path) -> None:
    spec = CameraSpec("cam-full", str(recording_1080p), sample_interval_s=2.0, decode=DecodeMode.KEYFRAMES)
    queue = spec.make_queue()
    worker = CameraWorker(spec, queue, stop_event=threading.Event())
    worker.start()
    item = queue.get(timeout_s=30)
    worker.stop()
    assert worker.join(10)
    assert item is not None and item.frame.pixels.shape == (1080, 1920, 3)


def test_analysis_width_is_checked() -> None:
    with pytest.raises(ValueError, match="analysis_width_px: expected >= 32"):
        CameraSpec("cam", "a.mkv", analysis_width_px=8)
