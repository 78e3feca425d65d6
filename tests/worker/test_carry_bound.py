"""The carry's bound (`analytics.worker.carry`): what a worker that falls behind holds stays bounded whatever the
broker sends it, the subject catching up gives way before the ones streaming in real time, and what is shed is
stored once its gateway sends it again."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analytics.stores import Store
from analytics.worker.carry import Admitted, Carry, admits
from analytics.worker.link import Delivery
from analytics.worker.raw_ingest import stream_key
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import topic
from testing.servers import Mosquitto
from testing.worker.harness import finish, stop_gateways, stream
from testing.worker.hostile import (
    Clock,
    DownStore,
    ScriptedLink,
    assert_every_sample_stored,
    kit_session,
    make_worker,
    raw_batch,
    raw_topic,
    worker_thread,
)

BATCH = 100
"""Samples in each test batch (`raw_batch`: 10 packets of 10)."""


def test_the_rule_below_past_and_twice_past_the_bound() -> None:
    assert admits(0, 0, 5_000, 1, 1_000)  # an empty carry takes anything: one delivery always gets through
    assert admits(900, 900, 100, 1, 1_000)  # up to the bound, anyone
    assert not admits(1_000, 1_000, 100, 2, 1_000)  # past it, a subject holding its share gives way
    assert admits(1_000, 0, 100, 2, 1_000)  # one holding less than an equal share (500) still adds
    assert admits(1_400, 400, 100, 2, 1_000) and not admits(1_500, 500, 100, 2, 1_000)
    assert not admits(1_950, 0, 100, 3, 1_000)  # past twice the bound, nobody


def test_the_equal_share_counts_the_subject_that_joins() -> None:
    """X alone holds past the bound: a newcomer's share is half of it, not all of it."""
    carry = Carry(1_000, 10**9)
    carry.append(
        Admitted(
            Delivery("t", b"", (1, 1)),
            env.Gap("gap", "g", "X", "s", "pelvis", "x", 7, 0, 1, 1.0, "packet_lost"),
            "X",
            1_001,
            0.0,
        )
    )
    assert carry.full
    assert carry.admits("Y", 500, 0) and not carry.admits("Y", 501, 0)
    assert not carry.admits("X", 1, 0)
    with pytest.raises(ValueError, match="max_carry_work 0"):
        Carry(0, 10)


def test_a_backlog_past_the_bound_is_shed_not_held_and_stored_once_sent_again(tmp_path: Path, store: Store) -> None:
    """The store is down; subject B's gateway sends a 40-batch backlog at once (a broker that does not keep to the
    worker's Receive Maximum hands all of it over), subject A its real-time batches. The carry keeps to its bound:
    B gives way past it, A (under an equal share) does not; what is shed is acknowledged to the broker, never end
    to end. Once the store is back and B's gateway sends the shed batches again, every sample is stored once."""
    clock = Clock()
    link = ScriptedLink()
    down = DownStore(store)
    bound = 1_000
    worker = make_worker(tmp_path, down, link, clock, max_carry_work=bound)  # type: ignore[arg-type]
    backlog = [raw_batch("B", BATCH * i) for i in range(40)]
    tokens = {link.deliver(raw_topic("B"), env.encode(b)): b for b in backlog}
    live = [raw_batch("A", BATCH * i, serial="GS-SYN-2") for i in range(3)]
    for b in live:
        link.deliver(raw_topic("A"), env.encode(b))
    worker.step(0)
    shed = [b for t, b in tokens.items() if t in link.acked]
    assert worker.stats.store_retries == 1
    assert worker.stats.shed_carry_full == len(shed) == 40 - bound // BATCH  # B holds the bound, the rest shed
    assert worker.shed_by_subject == {"B": len(shed)}
    assert worker.stats.carry_peak_work == bound + len(live) * BATCH <= 2 * bound
    assert not link.acked_ids("A") and not link.acked_ids("B")  # nothing acknowledged end to end

    more = [raw_batch("B", BATCH * (40 + i)) for i in range(5)]  # B keeps sending while still behind
    for b in more:
        link.deliver(raw_topic("B"), env.encode(b))
    worker.step(0)
    assert worker.stats.shed_carry_full == len(shed) + len(more)

    down.down = False
    clock.t += 60.0  # past the backoff
    worker.step(0)
    for _ in range(10):  # the gateway's outbox sends again what no end-to-end ack covers, after its ack timeout
        for b in backlog + more:
            if b.msg_id not in link.acked_ids("B"):
                link.deliver(raw_topic("B"), env.encode(b))
        for _ in range(3):
            clock.t += 1.0
            worker.step(0)
    assert sorted(link.acked_ids("B")) == sorted(b.msg_id for b in backlog + more)
    assert sorted(link.acked_ids("A")) == sorted(b.msg_id for b in live)
    got = store.read_raw("B", "pelvis", start_us=0)
    assert sorted(got.seq.tolist()) == list(range(45 * BATCH))
    assert sorted(store.read_raw("A", "pelvis", start_us=0).seq.tolist()) == list(range(3 * BATCH))
    worker.close()


def marker(subject: str, kind: str, last: int) -> env.Marker:
    position = {"pelvis": env.SensorPosition("GS-" + subject, 7, last)}
    return env.Marker(
        "marker", f"marker:s-{subject}:{kind}:pelvis={last}:", subject, f"s-{subject}", kind, None, position
    )


def behind(tmp_path: Path, store: Store, **config: Any) -> tuple[Any, ScriptedLink, Clock, DownStore, list[str]]:
    """A worker whose store is down and whose carry (bound 1,000) B's backlog fills past its bound, with four more
    subjects in it; every subject's live analysis runs here (a stand-in for `LiveWindows.holds`, which needs an
    analysis under way). Also returns the kinds of the markers that reached the segments, in order."""
    clock = Clock()
    link = ScriptedLink()
    down = DownStore(store)
    worker = make_worker(tmp_path, down, link, clock, max_carry_work=1_000, **config)  # type: ignore[arg-type]
    to_segments: list[str] = []
    admit = worker.jobs.admit
    worker.jobs.admit = lambda d, m, now=None: to_segments.append(m.type) or admit(d, m, now)  # type: ignore[method-assign]
    worker.jobs.live.holds = lambda segment: True  # type: ignore[method-assign]
    for i in range(12):
        link.deliver(raw_topic("B"), env.encode(raw_batch("B", BATCH * i)))
    for c in "CDEF":
        link.deliver(raw_topic(c), env.encode(raw_batch(c, 0, serial="GS-" + c)))
    return worker, link, clock, down, to_segments


def test_a_subject_shed_by_the_full_carry_has_its_live_results_paused(tmp_path: Path, store: Store) -> None:
    """A window behind a shed batch or gap would wait for it, asking the store, until the gateway sent it again: for
    ``live_pause_after_shed_s`` after the full carry shed something of a subject (B's raw batches, S's gap), that
    subject's window markers are acknowledged end to end without an analysis (the window after the pause covers
    their samples), even once the carry has room. Its session end is not paused, nor another subject's windows."""
    worker, link, clock, down, to_segments = behind(tmp_path, store, live_segments=True)
    gap = env.Gap("gap", env.gap_id("GS-S", 7, 0), "S", "s-S", "pelvis", "GS-S", 7, 0, 99, 1.0, "packet_lost")
    gap_token = link.deliver(topic("S", "gap", "pelvis"), env.encode(gap))
    link.deliver(topic("S", "marker"), env.encode(marker("S", "window", 199)))
    link.deliver(topic("B", "marker"), env.encode(marker("B", "window", 1_199)))
    worker.step(0)
    assert worker.shed_by_subject == {"B": 2, "S": 1} and gap_token in link.acked  # B's 11th and 12th batch, S's gap
    assert to_segments == [] and worker.stats.windows_paused == 2
    assert link.acked_ids("S") == ["marker:s-S:window:pelvis=199:"] and gap.msg_id not in link.acked_ids("S")
    assert link.acked_ids("B") == ["marker:s-B:window:pelvis=1199:"]
    down.down = False
    clock.t += 10.0  # past the backoff: the carry drains; the shed batches and gap have not come back
    worker.step(0)
    assert not worker._carry.full
    for subject, kind in (("S", "window"), ("B", "window"), ("T", "window"), ("S", "session_end")):
        link.deliver(topic(subject, "marker"), env.encode(marker(subject, kind, 299)))
    worker.step(0)
    worker.step(0)
    assert to_segments == ["window", "session_end"] and worker.stats.windows_paused == 4  # T's window, S's end
    clock.t += worker.config.live_pause_after_shed_s
    link.deliver(topic("S", "marker"), env.encode(marker("S", "window", 399)))
    worker.step(0)
    assert to_segments[-1] == "window" and worker.stats.windows_paused == 4
    worker.close()


@pytest.mark.parametrize("config", [{"live_segments": False}, {"live_segments": True, "live_pause_after_shed_s": 0.0}])
def test_no_pause_without_live_results_or_with_a_pause_of_zero(tmp_path: Path, store: Store, config: dict) -> None:
    """Without live results a window has nothing to pause (acknowledged as it always was); a pause of 0 is none."""
    worker, link, clock, down, to_segments = behind(tmp_path, store, **config)
    link.deliver(topic("B", "marker"), env.encode(marker("B", "window", 1_199)))
    worker.step(0)
    down.down = False
    clock.t += 10.0
    worker.step(0)
    link.deliver(topic("B", "marker"), env.encode(marker("B", "window", 1_299)))
    worker.step(0)
    worker.step(0)
    assert worker.stats.windows_paused == 0 and worker.stats.shed_carry_full >= 2
    assert to_segments[-1:] == ["window"]  # neither paused nor shed: to the segments
    if not config["live_segments"]:
        assert "marker:s-B:window:pelvis=1299:" in link.acked_ids("B")  # nothing to analyse: acknowledged at once
    worker.close()


def test_a_paused_window_that_would_wait_in_the_full_carry_is_not_shed_into_it(tmp_path: Path, store: Store) -> None:
    """A window of a session whose live analysis does not run here (its cold start) waits in the carry; paused, it
    is acknowledged before the carry is asked, so it is neither shed into the full carry (which would pause its
    subject again and have the gateway send it once more) nor held."""
    worker, link, _, _, to_segments = behind(tmp_path, store, live_segments=True)
    worker.jobs.live.holds = lambda segment: segment.subject != "B"  # type: ignore[method-assign]
    link.deliver(topic("B", "marker"), env.encode(marker("B", "window", 1_199)))
    worker.step(0)
    assert worker.shed_by_subject == {"B": 2} and worker.stats.windows_paused == 1
    assert link.acked_ids("B") == ["marker:s-B:window:pelvis=1199:"] and to_segments == []
    worker.close()


def test_the_payload_bytes_are_bounded_as_the_work_is(tmp_path: Path, store: Store) -> None:
    """Batches of one sample per packet hold more bytes than their work says: the bytes' bound sheds them too."""
    clock = Clock()
    link = ScriptedLink()
    down = DownStore(store)
    payloads = [env.encode(raw_batch("B", 100 * i, n_packets=100, samples_per_packet=1)) for i in range(20)]
    bound = sum(len(p) for p in payloads[:5])
    worker = make_worker(tmp_path, down, link, clock, max_carry_bytes=bound)  # type: ignore[arg-type]
    for p in payloads:
        link.deliver(raw_topic("B"), p)
    worker.step(0)
    assert worker.stats.shed_carry_full == 15
    assert (
        worker.stats.carry_peak_bytes == bound
        and worker.stats.carry_peak_work == 5 * 100 < worker.config.max_carry_work
    )
    worker.close()


@pytest.mark.slow
def test_a_worker_behind_a_real_broker_holds_its_bound_and_loses_nothing(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Real Mosquitto (the project's conf), the embedded store slowed by another process's write locks (held 0.8 s
    of every 0.85 s for 8 s: each raw write waits), FLOOD's gateway sending an 80-s backlog at once and KIT-A
    streaming: the worker falls behind. Its carry never holds more than twice its bound (without
    the bound it held what the broker handed over: at least the 100 deliveries of its Receive Maximum), what did
    not fit is shed, and once the locks stop every sample of both subjects is stored (every outbox emptied)."""
    bound = 2_000
    flood = kit_session(tmp_path, mosquitto.port, "FLOOD", seed=6, minutes=1.2, ack_timeout_s=2.0)
    sessions = [flood]
    stop = threading.Event()

    def lock_pulses(path: Path) -> None:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            while not stop.is_set():
                other.execute("BEGIN IMMEDIATE")
                time.sleep(0.8)
                other.execute("ROLLBACK")
                time.sleep(0.05)
        finally:
            other.close()

    try:
        stream(sessions, 80.0)  # published to nobody: it stays in the outbox, re-sent every 2 s
        store_path = tmp_path / "store.sqlite"
        # windows are shed for 3 s (not 40) after a shed: the gateways here send again every 2 s, not every 30
        config = {"max_carry_work": bound, "live_pause_after_shed_s": 3.0}
        with worker_thread(mosquitto.port, store_path, tmp_path / "q.sqlite", **config) as worker:
            pulses = threading.Thread(target=lock_pulses, args=(store_path,), daemon=True)
            pulses.start()
            sessions.append(kit_session(tmp_path, mosquitto.port, "KIT-A", seed=5, minutes=0.65, ack_timeout_s=2.0))
            t0 = time.monotonic()
            while time.monotonic() - t0 < 8.0:
                stream(sessions[1:], 0.2)
                time.sleep(0.2)
            stop.set()
            pulses.join(5)
            finish(sessions, timeout_s=120.0)
            stats = worker.stats
    finally:
        stop.set()
        stop_gateways(sessions)
    assert stats.store_retries == 0  # slowed, never refused: nothing went back to the carry
    assert stats.shed_carry_full > 0
    assert stats.carry_peak_work <= 2 * bound, stats.carry_peak_work
    assert_every_sample_stored(tmp_path / "store.sqlite", sessions)


def test_what_the_carry_holds_per_subject_and_sensor_stays_what_a_rebuild_gives() -> None:
    """The window markers waiting per subject and the raw ranges waiting per sensor boot are kept up to date as
    deliveries come and turns go (a worker catching up holds tens of thousands): always what a count over the
    carry's deliveries gives, in the carry's order."""
    rng = np.random.default_rng(16)
    carry = Carry(10**9, 10**12)
    seqs: dict[tuple[str, str], int] = {}
    for step in range(600):
        subject, placement = f"S{rng.integers(4)}", ("pelvis", "left_thigh")[int(rng.integers(2))]
        roll = rng.random()
        if roll < 0.6:
            first = seqs.get((subject, placement), 0)
            seqs[(subject, placement)] = first + 100
            message: env.Message = raw_batch(subject, first, placement=placement)
        elif roll < 0.9:
            message = marker(subject, "window", step)
        else:
            message = env.Gap("gap", f"g{step}", subject, "s", placement, "x", 7, step, step, 1.0, "packet_lost")
        carry.append(Admitted(Delivery("t", b"x", (1, step + 1)), message, subject, 100, float(step)))
        # the views are asked between changes, as the worker asks them (each rebuilt once, then kept up)
        if rng.random() < 0.5:
            carry.in_order()
            carry.ranges(("S0", "pelvis", "GS-SYN-1", 7))
        if rng.random() < 0.05:
            turn = carry.take_turn(int(rng.integers(100, 3_000)), int(rng.integers(100, 1_000)))
            if rng.random() < 0.3:
                carry.put_back(turn[: len(turn) // 2])
        expected_in_order: dict[str, int] = {}
        expected_ranges: dict[Any, list[tuple[int, int]]] = {}
        for a in carry:
            if isinstance(a.message, env.RawBatch):
                expected_ranges.setdefault(stream_key(a.message), []).append((a.message.seq_first, a.message.seq_last))
            else:
                expected_in_order[a.subject] = expected_in_order.get(a.subject, 0) + 1
        assert dict(carry.in_order()) == expected_in_order, step
        for key, ranges in expected_ranges.items():
            assert carry.ranges(key) == ranges, (step, key)
