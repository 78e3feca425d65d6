"""A replay re-encoded with a moved clock mapping: the same samples (same subject, serial, boot epoch, sequence)
arrive mapped a few tens of ms away from where they were stored. Within `model.REPLAY_MOVE_US` the store recognises
them and does not store them again (the first copy kept, counted in `WriteReport.moved`, no gap, no quarantine);
another sample at a moved time is still a collision; another subject is never affected; beyond the tolerance the
replay is stored a second time (SCHEMA.md says so; both copies carry their identity). Every store test runs on
the three stores (embedded, InfluxDB v1, InfluxDB v2 through the stand-in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import v2_store
from http_standin import StandIn

from analytics.stores import Store
from analytics.stores.model import REPLAY_MOVE_US, RawSamples, plan_raw_writes
from gaitsym_common.uplink.envelope import ClockMapping
from testing.stores.storelib import T0_UTC_S, batch, new_subject, unsynced_clock

T0_US = round(T0_UTC_S * 1e6)
SERIAL = "GS24-0001"


def mapping(moved_us: int = 0) -> ClockMapping:
    """Rate 1: sample ``seq`` of `storelib.batch` maps to ``T0_US + seq·10 ms + moved_us``."""
    return ClockMapping(True, 5_000_000 - moved_us, T0_UTC_S, 1.0, 0.0, 0.8)


def sent(subject: str, moved_us: int = 0, **kw: Any) -> RawSamples:
    return batch(subject, seq_first=kw.pop("seq_first", 0), clock=mapping(moved_us), **kw)


def quarantine(store: Store) -> Any:
    return store.quarantine  # type: ignore[attr-defined]


@pytest.mark.parametrize("moved_us", [30_000, -30_000])
def test_a_batch_replayed_with_its_mapping_moved_is_stored_once_where_it_was_first(store: Store, moved_us: int) -> None:
    """+-30 ms at 100 Hz: 97 of the replayed samples land exactly on points of other samples of the first send
    (3 sample periods away), 3 on free points; none of them is a collision, none is stored again."""
    subject = new_subject()
    first = sent(subject)
    assert store.write_raw(first).moved == []
    report = store.write_raw(sent(subject, moved_us))

    assert report.collisions == [] and report.gaps == [] and report.quarantined == []
    (moved,) = report.moved
    assert moved.seq == tuple(range(100)) and report.moved_samples == 100
    assert moved.shift_us == (moved_us, moved_us)
    got = store.read_raw(subject, "pelvis")
    assert got.seq.tolist() == list(range(100))  # once each, at the first send's times
    np.testing.assert_array_equal(got.time_us, first.time_us())
    np.testing.assert_array_equal(got.acc_mps2, first.acc_mps2)
    progress = store.raw_progress(subject, "pelvis", SERIAL, 42)
    assert (progress.n_batches, progress.n_samples) == (1, 100)  # the index claims the samples once
    assert store.raw_index(subject, "pelvis", SERIAL, 42, 0, 99).gaps == ()
    assert len(quarantine(store)) == 0


def test_in_one_call_a_replay_is_left_out_and_the_new_batch_beside_it_stored(store: Store) -> None:
    """A worker turn holding a moved replay, a later batch and the replay once more (moved the other way)."""
    subject = new_subject()
    store.write_raw(sent(subject))
    report = store.write_raw_many([sent(subject, 30_000), sent(subject, seq_first=100), sent(subject, -20_000)])
    assert report.collisions == [] and report.moved_samples == 200
    got = store.read_raw(subject, "pelvis")
    assert got.seq.tolist() == list(range(200))
    np.testing.assert_array_equal(got.time_us - T0_US, np.arange(200) * 10_000)
    assert store.raw_progress(subject, "pelvis", SERIAL, 42).n_samples == 200


def test_another_sample_at_a_moved_time_is_still_a_collision(store: Store) -> None:
    """A sample of another identity (another boot of the sensor) mapped onto stored points is refused as before,
    whether or not the samples it lands on were themselves replayed."""
    subject = new_subject()
    store.write_raw(sent(subject))
    other = sent(subject, 30_000, boot_epoch=43)  # its seq k lands on the stored seq k+3
    report = store.write_raw(other)
    assert report.moved == []
    assert [(c.stored, c.refused) for c in report.collisions] == [
        ((SERIAL, 42, k + 3), (SERIAL, 43, k)) for k in range(97)
    ]
    assert [(g.boot_epoch, g.seq_first, g.seq_last) for g in report.gaps] == [(43, 0, 96)]
    got = store.read_raw(subject, "pelvis")
    assert list(zip(got.boot_epoch.tolist(), got.seq.tolist(), strict=True)) == [
        *((42, k) for k in range(100)),
        *((43, k) for k in range(97, 100)),
    ]


def test_another_subjects_same_sensor_samples_are_neither_replays_nor_affected(store: Store) -> None:
    mine, other = new_subject(), new_subject()
    store.write_raw(sent(mine))
    report = store.write_raw(sent(other, 30_000))  # the same identities, moved, but another subject's
    assert report.moved == [] and report.collisions == []
    assert store.read_raw(other, "pelvis").seq.tolist() == list(range(100))
    np.testing.assert_array_equal(store.read_raw(other, "pelvis").time_us - T0_US, np.arange(100) * 10_000 + 30_000)
    assert store.write_raw(sent(mine, -30_000)).moved_samples == 100
    np.testing.assert_array_equal(store.read_raw(mine, "pelvis").time_us - T0_US, np.arange(100) * 10_000)
    np.testing.assert_array_equal(store.read_raw(other, "pelvis").time_us - T0_US, np.arange(100) * 10_000 + 30_000)


def test_a_replay_moved_beyond_the_tolerance_is_stored_a_second_time_with_its_identity(store: Store) -> None:
    """The documented limit: past `REPLAY_MOVE_US` the check does not look; both copies keep their identity, so a
    count by identity shows the duplicate."""
    subject = new_subject()
    store.write_raw(sent(subject))
    far = REPLAY_MOVE_US + 1_000_000
    report = store.write_raw(sent(subject, far))
    assert report.moved == [] and report.collisions == []
    assert store.read_raw(subject, "pelvis").seq.tolist() == [*range(100), *range(100)]
    assert store.count_raw(subject, "pelvis", SERIAL, 42, 0, 99) == 200


def test_a_replay_mapped_to_utc_after_a_sensor_time_first_send_ends_stored_once(store: Store) -> None:
    """First sent before the gateway's clock was synchronised (sensor time), replayed mapped to UTC: the worker's
    remap of that boot's sensor-time samples (with the mapping it learnt, 20 ms off the replay's) finds the UTC
    copies nearby and leaves each sample stored once."""
    subject = new_subject()
    store.write_raw(batch(subject, clock=unsynced_clock()))
    store.write_raw(sent(subject, 30_000))
    store.remap_raw(subject, "pelvis", SERIAL, 42, mapping(10_000))
    got = store.read_raw(subject, "pelvis")
    assert got.seq.tolist() == list(range(100))
    np.testing.assert_array_equal(got.time_us - T0_US, np.arange(100) * 10_000 + 30_000)


def test_influxdb_checks_a_replayed_call_in_two_queries(standin: StandIn, tmp_path: Path) -> None:
    """Cost: a call that finds something stored (here, replays) reads twice (the probe, then the exact read of
    the series concerned), whatever its number of batches; a call of nothing but replays writes nothing."""
    store = v2_store(standin, tmp_path)
    subject = new_subject()
    store.write_raw_many([sent(subject), sent(subject, placement="left_thigh")])
    standin.requests.clear()
    report = store.write_raw_many([sent(subject, 30_000), sent(subject, -30_000, placement="left_thigh")])
    assert [r.path for r in standin.requests] == ["/query", "/query"] and report.moved_samples == 200
    store.close()


def test_the_rule_is_pure_first_copy_wins_and_identity_comes_before_the_point() -> None:
    subject = new_subject()
    first = sent(subject)
    stored = {int(t): (SERIAL, 42, int(q)) for t, q in zip(first.time_us(), first.seq, strict=True)}
    plan = plan_raw_writes([sent(subject, -30_000), sent(subject, seq_first=100)], {(subject, "pelvis"): stored})
    assert [len(b) for b in plan.write] == [100] and plan.write[0].seq[0] == 100
    assert plan.refused == () and plan.gaps == () and len(plan.moved[0]) == 100
    # nothing stored: the earlier of two copies in one call is written, the later one recognised
    plan = plan_raw_writes([sent(subject, 10_000), sent(subject)], {})
    assert [b.clock for b in plan.write] == [mapping(10_000)] and plan.moved[0].shift_us == (-10_000, -10_000)


def test_batches_of_one_call_that_share_samples_keep_every_sample(store: Store) -> None:
    """Two batches of one sensor in one call holding the same samples at the same times (a gateway that batched
    again, a replay whose mapping moved all but its first sample, a 1-kHz batch's second half sent again): each
    sample is stored once and read back, whatever the layout (a packed part written where another part of the
    call starts would hide it: docs/raw-layout-packed.md)."""
    ref = (True, 5_000_000, T0_UTC_S)
    cases = {
        "a prefix batched again": [batch(new_subject(), n=100, clock=mapping()), None],
        "a replay moved but for its first sample": [batch(new_subject(), n=100, clock=mapping()), None],
        "a 1-kHz batch's second part again": [batch(new_subject(), n=1000, rate_hz=1000.0, clock=mapping()), None],
    }
    subjects = {name: first.subject for name, (first, _) in cases.items()}
    cases["a prefix batched again"][1] = batch(subjects["a prefix batched again"], n=50, clock=mapping())
    cases["a replay moved but for its first sample"][1] = batch(
        subjects["a replay moved but for its first sample"], n=100, clock=ClockMapping(*ref, 1.0005, 0.0, 0.8)
    )
    cases["a 1-kHz batch's second part again"][1] = batch(
        subjects["a 1-kHz batch's second part again"], seq_first=600, n=100, rate_hz=1000.0, clock=mapping()
    )
    for name, (first, again) in cases.items():
        assert again is not None and first is not None
        report = store.write_raw_many([first, again])
        assert report.collisions == [] and report.quarantined == [], name
        got = store.read_raw(first.subject, "pelvis")
        assert got.seq.tolist() == first.seq.tolist(), name
        assert got.time_us.tolist() == first.time_us().tolist(), name
        assert store.count_raw(first.subject, "pelvis", "GS24-0001", 42, 0, len(first) - 1) == len(first), name
