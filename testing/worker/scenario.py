"""The integration scenario: N simulated subjects streaming at once through their gateways and a broker to
worker processes and a store; then what the store holds, for comparing runs point by point."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analytics.stores import open_store
from analytics.stores.influx_setup import setup_v1
from testing.influxdb_server import ADMIN_PASSWORD, ADMIN_USER, WORKER_PASSWORD, WORKER_USER, InfluxDB
from testing.worker.harness import HomeSession, WorkerProcess, finish, home_sessions, stop_gateways, stream

N_SUBJECTS = 3
MINUTES = 1.2
_db_numbers = itertools.count(1)


def fresh_database(server: InfluxDB) -> str:
    """A new database (with its retention policies and the worker's grant); returns its store URL."""
    name = f"gaitsym_w{next(_db_numbers)}"
    setup_v1(
        server.url, ADMIN_USER, ADMIN_PASSWORD, database=name, worker_user=WORKER_USER, worker_password=WORKER_PASSWORD
    )
    return server.store_url(name)


@dataclass
class Outcome:
    results: dict[str, list[tuple[str, int, dict[str, str], dict[str, Any]]]]
    raw: dict[tuple[str, str], tuple[int, int, int, int]]
    """(subject, placement) -> (first seq, last seq, samples stored in that range, samples in the batch index)."""
    sessions: list[HomeSession]
    worker_logs: str


def snapshot(store_url: str, sessions: list[HomeSession]) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    store = open_store(store_url)
    try:
        results = {
            s.subject: [(r.measurement, r.time_us, dict(r.tags), dict(r.fields)) for r in store.read_results(s.subject)]
            for s in sessions
        }
        raw = {}
        for s in sessions:
            for placement, sensor in s.gateway.sensors.items():
                assert sensor.info is not None
                p = store.raw_progress(s.subject, placement, sensor.info.serial, sensor.info.boot_epoch)
                assert p.seq_first is not None and p.seq_last is not None
                n = store.count_raw(
                    s.subject, placement, sensor.info.serial, sensor.info.boot_epoch, p.seq_first, p.seq_last
                )
                raw[(s.subject, placement)] = (p.seq_first, p.seq_last, n, p.n_samples)
    finally:
        store.close()
    return results, raw


def run_scenario(
    tmp: Path,
    port: int,
    store_url: str,
    n_workers: int,
    during: Callable[[list[WorkerProcess], list[HomeSession]], None] | None = None,
    n_subjects: int = N_SUBJECTS,
    minutes: float = MINUTES,
    extra: tuple[str, ...] = (),
    options: dict[str, dict[str, Any]] | None = None,
    gateway: dict[str, Any] | None = None,
) -> Outcome:
    workers = [WorkerProcess(port, store_url, f"worker-{i + 1}", tmp, *extra).start() for i in range(n_workers)]
    sessions: list[HomeSession] = []
    try:
        time.sleep(1.5)  # the workers' persistent sessions and shared subscriptions exist before data flows
        sessions = home_sessions(tmp, port, n_subjects, minutes=minutes, options=options, **(gateway or {}))
        stream(sessions, 20.0)
        if during is not None:
            during(workers, sessions)
        finish(sessions, timeout_s=150.0)
        deadline = time.monotonic() + 60.0  # the last segments (session ends) may still be analysed
        results, raw = snapshot(store_url, sessions)
        while time.monotonic() < deadline and not all(
            any(r[0] == "session_summary" and r[3].get("result_version") == 2 for r in rows)
            for rows in results.values()
        ):
            time.sleep(1.0)
            results, raw = snapshot(store_url, sessions)
        time.sleep(2.0)
        results, raw = snapshot(store_url, sessions)
    finally:
        stop_gateways(sessions)
        for w in workers:
            w.stop()
    return Outcome(results, raw, sessions, "\n".join(w.log() for w in workers))


def check_complete_and_unique(outcome: Outcome) -> None:
    """Every sample each sensor produced is stored once: the stored sequence range has no hole and no extra
    point (a duplicate would be a second point with the same sequence)."""
    for s in outcome.sessions:
        for placement, sensor in s.gateway.sensors.items():
            assert sensor.stream is not None and sensor.stream.last_seq is not None
            first, last, n, _ = outcome.raw[(s.subject, placement)]
            assert last == sensor.stream.last_seq, (s.subject, placement)
            assert n == last - first + 1, (s.subject, placement, n, first, last)
            assert sensor.gaps == 0
