"""The integration scenario: N simulated subjects streaming at once through their gateways and a broker to
worker processes and a store; then what the store holds, for comparing runs point by point.

The scenario goes on only on evidence, never on a fixed sleep: the gateways start once every worker has logged
that it is connected (`wait_for_workers`), and the outcome is read once every subject's final results are stored
(`wait_for_final_results`). Either wait raises `ScenarioIncomplete` at its deadline, naming what never came and
the workers' last log lines, rather than handing a test a half-finished run to compare.
"""

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
WORKER_READY = "MQTT connected"
"""What `gaitsym worker` logs when the broker accepted its connection. Its link asks for the (shared, persistent)
subscriptions in the same connect callback, before this line is logged: the gateways, built and started after
it, never publish before the subscriptions are asked for."""
READY_TIMEOUT_S = 30.0
RESULTS_TIMEOUT_S = 60.0
"""After every outbox drained (every batch stored), the last segments (session ends) may still be analysed."""
LOG_TAIL_LINES = 15


class ScenarioIncomplete(AssertionError):
    """The scenario could not go on: a worker never connected (or exited), or a subject's final results never
    came; the message names which, and ends with the workers' last log lines."""


def _log_size(worker: WorkerProcess) -> int:
    return worker.log_path.stat().st_size if worker.log_path.exists() else 0


def _log_since(worker: WorkerProcess, offset: int) -> str:
    if not worker.log_path.exists():
        return ""
    with worker.log_path.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _name(worker: WorkerProcess) -> str:
    return worker.log_path.stem


def _log_tails(workers: list[WorkerProcess]) -> str:
    tails = []
    for w in workers:
        lines = w.log().splitlines()[-LOG_TAIL_LINES:] if w.log_path.exists() else ["(no log)"]
        tails.append(f"--- {_name(w)} (last {len(lines)} log lines):\n" + "\n".join(lines))
    return "\n".join(tails)


def wait_for_workers(
    workers: list[WorkerProcess], log_from: dict[Path, int] | None = None, timeout_s: float = READY_TIMEOUT_S
) -> None:
    """Return once every worker has logged `WORKER_READY` (in its log after byte ``log_from[log_path]``: a
    restarted worker appends to its log). ScenarioIncomplete when a worker exits first, or at the deadline."""
    offsets = log_from or {}
    deadline = time.monotonic() + timeout_s
    waiting = list(workers)
    while True:
        waiting = [w for w in waiting if WORKER_READY not in _log_since(w, offsets.get(w.log_path, 0))]
        if not waiting:
            return
        for w in waiting:
            code = None if w.proc is None else w.proc.poll()
            if code is not None:
                raise ScenarioIncomplete(
                    f"worker {_name(w)} exited (code {code}) before it connected to the broker\n" + _log_tails([w])
                )
        if time.monotonic() >= deadline:
            raise ScenarioIncomplete(
                f"worker(s) {', '.join(_name(w) for w in waiting)} not connected to the broker after {timeout_s:g} s "
                f"(no {WORKER_READY!r} in the log): the gateways were not started\n" + _log_tails(waiting)
            )
        time.sleep(0.05)


def subjects_without_final_results(store_url: str, subjects: list[str]) -> list[str]:
    """The subjects whose final session summary (result_version 2) is not stored yet."""
    store = open_store(store_url)
    try:
        return [
            s
            for s in subjects
            if not any(
                r.measurement == "session_summary" and r.fields.get("result_version") == 2
                for r in store.read_results(s)
            )
        ]
    finally:
        store.close()


def wait_for_final_results(
    store_url: str,
    subjects: list[str],
    timeout_s: float = RESULTS_TIMEOUT_S,
    workers: list[WorkerProcess] | None = None,
) -> None:
    """Return once every subject's final session summary is stored; ScenarioIncomplete at the deadline, naming
    the subjects without one (and the workers' last log lines)."""
    deadline = time.monotonic() + timeout_s
    while True:
        missing = subjects_without_final_results(store_url, subjects)
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise ScenarioIncomplete(
                f"no final session summary (result_version 2) stored for {', '.join(missing)} {timeout_s:g} s after "
                "every gateway's outbox drained: the worker did not finish analysing their sessions\n"
                + _log_tails(workers or [])
            )
        time.sleep(1.0)


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
    workers = [WorkerProcess(port, store_url, f"worker-{i + 1}", tmp, *extra) for i in range(n_workers)]
    log_from = {w.log_path: _log_size(w) for w in workers}
    sessions: list[HomeSession] = []
    try:
        for w in workers:
            w.start()
        wait_for_workers(workers, log_from)  # persistent sessions and shared subscriptions before data flows
        sessions = home_sessions(tmp, port, n_subjects, minutes=minutes, options=options, **(gateway or {}))
        stream(sessions, 20.0)
        if during is not None:
            during(workers, sessions)
        finish(sessions, timeout_s=150.0)
        wait_for_final_results(store_url, [s.subject for s in sessions], workers=workers)
        time.sleep(2.0)  # a straggling segment of a subject whose summary came first
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
