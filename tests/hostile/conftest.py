"""A real Mosquitto (the project's own configuration) per test; a real InfluxDB 1.6 (authentication on) per session,
started only by the tests that ask for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.influxdb_server import InfluxDB
from testing.servers import Mosquitto


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto").start()
    try:
        yield broker
    finally:
        broker.kill()


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    server = InfluxDB(tmp_path_factory.mktemp("influxdb-hostile")).start()
    try:
        yield server
    finally:
        server.kill()
