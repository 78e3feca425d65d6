"""Fixtures of the worker tests: a real Mosquitto (the project's conf) and a real InfluxDB 1.6 (auth on)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # servers.py, influxdb_server.py
    sys.path.insert(0, str(TESTS))

from influxdb_server import InfluxDB  # noqa: E402
from servers import Mosquitto  # noqa: E402


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
