"""A live window reads the samples this worker is writing (raw ingest's writes under way) instead of waiting for
the database to store them: a provisional stride's latency does not include the raw write. Once the write is over
the samples are served from what was stored; a write that failed leaves nothing in flight to read (the turn is
written again). Final analyses still wait for the store (`RawIngest.index_for` knows only what was stored).

The embedded store (real SQLite) behind `HeldStore`, which holds its raw writes until released: it stands for a
database busy with other writes, which no real server here can be made to be on cue."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analytics.stores import open_store
from analytics.stores.errors import StoreUnavailable
from analytics.stores.model import RawSamples, WriteReport
from analytics.worker.config import SubjectLog, WorkerConfig, WorkerStats
from analytics.worker.decode import batch_samples
from analytics.worker.errors import SegmentIncomplete
from analytics.worker.link import Delivery
from analytics.worker.live_windows import LiveWindows
from analytics.worker.raw_ingest import RawIngest, RawWrite
from analytics.worker.segments import Segment, coverage
from gaitsym_common.uplink import envelope as env
from testing.worker.hostile import raw_batch, raw_topic

SUBJECT, SESSION = "S1", "S1-1"
PLACEMENTS = ("left_thigh", "pelvis", "right_thigh")


class HeldStore:
    """The real store; its raw writes wait for ``release`` (and then raise ``fail`` when set)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.release = threading.Event()
        self.fail: Exception | None = None
        self.reads = 0
        """Raw reads and index queries asked of the store."""

    def write_raw_many(self, batches: list[RawSamples]) -> WriteReport:
        assert self.release.wait(30.0)
        if self.fail is not None:
            raise self.fail
        return self.store.write_raw_many(batches)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        if name in ("read_raw", "raw_index"):
            self.reads += 1
        return getattr(self.store, name)


def serial(placement: str) -> str:
    return f"GS-{placement}"


def second(first: int) -> list[tuple[Delivery, env.RawBatch]]:
    """One second of every sensor from sample ``first``, as the broker delivers it."""
    out: list[tuple[Delivery, env.RawBatch]] = []
    for p in PLACEMENTS:
        batch = replace(raw_batch(SUBJECT, first, serial=serial(p), placement=p), session=SESSION)
        out.append((Delivery(raw_topic(SUBJECT, p), b"", (1, first + len(out))), batch))
    return out


def marker(last: int) -> Segment:
    positions = {p: env.SensorPosition(serial(p), 7, last) for p in PLACEMENTS}
    return Segment(SUBJECT, SESSION, "window", f"w{last}", positions)


def covered(index_for: Any, first: int, last: int) -> bool:
    """Whether an index function of raw ingest (`live_index_for`: what a live window reads without a query;
    `index_for`: what a final analysis does) holds every sample first..last of every sensor."""
    for p in PLACEMENTS:
        index = index_for(p, env.SensorPosition(serial(p), 7, last), first)
        if index is None or coverage(first, last, index)[0]:
            return False
    return True


def write_in_background(ingest: RawIngest, first: int) -> RawWrite:
    return ingest.start_batches(second(first), background=lambda: None)


def test_a_live_window_reads_the_samples_being_written_and_the_store_gets_the_same(tmp_path: Path) -> None:
    store = HeldStore(open_store(str(tmp_path / "store.sqlite")))
    log = SubjectLog("w", 10.0, time.monotonic)
    ingest = RawIngest(WorkerConfig(), store, WorkerStats(), time.monotonic, log, lambda *_: None, lambda _: None)  # type: ignore[arg-type]
    windows = LiveWindows(store, ingest, time.monotonic)  # type: ignore[arg-type]
    store.release.set()
    for first in range(0, 500, 100):  # five seconds stored: the session starts cold on them
        ingest.finish_batches(ingest.start_batches(second(first)))
    live, _ = windows.window(marker(499), "alg")
    assert {f.seq for f in live.feeds.values()} == {499}

    # the next second is being written (the database busy): the window goes on with it at once
    store.release.clear()
    job = write_in_background(ingest, 500)
    assert not job.done.is_set()
    live, _ = windows.window(marker(599), "alg")
    assert {f.seq for f in live.feeds.values()} == {599}
    for p in PLACEMENTS:
        assert store.count_raw(SUBJECT, p, serial(p), 7, 500, 599) == 0  # not stored yet
    assert not covered(ingest.index_for(marker(599)), 500, 599)  # a final analysis waits for the store
    store.release.set()
    ingest.finish_batches(job)
    assert covered(ingest.index_for(marker(599)), 500, 599)  # now from what was stored
    fed = {p: live.feeds[p].last for p in PLACEMENTS}
    for p in PLACEMENTS:  # what the window fed is what the store holds: the last sample's sensor time and UTC
        series = store.read_raw(SUBJECT, p)
        assert (int(series.seq[-1]), int(series.t_sensor_us[-1]), int(series.time_us[-1])) == fed[p]

    # a write that fails: its samples are no longer served once it is over (the turn is written again)
    store.release.clear()
    store.fail = StoreUnavailable("the server is down")
    job = write_in_background(ingest, 600)
    assert covered(ingest.live_index_for(marker(699)), 600, 699)
    store.release.set()
    with pytest.raises(StoreUnavailable):
        ingest.finish_batches(job)
    assert not covered(ingest.live_index_for(marker(699)), 600, 699)
    # a batch waiting for its turn to be written (not yet in flight) is still waited for, with no query
    ingest.waiting = lambda key: [(600, 699)]
    with pytest.raises(SegmentIncomplete, match="being stored by this worker"):
        windows.window(marker(699), "alg")


def test_every_copy_of_a_taken_batch_is_written_as_what_it_is_and_none_is_kept_after_its_turn(tmp_path: Path) -> None:
    """A gateway re-sends a batch while the first copy is being written: the copy is taken too (decoded, read by
    live windows), skipped as a replay at its turn, and nothing of it stays behind. A copy whose content differs
    (its clock mapping moved) is written from its own samples, never another copy's."""
    store = HeldStore(open_store(str(tmp_path / "store.sqlite")))
    log = SubjectLog("w", 10.0, time.monotonic)
    ingest = RawIngest(WorkerConfig(), store, WorkerStats(), time.monotonic, log, lambda *_: None, lambda _: None)  # type: ignore[arg-type]
    first = second(0)
    for d, batch in first:
        ingest.take(d, batch)
    job = ingest.start_batches(first, background=lambda: None)
    resent = [(replace(d, token=(2, d.token[1])), batch) for d, batch in first]
    for d, batch in resent:  # re-sent while the first copies are being written
        ingest.take(d, batch)
    assert ingest.taken == len(resent)
    store.release.set()
    ingest.finish_batches(job)
    replays = ingest.stats.replays_skipped
    ingest.finish_batches(ingest.start_batches(resent))
    assert ingest.stats.replays_skipped == replays + len(resent) and ingest.taken == 0

    d, batch = second(100)[0]
    moved = replace(batch, clock=replace(batch.clock, ref_utc_s=batch.clock.ref_utc_s + 0.02))
    d_moved = replace(d, token=(3, d.token[1]))
    ingest.take(d, batch)
    ingest.take(d_moved, moved)
    job = ingest.start_batches([(d, batch)])
    ((_, _, samples),) = job.todo
    assert np.array_equal(samples.time_us(), batch_samples(batch, d.topic).time_us())
    assert not np.array_equal(samples.time_us(), batch_samples(moved, d.topic).time_us())
    ingest.finish_batches(job)
    ingest.finish_batches(ingest.start_batches([(d_moved, moved)]))
    assert ingest.taken == 0


def test_a_cold_start_waits_for_its_own_write_without_asking_the_store(tmp_path: Path) -> None:
    """A session started cold reads up to `live_cold_s` back, more than this worker keeps: it may ask the store,
    which does not hold the samples being written yet. So it waits for its own write (no query meanwhile), then
    starts from the store and its cache."""
    store = HeldStore(open_store(str(tmp_path / "store.sqlite")))
    log = SubjectLog("w", 10.0, time.monotonic)
    config = WorkerConfig(recent_s=3.0)  # keeps 3 s: the cold start's first 3 s come from the store
    ingest = RawIngest(config, store, WorkerStats(), time.monotonic, log, lambda *_: None, lambda _: None)  # type: ignore[arg-type]
    store.release.set()
    for first in range(0, 500, 100):
        ingest.finish_batches(ingest.start_batches(second(first)))
    store.release.clear()
    job = write_in_background(ingest, 500)
    windows = LiveWindows(store, ingest, time.monotonic, cold_s=40.0)  # type: ignore[arg-type]
    reads = store.reads
    for _ in range(3):  # as each poll of the waiting window would
        with pytest.raises(SegmentIncomplete, match="being stored by this worker"):
            windows.window(marker(599), "alg")
    assert store.reads == reads
    store.release.set()
    ingest.finish_batches(job)
    live, _ = windows.window(marker(599), "alg")
    assert {f.seq for f in live.feeds.values()} == {599}


@pytest.fixture(scope="module")
def recorded_walk(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """40 s of one subject's walk as the production gateway core publishes it (1-s batches)."""
    from testing.worker.replay import record_sessions

    return record_sessions(1, 40.0, window_s=0.25, batch_s=1.0, cache_dir=tmp_path_factory.mktemp("recorded"))


class RunningSession:
    """The real worker consumer on a scripted link, one raw write at a time, its store held on cue (`HeldStore`),
    fed a recorded walk second by second on a virtual clock until its live analysis gives out strides."""

    def __init__(self, tmp_path: Path, recorded: Any) -> None:
        from testing.gateway.loopback import unbundled
        from testing.worker.hostile import Clock, ScriptedLink, make_worker

        ((self.subject, published),) = recorded.subjects.items()
        # a bundle's parts one by one, so that a test can leave one out (a batch lost on the air)
        self.published = [
            replace(p, topic=name, payload=body) for p in published for name, body in unbundled(p.topic, p.payload)
        ]
        self.store = HeldStore(open_store(str(tmp_path / "store.sqlite")))
        self.link = ScriptedLink()
        self.clock = Clock()
        self.worker = make_worker(
            tmp_path,
            self.store,
            self.link,
            self.clock,
            live_segments=True,
            raw_write_async=True,
            raw_writes_in_flight=1,
        )  # type: ignore[arg-type]
        self.t = 0.0
        self.store.release.set()
        while self.t < 30.0 and not self.live_strides():
            self.next_second()
        assert self.live_strides(), "no live stride in 30 s of walking"

    def messages(self) -> list[Any]:
        """The recording's messages of the next second."""
        return [p for p in self.published if self.t <= p.t_s < self.t + 1.0]

    def next_second(self, steps: int = 20, skip: Any = None) -> None:
        for p in self.messages():
            if skip is None or not skip(p):
                self.link.deliver(p.topic, p.payload)
        self.settle(steps)
        self.t += 1.0

    def settle(self, steps: int = 20) -> None:
        for _ in range(steps):
            self.clock.t += 0.05
            self.worker.step(0.01)
            time.sleep(0.01)

    def settled_until(self, done: Any, timeout_s: float = 30.0) -> bool:
        """Keep stepping (no new data) until ``done()`` or ``timeout_s`` of real time."""
        deadline = time.monotonic() + timeout_s
        while not done() and time.monotonic() < deadline:
            self.settle(5)
        return bool(done())

    def live_strides(self) -> int:
        return sum(r.measurement == "stride_live" for r in self.store.read_results(self.subject, live=True))

    def write_held(self) -> bool:
        w = self.worker._writing
        return bool(w) and not w[0][0].done.is_set()


def test_a_window_of_a_running_session_is_analysed_while_the_writes_ahead_of_its_batches_wait(
    tmp_path: Path, recorded_walk: Any
) -> None:
    """A window marker of a session the worker's live analysis runs is analysed as it arrives, from the batches
    taken with it, while its batches still wait for their turn behind a raw write the database has not finished:
    its strides are given out then, not after the write ahead of them. The production gateway core's messages
    (recorded), the real worker consumer on a scripted link, one raw write at a time."""
    run = RunningSession(tmp_path, recorded_walk)
    run.store.release.clear()  # the database stops answering raw writes
    run.next_second()
    assert run.write_held()
    before = run.live_strides()
    for _ in range(3):  # three more seconds: taken, waiting behind the held write, and analysed
        run.next_second()
    assert run.worker._carry and run.write_held()
    assert run.live_strides() > before
    run.store.release.set()
    assert run.settled_until(lambda: not run.worker.busy)
    run.worker.close()


def test_a_window_keeps_its_place_behind_a_gap_of_its_subject_waiting_for_its_turn(
    tmp_path: Path, recorded_walk: Any
) -> None:
    """A gap (samples lost on the air, named by the gateway) waits in the carry for its turn behind a raw write the
    database has not finished; the window markers after it need to know those samples are missing, so they wait
    behind it, asking the store nothing, instead of polling the store's index until the gap is stored. Once the
    write is over, the gap is stored and the windows go on."""
    run = RunningSession(tmp_path, recorded_walk)
    run.store.release.clear()
    run.next_second(steps=10)
    assert run.write_held()
    lost = next(
        m
        for m in (env.decode(p.payload) for p in run.messages())
        if isinstance(m, env.RawBatch) and m.placement == "pelvis"
    )
    # the pelvis's batch of the next second lost on the air: the gateway names it in a gap instead
    gap = env.Gap(
        "gap",
        env.gap_id(lost.sensor.serial, lost.sensor.boot_epoch, lost.seq_first),
        lost.subject,
        lost.session,
        lost.placement,
        lost.sensor.serial,
        lost.sensor.boot_epoch,
        lost.seq_first,
        lost.seq_last,
        1.0,
        "ble_loss",
    )
    run.link.deliver(raw_topic(lost.subject, "pelvis").replace("/raw/", "/gap/"), env.encode(gap))
    reads = run.store.reads
    run.next_second(
        steps=40, skip=lambda p: p.topic == raw_topic(lost.subject, "pelvis") and lost.msg_id.encode() in p.payload
    )
    assert run.store.reads == reads  # no index query while the gap waits
    waiting = [a.message for a in run.worker._carry]
    assert any(isinstance(m, env.Gap) for m in waiting) and any(isinstance(m, env.Marker) for m in waiting)
    before = run.live_strides()
    run.store.release.set()
    for _ in range(6):  # after the hole the session's analysis starts again: strides once it has seen enough
        run.next_second()
        if run.settled_until(lambda: not run.worker._carry, 10.0) and run.live_strides() > before:
            break
    assert not run.worker._carry and run.live_strides() > before
    run.worker.close()
