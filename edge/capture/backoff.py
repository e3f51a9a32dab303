"""Reconnect delays: exponential, capped, with jitter, retried forever."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    """Delay before reconnect attempt n (0-based): min(max, initial * factor**n), jittered.

    "Full jitter" in [delay * (1 - jitter_fraction), delay] spreads the reconnects of
    many cameras that lost the same switch, so they do not all hit the NVR at once.
    """

    initial_s: float = 1.0
    factor: float = 2.0
    max_s: float = 60.0
    jitter_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.max_s < self.initial_s:
            raise ValueError(
                f"BackoffPolicy: need 0 < initial_s <= max_s, got {self.initial_s}, {self.max_s}"
            )
        if self.factor < 1:
            raise ValueError(f"BackoffPolicy.factor: expected >= 1, got {self.factor}")
        if not 0 <= self.jitter_fraction <= 1:
            raise ValueError(f"BackoffPolicy.jitter_fraction: expected 0..1, got {self.jitter_fraction}")

    def base_delay_s(self, attempt: int) -> float:
        # Cap the exponent first: factor**attempt overflows a float after ~1000 attempts.
        exponent = min(attempt, 64)
        return float(min(self.max_s, self.initial_s * self.factor**exponent))


class Backoff:
    """The running attempt counter for one camera; `reset()` after a good frame."""

    def __init__(self, policy: BackoffPolicy, rng: Callable[[], float] = random.random) -> None:
        self.policy = policy
        self._rng = rng
        self.attempt = 0

    def next_delay_s(self) -> float:
        delay = self.policy.base_delay_s(self.attempt)
        self.attempt += 1
        return delay * (1.0 - self.policy.jitter_fraction * self._rng())

    def reset(self) -> None:
        self.attempt = 0
