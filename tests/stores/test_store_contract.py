"""Every store (embedded SQLite, InfluxDB 1.6 via v1, influxdb-client v2 forwarded to 1.6) behaves the same."""

from __future__ import annotations

import numpy as np

from analytics.stores import Store
from analytics.stores.model import (
    EXERCISE_SET,
    SESSION_SUMMARY,
    STRIDE,
    Provenance,
    raw_time_us,
    results_from_document,
    sensor_slot_start_us,
)
from testing.stores.storelib import T0_UTC_S, batch, new_subject, result_doc, synced_clock, unsynced_clock


def test_raw_round_trip_keeps_ticks_and_values(store: Store) -> None:
    subject = new_subject()
    b = batch(subject, n=250)
    report = store.write_raw(b)
    assert report.quarantined == []
    got = store.read_raw(subject, "pelvis")
    assert len(got) == 250
    np.testing.assert_array_equal(got.seq, b.seq)
    np.testing.assert_array_equal(got.t_sensor_us, b.t_sensor_us)
    np.testing.assert_array_equal(got.time_us, b.time_us())
    np.testing.assert_allclose(got.acc_mps2, b.acc_mps2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.gyr_dps, b.gyr_dps, rtol=0, atol=1e-12)
    assert set(got.serial) == {"GS24-0001"} and set(got.boot_epoch.tolist()) == {42} and set(got.session) == {"S1"}
    # mapped UTC at microsecond precision, from the batch's clock mapping
    assert got.time_us[0] == round(T0_UTC_S * 1e6)
    assert store.read_raw(subject, "left_thigh").time_us.size == 0


def test_replay_overwrites_the_same_points(store: Store) -> None:
    subject = new_subject()
    first, second = batch(subject, seq_first=0, n=300), batch(subject, seq_first=300, n=300)
    for b in (first, second, first, second, first):  # the gateway replays unacknowledged batches
        store.write_raw(b)
    got = store.read_raw(subject, "pelvis")
    assert len(got) == 600
    assert got.seq.tolist() == list(range(600))
    assert store.raw_progress(subject, "pelvis", "GS24-0001", 42).n_samples == 600
    assert store.count_raw(subject, "pelvis", "GS24-0001", 42, 0, 599) == 600


def test_progress_and_count_tell_how_far_a_sensor_arrived(store: Store) -> None:
    subject = new_subject()
    store.write_raw(batch(subject, seq_first=0, n=200))
    store.write_raw(batch(subject, seq_first=300, n=100))  # 200..299 not arrived (yet)
    store.write_raw(batch(subject, seq_first=0, n=50, placement="left_thigh", serial="GS24-0002"))
    progress = store.raw_progress(subject, "pelvis", "GS24-0001", 42)
    assert (progress.n_batches, progress.n_samples, progress.seq_first, progress.seq_last) == (2, 300, 0, 399)
    assert store.count_raw(subject, "pelvis", "GS24-0001", 42, 150, 349) == 100
    assert store.count_raw(subject, "pelvis", "GS24-0001", 42, 200, 299) == 0
    assert store.count_raw(subject, "pelvis", "GS24-0001", 43, 0, 399) == 0
    assert store.raw_progress(subject, "pelvis", "GS24-0001", 43).n_samples == 0
    assert store.raw_progress(subject, "left_thigh", "GS24-0002", 42).seq_last == 49


def test_read_by_session_and_time_range(store: Store) -> None:
    subject = new_subject()
    store.write_raw(batch(subject, seq_first=0, n=100, session="S1"))
    store.write_raw(batch(subject, seq_first=100, n=100, session="S2"))
    assert store.read_raw(subject, "pelvis", session="S2").seq.tolist() == list(range(100, 200))
    t0 = round(T0_UTC_S * 1e6)
    window = store.read_raw(subject, "pelvis", start_us=t0 + 500_000, end_us=t0 + 999_999)
    assert len(window) == 50


def test_unsynchronised_samples_keep_sensor_time_then_move_to_utc(store: Store) -> None:
    subject = new_subject()
    b = batch(subject, n=120, clock=unsynced_clock(), boot_epoch=7)
    other_boot = batch(subject, n=120, clock=unsynced_clock(), boot_epoch=8, seq_first=0)
    store.write_raw(b)
    store.write_raw(other_boot)  # same ticks, another boot: must not collide
    got = store.read_raw(subject, "pelvis")
    assert len(got) == 240 and bool((got.time_us < 0).all())  # sensor time lives before 1970
    slot = sensor_slot_start_us(7)
    assert store.read_raw(subject, "pelvis", start_us=slot, end_us=slot + (1 << 40) - 1).seq.tolist() == list(
        range(120)
    )
    clock = synced_clock()
    assert store.remap_raw(subject, "pelvis", "GS24-0001", 7, clock) == 120
    store.remap_raw(subject, "pelvis", "GS24-0001", 7, clock)  # again: nothing left to move, nothing doubled
    got = store.read_raw(subject, "pelvis")
    utc = got.time_us >= 0
    assert int(utc.sum()) == 120 and int((~utc).sum()) == 120
    np.testing.assert_array_equal(got.time_us[utc], raw_time_us(b.t_sensor_us, clock, 7))
    assert set(got.boot_epoch[~utc].tolist()) == {8}


def _results(subject: str, version: int, **doc_args: object):  # type: ignore[no-untyped-def]
    prov = Provenance(
        analysis_id=f"a-{version}",
        result_version=version,
        algorithm="gaitsym-analytics 0.1.0",
        clock={"pelvis": {"utc_synced": True, "drift_ppm": 12.5}},
    )
    return results_from_document(
        result_doc(**doc_args),  # type: ignore[arg-type]
        subject=subject,
        session="S1",
        t0_us=round(T0_UTC_S * 1e6),
        provenance=prov,
    )


def test_results_round_trip_with_provenance(store: Store) -> None:
    subject = new_subject()
    store.replace_results(_results(subject, 1))
    rows = store.read_results(subject)
    strides = [r for r in rows if r.measurement == STRIDE]
    sets = [r for r in rows if r.measurement == EXERCISE_SET]
    summary = {r.tags["side"]: r for r in rows if r.measurement == SESSION_SUMMARY}
    assert len(strides) == 6 and [s.tags["side"] for s in strides] == ["left", "right"] * 3
    assert strides[0].fields["pelvic_drop_deg"] == 4.0 and strides[0].fields["included"] is False
    assert strides[1].time_us - strides[0].time_us == 550_000
    assert sets[0].tags == {"exercise": "single_leg_bridge", "side": "left", "subject": subject}
    assert sets[0].fields["reps"] == 5 and sets[0].fields["time_level_pct"] == 70.0
    assert set(summary) == {"left", "right", "none"}
    assert summary["left"].fields["stance_time_s"] == 0.66 and summary["none"].fields["stance_si_pct"] == 6.25
    for r in rows:
        assert r.fields["result_version"] == 1 and r.fields["analysis_id"] == "a-1"
        assert r.fields["algorithm"] == "gaitsym-analytics 0.1.0" and r.fields["result_schema"] == "gaitsym.result/1"
        assert '"drift_ppm":12.5' in str(r.fields["clock"]) and r.fields["session"] == "S1"
    assert store.read_results(subject, session="S2") == []


def test_reanalysis_replaces_results_and_leaves_nothing_stale(store: Store) -> None:
    subject = new_subject()
    store.replace_results(_results(subject, 1, n_strides=8, drop_left=4.0))
    store.replace_results(_results(subject, 2, n_strides=4, drop_left=None))  # fewer strides, a withheld value
    rows = store.read_results(subject)
    strides = [r for r in rows if r.measurement == STRIDE]
    assert len(strides) == 4
    assert all(r.fields["result_version"] == 2 for r in rows)
    assert "pelvic_drop_deg" not in strides[0].fields  # the old 4.0 did not survive as a merged field
    assert (
        "pelvic_drop_deg"
        not in next(r for r in rows if r.measurement == SESSION_SUMMARY and r.tags["side"] == "left").fields
    )
    # an older analysis arriving late never replaces a newer one
    late = store.replace_results(_results(subject, 1, n_strides=8))
    assert late.superseded
    assert len([r for r in store.read_results(subject) if r.measurement == STRIDE]) == 4
    # the same version again (a replayed analysis) is idempotent
    store.replace_results(_results(subject, 2, n_strides=4, drop_left=None))
    assert len(store.read_results(subject)) == len(rows)
