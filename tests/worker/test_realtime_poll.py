"""The real-time bench's poll for provisional strides (`testing.worker.realtime`): its one-number-a-row question
gives every stride's end exactly as reading each point's fields did, and leaves out a point read half-written."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analytics.stores import open_store
from testing.influxdb_server import InfluxDB
from testing.servers import killed_after
from testing.worker.realtime import poll_query, stride_ends
from testing.worker.scenario import fresh_database


@pytest.fixture(scope="module")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    yield from killed_after(InfluxDB(tmp_path_factory.mktemp("influxdb")).start())


def test_the_poll_gives_each_strides_end_as_its_fields_say(influxdb: InfluxDB, tmp_path: Path) -> None:
    store: Any = open_store(fresh_database(influxdb))
    now_us = int(time.time() * 1e6)
    lines = []
    for k, (subject, side) in enumerate([("s01", "left"), ("s01", "right"), ("s02", "left"), ("s03", "right")]):
        for j in range(3):
            t = now_us - 5_000_000 + 1_010_000 * j + 10_000 * k
            start_s, end_s = -0.0031 * (j + 1), 1.1234567 + 0.01 * k
            lines.append(f"stride_live,side={side},subject={subject} start_s={start_s!r},end_s={end_s!r} {t}")
    half = now_us - 2_000_000
    lines.append(f"stride_live,side=left,subject=s04 end_s=1.2 {half}")  # its start_s not (yet) there
    lines.append(f"stride_live,side=left,subject=s05 start_s=0.0,end_s=1.0 {now_us - 60_000_000}")  # too old
    store.transport.write_lines("results", lines, "strides", None)
    by_fields = {
        (str(r["subject"]), int(r["time"]), str(r["side"])): int(r["time"]) / 1e6 + r["end_s"] - r["start_s"]
        for r in store.rows(
            'SELECT start_s, end_s, side, subject FROM "results"."stride_live" WHERE time > now() - 12s'
        )
        if "start_s" in r and "end_s" in r
    }
    polled = dict(stride_ends(store.query(poll_query())))
    assert len(polled) == 12 and polled.keys() == by_fields.keys()
    assert all(abs(polled[k] - by_fields[k]) < 1e-9 for k in polled)
    assert ("s04", half, "left") not in polled
    store.close()
