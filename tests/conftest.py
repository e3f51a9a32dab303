"""Shared fixtures: real test material and a real Mosquitto broker per session."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import MosquittoBroker

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = Path(os.environ.get("CURBWATCH_TESTDATA", ROOT / ".cache" / "testdata"))


def _require(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `bash .ci/testdata` to fetch the test material")
    return path


@pytest.fixture(scope="session")
def opencv_data() -> Path:
    """Real images and video from Debian's opencv-doc (vtest.avi, leuvenB.jpg, scenetext*.jpg)."""
    return _require(TESTDATA / "opencv")


@pytest.fixture(scope="session")
def vtest_avi(opencv_data: Path) -> Path:
    return _require(opencv_data / "vtest.avi")


@pytest.fixture(scope="session")
def leuven_jpg(opencv_data: Path) -> Path:
    return _require(opencv_data / "leuvenB.jpg")


@pytest.fixture(scope="session")
def bus_jpg() -> Path:
    """ultralytics ships assets/bus.jpg: a street with a bus and pedestrians."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("ultralytics is not installed: `pip install -e .[train]` brings bus.jpg")
    return _require(Path(spec.origin).parent / "assets" / "bus.jpg")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """A private Mosquitto on a free loopback port, shared by the whole session."""
    with MosquittoBroker(tmp_path_factory.mktemp("mosquitto")) as running:
        yield running


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A Mosquitto for one test that may stop and restart it (outage tests)."""
    with MosquittoBroker(tmp_path / "mosquitto") as running:
        yield running


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    """PostgreSQL runs (tests/support/database.py): the per-test databases go at the end."""
    yield
    from tests.support.database import drop_all

    drop_all()
