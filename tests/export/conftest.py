"""Fixtures of the export tests: an embedded store per test (seeded by `tests.export.seeding`). The real servers
of the pipeline round trip are the shared ones (tests/conftest.py: `influxdb`; the broker is started for the
scenario's duration)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.stores.embedded import EmbeddedStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "store.sqlite")
    yield s
    s.close()
