"""The raw-write path's bookkeeping: what a worker counts as its own write to come (so a live window waiting for
those samples asks the store nothing meanwhile)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from analytics.stores import Store, open_store
from gaitsym_common.uplink import envelope as env
from testing.worker.hostile import Clock, ScriptedLink, make_worker, raw_batch, raw_topic


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(str(tmp_path / "store.sqlite"))
    yield s
    s.close()


def test_a_batch_waiting_for_its_turn_counts_as_this_workers_own_write(tmp_path: Path, store: Store) -> None:
    """A batch admitted but still gathering for its turn (the write thread behind, or the turn's gather time) is
    one this worker will store: a window needing its samples waits without a store query; samples it does not
    hold are still asked for; once stored they are in the cache and nothing is awaited."""
    clock = Clock()
    link = ScriptedLink()
    worker = make_worker(tmp_path, store, link, clock, turn_gather_s=5.0)
    batch = raw_batch("A", 0)  # seq 0..99
    key = ("A", batch.placement, batch.sensor.serial, batch.sensor.boot_epoch)
    link.deliver(raw_topic("A"), env.encode(batch))
    worker.step(0)
    assert worker.busy and not link.acked_ids("A")  # gathering: not written yet
    assert worker.ingest.awaiting_own_write(key, 0, 99)
    assert worker.ingest.awaiting_own_write(key, 50, 99)
    assert not worker.ingest.awaiting_own_write(key, 0, 199)  # 100..199: not this worker's to store
    assert not worker.ingest.awaiting_own_write((*key[:3], 8), 0, 99)  # another boot of the sensor
    clock.t += 5.0
    worker.step(0)
    assert link.acked_ids("A") == [batch.msg_id]
    assert not worker.ingest.awaiting_own_write(key, 0, 99)  # stored: in the cache
    assert len(store.read_raw("A", batch.placement, start_us=0)) == 100
    worker.close()


def test_a_waiting_batch_that_is_never_stored_stops_counting_once_its_turn_is_taken(
    tmp_path: Path, store: Store
) -> None:
    """A batch whose packets turn out malformed at its turn is quarantined, never stored: from then on it is no
    write of this worker's to wait for (a window needing its samples asks the store, and finds them missing)."""
    clock = Clock()
    link = ScriptedLink()
    worker = make_worker(tmp_path, store, link, clock, turn_gather_s=5.0)
    good = raw_batch("A", 0)
    bad = replace(good, packets=tuple(bytes(len(p)) for p in good.packets))
    key = ("A", bad.placement, bad.sensor.serial, bad.sensor.boot_epoch)
    link.deliver(raw_topic("A"), env.encode(bad))
    worker.step(0)
    assert worker.ingest.awaiting_own_write(key, 0, 99)  # taken, waiting for its turn
    clock.t += 5.0
    worker.step(0)
    assert worker.stats.quarantined + worker.stats.malformed >= 1
    assert not worker.ingest.awaiting_own_write(key, 0, 99)
    assert len(store.read_raw("A", bad.placement, start_us=0)) == 0
    worker.close()
