"""The two values every stage passes along: a `Frame` and its `Detections`.

`Detections` follows supervision's design: parallel numpy arrays, validated at
construction, filtered with a bool mask. Stages never mutate one; they build a
new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded picture from one camera.

    `ts` is in seconds: stream time for files, monotonic capture time for live
    sources. Logic reads time from here, never from the wall clock.
    """

    pixels: Image  # (h, w, 3) BGR uint8
    camera_id: str
    ts: float

    def __post_init__(self) -> None:
        if self.pixels.ndim != 3 or self.pixels.shape[2] != 3:
            raise ValueError(f"Frame.pixels: expected (h, w, 3), got {self.pixels.shape}")
        if self.pixels.dtype != np.uint8:
            raise ValueError(f"Frame.pixels: expected uint8, got {self.pixels.dtype}")

    @property
    def resolution_wh(self) -> tuple[int, int]:
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


def _readonly(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, eq=False)
class Detections:
    """Objects found in one frame, as parallel arrays of length n.

    xyxy: (n, 4) float32 pixel corners; confidence: (n,) float32;
    class_id: (n,) int64; tracker_id: (n,) int64 or None until a tracker ran.
    class_names maps class_id to a label and comes from the model.
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    class_names: tuple[str, ...]
    tracker_id: IntArray | None = None

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"Detections.xyxy: expected (n, 4), got {xyxy.shape}")
        n = xyxy.shape[0]
        confidence = np.asarray(self.confidence, dtype=np.float32)
        class_id = np.asarray(self.class_id, dtype=np.int64)
        for name, array in (("confidence", confidence), ("class_id", class_id)):
            if array.shape != (n,):
                raise ValueError(f"Detections.{name}: expected ({n},), got {array.shape}")
        tracker_id = None
        if self.tracker_id is not None:
            tracker_id = np.asarray(self.tracker_id, dtype=np.int64)
            if tracker_id.shape != (n,):
                raise ValueError(f"Detections.tracker_id: expected ({n},), got {tracker_id.shape}")
        if n and (class_id.min() < 0 or class_id.max() >= len(self.class_names)):
            raise ValueError(
                f"Detections.class_id: values must lie in 0..{len(self.class_names) - 1}, "
                f"got {class_id.min()}..{class_id.max()}"
            )
        # Read-only arrays make "stages never mutate their input" enforceable.
        object.__setattr__(self, "xyxy", _readonly(xyxy))
        object.__setattr__(self, "confidence", _readonly(confidence))
        object.__setattr__(self, "class_id", _readonly(class_id))
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "tracker_id", None if tracker_id is None else _readonly(tracker_id))

    @classmethod
    def empty(cls, class_names: Sequence[str]) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros((0,), np.float32),
            class_id=np.zeros((0,), np.int64),
            class_names=tuple(class_names),
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: BoolArray | IntArray | slice | int) -> Detections:
        """Select rows with a bool mask, integer indices or a slice; always a new Detections."""
        if isinstance(index, int):
            index = np.array([index])
        return Detections(
            xyxy=self.xyxy[index].copy(),
            confidence=self.confidence[index].copy(),
            class_id=self.class_id[index].copy(),
            class_names=self.class_names,
            tracker_id=None if self.tracker_id is None else self.tracker_id[index].copy(),
        )

    @property
    def labels(self) -> list[str]:
        return [self.class_names[i] for i in self.class_id]

    def with_tracker_id(self, tracker_id: IntArray) -> Detections:
        return Detections(self.xyxy, self.confidence, self.class_id, self.class_names, tracker_id)

    def class_mask(self, names: Sequence[str] | frozenset[str]) -> BoolArray:
        """True for each detection whose label is one of `names`."""
        wanted = np.array([name in names for name in self.class_names], dtype=bool)
        return wanted[self.class_id] if len(self) else np.zeros(0, dtype=bool)
