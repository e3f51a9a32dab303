"""The held-out split: whole camera-days, chosen by a hash of their names (deterministic).

Pictures of one camera on one day look alike (same view, light, parked objects), so a split
that put some in training and others in the held-out set would measure memory, not learning.
A camera-day is held out when the hash of "camera/day" falls under the fraction; the same
camera-day lands on the same side in every later export, whatever else the export holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from models.training.verdicts import JudgedPicture, TrainingError

CameraDay = tuple[str, str]


@dataclass(frozen=True)
class Split:
    train: tuple[JudgedPicture, ...]
    held_out: tuple[JudgedPicture, ...]
    held_out_days: tuple[CameraDay, ...]  # sorted
    train_days: tuple[CameraDay, ...]


def _rank(camera_day: CameraDay) -> float:
    """A stable number in [0, 1) for a camera-day."""
    digest = hashlib.sha256(f"{camera_day[0]}/{camera_day[1]}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_camera_day(pictures: Sequence[JudgedPicture], held_out_fraction: float) -> Split:
    """Both sides get at least one camera-day: the lowest-ranked is held out when none fall under
    the fraction, the highest-ranked is trained on when all do."""
    days = sorted({p.camera_day for p in pictures}, key=_rank)
    if len(days) < 2:
        only = ", ".join(" ".join(d) for d in days) or "none"
        raise TrainingError(
            f"a held-out split needs verdicts from at least two camera-days (camera and UTC day); "
            f"this export has one: {only}"
        )
    held = {d for d in days if _rank(d) < held_out_fraction} or {days[0]}
    if len(held) == len(days):
        held.discard(days[-1])
    return Split(
        train=tuple(p for p in pictures if p.camera_day not in held),
        held_out=tuple(p for p in pictures if p.camera_day in held),
        held_out_days=tuple(sorted(held)),
        train_days=tuple(sorted(set(days) - held)),
    )
