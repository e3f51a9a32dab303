"""A verdict export from real footage, made once per session (tests/models/verdict_export.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.models.verdict_export import Sent, make_verdict_export


@pytest.fixture(scope="session")
def verdict_export(
    tmp_path_factory: pytest.TempPathFactory, vtest_avi: Path, leuven_jpg: Path
) -> tuple[Path, list[Sent]]:
    return make_verdict_export(tmp_path_factory.mktemp("review"), vtest_avi, leuven_jpg)
