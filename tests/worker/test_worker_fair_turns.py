"""Turn-level tests of the worker's fairness and bounds: the round robin across turns, the work a delivery costs,
the held markers, a remap interrupted by an outage, and batches the store refuses."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

from analytics.stores import Store
from analytics.stores.errors import StoreUnavailable
from analytics.stores.quarantine import Quarantine
from analytics.worker.budget import MIN_WORK_PER_BATCH, BudgetConfig
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import topic
from testing.worker.hostile import Clock, ScriptedLink, make_worker, raw_batch, raw_topic


def test_every_backlogged_subject_is_served_within_two_turns(tmp_path: Path, store: Store) -> None:
    """30 subjects with a backlog of 1,000-sample batches: a turn takes 20 of them; the next turn starts with the
    ten it left out, so none waits more than two turns."""
    link = ScriptedLink()
    worker = make_worker(tmp_path, store, link)
    subjects = [f"s{i:02d}" for i in range(30)]
    for k in range(6):
        for s in subjects:
            link.deliver(raw_topic(s), env.encode(raw_batch(s, 1_000 * k, n_packets=100)))
    served_by_turn: list[set[str]] = []
    for _ in range(4):
        before = {s: len(link.acked_ids(s)) for s in subjects}
        worker.step(0)
        served_by_turn.append({s for s in subjects if len(link.acked_ids(s)) > before[s]})
    assert all(served_by_turn)
    for a, b in itertools.pairwise(served_by_turn):
        assert a | b == set(subjects)  # any two turns in a row serve everyone
    assert worker.stats.shed == 0
    worker.close()


class RemapDownOnce:
    """The embedded store, unavailable for the next ``remap_raw`` only (an outage in the middle of a turn)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.fail_next_remap = False

    def remap_raw(self, *args: Any) -> int:
        if self.fail_next_remap:
            self.fail_next_remap = False
            raise StoreUnavailable("down for the test", retry_after_s=0.0)
        return self.store.remap_raw(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_a_move_to_utc_interrupted_by_an_outage_runs_when_the_turn_is_retried(tmp_path: Path, store: Store) -> None:
    clock = Clock()
    link = ScriptedLink()
    flaky = RemapDownOnce(store)
    worker = make_worker(tmp_path, flaky, link, clock)  # type: ignore[arg-type]
    first = raw_batch("A", 0)
    unsynced = replace(first, clock=replace(first.clock, utc_synced=False, ref_utc_s=None))
    link.deliver(raw_topic("A"), env.encode(unsynced))
    worker.step(0)
    assert 0 not in store.read_raw("A", "pelvis", start_us=0).seq  # stored in sensor time
    flaky.fail_next_remap = True
    synced = raw_batch("A", 100)
    token = link.deliver(raw_topic("A"), env.encode(synced))
    worker.step(0)
    assert token not in link.acked and worker.stats.store_retries == 1
    clock.t += 60.0
    worker.step(0)  # the synced batch is a replay by now: the move still due runs
    assert token in link.acked
    assert {0, 99, 100} <= set(store.read_raw("A", "pelvis", start_us=0).seq.tolist())
    worker.close()


def test_a_tiny_batch_costs_the_minimum_work_and_synced_boots_are_forgotten_with_the_cache(
    tmp_path: Path, store: Store
) -> None:
    clock = Clock()
    link = ScriptedLink()
    budget = BudgetConfig(work_per_s=1.0, work_burst=3 * MIN_WORK_PER_BATCH, bytes_per_s=1e9, bytes_burst=1e9)
    worker = make_worker(tmp_path, store, link, clock, budget=budget)
    for boot in range(5):  # five one-sample batches, each of another sensor boot
        link.deliver(
            raw_topic("TINY"), env.encode(raw_batch("TINY", 0, n_packets=1, samples_per_packet=1, boot_epoch=boot))
        )
    worker.step(0)
    assert len(link.acked_ids("TINY")) == 3 and worker.stats.shed == 2
    assert len(worker.ingest._synced) == 3
    clock.t += 2 * worker.config.recent_s
    worker.step(0)
    assert not worker.ingest.streams and not worker.ingest._synced
    worker.close()


def test_waiting_markers_of_many_subjects_never_hold_more_than_the_global_cap(tmp_path: Path, store: Store) -> None:
    """13 subjects x 8 markers waiting for samples not yet here would hold 104 broker deliveries, past the broker's
    in-flight window of 100: the raw batches they wait for could never arrive. At most ``max_held_markers`` are
    held; the rest are acknowledged to the broker at once (the gateway re-sends them until the end-to-end ack)."""
    link = ScriptedLink()
    worker = make_worker(tmp_path, store, link)
    tokens = []
    for i in range(13):
        subject = f"s{i:02d}"
        for k in range(8):
            marker = env.Marker(
                "marker", f"marker:x:session_end:{k}", subject, f"session-{k}", "session_end", None,
                {"pelvis": env.SensorPosition("GS-SYN-1", 7, 1_000 * (k + 1))},
            )  # fmt: skip
            tokens.append(link.deliver(topic(subject, "marker"), env.encode(marker)))
    worker.step(0)
    held = set(tokens) - set(link.acked)
    assert len(held) == worker.config.max_held_markers == 32
    assert len(worker.jobs.pending) == 13 * 8 and worker.stats.shed == 0  # every marker still waits here
    worker.close()


def test_a_subject_never_uses_another_subjects_quarantine_room(tmp_path: Path) -> None:
    q = Quarantine(
        tmp_path / "q.sqlite", max_entries_per_subject=2, max_bytes_per_subject=16_000, max_bytes_total=40_000
    )
    for i in range(2):
        assert q.put(f"raw subject=victim- seq={i}", 400, "bad", "", [f"l{i}"]) > 0
    assert q.put("raw subject=victim placement=pelvis", 400, "bad", "", ["own"]) > 0  # victim's room untouched
    assert {e.subject for e in q.entries()} == {"victim-", "victim"}
    # two subjects near their byte cap fill 3/4 of the file: the rest is kept for subjects holding little
    big3 = Quarantine(tmp_path / "q3.sqlite", max_bytes_per_subject=16_000, max_bytes_total=40_000)
    for big in ("BIG1", "BIG2"):
        assert big3.put("x", None, "r", "", ["x" * 15_000], subject=big) > 0
    assert big3.put("x", None, "r", "", ["x" * 1_000], subject="BIG1") == 0  # a large user past 3/4: refused
    assert big3.put("x", None, "r", "", ["x" * 500], subject="SMALL") > 0  # a small one still gets room
    q.close()
    big3.close()
