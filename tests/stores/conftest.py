"""Fixtures for the storage tests: one real InfluxDB 1.6 (auth on) per module, stores of every kind.

`store` is parametrised over the three ways gaitsym stores data, and every behaviour test runs on each:
``embedded`` (SQLite file), ``influx_v1`` (real 1.6, /write + InfluxQL), ``influx_v2`` (influxdb-client's v2
write and delete APIs through the stand-in, forwarded to the same real 1.6), ``influx_packed`` (real 1.6, raw
samples packed one point per batch part: `InfluxConfig.raw_layout`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # `stores.conftest` for the raw-read tests
    sys.path.insert(0, str(TESTS))

from http_standin import StandIn  # noqa: E402

from analytics.stores import Store  # noqa: E402
from analytics.stores.embedded import EmbeddedStore  # noqa: E402
from analytics.stores.influx import InfluxConfig, InfluxStore  # noqa: E402
from analytics.stores.quarantine import Quarantine  # noqa: E402
from testing.influxdb_server import WORKER_PASSWORD, WORKER_USER, InfluxDB  # noqa: E402
from testing.servers import killed_after  # noqa: E402


@pytest.fixture(scope="module")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    yield from killed_after(InfluxDB(tmp_path_factory.mktemp("influxdb")).start())


@pytest.fixture
def standin(influxdb: InfluxDB) -> Iterator[StandIn]:
    s = StandIn(upstream=influxdb.url, user=WORKER_USER, password=WORKER_PASSWORD)
    try:
        yield s
    finally:
        s.close()


def v1_store(influxdb: InfluxDB, tmp_path: Path, **changes: object) -> InfluxStore:
    config = InfluxConfig(url=influxdb.url, username=WORKER_USER, password=WORKER_PASSWORD, retry_for_s=5.0)
    # one point per sample unless a test names a layout: the database's marker (packed, a new database) aside
    config = replace(config, **{"raw_layout": "points", **changes})  # type: ignore[arg-type]
    return InfluxStore(config, Quarantine(tmp_path / "quarantine.sqlite"))


def v2_store(standin: StandIn, tmp_path: Path, **changes: object) -> InfluxStore:
    config = InfluxConfig(url=standin.url, api="v2", token=standin.token, org=standin.org, retry_for_s=5.0)
    config = replace(config, **{"raw_layout": "points", **changes})  # type: ignore[arg-type]
    return InfluxStore(config, Quarantine(tmp_path / "quarantine.sqlite"))


@pytest.fixture(params=["embedded", "influx_v1", "influx_v2", "influx_packed"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "embedded":
        s: Store = EmbeddedStore(tmp_path / "store.sqlite")
    elif request.param == "influx_v1":
        s = v1_store(request.getfixturevalue("influxdb"), tmp_path)
    elif request.param == "influx_packed":  # raw samples one point per batch part (docs/raw-layout-packed.md)
        s = v1_store(request.getfixturevalue("influxdb"), tmp_path, raw_layout="packed")
    else:
        s = v2_store(request.getfixturevalue("standin"), tmp_path)
    try:
        yield s
    finally:
        s.close()
    if request.param == "influx_v2":
        assert request.getfixturevalue("standin").problems == []
