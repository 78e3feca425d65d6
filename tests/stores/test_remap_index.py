"""Moving a sensor boot's samples to UTC moves its batch index with them, alike in every store: each batch is
indexed once, at the time its samples now have, with what only its index knew (message id, session, what the
sensor declared), and another sensor's points that shared the sensor-time slot stay as they were."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from analytics.stores import Store
from analytics.stores.embedded import EmbeddedStore
from analytics.stores.export_reads import BatchRecord
from analytics.stores.influx import InfluxStore
from analytics.stores.model import RawProgress, RawSamples, raw_time_us, sensor_slot_start_us
from analytics.stores.raw_remap import Move, declared_sensor, delete_ranges, moved_index, record_point, remapped_batches
from analytics.stores.write_report import WriteReport
from analytics.worker.segments import coverage
from export.tables import batch_rows
from gaitsym_common.uplink.envelope import ClockMapping, SensorIdentity
from testing.stores.storelib import T0_UTC_S, batch, new_subject, synced_clock, unsynced_clock

DAY_US = 86_400_000_000


def _declared(b: RawSamples, firmware: str = "1.4.2") -> RawSamples:
    return replace(b, sensor=SensorIdentity(b.serial, b.boot_epoch, 100.0, 8, 1000, firmware))


def _unsynced_boot(subject: str) -> tuple[list[RawSamples], RawSamples]:
    """Boot 7 of GS24-0001: two declared batches of session S1, then one of S2 (no firmware declared); and boot
    7 + 4096 of GS24-0002, which shares boot 7's sensor-time slot, its ticks an hour later."""
    mine = [
        _declared(batch(subject, seq_first=0, n=60, boot_epoch=7, clock=unsynced_clock())),
        _declared(batch(subject, seq_first=60, n=60, boot_epoch=7, clock=unsynced_clock())),
        _declared(batch(subject, seq_first=120, n=40, boot_epoch=7, clock=unsynced_clock(), session="S2"), ""),
    ]
    other = batch(
        subject,
        n=50,
        serial="GS24-0002",
        boot_epoch=7 + 4096,
        clock=unsynced_clock(),
        t_sensor_first_us=3_600_000_000,
    )
    return mine, other


def _state(store: Store, subject: str) -> tuple[object, ...]:
    got = store.read_raw(subject, "pelvis")
    return (
        store.raw_progress(subject, "pelvis", "GS24-0001", 7),
        store.raw_progress(subject, "pelvis", "GS24-0002", 7 + 4096),
        store.raw_batches(subject),
        got.time_us.tolist(),
        got.seq.tolist(),
    )


def test_remap_moves_the_index_with_the_samples(store: Store) -> None:
    subject = new_subject()
    mine, other = _unsynced_boot(subject)
    for b in [*mine, other]:
        assert store.write_raw(b).quarantined == []
    other_before = [b for b in store.raw_batches(subject) if b.serial == "GS24-0002"]
    clock = synced_clock()

    assert store.remap_raw(subject, "pelvis", "GS24-0001", 7, clock) == 160

    # counted once: the sensor-time index of boot 7 is gone, its UTC index holds the same batches
    assert store.raw_progress(subject, "pelvis", "GS24-0001", 7) == RawProgress(3, 160, 0, 159)
    assert store.count_raw(subject, "pelvis", "GS24-0001", 7, 0, 159) == 160
    batches = store.raw_batches(subject)
    moved = [b for b in batches if b.serial == "GS24-0001"]
    assert [(b.msg_id, b.session, b.seq_first, b.seq_last, b.n_samples) for b in moved] == [
        (b.msg_id, b.session, int(b.seq[0]), int(b.seq[-1]), len(b)) for b in mine
    ]
    for record, sent in zip(moved, mine, strict=True):
        times = raw_time_us(sent.t_sensor_us, clock, 7)
        assert (record.time_us, record.time_last_us) == (int(times[0]), int(times[-1]))
        # placed by the synchronised mapping, and said to have been moved (sent without one)
        assert record.clock == clock and record.moved_to_utc
        assert record.t_sensor_us_first == int(sent.t_sensor_us[0])
        assert declared_sensor(record) == sent.sensor
    assert moved[2].firmware is None  # not declared: still not stored
    rows = batch_rows(moved, with_serials=True)  # what a researcher's export lists for them
    assert [(r["utc_synced"], r["time_first_utc_us"], r["msg_id"]) for r in rows] == [
        (False, b.time_us, b.msg_id) for b in moved
    ]
    # the other sensor's samples and index, which shared the slot, are as they were
    assert [b for b in batches if b.serial == "GS24-0002"] == other_before
    got = store.read_raw(subject, "pelvis")
    assert got.seq[got.time_us < 0].tolist() == list(range(50))
    np.testing.assert_array_equal(
        got.time_us[got.time_us >= 0], raw_time_us(np.concatenate([b.t_sensor_us for b in mine]), clock, 7)
    )

    # found by its UTC day, as a session stored in UTC from the start is
    day = round(T0_UTC_S * 1e6) // DAY_US * DAY_US
    found = {s.session: s for s in store.raw_sessions(day - DAY_US, day + 2 * DAY_US - 1, subject=subject)}
    assert set(found) == {"S1", "S2"}
    assert found["S1"].first_us == int(raw_time_us(mine[0].t_sensor_us[:1], clock, 7)[0])

    # a second remap finds nothing to move and changes nothing
    before = _state(store, subject)
    assert store.remap_raw(subject, "pelvis", "GS24-0001", 7, clock) == 0
    assert _state(store, subject) == before


def test_a_remap_rerun_after_an_interrupted_one_leaves_each_batch_indexed_once(store: Store) -> None:
    """The UTC samples and index are written before the sensor-time slot is cleared: interrupted in between, both
    copies stand; the rerun writes the same UTC points again and clears the slot."""
    subject = new_subject()
    mine, _ = _unsynced_boot(subject)
    for b in mine:
        store.write_raw(b)
    clock = synced_clock()
    store.write_raw_many([replace(b, clock=clock) for b in mine])  # what the interrupted remap wrote
    assert store.raw_progress(subject, "pelvis", "GS24-0001", 7).n_batches == 6

    assert store.remap_raw(subject, "pelvis", "GS24-0001", 7, clock) == 160
    assert store.raw_progress(subject, "pelvis", "GS24-0001", 7) == RawProgress(3, 160, 0, 159)
    assert len(store.read_raw(subject, "pelvis")) == 160


def _without_index(store: Store, batches: list[RawSamples]) -> None:
    """Samples written without their index points: a move stopped between the two (each store's own write)."""
    if isinstance(store, EmbeddedStore):
        store._tx(lambda db: store._write_raw_tx(db, batches, index=False))
    else:
        assert isinstance(store, InfluxStore)
        store.write_raw_many(batches, index=False)


def _moved_without_index(store: Store) -> tuple[str, list[RawSamples], ClockMapping]:
    """A fresh subject's boot stored in sensor time, then its samples written in UTC by a synchronised mapping
    without their index points (a move stopped between the two): the subject, the batches, the mapping."""
    subject = new_subject()
    mine, _ = _unsynced_boot(subject)
    for b in mine:
        store.write_raw(b)
    first = synced_clock()
    _without_index(store, [replace(b, clock=first) for b in mine])
    return subject, mine, first


def test_a_rerun_with_another_mapping_leaves_every_moved_sample_indexed(store: Store) -> None:
    """A move stopped after its UTC samples, before their index, run again by a worker with another mapping (the
    first synchronised batch it saw): the samples are stored in UTC already, at the first mapping's times, and
    not written again; they are indexed in UTC at the new mapping's times (within the replay bound of where they
    are), so the session is found by its UTC day, and the sensor-time index goes."""
    subject, _, first = _moved_without_index(store)
    other = replace(first, rate=first.rate * (1 + 2e-5))  # 0.1 ms apart over these seconds

    assert store.remap_raw(subject, "pelvis", "GS24-0001", 7, other) == 160
    got = store.read_raw(subject, "pelvis")
    assert len(got) == 160 and bool((got.time_us >= 0).all())  # the first copies, the sensor-time ones gone
    assert store.raw_progress(subject, "pelvis", "GS24-0001", 7) == RawProgress(3, 160, 0, 159)
    assert all(b.time_us >= 0 for b in store.raw_batches(subject))
    assert coverage(0, 159, store.raw_index(subject, "pelvis", "GS24-0001", 7, 0, 159))[0] == 0
    day = round(T0_UTC_S * 1e6) // DAY_US * DAY_US
    assert {s.session for s in store.raw_sessions(day - DAY_US, day + 2 * DAY_US - 1, subject=subject)} == {"S1", "S2"}


@pytest.mark.parametrize("again", ["same mapping", "another mapping"])
def test_a_batch_stored_again_in_sensor_time_and_moved_keeps_one_whole_index_point(store: Store, again: str) -> None:
    """A batch re-sent after its boot was moved is stored again in sensor time (nothing of it there), then moved
    (with the worker's mapping, or another worker's): its samples land on, or next to, their first copies. The
    first copy's UTC index point stays whole and alone: not replaced by one claiming part of it, not doubled."""
    subject = new_subject()
    mine, _ = _unsynced_boot(subject)
    for b in mine:
        store.write_raw(b)
    first = synced_clock()
    store.remap_raw(subject, "pelvis", "GS24-0001", 7, first)
    before = sorted((b.time_us, b.seq_first, b.seq_last, b.n_samples, b.msg_id) for b in store.raw_batches(subject))
    store.write_raw(mine[0])  # the replay, in sensor time again
    mapping = first if again == "same mapping" else replace(first, rate=first.rate * (1 + 1e-5))
    assert store.remap_raw(subject, "pelvis", "GS24-0001", 7, mapping) == 60
    after = sorted((b.time_us, b.seq_first, b.seq_last, b.n_samples, b.msg_id) for b in store.raw_batches(subject))
    assert after == before
    assert store.raw_progress(subject, "pelvis", "GS24-0001", 7) == RawProgress(3, 160, 0, 159)
    assert len(store.read_raw(subject, "pelvis")) == 160  # no sample stored twice


def _drop_sensor_time_samples(store: Store, subject: str, boot_epoch: int) -> None:
    """Delete a boot's sensor-time samples, not their index: the state a store that moved samples without their
    index left (each store's own delete)."""
    slot = sensor_slot_start_us(boot_epoch)
    if isinstance(store, EmbeddedStore):
        store._tx(lambda db: db.execute("DELETE FROM raw WHERE subject = ? AND time_us < 0", (subject,)))
    else:
        assert isinstance(store, InfluxStore)
        tags = {"subject": subject, "placement": "pelvis"}
        store.transport.delete(store.config.sensor_time_rp, ("raw", "raw_packed"), tags, slot, slot + (1 << 40) - 1)


def test_index_points_of_samples_moved_without_them_stay_where_they_are(store: Store) -> None:
    """Samples moved by a store that left their index in sensor time: a later move of the boot (a new sensor-time
    batch) moves that batch and leaves those index points alone, the only index of those samples."""
    subject, mine, first = _moved_without_index(store)
    _drop_sensor_time_samples(store, subject, 7)
    assert store.raw_progress(subject, "pelvis", "GS24-0001", 7) == RawProgress(3, 160, 0, 159)
    later = batch(subject, seq_first=160, n=20, boot_epoch=7, clock=unsynced_clock())
    store.write_raw(later)

    assert store.remap_raw(subject, "pelvis", "GS24-0001", 7, first) == 20
    assert store.raw_progress(subject, "pelvis", "GS24-0001", 7) == RawProgress(4, 180, 0, 179)
    where = sorted((b.time_us >= 0, b.seq_first, b.msg_id) for b in store.raw_batches(subject))
    assert where == sorted([*((False, int(b.seq[0]), b.msg_id) for b in mine), (True, 160, later.msg_id)])


def _record(seq_first: int, seq_last: int, session: str | None, msg_id: str | None = "m") -> BatchRecord:
    clock = unsynced_clock()
    slot = sensor_slot_start_us(7)
    return BatchRecord(
        "pelvis", slot + seq_first, slot + seq_last, "GS24-0001", 7, session, msg_id, seq_first, seq_last,
        seq_last - seq_first + 1, 5_000_000 + 10_000 * seq_first, clock, None, None, None, None,
    )  # fmt: skip


def _remapped(seq: list[int], session: Sequence[str | None], index: list[BatchRecord]) -> Move:
    n = len(seq)
    return remapped_batches(
        subject="P1",
        placement="pelvis",
        serial="GS24-0001",
        boot_epoch=7,
        seq=seq,
        t_sensor_us=[5_000_000 + 10_000 * s for s in seq],
        session=session,
        acc_mps2=np.zeros((n, 3)),
        gyr_dps=np.zeros((n, 3)),
        index=index,
        clock=synced_clock(),
    )


def test_remapped_batches_follow_the_index_and_group_what_it_does_not_cover() -> None:
    index = [_record(10, 19, "S1", "b"), _record(0, 9, "S1", "a"), _record(40, 49, "S1", "gone")]
    seq = [*range(25, 30), *range(0, 20), *range(20, 25), *range(60, 63)]  # any order
    session: list[str | None] = ["S2"] * 5 + ["S1"] * 20 + [None] * 5 + ["S2"] * 3
    move = _remapped(seq, session, index)
    assert [(b.msg_id, b.session, b.seq.tolist()) for b in move.batches] == [
        ("a", "S1", list(range(10))),
        ("b", "S1", list(range(10, 20))),
        ("", None, list(range(20, 25))),  # stored without an index point: indexed now
        ("", "S2", list(range(25, 30))),
        ("", "S2", list(range(60, 63))),  # one batch per run: an index point never claims a hole
    ]
    assert [r.msg_id for r in move.stay] == ["gone"]  # no sample here: it stays where it is


def test_remapped_batches_keep_a_session_apart_within_a_batch_range() -> None:
    """A sample of another session inside a batch's sequence range is not that batch's."""
    move = _remapped(list(range(10)), ["S1"] * 5 + ["S2"] * 5, [_record(0, 9, "S1")])
    assert [(b.msg_id, b.session, len(b)) for b in move.batches] == [("m", "S1", 5), ("", "S2", 5)]


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"firmware": ""},
        {"session": None, "msg_id": ""},
        {"sensor": None},
        {"moved": True, "clock": synced_clock()},
    ],
    ids=["declared", "no-firmware", "no-session-no-msg", "undeclared", "moved"],
)
def test_an_index_point_read_back_is_written_back_as_it_was(change: dict[str, object]) -> None:
    """Through JSON, as both stores hand fields back (InfluxDB's numbers lose their int/float type there)."""
    import json

    from analytics.stores.export_reads import batch_record
    from analytics.stores.model import batch_point

    b = _declared(batch("P1", n=30, boot_epoch=9, clock=unsynced_clock()), str(change.pop("firmware", "2.0")))
    moved = bool(change.pop("moved", False))
    b = replace(b, **change)  # type: ignore[arg-type]
    written = moved_index(Move([b], []), WriteReport(), [])[0] if moved else batch_point(b)
    assert bool(written.fields.get("moved_to_utc")) == moved
    fields = json.loads(
        json.dumps(
            {k: (float(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in written.fields.items()}
        )
    )
    back = record_point("P1", batch_record("pelvis", written.time_us, fields))
    assert back == written
    assert [type(v) for v in back.fields.values()] == [type(v) for v in written.fields.values()]


@pytest.mark.parametrize("store", ["influx_v1", "influx_v2"], indirect=True)
def test_a_batch_stored_by_another_worker_during_a_move_stays(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """InfluxDB moves in several requests. A sensor-time batch of the boot stored by another worker after the
    move read the slot (filling a sequence gap) is not deleted with what the move read: it stays, with its index
    point, for the next move. (The embedded store moves in one transaction.)"""
    subject = new_subject()
    store.write_raw(batch(subject, seq_first=0, n=60, boot_epoch=7, clock=unsynced_clock()))
    synced = batch(subject, seq_first=120, n=60, boot_epoch=7)  # the batch whose mapping starts the move
    store.write_raw(synced)
    meanwhile = batch(subject, seq_first=60, n=60, boot_epoch=7, clock=unsynced_clock())
    write = store.write_raw_many

    def write_after_the_other_worker(batches: list[RawSamples], **kw: bool) -> object:
        monkeypatch.setattr(store, "write_raw_many", write)
        store.write_raw(meanwhile)  # the other worker's write, between the move's read and its delete
        return write(batches, **kw)

    monkeypatch.setattr(store, "write_raw_many", write_after_the_other_worker)
    assert store.remap_raw(subject, "pelvis", "GS24-0001", 7, synced.clock) == 60
    got = store.read_raw(subject, "pelvis")
    assert sorted(got.seq.tolist()) == list(range(180))  # nothing lost, nothing twice
    assert got.seq[got.time_us < 0].tolist() == list(range(60, 120))  # still in sensor time, for the next move
    assert store.raw_progress(subject, "pelvis", "GS24-0001", 7) == RawProgress(3, 180, 0, 179)
    assert store.remap_raw(subject, "pelvis", "GS24-0001", 7, synced.clock) == 60
    assert bool((store.read_raw(subject, "pelvis").time_us >= 0).all())
    assert store.raw_progress(subject, "pelvis", "GS24-0001", 7) == RawProgress(3, 180, 0, 179)


def test_delete_ranges_hold_only_what_goes() -> None:
    """Runs of the boot's points that go and whose sequence numbers follow on; a point of the boot that stays, or a
    sequence gap (where another writer's batch may land after the read), ends a run; another sensor's point
    (not of the boot) does not, and never goes by itself."""
    times = [10, 20, 30, 40, 50, 60, 70, 80]
    going = [True, True, False, True, True, True, False, True]
    seq = [0, 1, 9, 2, 3, 7, 500, 8]  # 2, 3 then 7: a gap; 500 is another sensor's
    boot = [True, True, True, True, True, True, False, True]
    assert delete_ranges(times, going, seq, seq, boot) == [(10, 20), (40, 50), (60, 80)]
    assert delete_ranges([5, 6], [False, False], [0, 1], [0, 1], [True, True]) == []
    # index points: the next one follows on when its first sample is the last one's successor
    assert delete_ranges([1, 2, 3], [True] * 3, [0, 60, 130], [59, 119, 179], [True] * 3) == [(1, 2), (3, 3)]


@pytest.mark.parametrize("store", ["influx_v1", "influx_v2", "influx_packed"], indirect=True)
def test_another_sensor_interleaved_in_the_slot_stays_and_costs_few_deletes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another sensor whose boot epoch is equal mod 4096 has points between the moved boot's, 5 ms apart: they
    stay (written back where a range held them), and the move deletes one range per run of the boot, not one per
    sample."""
    assert isinstance(store, InfluxStore)
    subject = new_subject()
    mine = [batch(subject, seq_first=q, n=100, boot_epoch=7, clock=unsynced_clock()) for q in (0, 100)]
    other = batch(subject, n=200, serial="GS24-0002", boot_epoch=7 + 4096, clock=unsynced_clock(),
                  t_sensor_first_us=5_005_000)  # fmt: skip
    for b in [*mine, other]:
        store.write_raw(b)
    other_index = [b for b in store.raw_batches(subject) if b.serial == "GS24-0002"]
    deletes: list[tuple[object, ...]] = []
    delete = store.transport.delete

    def counted(*args: Any) -> None:
        deletes.append(args)
        delete(*args)

    monkeypatch.setattr(store.transport, "delete", counted)

    assert store.remap_raw(subject, "pelvis", "GS24-0001", 7, synced_clock()) == 200
    assert len(deletes) == 2  # one range of samples, one of index points
    got = store.read_raw(subject, "pelvis")
    assert got.seq[got.time_us < 0].tolist() == list(range(200))  # the other sensor's, all of them
    assert set(np.array(got.serial)[got.time_us < 0].tolist()) == {"GS24-0002"}
    assert [b for b in store.raw_batches(subject) if b.serial == "GS24-0002"] == other_index
