"""A bundle (several of a subject's raw batches, gaps and markers in one MQTT message) is taken part by part, as if
each part had come alone: every part stored and acknowledged end to end by its own msg_id, a malformed part set
aside alone, and the bundle's MQTT message acknowledged to the broker once, after its last part."""

from __future__ import annotations

import json
from pathlib import Path

from analytics.stores import Store
from analytics.stores.errors import StoreUnavailable
from analytics.worker.budget import BudgetConfig
from analytics.worker.bundles import PartAcks
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import topic
from testing.worker.hostile import Clock, ScriptedLink, make_worker, raw_batch, raw_topic

BATCH = 100


def part(message: env.RawBatch | env.Gap | env.Marker, payload: bytes | None = None) -> env.BundlePart:
    placement = getattr(message, "placement", None)
    name = topic(message.subject, message.kind, placement if message.kind != "marker" else None)
    return env.BundlePart(name, env.encode(message) if payload is None else payload)


def bundle(subject: str, *parts: env.BundlePart) -> bytes:
    return env.encode(env.Bundle("bundle", subject, parts))


def three(subject: str, seq: int) -> list[env.RawBatch]:
    """One second of a subject's three sensors."""
    return [
        raw_batch(subject, seq, placement=p, serial=f"GS-{subject}-{p}")
        for p in ("left_thigh", "pelvis", "right_thigh")
    ]


def test_part_acks_acknowledge_the_bundle_once_after_its_last_part() -> None:
    link = ScriptedLink()
    acks = PartAcks(link)  # type: ignore[arg-type]
    acks.expect((1, 7), 3)
    acks.ack((1, 7, 2))
    acks.ack((1, 7, 2))  # twice: still one part
    acks.ack((1, 7, 0))
    assert link.acked == [] and acks.bundles_waiting == 1
    acks.ack((1, 8))  # a lone delivery passes through
    acks.ack((1, 7, 1))
    assert link.acked == [(1, 8), (1, 7)] and acks.bundles_waiting == 0
    acks.ack((1, 7, 1))  # after the bundle: nothing more
    assert link.acked == [(1, 8), (1, 7)]


def test_every_part_is_stored_and_acknowledged_by_its_own_msg_id(tmp_path: Path, store: Store) -> None:
    link = ScriptedLink()
    worker = make_worker(tmp_path, store, link, Clock())
    batches = three("A", 0)
    gap = env.Gap(
        "gap", env.gap_id("GS-A-pelvis", 7, BATCH), "A", None, "pelvis", "GS-A-pelvis", 7, 100, 109, 0.1, "packet_lost"
    )
    token = link.deliver(topic("A", "bundle"), bundle("A", *(part(b) for b in batches), part(gap)))
    lone = link.deliver(raw_topic("A"), env.encode(raw_batch("A", 110, serial="GS-A-pelvis")))
    worker.step(0)
    for b in batches:
        got = store.read_raw("A", b.placement, start_us=0)
        expected = list(range(BATCH)) + (list(range(110, 110 + BATCH)) if b.placement == "pelvis" else [])
        assert sorted(got.seq.tolist()) == expected
    assert [(g.seq_first, g.seq_last) for g in store.gaps("A", session=None)] == [(100, 109)]
    assert sorted(link.acked_ids("A")) == sorted(
        [b.msg_id for b in batches] + [gap.msg_id, env.raw_batch_id("GS-A-pelvis", 7, 110)]
    )
    assert sorted(link.acked) == sorted([token, lone])  # the bundle's message once, never its parts' tokens
    assert worker.stats.bundles == 1 and worker.stats.deliveries == 2
    worker.close()


def test_a_malformed_part_is_set_aside_alone(tmp_path: Path, store: Store) -> None:
    """A part that does not decode (a packet's CRC broken, a payload not JSON) is quarantined by itself; the
    other parts are stored and acknowledged, and the bundle's message is acknowledged to the broker."""
    link = ScriptedLink()
    worker = make_worker(tmp_path, store, link, Clock())
    good, bad_crc, _ = three("A", 0)
    doc = json.loads(env.encode(bad_crc))
    doc["packets"][0] = doc["packets"][0][:-4] + ("AAAA" if not doc["packets"][0].endswith("AAAA") else "BBBB")
    broken = json.dumps(doc, separators=(",", ":")).encode()
    not_json = env.BundlePart(topic("A", "marker"), b"{not json")
    token = link.deliver(topic("A", "bundle"), bundle("A", part(good), part(bad_crc, broken), not_json))
    worker.step(0)
    assert sorted(store.read_raw("A", good.placement, start_us=0).seq.tolist()) == list(range(BATCH))
    assert len(store.read_raw("A", bad_crc.placement, start_us=0).seq) == 0
    assert link.acked_ids("A") == [good.msg_id]
    assert worker.stats.malformed == 2 and link.acked == [token]
    kept = {e.what: e.lines for e in worker.quarantine.entries()}
    assert kept == {  # each part alone, its own topic and payload
        f"mqtt topic={topic('A', 'raw', bad_crc.placement)}": (broken.decode(),),
        f"mqtt topic={topic('A', 'marker')}": ("{not json",),
    }
    worker.close()


def test_a_malformed_bundle_is_set_aside_whole(tmp_path: Path, store: Store) -> None:
    link = ScriptedLink()
    worker = make_worker(tmp_path, store, link, Clock())
    other = part(raw_batch("B", 0))  # a part of another subject: the bundle is not A's to send
    token = link.deliver(
        topic("A", "bundle"),
        json.dumps(
            {
                "v": 1,
                "kind": "bundle",
                "subject": "A",
                "parts": [{"topic": other.topic, "payload": other.payload.decode()}],
            }
        ).encode(),
    )
    worker.step(0)
    assert len(store.read_raw("B", "pelvis", start_us=0).seq) == 0 and link.acked_ids("B") == []
    assert worker.stats.malformed == 1 and link.acked == [token]
    worker.close()


def test_the_bundle_waits_for_its_marker_part(tmp_path: Path, store: Store) -> None:
    """A marker part whose segment waits for samples holds the bundle's broker acknowledgement, as a lone marker's
    is held (the broker sends it again to a worker that dies meanwhile); the raw parts are acknowledged end to end
    as soon as they are stored."""
    link = ScriptedLink()
    clock = Clock()
    worker = make_worker(tmp_path, store, link, clock)
    batches = three("A", 0)
    position = {b.placement: env.SensorPosition(b.sensor.serial, 7, 2 * BATCH - 1) for b in batches}
    end = env.Marker("marker", "marker:s-A:session_end:2", "A", "s-A", "session_end", None, position)
    token = link.deliver(topic("A", "bundle"), bundle("A", *(part(b) for b in batches), part(end)))
    worker.step(0)
    assert sorted(link.acked_ids("A")) == sorted(b.msg_id for b in batches)
    assert link.acked == [] and worker.jobs.pending  # the session end waits for samples 100..199
    for b in three("A", BATCH):
        link.deliver(raw_topic("A", b.placement), env.encode(b))
    for _ in range(5):
        clock.t += 1.0
        worker.step(0)
    assert not worker.jobs.pending and token in link.acked and end.msg_id in link.acked_ids("A")
    worker.close()


def test_a_bundles_bytes_are_charged_once_and_its_parts_work_each(tmp_path: Path, store: Store) -> None:
    """The byte budget sees the bundle's payload (shed whole past it); the work budget sees each part (the parts
    past it shed, the others stored, the bundle acknowledged to the broker once); a malformed part costs the work
    of a malformed message, so a bundle of them cannot flood the quarantine."""
    link = ScriptedLink()
    clock = Clock()
    one = bundle("A", *(part(b) for b in three("A", 0)))
    worker = make_worker(tmp_path, store, link, clock, budget=BudgetConfig(bytes_burst=1.5 * len(one), work_burst=250))
    first = link.deliver(topic("A", "bundle"), one)
    second = link.deliver(topic("A", "bundle"), bundle("A", *(part(b) for b in three("A", BATCH))))
    worker.step(0)
    # the first bundle: three parts of 100 samples against a burst of 250, the third shed; the second: past the bytes
    assert first in link.acked and second in link.acked and worker.stats.shed == 2
    stored = [len(store.read_raw("A", p, start_us=0).seq) for p in ("left_thigh", "pelvis", "right_thigh")]
    assert stored == [BATCH, BATCH, 0] and len(link.acked_ids("A")) == 2
    clock.t += 1_000.0  # the buckets full again
    junk = [env.BundlePart(topic("A", "marker"), b"{junk %d" % i) for i in range(3)]
    third = link.deliver(topic("A", "bundle"), bundle("A", *junk))
    worker.step(0)
    assert third in link.acked and worker.stats.malformed == 1 and worker.stats.shed == 4  # 5,000 work each


def test_a_marker_part_given_up_frees_its_bundle(tmp_path: Path, store: Store) -> None:
    """A session end that waited in the carry through a long store outage is given up on its first failed analysis
    (`defer_for_s`: the gateway sends it again); its broker acknowledgement goes with it, so the bundle's MQTT
    message is acknowledged and its slot of the broker's in-flight window freed."""
    link = ScriptedLink()
    clock = Clock()
    down = GapStoreDown(store)
    worker = make_worker(tmp_path, down, link, clock)
    batches = three("A", 0)
    gap = env.Gap(
        "gap", env.gap_id("GS-A-pelvis", 7, BATCH), "A", None, "pelvis", "GS-A-pelvis", 7, 100, 109, 0.1, "packet_lost"
    )
    position = {b.placement: env.SensorPosition(b.sensor.serial, 7, 2 * BATCH - 1) for b in batches}
    end = env.Marker("marker", "marker:s-A:session_end:2", "A", "s-A", "session_end", None, position)
    token = link.deliver(topic("A", "bundle"), bundle("A", *(part(b) for b in batches), part(gap), part(end)))
    for _ in range(70):  # the gap (and the end behind it) kept in the carry for 700 s
        clock.t += 10.0
        worker.step(0)
    down.down = False
    for _ in range(10):
        clock.t += 10.0
        worker.step(0)
    assert not worker.jobs.pending and token in link.acked and worker.link.bundles_waiting == 0
    assert end.msg_id not in link.acked_ids("A")  # not analysed: left to the gateway's re-send
    worker.close()


def test_bundles_of_an_older_connection_are_forgotten() -> None:
    """A PUBACK on a connection that is gone goes nowhere (the broker sends its bundles again on the new one, with new
    tokens): what they still wait for is dropped once a bundle comes on a newer connection."""
    link = ScriptedLink()
    acks = PartAcks(link)  # type: ignore[arg-type]
    acks.expect((1, 7), 2)
    acks.ack((1, 7, 0))
    acks.expect((2, 7), 2)
    assert acks.bundles_waiting == 1
    acks.ack((1, 7, 1))
    assert link.acked == []
    acks.ack((2, 7, 0))
    acks.ack((2, 7, 1))
    assert link.acked == [(2, 7)]


class GapStoreDown:
    """A store whose gap writes fail (unavailable) until ``down`` is False; everything else as the store it wraps."""

    def __init__(self, store: Store) -> None:
        self.store, self.down = store, True

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def write_gap(self, *args: object, **kwargs: object) -> object:
        if self.down:
            raise StoreUnavailable("down for the test", retry_after_s=1.0)
        return self.store.write_gap(*args, **kwargs)
