"""Fixtures of the worker tests: a real Mosquitto (the project's conf) and a real InfluxDB 1.6 (auth on)."""

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
    server = InfluxDB(tmp_path_factory.mktemp("influxdb-worker")).start()
    try:
        yield server
    finally:
        server.kill()
