"""Fixtures of the export tests: a real Mosquitto and a real InfluxDB 1.6 (auth on) for the pipeline round trip,
and helpers reading an export back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testing.influxdb_server import InfluxDB
from testing.servers import Mosquitto


@pytest.fixture(scope="module")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    server = InfluxDB(tmp_path_factory.mktemp("influxdb-export")).start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto-export")).start()
    try:
        yield broker
    finally:
        broker.kill()
