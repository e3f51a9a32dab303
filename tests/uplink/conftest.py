"""Fixtures for uplink tests that restart the broker and rely on its persistence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import MosquittoBroker


@pytest.fixture
def durable_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A per-test Mosquitto with persistence that survives stop()/start()."""
    with MosquittoBroker(tmp_path / "mosquitto") as running:
        yield running
