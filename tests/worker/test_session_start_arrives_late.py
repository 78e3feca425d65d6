"""A session whose first batches reach the worker after its ``session_end`` is analysed final on all of its data.

What the production gateway core (virtual kit, a walk) publishes is replayed into a turn-level worker (scripted link,
the real embedded store) as a broker hands it to a worker that subscribed late: the session's first 10 s (and
everything before them) are missing, the rest comes in order up to the ``session_end``; then, as the gateway's
outbox re-sends what was never acknowledged end to end (after its ack timeout, 30 s), the early messages come, the
``session_end`` again among them. The session's final results must be the ones the whole session gives (the same
as a worker that got everything in order), never the truncated start's; the ``session_end`` is acknowledged end
to end only then.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from analytics.stores import Store, open_store
from analytics.worker.decode import batch_samples
from analytics.worker.errors import SegmentIncomplete
from analytics.worker.segments import FINAL_VERSION, START_WAIT_S, Segment, check_complete
from analytics.worker.worker import Worker
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import parse_topic, topic
from sensor_gateway.core import Gateway, GatewayConfig, run_for
from sensor_gateway.outbox import Outbox
from sensor_gateway.timing import VirtualHostClock
from simulator.virtual_kit_source import virtual_kit
from testing.gateway.loopback import LoopbackLink
from testing.worker.hostile import Clock, ScriptedLink, make_worker, raw_batch

SUBJECT = "LATE1"
UTC0 = 1_800_000_000.0
LATE_S = 10.0
"""How much of the session's start the late worker misses, s."""
ACK_TIMEOUT_S = 30.0
"""When the gateway re-sends what was not acknowledged end to end (`GatewayConfig.ack_timeout_s`), s."""

Published = list[tuple[str, bytes, env.Message]]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    """Every durable message the gateway published for one walking session, in order (its end included)."""
    tmp = tmp_path_factory.mktemp("gateway")
    clock = VirtualHostClock(start_s=1000.0, utc_at_start_s=UTC0)
    kit = virtual_kit(clock, seed=5, minutes=0.75, script="walk")
    link = LoopbackLink(SUBJECT)
    config = GatewayConfig(subject=SUBJECT, window_s=5.0)
    gateway = Gateway(config, kit.transport, link, Outbox(tmp / "outbox.db", synchronous="NORMAL"), clock)
    gateway._rng = random.Random(5)
    gateway.start()
    while not kit.transport.exhausted:
        run_for(gateway, kit.transport, clock, 5.0, tick_s=0.05)
    gateway.stop()  # closes the last batches, then the session
    return [(t, p, env.decode(p)) for t, p in link.published if parse_topic(t).kind in ("raw", "gap", "marker")]


def _session_end(published: Published) -> env.Marker:
    (end,) = [m for _, _, m in published if isinstance(m, env.Marker) and m.type == "session_end"]
    return end


def _late_from(published: Published) -> int:
    """Index of the first message the late worker gets: the first batch past the session's first LATE_S."""
    end = _session_end(published)
    for i, (_, _, m) in enumerate(published):
        if isinstance(m, env.RawBatch) and m.session == end.session and m.placement == "pelvis":
            first = end.last_seq["pelvis"].session_seq_first
            if first is not None and m.seq_first >= first + LATE_S * m.sensor.sample_rate_hz:
                return i
    raise AssertionError("the session is shorter than what the late worker misses")


def _late_worker(tmp_path: Path) -> tuple[Store, ScriptedLink, Clock, Worker]:
    """A turn-level worker on a new embedded store, with its scripted link and clock."""
    store = open_store(str(tmp_path / "store.sqlite"))
    link, clock = ScriptedLink(), Clock()
    return store, link, clock, make_worker(tmp_path, store, link, clock)


def _deliver_late(link: ScriptedLink, published: Published, end_payload: bytes) -> None:
    """What the late worker gets: everything from the first batch past the session's first LATE_S, the session's
    end as ``end_payload``."""
    end = _session_end(published)
    for t, p, m in published[_late_from(published) :]:
        link.deliver(t, end_payload if m == end else p)


def _turns(worker: Worker, clock: Clock, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
    """Worker turns, its clock moving 0.5 s each, for ``seconds`` or until ``until()``."""
    for _ in range(round(seconds / 0.5)):
        worker.step(0.0)
        if until():
            return
        clock.t += 0.5


def _final(store: Store) -> tuple[dict[str, dict[str, int]], list[tuple[str, int, dict[str, str], dict[str, object]]]]:
    """The session's final results: the clock provenance of its summary (placement -> seq_first, seq_last), and
    every result point (measurement, time, tags, fields)."""
    rows = store.read_results(SUBJECT)
    summaries = [r for r in rows if r.measurement == "session_summary" and r.tags.get("side") == "none"]
    assert len(summaries) == 1, [r.measurement for r in rows]
    assert summaries[0].fields["result_version"] == FINAL_VERSION
    clock = json.loads(str(summaries[0].fields["clock"]))
    provenance = {p: {k: int(c[k]) for k in ("seq_first", "seq_last")} for p, c in clock.items()}
    return provenance, [(r.measurement, r.time_us, dict(r.tags), dict(r.fields)) for r in rows]


def _in_order(tmp_path: Path, published: Published) -> list[tuple[str, int, dict[str, str], dict[str, object]]]:
    """What a worker that got every message in order stores (the reference)."""
    store = open_store(str(tmp_path / "in-order.sqlite"))
    link, clock = ScriptedLink(), Clock()
    worker = make_worker(tmp_path / "in-order", store, link, clock)
    for t, p, _ in published:
        link.deliver(t, p)
    _turns(worker, clock, 60.0, until=lambda: not worker.busy)
    try:
        return _final(store)[1]
    finally:
        store.close()


def test_a_session_whose_start_arrives_after_its_end_is_analysed_final_on_all_of_it(
    tmp_path: Path, published: Published
) -> None:
    end = _session_end(published)
    firsts = {p: pos.session_seq_first for p, pos in end.last_seq.items()}
    assert None not in firsts.values()  # the gateway names where the session starts
    late = _late_from(published)

    store = open_store(str(tmp_path / "store.sqlite"))
    link, clock = ScriptedLink(), Clock()
    worker = make_worker(tmp_path, store, link, clock)
    for t, p, _ in published[late:]:  # the late worker: the session's first 10 s were dropped by the broker
        link.deliver(t, p)
    _turns(worker, clock, ACK_TIMEOUT_S)
    assert not [r for r in store.read_results(SUBJECT) if r.measurement == "session_summary"], (
        "a final result from a session's truncated start"
    )
    assert end.msg_id not in link.acked_ids(SUBJECT)

    resent = [(t, p) for t, p, m in published[:late]] + [(t, p) for t, p, m in published if m == end]
    for t, p in resent:  # the gateway's re-send of what was never acknowledged end to end, oldest first
        link.deliver(t, p)
    _turns(worker, clock, 120.0, until=lambda: end.msg_id in link.acked_ids(SUBJECT))
    assert end.msg_id in link.acked_ids(SUBJECT)
    provenance, results = _final(store)
    store.close()
    # from the session's first sample of each sensor to its last, and the same results as in order
    assert {p: c["seq_first"] for p, c in provenance.items()} == firsts
    assert {p: c["seq_last"] for p, c in provenance.items()} == {p: pos.seq for p, pos in end.last_seq.items()}
    assert results == _in_order(tmp_path, published)


def test_a_session_end_without_its_start_from_an_older_gateway_is_analysed_as_before(
    tmp_path: Path, published: Published
) -> None:
    """A gateway that does not name the session's first samples: the worker starts at the first batch it holds."""
    end = _session_end(published)
    old_end = json.loads(next(p for _, p, m in published if m == end))
    for position in old_end["last_seq"].values():
        del position["session_seq_first"]
    store, link, clock, worker = _late_worker(tmp_path)
    _deliver_late(link, published, json.dumps(old_end).encode())
    _turns(worker, clock, 60.0, until=lambda: end.msg_id in link.acked_ids(SUBJECT))
    provenance, _ = _final(store)
    store.close()
    firsts = {p: pos.session_seq_first for p, pos in end.last_seq.items()}
    assert all(provenance[p]["seq_first"] > first for p, first in firsts.items() if first is not None)


def test_a_session_end_waits_for_the_session_start_it_names_unless_the_retention_may_have_deleted_it(
    tmp_path: Path,
) -> None:
    store = open_store(str(tmp_path / "store.sqlite"))
    store.write_raw_many([batch_samples(raw_batch(SUBJECT, seq)) for seq in (1100, 1200)])  # 1000..1099 not yet
    named = env.SensorPosition("GS-SYN-1", 7, 1299, session_seq_first=1000)
    unnamed = env.SensorPosition("GS-SYN-1", 7, 1299)

    def segment(pos: env.SensorPosition, kind: str = "session", ended_s_ago: float = 60.0) -> Segment:
        return Segment(SUBJECT, "s1", kind, "m1", {"pelvis": pos}, t_utc_s=time.time() - ended_s_ago)

    with pytest.raises(SegmentIncomplete) as info:
        check_complete(store, segment(named))
    assert info.value.missing == 100
    assert check_complete(store, segment(unnamed)) == {"pelvis": (1100, [])}  # an older gateway: as before
    assert check_complete(store, segment(named, "window")) == {"pelvis": (1100, [])}  # only the session's end
    kept_s = store.raw_kept_for_s()
    assert kept_s is not None
    old = segment(named, ended_s_ago=kept_s)  # its start, if ever stored, is deleted by now: not waited for
    assert check_complete(store, old) == {"pelvis": (1100, [])}
    with pytest.raises(SegmentIncomplete):  # re-sends come every 30 s: waited for a while
        check_complete(store, segment(named, ended_s_ago=START_WAIT_S - 60.0))
    # a start never stored an hour after the session's end (its batch refused as malformed, say) is not waited for
    # forever: the analysis takes the first batch stored, as for a gateway that names no start
    assert check_complete(store, segment(named, ended_s_ago=START_WAIT_S + 60.0)) == {"pelvis": (1100, [])}
    # a session end without UTC (an unsynchronised gateway clock) has no age of its own: it waits as long from when
    # the worker took it
    no_utc = Segment(SUBJECT, "s1", "session", "m1", {"pelvis": named}, t_utc_s=None)
    with pytest.raises(SegmentIncomplete):
        check_complete(store, no_utc, waited_s=START_WAIT_S - 60.0)
    assert check_complete(store, no_utc, waited_s=START_WAIT_S + 60.0) == {"pelvis": (1100, [])}
    store.write_raw_many([batch_samples(raw_batch(SUBJECT, 1000))])
    assert check_complete(store, segment(named)) == {"pelvis": (1000, [])}
    store.close()


def test_a_session_end_without_utc_whose_start_never_comes_is_analysed_after_the_wait(
    tmp_path: Path, published: Published
) -> None:
    """The session's first 10 s never reach this worker and its end carries no UTC: the worker waits for the
    start it names for ``START_WAIT_S`` of holding the end, then analyses from the first batch it has."""
    end = _session_end(published)
    no_utc = json.loads(next(p for _, p, m in published if m == end))
    del no_utc["t_utc_s"]
    resend = json.dumps(no_utc).encode()
    store, link, clock, worker = _late_worker(tmp_path)
    _deliver_late(link, published, resend)
    topic = next(t for t, _, m in published if m == end)
    taken_s = clock.t
    _turns(worker, clock, ACK_TIMEOUT_S)
    assert end.msg_id not in link.acked_ids(SUBJECT)  # waits for the start it names
    while clock.t + 400.0 - taken_s < START_WAIT_S:  # deferred, given up, re-sent by the gateway: still waits
        clock.t += 300.0
        link.deliver(topic, resend)
        _turns(worker, clock, 2.0)
    assert end.msg_id not in link.acked_ids(SUBJECT)
    clock.t += 8 * ACK_TIMEOUT_S
    link.deliver(topic, resend)
    _turns(worker, clock, 120.0, until=lambda: end.msg_id in link.acked_ids(SUBJECT))
    assert end.msg_id in link.acked_ids(SUBJECT)
    provenance, _ = _final(store)
    store.close()
    firsts = {p: pos.session_seq_first for p, pos in end.last_seq.items()}
    assert all(provenance[p]["seq_first"] > first for p, first in firsts.items() if first is not None)


def test_another_subjects_session_end_with_the_same_id_does_not_shorten_the_wait(
    tmp_path: Path, published: Published
) -> None:
    """Marker ids are the sender's strings: a session end of another subject carrying this session end's id, held
    long before it, must not count toward this one's wait for its start."""
    end = _session_end(published)
    no_utc = json.loads(next(p for _, p, m in published if m == end))
    del no_utc["t_utc_s"]
    other = dict(no_utc, subject="OTHER1")
    store, link, clock, worker = _late_worker(tmp_path)
    link.deliver(topic("OTHER1", "marker"), json.dumps(other).encode())
    _turns(worker, clock, 2.0)
    clock.t += START_WAIT_S - 600.0
    resend = json.dumps(no_utc).encode()
    end_topic = next(t for t, _, m in published if m == end)
    _deliver_late(link, published, resend)
    _turns(worker, clock, ACK_TIMEOUT_S)
    clock.t += 900.0  # the other end has been held over an hour, this one a quarter of it
    link.deliver(end_topic, resend)
    _turns(worker, clock, 10.0)
    assert end.msg_id not in link.acked_ids(SUBJECT)
    store.close()
