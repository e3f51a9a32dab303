"""Camera-like recordings made from real footage at test time: 1080p H.264 / H.265, a keyframe a second.

Street cameras send 1080p main streams in H.264 or H.265 with a keyframe every 1-2 s.
We have no such footage to commit (and it would be large), so vtest.avi (768x576, 10 fps)
is scaled up and re-encoded with PyAV's libx264 / libx265, the way a camera would send it.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

CODECS = {"h264": "libx264", "h265": "libx265"}
RESOLUTIONS = {"1080p": (1920, 1080), "720p": (1280, 720), "576p": (768, 576)}


def encode_recording(
    source: Path,
    out: Path,
    *,
    codec: str = "h264",
    size_wh: tuple[int, int] = RESOLUTIONS["1080p"],
    max_frames: int = 100,
    keyframe_s: float = 1.0,
) -> Path:
    """Re-encode the first `max_frames` of `source` at `size_wh` with a keyframe every `keyframe_s`.

    Written to `out.part` first and renamed, so a cache never holds half a file.
    """
    if codec not in CODECS:
        raise ValueError(f"codec: expected one of {sorted(CODECS)}, got {codec!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    width, height = size_wh
    with av.open(str(source)) as reader, av.open(str(partial), "w", format="matroska") as writer:
        fps = round(float(reader.streams.video[0].average_rate or 10))
        gop = max(1, round(fps * keyframe_s))
        stream = writer.add_stream(CODECS[codec], rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.codec_context.gop_size = gop
        # No B-frames, no scene-cut keyframes: a camera's fixed GOP.
        fixed_gop = f"keyint={gop}:min-keyint={gop}:scenecut=0"
        if codec == "h264":
            params = {"x264-params": fixed_gop}
        else:
            params = {"x265-params": f"{fixed_gop}:bframes=0:log-level=error"}
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", **params}
        for index, frame in enumerate(reader.decode(video=0)):
            if index >= max_frames:
                break
            scaled = frame.reformat(width, height, "yuv420p", interpolation="BICUBIC")
            scaled.pts, scaled.time_base = index, Fraction(1, fps)
            writer.mux(stream.encode(scaled))
        writer.mux(stream.encode(None))
    partial.rename(out)
    return out
