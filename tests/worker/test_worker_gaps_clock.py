"""Gaps and an unsynchronised gateway clock, end to end (production gateway core, real Mosquitto, a real
`gaitsym worker` process, real InfluxDB 1.6).

- S001 loses 1 % of its packets on the air: the gateway publishes gap messages; the worker records them and
  counts known-missing samples as accounted for, so the session is analysed (not left waiting) and its
  results name the gaps (`data_gap`).
- S002's gateway clock is not UTC-synchronised for the first 25 s: its batches carry sensor time only. The
  segments of that stretch are deferred (never dropped) until a synchronised mapping of the same boot arrives,
  then the samples are moved to UTC and analysed: the final analysis covers the whole session.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from analytics.stores import open_store
from testing.influxdb_server import InfluxDB
from testing.servers import Mosquitto
from testing.worker.harness import HomeSession, WorkerProcess, stream
from testing.worker.scenario import fresh_database, run_scenario

pytestmark = pytest.mark.slow


def test_gaps_are_recorded_and_named_and_unsynced_segments_wait_for_utc(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB
) -> None:
    live: list[int] = []

    def sync_later(workers: list[WorkerProcess], sessions: list[HomeSession]) -> None:
        stream(sessions, 5.0)
        # the gateway clock syncs only once the worker has met S002's sensor-time data and deferred a segment
        # of it (bounded: at most 25 s of unsynced streaming), whatever the machine's load
        deadline = time.monotonic() + 60.0
        streamed = 5.0
        while "in sensor time" not in workers[0].log_path.read_text(errors="replace") and streamed < 25.0:
            assert time.monotonic() < deadline, "the worker never looked at S002's unsynced data"
            stream(sessions, 1.0)
            streamed += 1.0
        sessions[1].clock.synced = True  # NTP arrives: later batches of the same boots carry a UTC mapping
        store = open_store(url)
        try:  # while the session runs, provisional strides appear (live windows)
            deadline = time.monotonic() + 20.0
            while not live and time.monotonic() < deadline:
                stream(sessions, 1.0)
                live.extend(r.time_us for r in store.read_results("S001", live=True) if r.measurement == "stride_live")
        finally:
            store.close()

    url = fresh_database(influxdb)
    outcome = run_scenario(
        tmp_path,
        mosquitto.port,
        url,
        n_workers=1,
        n_subjects=2,
        minutes=1.0,
        during=sync_later,
        options={"S001": {"packet_loss": 0.01}, "S002": {"synced": False}},
    )
    lossy, late = outcome.sessions
    assert live  # provisional strides were visible during the session ...
    store = open_store(url)
    try:  # ... and the final analysis replaced them
        assert store.read_results("S001", live=True) == [] and store.read_results("S002", live=True) == []
    finally:
        store.close()
    # S001: gaps recorded, known-missing samples accounted for, the session analysed and the gaps named
    assert sum(s.gaps for s in lossy.gateway.sensors.values()) > 0
    summary = [r for r in outcome.results["S001"] if r[0] == "session_summary" and r[2]["side"] == "none"]
    assert summary and summary[0][3]["result_version"] == 2
    assert "data_gap" in summary[0][3]["flags"] and "seq" in summary[0][3]["gaps"]
    assert any("data_gap" in str(r[3].get("flags", "")) for r in outcome.results["S001"] if r[0] == "stride")
    store = open_store(url)
    try:
        recorded = 0
        for placement, sensor in lossy.gateway.sensors.items():
            assert sensor.info is not None
            index = store.raw_index("S001", placement, sensor.info.serial, sensor.info.boot_epoch, None, 1 << 40)
            recorded += len(index.gaps)
        assert recorded == sum(s.gaps for s in lossy.gateway.sensors.values())
        # S002: every sample ended in UTC, none left in sensor time; final results over the whole session
        for placement, sensor in late.gateway.sensors.items():
            assert sensor.info is not None
            raw = store.read_raw("S002", placement)
            first, last, n, _ = outcome.raw[("S002", placement)]
            assert n == last - first + 1 and len(raw) == n
            assert bool((raw.time_us > 0).all()), placement
    finally:
        store.close()
    rows = outcome.results["S002"]
    assert [r for r in rows if r[0] == "stride"] and all(r[3]["result_version"] == 2 for r in rows)
    clock = json.loads(next(r for r in rows if r[0] == "session_summary")[3]["clock"])
    for placement, c in clock.items():  # the analysis starts at the session's start, inside the unsynced 25 s
        assert c["utc_synced"] and c["seq_first"] < outcome.raw[("S002", placement)][0] + 2000, placement
    assert "moved to UTC" in outcome.worker_logs
    assert "in sensor time" in outcome.worker_logs  # the unsynced stretch waited, was not dropped
    unsynced = re.search(r"segments_unsynced=(\d+)", outcome.worker_logs)
    assert unsynced and int(unsynced.group(1)) > 0
    # (a live window overlapping the moment S002's samples move to UTC may find too few common samples and be
    # skipped as empty: the next window and the final analysis cover it, asserted above)
