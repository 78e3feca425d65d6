"""Fixtures of the worker tests: a real InfluxDB 1.6 (auth on), an embedded store per test; the real Mosquitto is
tests/conftest.py's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.stores import Store, open_store
from testing.influxdb_server import InfluxDB
from testing.servers import killed_after


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    yield from killed_after(InfluxDB(tmp_path_factory.mktemp("influxdb-worker")).start())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """An embedded (SQLite) store of the test's own."""
    s = open_store(str(tmp_path / "store.sqlite"))
    yield s
    s.close()
