"""Build the demo footage for `curbwatch demo` from real test material, reproducibly.

    .venv/bin/python tools/make_demo_clip.py            # writes edge/demo/demo_cam01.mp4
    .venv/bin/python tools/make_demo_clip.py --check    # also runs the default detector on it

Input: vtest.avi (a fixed camera over a paved plaza, people walking), leuvenB.jpg
(two real bicycles parked against a wall in Leuven) and fruits.jpg (a pile of
apples, oranges and bananas), all from OpenCV's samples (Debian opencv-doc, fetched by
`.ci/testdata` into .cache/testdata/opencv/).

The bicycles are wheeled onto the pavement, stay there, and are taken away again,
so the edge node sees a real incident open (after the zone's dwell), update and
clear; the detector names them (COCO `bicycle`). A fruit display, which no COCO
class names as goods, is carried onto the west walkway and later away: only the
scene model sees it (`static object`). People who walk past go *in front of* both: their
pixels are found by subtracting the plaza's median background and are put back.

Deterministic: no random numbers, fixed encoder settings, one encoder thread and no
creation time in the container, so the same inputs and the same PyAV/FFmpeg build
give the same bytes (the script prints the SHA-256 to compare).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT / ".cache" / "testdata" / "opencv"
DEFAULT_OUT = ROOT / "edge" / "demo" / "demo_cam01.mp4"

Image = npt.NDArray[np.uint8]

# Two bicycles leaning on a wall in leuvenB.jpg (x1, y1, x2, y2 in that image's pixels).
BICYCLES_XYXY = (130, 390, 268, 476)


@dataclass(frozen=True)
class Script:
    """What happens in the clip, in stream seconds (vtest.avi runs at 10 fps)."""

    clip_s: float = 60.0  # the first minute of vtest.avi
    patch_scale: float = 1.3  # the bicycles become 179x112 px: NanoDet finds them reliably
    rest_xy: tuple[int, int] = (520, 300)  # top-left where they stand (on the east pavement)
    enter_from_xy: tuple[int, int] = (580, 330)  # wheeled in from the right ...
    enter_s: tuple[float, float] = (5.0, 7.0)  # ... during these seconds
    leave_to_xy: tuple[int, int] = (580, 330)  # and wheeled back out
    leave_s: tuple[float, float] = (35.0, 37.0)
    people_threshold: int = 40  # colour difference from the background that counts as a person
    background_step: int = 10  # every 10th frame feeds the median background

    fruit_scale: float = 0.3  # fruits.jpg becomes 154x144 px
    fruit_rest_xy: tuple[int, int] = (150, 200)  # on the west walkway
    fruit_from_xy: tuple[int, int] = (10, 200)  # carried in from the left ...
    fruit_enter_s: tuple[float, float] = (12.0, 14.0)
    fruit_leave_s: tuple[float, float] = (46.0, 48.0)  # ... and back out

    def where(self, t: float) -> tuple[int, int] | None:
        """Top-left of the bicycles at stream second t, or None when they are not in the picture."""
        return _carried(t, self.enter_from_xy, self.rest_xy, self.leave_to_xy, self.enter_s, self.leave_s)

    def fruit_where(self, t: float) -> tuple[int, int] | None:
        return _carried(
            t,
            self.fruit_from_xy,
            self.fruit_rest_xy,
            self.fruit_from_xy,
            self.fruit_enter_s,
            self.fruit_leave_s,
        )


def _carried(
    t: float,
    start: tuple[int, int],
    rest: tuple[int, int],
    end: tuple[int, int],
    enter_s: tuple[float, float],
    leave_s: tuple[float, float],
) -> tuple[int, int] | None:
    (in_a, in_b), (out_a, out_b) = enter_s, leave_s
    if t < in_a or t >= out_b:
        return None
    if t < in_b:
        return _lerp(start, rest, (t - in_a) / (in_b - in_a))
    if t < out_a:
        return rest
    return _lerp(rest, end, (t - out_a) / (out_b - out_a))


@dataclass(frozen=True)
class Encoding:
    codec: str = "libx264"
    crf: int = 30
    preset: str = "medium"
    gop: int = 10  # a keyframe every second: the edge may decode keyframes only at 1 sample/s
    extra: dict[str, str] = field(default_factory=lambda: {"tune": "film"})


def _lerp(a: tuple[int, int], b: tuple[int, int], f: float) -> tuple[int, int]:
    return round(a[0] + (b[0] - a[0]) * f), round(a[1] + (b[1] - a[1]) * f)


def load_patch(leuven_jpg: Path, scale: float) -> Image:
    image = cv2.imread(str(leuven_jpg))
    if image is None:
        raise FileNotFoundError(f"{leuven_jpg}: missing or not an image")
    x1, y1, x2, y2 = BICYCLES_XYXY
    crop = image[y1:y2, x1:x2]
    return np.asarray(cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))


def feather(h: int, w: int) -> npt.NDArray[np.float32]:
    """Alpha that ramps from 0 at the patch border to 1 inside, so no hard rectangle shows."""
    margin = max(2, int(min(h, w) * 0.12))
    ramp_x = np.minimum(np.arange(w) + 1, np.arange(w)[::-1] + 1)[None, :] / margin
    ramp_y = np.minimum(np.arange(h) + 1, np.arange(h)[::-1] + 1)[:, None] / margin
    return np.clip(np.minimum(ramp_x, ramp_y), 0.0, 1.0)[..., None].astype(np.float32)


def read_frames(vtest: Path, clip_s: float) -> Iterator[tuple[float, Image]]:
    cap = cv2.VideoCapture(str(vtest))
    if not cap.isOpened():
        raise FileNotFoundError(f"{vtest}: missing or not a video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    try:
        for index in range(round(clip_s * fps)):
            ok, pixels = cap.read()
            if not ok:
                raise ValueError(f"{vtest}: ends before {clip_s} s")
            yield index / fps, np.asarray(pixels)
    finally:
        cap.release()


def median_background(frames: list[Image], step: int) -> Image:
    """The empty plaza: per-pixel median over a spread of frames (people keep moving)."""
    return np.median(np.stack(frames[::step]), axis=0).astype(np.uint8)


def people_mask(pixels: Image, background: Image, threshold: int) -> npt.NDArray[np.float32]:
    """Where a person (anything not background) is, as 0..1 alpha with soft edges."""
    diff = cv2.absdiff(pixels, background).max(axis=2)
    mask = (diff > threshold).astype(np.uint8) * 255
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    mask = cv2.dilate(cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8)), np.ones((5, 5)))
    return (cv2.GaussianBlur(mask, (7, 7), 0).astype(np.float32) / 255.0)[..., None]


def composite(pixels: Image, background: Image, patch: Image, at: tuple[int, int], script: Script) -> Image:
    """A new frame: the patch at top-left `at`, with passers-by drawn back in front of it."""
    x1, y1 = at
    h, w = patch.shape[:2]
    x2, y2 = x1 + w, y1 + h
    height, width = pixels.shape[:2]
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        raise ValueError(f"patch at {(x1, y1, x2, y2)} leaves the {width}x{height} frame")
    out = pixels.copy()
    roi = pixels[y1:y2, x1:x2].astype(np.float32)
    pasted = feather(h, w) * patch.astype(np.float32) + (1.0 - feather(h, w)) * roi
    front = people_mask(pixels[y1:y2, x1:x2], background[y1:y2, x1:x2], script.people_threshold)
    out[y1:y2, x1:x2] = (front * roi + (1.0 - front) * pasted).round().astype(np.uint8)
    return out


def load_fruit(fruits_jpg: Path, scale: float) -> Image:
    image = cv2.imread(str(fruits_jpg))
    if image is None:
        raise FileNotFoundError(f"{fruits_jpg}: missing or not an image")
    return np.asarray(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))


def demo_frames(vtest: Path, leuven: Path, fruits_jpg: Path, script: Script) -> Iterator[tuple[float, Image]]:
    frames = list(read_frames(vtest, script.clip_s))
    background = median_background([pixels for _, pixels in frames], script.background_step)
    bicycles = load_patch(leuven, script.patch_scale)
    fruit = load_fruit(fruits_jpg, script.fruit_scale)
    for t, pixels in frames:
        for patch, at in ((bicycles, script.where(t)), (fruit, script.fruit_where(t))):
            if at is not None:
                pixels = composite(pixels, background, patch, at, script)
        yield t, pixels


def encode(frames: Iterator[tuple[float, Image]], out: Path, fps: int, encoding: Encoding) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial" + out.suffix)
    # No creation_time, no encoder string with a path: nothing machine- or time-dependent.
    with av.open(str(partial), "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(encoding.codec, rate=fps)
        if not isinstance(stream, av.VideoStream):
            raise TypeError(f"{encoding.codec} is not a video encoder")
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = encoding.gop
        stream.codec_context.time_base = Fraction(1, fps)
        stream.codec_context.thread_count = 1
        stream.options = {
            "crf": str(encoding.crf),
            "preset": encoding.preset,
            "keyint_min": str(encoding.gop),
            "sc_threshold": "0",
            **encoding.extra,
        }
        first = True
        for _, pixels in frames:
            if first:
                stream.width, stream.height = pixels.shape[1], pixels.shape[0]
                first = False
            frame = av.VideoFrame.from_ndarray(pixels, format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    partial.replace(out)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check(out: Path, script: Script) -> int:
    """Run the bundled NanoDet on 1 frame/s; report where it sees the bicycles. 0 when as scripted."""
    from models.config import load_detector  # only for --check: the build needs no model

    detector = load_detector(None, threads=2)
    bicycle = detector.class_names.index("bicycle")
    misses = 0
    for t, pixels in read_frames(out, script.clip_s):
        if abs(t - round(t)) > 1e-6:
            continue
        found = detector.detect(pixels, 0.3)
        hits = [b for b, c in zip(found.xyxy, found.class_id, strict=True) if c == bicycle]
        if script.enter_s[0] <= t < script.enter_s[1] or script.leave_s[0] <= t < script.leave_s[1]:
            continue  # being wheeled in or out: either answer is right
        present = script.where(t) is not None
        if present != bool(hits):
            misses += 1
        boxes = " ".join(f"[{b[0]:.0f},{b[1]:.0f},{b[2]:.0f},{b[3]:.0f}]" for b in hits)
        say(f"t={t:5.1f}s scripted={'yes' if present else 'no ':3} detected={boxes or '-'}")
    say(f"{misses} sampled seconds differ from the script")
    return 0 if misses <= 2 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vtest", type=Path, default=TESTDATA / "vtest.avi")
    parser.add_argument("--leuven", type=Path, default=TESTDATA / "leuvenB.jpg")
    parser.add_argument("--fruits", type=Path, default=TESTDATA / "fruits.jpg")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seconds", type=float, default=Script().clip_s, help="clip length (tests: short)")
    parser.add_argument("--check", action="store_true", help="run the default detector on the result")
    args = parser.parse_args(argv)
    script = Script(clip_s=args.seconds)
    encode(demo_frames(args.vtest, args.leuven, args.fruits, script), args.out, 10, Encoding())
    size_kb = args.out.stat().st_size / 1024
    say(f"{args.out}: {size_kb:.0f} KiB, sha256 {sha256(args.out)}")
    return check(args.out, script) if args.check else 0


if __name__ == "__main__":
    sys.exit(main())
