"""Live strides through the real worker on a real Mosquitto and a real store, against the session's final
analysis: the same contacts within one sample, whether one worker serves every window from its own memory or two
workers share them round-robin and one is killed and restarted mid-session."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from analytics.stores import Store, open_store
from analytics.stores.model import ResultRow
from testing.influxdb_server import InfluxDB
from testing.servers import Mosquitto
from testing.worker.harness import HomeSession, WorkerProcess, finish, home_sessions, stop_gateways, stream
from testing.worker.hostile import kit_session, worker_thread
from testing.worker.scenario import fresh_database

SAMPLE_US = 10_000


def drained(sessions: list[HomeSession], timeout_s: float = 60.0) -> None:
    """Keep the gateways stepping until every message they sent is acknowledged end to end."""
    deadline = time.monotonic() + timeout_s
    while any(s.backlog for s in sessions):
        assert time.monotonic() < deadline, [s.backlog for s in sessions]
        for s in sessions:
            s.step(0.2)
        time.sleep(0.05)


def contacts(row: ResultRow) -> tuple[float, float, float]:
    """(start, end, final contact) of a stride point, µs: live points carry their times from the point's instant,
    final ones from their own start (the document's times are seconds from the recording's first sample)."""
    f = row.fields
    start = row.time_us + (float(f["start_s"]) * 1e6 if row.measurement == "stride_live" else 0.0)  # type: ignore[arg-type]
    end = start + (float(f["end_s"]) - float(f["start_s"])) * 1e6  # type: ignore[arg-type]
    return start, end, start + float(f["stance_time_s"]) * 1e6  # type: ignore[arg-type]


def check_live_agrees_with_final(
    live: list[ResultRow], final: list[ResultRow], missed: int = 3, twice: bool = False
) -> None:
    """Wherever both exist, a live stride and the final stride of that side and start have the same start, end and
    final contact within one sample; each is given out live once (``twice``: or twice, both so); the live strides
    miss at most ``missed`` final ones and have only a few the final analysis does not, at the ends of walking bouts
    (live, a bout's end is seen before it is known)."""
    final = [r for r in final if r.measurement == "stride"]
    assert len(final) > 40 and len(live) > 40
    matched = 0
    for f in final:
        fa, fb, fc = contacts(f)
        same = [r for r in live if r.tags["side"] == f.tags["side"] and abs(contacts(r)[0] - fa) < 300_000]
        assert len(same) <= (2 if twice else 1), (f, same)
        for r in same:
            a, b, c = contacts(r)
            assert abs(a - fa) <= SAMPLE_US and abs(b - fb) <= SAMPLE_US and abs(c - fc) <= 2 * SAMPLE_US, (r, f)
        matched += len(same)
    assert matched >= len(final) - missed, (matched, len(final))
    assert len(live) - matched <= 4, (len(live), matched)


def live_strides(store: Store, subject: str) -> list[ResultRow]:
    return [r for r in store.read_results(subject, live=True) if r.measurement == "stride_live"]


def final_strides(store: Store, subject: str, timeout_s: float = 60.0) -> list[ResultRow]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = store.read_results(subject)
        if any(r.measurement == "session_summary" for r in rows):
            return rows
        time.sleep(0.5)
    raise AssertionError(f"no final results for {subject}")


def test_one_worker_gives_out_the_final_strides_live_from_its_own_memory(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """One worker serves every window: each one feeds only the samples since the previous one (counted), none is
    read back from the store, and the live strides are the final analysis's, contact for contact."""
    store_path = tmp_path / "store.sqlite"
    with worker_thread(mosquitto.port, store_path, tmp_path / "quarantine.sqlite") as worker:
        session = kit_session(tmp_path, mosquitto.port, "S001", seed=3, minutes=1.2, window_s=0.25)
        while not session.done:  # about 15 times faster than real time: windows of a fraction of a second each
            session.step(0.5)
            time.sleep(0.03)
        drained([session])
        store = open_store(str(store_path))
        live = live_strides(store, "S001")
        stats, live_windows = worker.stats, worker.jobs.live
        assert stats.live_store_reads == 0 and stats.live_cold_starts == 1
        fed = live_windows.counters.samples_fed
        stored = stats.samples_stored
        assert stored - 300 <= fed <= stored  # every stored sample put on the grid once (the last batch aside)
        totals = live_windows.totals
        assert totals.samples_new <= stored / 3  # each grid instant is new to one window
        assert totals.samples_analysed <= 12 * stored / 3
        session.close_session()
        finish([session], timeout_s=60.0)
        check_live_agrees_with_final(live, final_strides(store, "S001"))
        stop_gateways([session])
        store.close()


@pytest.mark.slow
def test_two_workers_one_restarted_give_out_the_same_live_strides(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB
) -> None:
    """Shared subscriptions hand a subject's windows and batches to two workers in turn, and one of them is killed
    and restarted mid-session: each window reads what the other worker stored from the store, the restarted one
    starts the session cold from the store, and the live strides still are the final analysis's."""
    url = fresh_database(influxdb)
    workers = [WorkerProcess(mosquitto.port, url, f"worker-{i}", tmp_path).start() for i in (1, 2)]
    sessions: list[HomeSession] = []
    try:
        time.sleep(1.5)
        sessions = home_sessions(tmp_path, mosquitto.port, 1, minutes=1.2, seed0=5, window_s=0.25)
        stream(sessions, 25.0, chunk_s=0.5)
        workers[0].kill()
        stream(sessions, 5.0, chunk_s=0.5)
        workers[0].start()
        while not sessions[0].done:
            stream(sessions, 2.0, chunk_s=0.5)
            time.sleep(0.02)
        drained(sessions, timeout_s=90.0)
        store = open_store(url)
        live = live_strides(store, "S001")
        finish(sessions, timeout_s=90.0)
        final = final_strides(store, "S001")
        # the killed worker's unacknowledged batches come back only with the gateway's re-send (its ack timeout):
        # the windows waiting for them give out their strides late, those older than a live window's longest
        # look-back are left to the final analysis. The restarted worker's estimates come from other samples than
        # the other worker's until both make them at the same whole minute: a stride both give out meanwhile may
        # land on two points, 10 ms apart, both with the final contacts
        n_final = len([r for r in final if r.measurement == "stride"])
        check_live_agrees_with_final(live, final, missed=n_final // 2, twice=True)
        store.close()
    finally:
        stop_gateways(sessions)
        for w in workers:
            w.stop()
    # the restarted worker started the session again from what the other worker (and it, before it was killed)
    # stored; each worker read samples the other one stored (which of its windows did depends on the routing)
    colds = [int(n) for n in re.findall(r"started cold from \d+ samples on the grid \((\d+) raw", workers[0].log())]
    assert colds and colds[-1] > 0, workers[0].log()[-2000:]
    for w in workers:
        from_store = [int(n) for n in re.findall(r"live_samples_from_store=(\d+)", w.log())]
        assert from_store and from_store[-1] > 0, w.log()[-2000:]


def test_a_segment_is_read_from_the_store_when_this_workers_cache_lacks_a_batch(tmp_path: Path) -> None:
    """With several workers, a batch in the middle of a segment may have been stored by another one: the cache of
    what this worker stored must not serve the segment then (it would be read back short at every retry, never
    from the store), only when it holds every sample."""
    import numpy as np

    from analytics.stores.model import samples_from_arrays
    from analytics.worker.config import SubjectLog, WorkerConfig, WorkerStats
    from analytics.worker.raw_ingest import RawIngest
    from analytics.worker.recent import RecentStream
    from analytics.worker.segments import Segment
    from gaitsym_common.uplink import envelope as env

    ingest = RawIngest(
        WorkerConfig(),
        None,  # type: ignore[arg-type]
        WorkerStats(),
        time.monotonic,
        SubjectLog("w", 10.0, time.monotonic),
        lambda d, exc, subject: None,
        lambda subject: None,
    )
    clock = env.ClockMapping(True, 0, 1_800_000_000.0, 1.0, 0.0, 0.5)

    def batch(first: int) -> object:
        seq = np.arange(first, first + 100)
        return samples_from_arrays(
            subject="S1",
            session="S1-1",
            placement="pelvis",
            serial="GS-1",
            boot_epoch=3,
            seq=seq,
            t_sensor_us=seq * 10_000,
            acc_mps2=np.zeros((100, 3)),
            gyr_dps=np.zeros((100, 3)),
            clock=clock,
            msg_id=f"raw:GS-1:3:{first}",
        )

    stream = ingest.streams.setdefault(("S1", "pelvis", "GS-1", 3), RecentStream())
    for first in (0, 100, 300):  # 200..299: stored by another worker
        stream.add(batch(first), keep=3000)  # type: ignore[arg-type]
    segment = Segment("S1", "S1-1", "set", "m", {"pelvis": env.SensorPosition("GS-1", 3, 399)})
    series_for = ingest.series_for(segment)
    assert series_for("pelvis", segment.positions["pelvis"], 0) is None  # a hole: the store, not the cache
    held = series_for("pelvis", env.SensorPosition("GS-1", 3, 199), 0)
    assert held is not None and len(held) == 200  # all here: the cache
