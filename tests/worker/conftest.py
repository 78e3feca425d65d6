"""Fixtures of the worker tests: a real InfluxDB 1.6 (auth on); the real Mosquitto is tests/conftest.py's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testing.influxdb_server import InfluxDB
from testing.servers import killed_after


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    yield from killed_after(InfluxDB(tmp_path_factory.mktemp("influxdb-worker")).start())
