"""The `Detector` protocol: the only thing the rest of curbwatch knows of a model."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from models.types import Detections, Image


class ModelError(Exception):
    """A model file is missing, unreadable or of a kind no backend understands."""


@runtime_checkable
class Detector(Protocol):
    """Frame pixels in, `Detections` out.

    Implementations are warmed up when built, so the first real frame is not
    slower than the rest, and are safe to call from one thread at a time.
    """

    @property
    def class_names(self) -> tuple[str, ...]: ...

    @property
    def input_size_wh(self) -> tuple[int, int]: ...

    def detect(self, image: Image, conf_threshold: float | None = None) -> Detections:
        """Detect objects in a BGR uint8 image; boxes in that image's pixels."""
        ...
