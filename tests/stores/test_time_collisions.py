"""A raw sample is identified by (subject, serial, boot epoch, sequence), not by its point: a new sample mapped onto
a point (subject, placement, time) that holds another sample is refused and reported (quarantined with both
identities and the time named, recorded as a gap), never written over it; the same sample again is an idempotent
rewrite. Every test runs on the three stores (embedded, InfluxDB v1, InfluxDB v2 through the stand-in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from conftest import v2_store
from http_standin import StandIn

from analytics.stores import Store
from analytics.stores.model import TIME_COLLISION, RawSamples, samples_from_arrays
from analytics.worker.segments import coverage
from gaitsym_common.uplink.envelope import ClockMapping
from testing.stores.storelib import T0_UTC_S, batch, new_subject

T0_US = round(T0_UTC_S * 1e6)
SERIAL = "GS24-0001"


def mapping(back_us: int = 0) -> ClockMapping:
    """Rate 1: sample ``seq`` of `storelib.batch` maps to ``T0_US + seq·10 ms − back_us`` (a fit moved back)."""
    return ClockMapping(True, 5_000_000 + back_us, T0_UTC_S, 1.0, 0.0, 0.8)


def first_and_stepped_back(subject: str) -> tuple[RawSamples, RawSamples]:
    """seq 0..99, then seq 100..199 mapped 30 ms back: 100, 101, 102 land exactly on 97, 98, 99."""
    return batch(subject, seq_first=0, clock=mapping()), batch(subject, seq_first=100, clock=mapping(30_000))


def quarantine(store: Store) -> Any:
    return store.quarantine  # type: ignore[attr-defined]


def test_a_later_batch_mapped_onto_stored_points_is_refused_and_reported_first_samples_intact(store: Store) -> None:
    subject = new_subject()
    first, second = first_and_stepped_back(subject)
    assert store.write_raw(first).collisions == []
    report = store.write_raw(second)

    assert [(c.time_us - T0_US, c.stored, c.refused) for c in report.collisions] == [
        (970_000 + 10_000 * k, (SERIAL, 42, 97 + k), (SERIAL, 42, 100 + k)) for k in range(3)
    ]
    got = store.read_raw(subject, "pelvis")
    assert got.seq.tolist() == [*range(100), *range(103, 200)]  # the stored samples intact, the rest of the batch in
    np.testing.assert_array_equal(got.time_us[97:100] - T0_US, [970_000, 980_000, 990_000])
    np.testing.assert_array_equal(got.acc_mps2[:100], first.acc_mps2)

    # reported: a gap the completeness check accounts for, and the refused samples kept with both identities named
    assert [(g.seq_first, g.seq_last, g.reason) for g in report.gaps] == [(100, 102, TIME_COLLISION)]
    index = store.raw_index(subject, "pelvis", SERIAL, 42, 0, 199)
    assert (100, 102) in index.gaps and coverage(0, 199, index) == (0, [(100, 102)])
    (entry,) = quarantine(store).entries()
    assert len(entry.lines) == 3 and report.quarantined == [entry.what]
    assert f"subject={subject} placement=pelvis time_us={T0_US + 970_000}" in entry.reason
    assert f"holds serial={SERIAL} boot_epoch=42 seq=97, refused serial={SERIAL} boot_epoch=42 seq=100" in entry.reason


def test_the_same_sample_written_again_is_idempotent_and_reports_nothing(store: Store) -> None:
    subject = new_subject()
    first, second = first_and_stepped_back(subject)
    for _ in range(2):
        assert store.write_raw_many([first]).collisions == []
    assert len(quarantine(store)) == 0
    store.write_raw(second)
    again = store.write_raw(second)  # a replay of the refused batch: refused again, nothing overwritten
    assert [c.refused[2] for c in again.collisions] == [100, 101, 102]
    got = store.read_raw(subject, "pelvis")
    assert got.seq.tolist() == [*range(100), *range(103, 200)]
    assert store.raw_progress(subject, "pelvis", SERIAL, 42).seq_last == 199


def test_another_subjects_samples_at_the_same_times_are_not_collisions_nor_affected(store: Store) -> None:
    mine, other = new_subject(), new_subject()
    first, second = first_and_stepped_back(mine)
    store.write_raw(first)
    theirs = batch(other, seq_first=0, clock=mapping(), serial="GS24-0002", boot_epoch=7)
    report = store.write_raw(theirs)  # the very same times, another subject
    assert report.collisions == [] and report.quarantined == []
    assert store.write_raw(batch(mine, seq_first=0, clock=mapping(), placement="left_thigh")).collisions == []
    assert {c.subject for c in store.write_raw(second).collisions} == {mine}
    assert store.read_raw(mine, "pelvis").seq.tolist() == [*range(100), *range(103, 200)]
    got = store.read_raw(other, "pelvis")
    assert got.seq.tolist() == list(range(100)) and set(got.serial) == {"GS24-0002"}
    np.testing.assert_array_equal(got.time_us, first.time_us())
    assert store.raw_index(other, "pelvis", "GS24-0002", 7, None, 99).gaps == ()


def test_overlapping_batches_in_one_call_and_times_repeated_in_one_batch_are_refused(store: Store) -> None:
    subject = new_subject()
    first, second = first_and_stepped_back(subject)
    report = store.write_raw_many([first, second])  # one worker turn: the earlier batch wins
    assert [c.refused[2] for c in report.collisions] == [100, 101, 102]
    assert store.read_raw(subject, "pelvis").seq.tolist() == [*range(100), *range(103, 200)]

    # within one batch the mapped times must strictly increase: a tick repeated maps to a point already taken
    ticks = 9_000_000 + np.arange(10) * 10_000
    ticks[5] = ticks[4]
    repeated = samples_from_arrays(
        subject=subject,
        session="S1",
        placement="right_thigh",
        serial=SERIAL,
        boot_epoch=42,
        seq=np.arange(500, 510),
        t_sensor_us=ticks,
        acc_mps2=np.ones((10, 3)),
        gyr_dps=np.zeros((10, 3)),
        clock=mapping(),
    )
    report = store.write_raw(repeated)
    assert [(c.stored[2], c.refused[2]) for c in report.collisions] == [(504, 505)]
    assert store.read_raw(subject, "right_thigh").seq.tolist() == [500, 501, 502, 503, 504, 506, 507, 508, 509]
    assert coverage(500, 509, store.raw_index(subject, "right_thigh", SERIAL, 42, 500, 509))[0] == 0


def test_influxdb_checks_a_whole_call_in_one_query(standin: StandIn, tmp_path: Path) -> None:
    """Cost: one read per write call (not per batch), answered empty for new data."""
    store = v2_store(standin, tmp_path)
    a, b = new_subject(), new_subject()
    batches = [batch(a, seq_first=k * 100) for k in range(3)] + [batch(b, seq_first=0, placement="left_thigh")]
    standin.requests.clear()
    report = store.write_raw_many(batches)
    paths = [r.path for r in standin.requests]
    assert paths == ["/query", "/api/v2/write", "/api/v2/write"] and report.collisions == []
    store.close()


# ------------------------------------------------------------------------------------------ through the worker


def uplink_batch(subject: str, seq_first: int, back_us: int) -> tuple[str, bytes]:
    """A raw batch as a gateway publishes it: 10 packets of 10 samples at 100 Hz, rate-1 mapping moved back."""
    from firmware_protocol.packet import ImuPacket, encode_packet
    from gaitsym_common.uplink import envelope as env
    from gaitsym_common.uplink.topics import topic

    packets = tuple(
        encode_packet(
            ImuPacket(
                sequence=seq_first + 10 * k,
                timestamp_us=(seq_first + 10 * k) * 10_000,
                acc_range_g=16,
                gyr_range_dps=2000,
                samples=((100 * k, 0, 2048, 0, 0, 0),) * 10,
            )
        )
        for k in range(10)
    )
    clock = env.ClockMapping(True, back_us, T0_UTC_S, 1.0, 0.0, 0.5)
    sensor = env.SensorIdentity(SERIAL, 42, 100.0, 16, 2000, "1.0.0")
    message = env.RawBatch(
        "raw",
        env.raw_batch_id(SERIAL, 42, seq_first),
        subject,
        "S1",
        "pelvis",
        sensor,
        seq_first,
        seq_first + 99,
        100,
        seq_first * 10_000,
        clock,
        packets,
    )
    return topic(subject, "raw", "pelvis"), env.encode(message)


def test_the_worker_acknowledges_a_colliding_batch_and_caches_only_what_was_stored(tmp_path: Path) -> None:
    """A third-party gateway's fit stepping back 30 ms between batches: every sample ends stored or reported."""
    from analytics.stores.embedded import EmbeddedStore
    from gaitsym_common.uplink import envelope as env
    from testing.worker.hostile import ScriptedLink, make_worker

    subject = new_subject()
    link = ScriptedLink()
    store = EmbeddedStore(tmp_path / "store.sqlite")
    worker = make_worker(tmp_path, store, link, clock=lambda: 1000.0, worker_id="w")
    tokens = []
    for seq_first, back_us in [(0, 0), (100, 30_000)]:
        tokens.append(link.deliver(*uplink_batch(subject, seq_first, back_us)))
        worker.step(timeout_s=0.0)
    assert sorted(link.acked) == tokens
    acked = {i for _, payload in link.published for i in getattr(env.decode(payload), "msg_ids", ())}
    assert acked == {env.raw_batch_id(SERIAL, 42, 0), env.raw_batch_id(SERIAL, 42, 100)}
    got = store.read_raw(subject, "pelvis")
    assert got.seq.tolist() == [*range(100), *range(103, 200)]
    np.testing.assert_array_equal(got.time_us[97:100] - T0_US, [970_000, 980_000, 990_000])
    assert store.raw_index(subject, "pelvis", SERIAL, 42, 0, 199).gaps == ((100, 102),)
    stream = worker.ingest.streams[(subject, "pelvis", SERIAL, 42)]
    cached = stream.series(SERIAL, 42, 0, 199)
    assert cached is not None and cached.seq.tolist() == [*range(100), *range(103, 200)]
    index = stream.index(0, 199)
    assert index is not None and coverage(0, 199, index) == (0, [(100, 102)])
    worker.close()


def test_the_check_reads_only_around_a_batchs_own_times() -> None:
    """A batch whose times were mapped far apart is looked up span by span, never everything in between."""
    from analytics.stores.model import time_spans

    one_second = T0_US + np.arange(100) * 10_000
    assert time_spans(one_second) == [(T0_US, T0_US + 990_000)]
    scattered = [5, 3_600_000_000, 0, 20_000, 3_600_010_000]
    assert time_spans(scattered) == [(0, 20_000), (3_600_000_000, 3_600_010_000)]
    assert time_spans([]) == []
