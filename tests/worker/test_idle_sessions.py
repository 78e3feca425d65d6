"""Sessions that never get a ``session_end`` still get their final results.

- The worker's periodic scan (`analytics.worker.idle_sessions`) finds a session whose newest raw sample is hours
  old and that has no final summary, and runs the final analysis a ``session_end`` would have: version 2, the
  orphaned provisional strides gone, samples the dead gateway never delivered named as missing. A session with
  final results, or still streaming, is left alone; a restarted worker does not close it twice.
- Two workers closing the same session at once (real InfluxDB 1.6: its replacement is a DELETE then writes,
  not a transaction) leave exactly one copy of the results.
- `gaitsym reanalyze` gives the orphaned first part of a session split by a gateway restart its final results
  and says it was split.

Raw data are stored as the worker stores a gateway's batches (1-s batches, a simulated walk); times are hours ago
on the real clock, the worker's scan clock is advanced by the test."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from analytics.recording.io import Recording
from analytics.stores import Store, open_store
from analytics.stores.model import (
    LIVE_OF,
    STRIDE,
    SessionResults,
)
from analytics.worker.idle_sessions import IdleClose, IdleSessions, close_session, unaccounted
from analytics.worker.reanalyze import reanalyze
from analytics.worker.results import segment_results
from analytics.worker.segments import FINAL_VERSION, Segment, algorithm_name, default_analyzer, load_segment
from analytics.worker.worker import Worker, WorkerConfig
from gaitsym_common.uplink.envelope import SensorPosition
from simulator import simulate_session
from testing.influxdb_server import InfluxDB
from testing.stores.storelib import recording_batches
from testing.worker.hostile import ScriptedLink
from testing.worker.scenario import fresh_database

HOUR_S = 3600.0


@pytest.fixture(scope="module")
def walk() -> Recording:
    return simulate_session(script="walk", minutes=1.0, seed=5).recording


def store_session(
    store: Store,
    subject: str,
    session: str,
    rec: Recording,
    t0_utc_s: float,
    *,
    boot: int = 7,
    drop: tuple[str, int, int] | None = None,
) -> dict[str, SensorPosition]:
    """The session's samples as 1-s batches (``drop``: a placement's batches in a sequence range never arrived)."""

    def serial_of(placement: str) -> str:
        return f"GS-{subject}-{placement[:4]}"

    positions = {}
    for placement, batches in recording_batches(rec, subject, session, t0_utc_s, serial_of, boot_epoch=boot).items():
        if drop is not None and drop[0] == placement:
            batches = [b for b in batches if not drop[1] <= b.seq[0] <= drop[2]]
        store.write_raw_many(batches)
        positions[placement] = SensorPosition(serial_of(placement), boot, len(rec.time_s) - 1)
    return positions


def session_end_results(
    store: Store, subject: str, session: str, positions: dict[str, SensorPosition]
) -> SessionResults:
    """What the worker stores on this session's ``session_end`` (the reference; not written)."""
    (found,) = store.raw_sessions(0, round(time.time() * 1e6), subject=subject, session=session)
    segment = Segment(subject, session, "session", "marker:end", positions, t_utc_s=found.last_us / 1e6)
    loaded = load_segment(store, segment)
    assert loaded is not None
    doc = default_analyzer("session")(loaded.recording)
    return segment_results(segment, loaded, doc, FINAL_VERSION, algorithm_name())


def provisional(results: SessionResults) -> SessionResults:
    """The live strides the session's windows left (version 1)."""
    points = tuple(replace(p, measurement=LIVE_OF[p.measurement]) for p in results.points if p.measurement == STRIDE)
    return replace(results, result_version=1, points=points)


def strides(store: Store, subject: str, session: str) -> list[tuple[int, str, object, object]]:
    return [
        (r.time_us, r.tags["side"], r.fields.get("stance_time_s"), r.fields["result_version"])
        for r in store.read_results(subject, session=session)
        if r.measurement == STRIDE
    ]


def stride_values(results: SessionResults, version: int = FINAL_VERSION) -> list[tuple[int, str, object, object]]:
    return sorted(
        (p.time_us, dict(p.tags)["side"], p.fields.get("stance_time_s"), version)
        for p in results.points
        if p.measurement == STRIDE
    )


def summary(store: Store, subject: str, session: str) -> dict[str, object] | None:
    rows = [
        r
        for r in store.read_results(subject, session=session)
        if r.measurement == "session_summary" and r.tags["side"] == "none"
    ]
    return dict(rows[0].fields) if rows else None


def test_unaccounted_names_what_is_neither_stored_nor_a_recorded_gap() -> None:
    from analytics.stores.model import RawIndex

    index = RawIndex(((0, 99, 100), (200, 299, 100), (400, 499, 100)), ((300, 349),))
    assert unaccounted(0, 499, index) == [(100, 199), (350, 399)]
    assert unaccounted(50, 650, index) == [(100, 199), (350, 399), (500, 650)]
    assert unaccounted(0, 99, index) == []


def test_the_batch_index_folds_into_sessions_with_each_placements_newest_sensor_boot() -> None:
    from analytics.stores.model import SessionSensor, raw_sessions_from_batches

    rows = [  # subject, placement, session, serial, boot, seq_first, seq_last, first_us, last_us
        ("A", "pelvis", "S1", "P1", 3, 0, 99, 1_000, 1_990),
        ("A", "pelvis", "S1", "P1", 3, 100, 199, 2_000, 2_990),
        ("A", "pelvis", "S1", "P1", 4, 0, 99, 5_000, 5_990),  # the sensor rebooted inside the session
        ("A", "left_thigh", "S1", "L1", 9, 500, 599, 1_005, 1_995),
        ("A", "pelvis", None, "P1", 4, 100, 199, 6_000, 6_990),  # streamed outside any session
        ("A", "pelvis", "S0", "P1", 2, 0, 99, 100, 990),
    ]
    s0, s1 = raw_sessions_from_batches(rows)
    assert (s0.session, s0.first_us, s0.last_us) == ("S0", 100, 990)
    assert (s1.session, s1.first_us, s1.last_us) == ("S1", 1_000, 5_990)
    assert s1.sensors == {"left_thigh": SessionSensor("L1", 9, 500, 599), "pelvis": SessionSensor("P1", 4, 0, 99)}


def test_a_session_silent_for_hours_gets_its_final_results_once_even_across_worker_restarts(
    tmp_path: Path, walk: Recording
) -> None:
    store = open_store(str(tmp_path / "store.sqlite"))
    now_s = time.time()
    orphan = store_session(store, "I1", "I1-orphan", walk, now_s - 4.7 * HOUR_S, drop=("pelvis", 3000, 3099))
    reference = session_end_results(store, "I1", "I1-orphan", orphan)
    store.write_live(provisional(reference))  # what its live windows left
    finished = store_session(store, "I2", "I2-done", walk, now_s - 4.5 * HOUR_S)
    store.replace_results(session_end_results(store, "I2", "I2-done", finished))
    done_before = strides(store, "I2", "I2-done")
    store_session(store, "I3", "I3-running", walk, now_s - 4 * HOUR_S - 30.0)  # newest sample 3.99 h old

    clock = [100.0]
    config = WorkerConfig(quarantine_path=str(tmp_path / "q1.sqlite"), idle_close=IdleClose(after_s=4 * HOUR_S))
    worker = Worker(config, ScriptedLink(), store, clock=lambda: clock[0])  # nothing arrives: the scan needs none
    assert worker.idle_sessions is not None
    for _ in range(4):
        clock[0] += 61.0  # past the first scan's random start
        worker.step(timeout_s=0.0)
    assert worker.idle_sessions.stats.closed == 1

    closed = summary(store, "I1", "I1-orphan")
    assert closed is not None and closed["result_version"] == FINAL_VERSION
    assert "pelvis seq 3000..3099" in str(closed["gaps"])  # the batch the dead gateway never delivered
    got = strides(store, "I1", "I1-orphan")
    assert len(got) > 40 and got == stride_values(reference)  # what its session_end would have given
    assert store.read_results("I1", live=True) == []  # no provisional stride left orphaned
    assert strides(store, "I2", "I2-done") == done_before  # already final: untouched
    assert summary(store, "I3", "I3-running") is None  # not silent long enough

    restarted = Worker(
        replace(config, quarantine_path=str(tmp_path / "q2.sqlite")), ScriptedLink(), store, clock=lambda: clock[0]
    )
    assert restarted.idle_sessions is not None
    for _ in range(4):
        clock[0] += 61.0
        restarted.step(timeout_s=0.0)
    assert restarted.idle_sessions.stats.scans >= 1 and restarted.idle_sessions.stats.closed == 0
    assert strides(store, "I1", "I1-orphan") == got
    store.close()


def test_two_workers_closing_one_session_at_once_leave_one_complete_copy(
    influxdb: InfluxDB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, walk: Recording
) -> None:
    monkeypatch.setenv("GAITSYM_STATE_DIR", str(tmp_path / "state"))
    url = fresh_database(influxdb)
    store = open_store(url)
    positions = store_session(store, "I4", "I4-orphan", walk, time.time() - 4.5 * HOUR_S)
    reference = session_end_results(store, "I4", "I4-orphan", positions)
    store.write_live(provisional(reference))
    (found,) = IdleSessions(store, IdleClose(), lambda: default_analyzer("session"), algorithm_name()).scan()
    assert found.session == "I4-orphan" and found.sensors["pelvis"].seq_last == positions["pelvis"].seq

    workers = [open_store(url) for _ in range(2)]
    errors: list[BaseException] = []

    def close(s: Store) -> None:
        try:
            for _ in range(3):  # repeatedly, so that the DELETEs and writes of the two interleave
                close_session(s, found, default_analyzer("session"), algorithm_name())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=close, args=(s,)) for s in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in workers:
        s.close()
    assert not errors
    assert strides(store, "I4", "I4-orphan") == stride_values(reference)  # each stride once, none missing
    rows = [r for r in store.read_results("I4", session="I4-orphan") if r.measurement == "session_summary"]
    assert sorted(r.tags["side"] for r in rows) == ["left", "none", "right"]
    assert store.read_results("I4", live=True) == []
    store.close()


def test_reanalyze_finishes_the_orphaned_part_of_a_split_session_and_says_so(tmp_path: Path, walk: Recording) -> None:
    store = open_store(str(tmp_path / "store.sqlite"))
    t0 = time.time() - 30 * HOUR_S
    first = store_session(store, "I5", "I5-part1", walk, t0)
    store.write_live(provisional(session_end_results(store, "I5", "I5-part1", first)))
    part2_t0 = t0 + float(walk.time_s[-1]) + 60.0  # reopened 60 s after the first part's last sample
    second = store_session(store, "I5", "I5-part2", walk, part2_t0, boot=8)
    store.replace_results(session_end_results(store, "I5", "I5-part2", second))
    said: list[str] = []
    done = reanalyze(store, "I5", round((t0 - HOUR_S) * 1e6), progress=said.append)
    assert [(d.session, d.old_version, d.new_version) for d in done] == [
        ("I5-part2", 2, 3),
        ("I5-part1", 0, FINAL_VERSION),
    ]
    closed = summary(store, "I5", "I5-part1")
    assert closed is not None and closed["result_version"] == FINAL_VERSION
    assert store.read_results("I5", live=True) == []
    (line,) = [s for s in said if s.startswith("I5-part1")]
    assert "no session_end" in line and "I5-part2" in line and "split" in line
    assert reanalyze(store, "I5", round((t0 - HOUR_S) * 1e6))[-1].session == "I5-part2"  # nothing left to close
    store.close()


def test_the_worker_command_closes_idle_sessions_after_the_documented_default() -> None:
    from gaitsym.cli import build_parser

    args = build_parser().parse_args(["worker"])
    assert args.idle_close_after * 3600.0 == IdleClose.after_s
    assert build_parser().parse_args(["worker", "--idle-close-after", "0"]).idle_close_after == 0
