"""The raw-write path's bookkeeping: what live windows read of the batches a worker took before they are stored,
and what it counts as its own write to come (so a live window waiting for those samples asks the store nothing
meanwhile)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from analytics.stores import Store
from analytics.stores.model import RawIndex
from analytics.worker.segments import Segment, coverage
from gaitsym_common.uplink import envelope as env
from testing.worker.hostile import Clock, DownStore, ScriptedLink, make_worker, raw_batch, raw_topic


def segment_of(batch: env.RawBatch, last: int) -> Segment:
    """A live window of the batch's sensor up to ``last``."""
    pos = env.SensorPosition(batch.sensor.serial, batch.sensor.boot_epoch, last)
    return Segment(batch.subject, batch.session, "window", f"w{last}", {batch.placement: pos})


def holds(index_for: Callable[[str, env.SensorPosition, int], RawIndex | None], seg: Segment, first: int) -> bool:
    """Whether an index function of raw ingest accounts for every sample ``first``..the window's last."""
    ((placement, pos),) = seg.positions.items()
    index = index_for(placement, pos, first)
    return index is not None and not coverage(first, pos.seq, index)[0]


def test_a_batch_gathering_for_its_turn_is_read_by_live_windows_at_once(tmp_path: Path, store: Store) -> None:
    """A batch admitted but still gathering for its turn (the turn's gather time, or the writes ahead of it) is
    decoded as it is taken and read by live windows at once (`RawIngest.take`): nothing for a window to wait
    for, no store query. The final analyses' view (what was stored) lacks it until its turn's write is over."""
    clock = Clock()
    link = ScriptedLink()
    worker = make_worker(tmp_path, store, link, clock, turn_gather_s=5.0)
    batch = raw_batch("A", 0)  # seq 0..99
    key = ("A", batch.placement, batch.sensor.serial, batch.sensor.boot_epoch)
    link.deliver(raw_topic("A"), env.encode(batch))
    worker.step(0)
    assert worker.busy and not link.acked_ids("A")  # gathering: not written yet
    seg = segment_of(batch, 99)
    assert holds(worker.ingest.live_index_for(seg), seg, 0)  # a live window reads it now
    assert not holds(worker.ingest.index_for(seg), seg, 0)  # a final analysis waits for the store
    assert len(store.read_raw("A", batch.placement, start_us=0)) == 0
    assert not worker.ingest.awaiting_own_write(key, 0, 99)  # held: nothing to wait for
    assert not worker.ingest.awaiting_own_write(key, 0, 199)  # 100..199: not this worker's to store
    clock.t += 5.0
    worker.step(0)
    assert link.acked_ids("A") == [batch.msg_id]
    assert holds(worker.ingest.index_for(seg), seg, 0)  # stored: in the cache
    assert holds(worker.ingest.live_index_for(seg), seg, 0)
    assert len(store.read_raw("A", batch.placement, start_us=0)) == 100
    worker.close()


def test_a_malformed_batch_is_quarantined_as_it_is_taken_and_never_waited_for(tmp_path: Path, store: Store) -> None:
    """A batch whose packets are malformed is set aside when it is taken (decoded then), before its turn: no live
    window waits for it, nothing of it is stored, and its delivery is acknowledged to the broker (never
    redelivered) but not end to end (it never becomes good)."""
    clock = Clock()
    link = ScriptedLink()
    worker = make_worker(tmp_path, store, link, clock, turn_gather_s=5.0)
    good = raw_batch("A", 0)
    bad = replace(good, packets=tuple(bytes(len(p)) for p in good.packets))
    key = ("A", bad.placement, bad.sensor.serial, bad.sensor.boot_epoch)
    token = link.deliver(raw_topic("A"), env.encode(bad))
    worker.step(0)
    assert worker.stats.malformed == 1 and token in link.acked
    assert not worker.busy  # nothing left for a turn
    assert not worker.ingest.awaiting_own_write(key, 0, 99)
    assert not holds(worker.ingest.live_index_for(segment_of(bad, 99)), segment_of(bad, 99), 0)
    clock.t += 5.0
    worker.step(0)
    assert len(store.read_raw("A", bad.placement, start_us=0)) == 0 and not link.acked_ids("A")
    worker.close()


def test_a_turn_the_store_refused_is_waited_for_until_written_again(tmp_path: Path, store: Store) -> None:
    """A turn whose write the store refused goes back to the carry: its samples leave the live view (they may never
    be stored as they were), count as this worker's own write to come (a window needing them waits, no query),
    and are read again once the retried turn's write is under way."""
    clock = Clock()
    link = ScriptedLink()
    down = DownStore(store)
    worker = make_worker(tmp_path, down, link, clock)  # type: ignore[arg-type]
    batch = raw_batch("A", 0)
    key = ("A", batch.placement, batch.sensor.serial, batch.sensor.boot_epoch)
    seg = segment_of(batch, 99)
    link.deliver(raw_topic("A"), env.encode(batch))
    worker.step(0)
    assert worker.stats.store_retries == 1 and not link.acked_ids("A")
    assert not holds(worker.ingest.live_index_for(seg), seg, 0)
    assert worker.ingest.awaiting_own_write(key, 0, 99)
    down.down = False
    clock.t += 60.0  # past the backoff
    worker.step(0)
    assert link.acked_ids("A") == [batch.msg_id]
    assert holds(worker.ingest.index_for(seg), seg, 0) and not worker.ingest.awaiting_own_write(key, 0, 99)
    assert len(store.read_raw("A", batch.placement, start_us=0)) == 100
    worker.close()
