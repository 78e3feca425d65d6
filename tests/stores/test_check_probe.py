"""The collision check's first read on InfluxDB (`influx_codec.HeldProbe`): one statement and one field per
subject, placement and span, whose answer either proves what the exact read would find empty (new data) or sends
that subject and placement to the exact read. What it may never do is call clear what holds a point in the span, or
one of the call's identities nearby: the pure rule here, its bucket layout against the real 1.6 (UTC and the
sensor-time slots before 1970) and on the three stores."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import v1_store, v2_store
from http_standin import StandIn

from analytics.stores import Store
from analytics.stores.influx_codec import (
    PROBE_BUCKET_MIN_US,
    PROBE_CLUSTER_US,
    PROBE_PAIRS_MAX,
    HeldProbe,
    held_probes,
    span_clusters,
    statement_requests,
    unclear_series,
)
from analytics.stores.model import REPLAY_MOVE_US, RawSamples, samples_from_arrays
from gaitsym_common.uplink.envelope import ClockMapping
from testing.influxdb_server import InfluxDB
from testing.stores.storelib import T0_UTC_S, batch, new_subject, unsynced_clock

T0_US = round(T0_UTC_S * 1e6)
SERIAL = "GS24-0001"


def probe(lo: int = 1_000_000, hi: int = 1_990_000, seq_min: int = 100) -> HeldProbe:
    return HeldProbe("raw", "P1", "pelvis", lo, hi, seq_min)


def test_only_buckets_clear_of_the_span_and_below_the_calls_sequence_numbers_are_clear() -> None:
    p = probe()
    bucket = p.bucket_us
    assert bucket == 990_001  # the span itself is one bucket
    assert p.clear([])  # nothing stored within a second of the span
    assert p.clear([[p.lo - bucket, 99], [p.hi + 1, 42]])  # the sensor's previous batch, another sensor after
    assert not p.clear([[p.lo, 5]])  # a point in the span, whatever its sequence number
    assert not p.clear([[p.lo - bucket + 1, 5]])  # a bucket reaching into the span (laid out otherwise than asked)
    assert not p.clear([[p.hi, 5]])
    assert not p.clear([[p.lo - bucket, 100]])  # possibly one of the call's own samples stored nearby
    assert not p.clear([[p.hi + 1, 150]])  # e.g. a later batch stored first: the exact read tells
    assert not p.clear([[None, 5]]) and not p.clear([[p.lo - bucket, None]])
    # a span of one sample still gets buckets of at least 100 ms (not two million of 1 µs)
    assert probe(lo=5, hi=5).bucket_us == PROBE_BUCKET_MIN_US and not probe(lo=5, hi=5).clear([[5, 1]])


def test_a_turn_of_many_subjects_is_probed_in_one_request() -> None:
    """Each /query request costs influxd its parsing, authentication and answer, and the write waits for each: a
    worker's turn at 150 subjects (450 sensors' batches, closing at the same instants) is one request."""
    placements = ("pelvis", "left_thigh", "right_thigh")
    spans = {("raw", f"S{i:03d}", p): [(T0_US, T0_US + 990_000)] for i in range(150) for p in placements}
    seqs = {("raw", f"S{i:03d}", p, f"GS-{i}-{p}", 1): [100, 199] for i in range(150) for p in placements}
    probes = held_probes(spans, seqs)
    (request,) = statement_requests([p.statement("gaitsym") for p in probes])
    assert request.split(";") == [p.statement("gaitsym") for p in probes]


def test_statements_are_packed_into_requests_of_bounded_size() -> None:
    statements = [f"SELECT {i}" for i in range(10)]  # 8 characters each, 9 with the separator
    assert statement_requests(statements, limit=27) == [
        "SELECT 0;SELECT 1;SELECT 2",
        *[";".join(statements[i : i + 3]) for i in (3, 6)],
        "SELECT 9",
    ]
    assert statement_requests(["SELECT long one"], limit=5) == ["SELECT long one"]  # alone, never dropped
    assert statement_requests([]) == []


def test_a_series_probed_twice_is_unclear_as_soon_as_either_probe_answers() -> None:
    spans = {
        ("raw", "P1", "pelvis"): [(0, 990_000), (3_600_000_000, 3_600_990_000)],
        ("raw", "P1", "left_thigh"): [(0, 990_000)],
    }
    seqs = {("raw", "P1", "pelvis", SERIAL, 1): [100, 199, 5000, 5099], ("raw", "P1", "left_thigh", "B", 1): [7, 9]}
    probes = held_probes(spans, seqs)
    assert [(p.placement, p.lo, p.seq_min) for p in probes] == [
        ("pelvis", 0, 100),
        ("pelvis", 3_600_000_000, 100),
        ("left_thigh", 0, 7),
    ]
    before = [[-990_001, 3]]  # clear for either pelvis probe alone, but which one answered it is unknown
    found = [
        {"tags": {"subject": "P1", "placement": "pelvis"}, "values": before},
        {"tags": {"subject": "P1", "placement": "left_thigh"}, "values": before},
    ]
    assert unclear_series(found, probes) == {("P1", "pelvis")}


def moved_short_batch(subject: str, seq_first: int, shift_us: int) -> RawSamples:
    """10 samples (90 ms) of one sensor, mapped ``shift_us`` later at rate 1."""
    seq = np.arange(seq_first, seq_first + 10)
    clock = ClockMapping(True, 5_000_000 - shift_us, T0_UTC_S, 1.0, 0.0, 0.8)
    return samples_from_arrays(
        subject=subject,
        session="S1",
        placement="pelvis",
        serial=SERIAL,
        boot_epoch=42,
        seq=seq,
        t_sensor_us=5_000_000 + seq * 10_000,
        acc_mps2=np.ones((10, 3)),
        gyr_dps=np.zeros((10, 3)),
        clock=clock,
    )


def test_a_replay_moved_off_its_own_span_within_the_tolerance_is_still_found(store: Store) -> None:
    """The first copy lies outside the replay's span (short batch, moved 0.5 s): only the widened part of the probe
    sees it, through its sequence numbers."""
    subject = new_subject()
    store.write_raw(moved_short_batch(subject, 200, 0))
    report = store.write_raw(moved_short_batch(subject, 200, REPLAY_MOVE_US // 2))
    assert report.moved_samples == 10 and report.collisions == []
    assert store.read_raw(subject, "pelvis").seq.tolist() == list(range(200, 210))


def test_another_sample_at_the_first_and_last_instant_of_a_span_is_a_collision(store: Store) -> None:
    """Points on the span's two ends, of another sensor with lower sequence numbers (what the probe's buckets must
    not mistake for a neighbouring bucket), in UTC and in the sensor-time slot before 1970."""
    for clock in (None, unsynced_clock()):
        subject = new_subject()
        new = batch(subject, seq_first=500, clock=clock)
        times = new.time_us()
        ends = [int(times[0]), int(times[-1])]
        for seq, t in zip((3, 4), ends, strict=True):  # another sensor's sample mapped onto each end of the span
            if clock is None:
                tick = 5_000_000 + seq * 10_000
                onto = ClockMapping(True, tick - (t - T0_US), T0_UTC_S, 1.0, 0.0, 0.8)
                other = batch(subject, seq_first=seq, n=1, serial="GS24-OTHER", clock=onto)
            else:  # sensor time: the sample's ticks place it in the boot's slot
                other = batch(subject, seq_first=seq, n=1, serial="GS24-OTHER", clock=clock)
                other = samples_from_arrays(
                    **{**_fields(other), "t_sensor_us": other.t_sensor_us + t - other.time_us()}
                )
            assert int(other.time_us()[0]) == t
            assert store.write_raw(other).collisions == []
        report = store.write_raw(new)
        assert sorted(c.time_us for c in report.collisions) == ends, clock
        assert sorted(c.refused[2] for c in report.collisions) == [500, 599]


def _fields(b: RawSamples) -> dict[str, Any]:
    names = ("subject", "session", "placement", "serial", "boot_epoch", "seq", "t_sensor_us", "acc_mps2", "gyr_dps")
    return {n: getattr(b, n) for n in (*names, "clock")}


@pytest.mark.parametrize("layout", ["points", "packed"])
def test_influxdb_probes_new_data_with_one_statement_of_one_field_per_sensor(
    standin: StandIn, tmp_path: Path, layout: str
) -> None:
    """Cost: InfluxDB 1.6 copies a field's whole in-memory column of the series for each field a statement reads,
    so the check of new data reads one field in one statement per subject, placement and span (not two statements
    of three fields), and nothing more when the answer is clear; the packed parts nearby, in the same request,
    only by their identity and extent, one statement for spans close in time. A store writing packed parts asks
    once, for those spans together, whether any point per sample is near."""
    store = v2_store(standin, tmp_path, raw_layout=layout)
    a, b = new_subject(), new_subject()
    store.write_raw_many([batch(a, seq_first=0), batch(b, seq_first=0, placement="left_thigh")])
    standin.requests.clear()
    report = store.write_raw_many(
        [batch(a, seq_first=100), batch(a, seq_first=200), batch(b, seq_first=100, placement="left_thigh")]
    )
    assert [r.path for r in standin.requests] == ["/query", "/api/v2/write", "/api/v2/write"]
    assert report.collisions == [] and report.moved == []
    q = urllib.parse.parse_qs(standin.requests[0].body.decode())["q"][0]
    statements = q.split(";")
    # per layout (a database may hold both: docs/raw-layout-packed.md): the points' one field, one statement per
    # span (subject a's two batches being one span), or one for all where the store writes packed; the packed
    # parts' identity and extent (never their samples), one statement for the spans together
    points = [s for s in statements if '."raw" WHERE' in s]
    parts = [s for s in statements if '."raw_packed" WHERE' in s]
    assert len(points) == (2 if layout == "points" else 1) and len(parts) == 1
    assert len(statements) == len(points) + len(parts)
    assert all(s.startswith('SELECT max("seq") FROM') for s in points)
    assert all('"samples"' not in s and '"time_last_us"' in s for s in parts)
    together = parts + (points if layout == "packed" else [])
    for subject in (a, b):
        assert all(f"subject = '{subject}'" in s for s in together)
    store.close()


def test_spans_close_in_time_are_probed_together_and_far_ones_apart() -> None:
    """A real-time turn's spans (within seconds) make one cluster; a span minutes away (catching up) its own, so a
    statement never reads far beyond its sensors' windows; a long span alone is one cluster."""
    second = 1_000_000
    spans = {
        ("raw", "A", "pelvis"): [(0, second), (second + 10_000, 2 * second)],  # joined: one span
        ("raw", "B", "pelvis"): [(500_000, 1_500_000), (600 * second, 601 * second)],
        ("raw", "C", "left_thigh"): [(3 * second, 4 * second)],
        ("raw", "D", "pelvis"): [(700 * second, 720 * second)],
    }
    clusters = span_clusters(spans)
    assert clusters == [
        (0, 4 * second, [("A", "pelvis"), ("B", "pelvis"), ("C", "left_thigh")]),
        (600 * second, 601 * second, [("B", "pelvis")]),
        (700 * second, 720 * second, [("D", "pelvis")]),
    ]
    assert all(hi - lo <= PROBE_CLUSTER_US or len(pairs) == 1 for lo, hi, pairs in clusters)
    # a turn of many sensors at once: statements of at most PROBE_PAIRS_MAX of them (InfluxDB plans an OR of N
    # series conditions in about N² time), each sensor in one, spans of one sensor joined
    many = {
        ("raw", f"S{i:03d}", p): [(i * 1_000, second + i * 1_000)] for i in range(60) for p in ("pelvis", "left_thigh")
    }
    many[("raw", "S000", "pelvis")].append((second + 20_000, 2 * second))
    clusters = span_clusters(many)
    assert [len(pairs) for _, _, pairs in clusters] == [PROBE_PAIRS_MAX, PROBE_PAIRS_MAX, 120 - 2 * PROBE_PAIRS_MAX]
    assert sorted(pair for _, _, pairs in clusters for pair in pairs) == sorted(k[1:] for k in many)
    # a sensor of a full cluster with a second span close by stays in it (no cluster of its own)
    full = {("raw", f"S{i:03d}", "pelvis"): [(i * 1_000, i * 1_000 + 500_000)] for i in range(PROBE_PAIRS_MAX)}
    full[("raw", "S000", "pelvis")].append((3 * second, 4 * second))
    assert [len(pairs) for _, _, pairs in span_clusters(full)] == [PROBE_PAIRS_MAX]


def test_a_packed_writer_finds_points_per_sample_stored_before_a_switch(influxdb: InfluxDB, tmp_path: Path) -> None:
    """Where the store writes packed parts, points per sample are asked for once per cluster: a sensor that has one
    near is checked exactly (a collision refused, a replay not stored again), the others of the turn are not."""
    points = v1_store(influxdb, tmp_path / "points")
    packed = v1_store(influxdb, tmp_path / "packed", raw_layout="packed")
    try:
        a, b = new_subject(), new_subject()
        stored = batch(a, seq_first=0)
        points.write_raw(stored)  # before the switch
        other = batch(a, seq_first=0, serial="GS24-OTHER", boot_epoch=43)  # another sensor on the same times
        report = packed.write_raw_many([other, batch(b, seq_first=0, placement="left_thigh")])
        assert len(report.collisions) == 100 and {c.time_us for c in report.collisions} == set(
            stored.time_us().tolist()
        )
        again = packed.write_raw_many([stored, batch(b, seq_first=100, placement="left_thigh")])
        assert again.collisions == [] and again.quarantined == []
        assert packed.read_raw(a, "pelvis").serial == ("GS24-0001",) * 100
        assert packed.read_raw(b, "left_thigh").seq.tolist() == list(range(200))
    finally:
        points.close()
        packed.close()


def test_a_turn_of_several_sensors_finds_each_ones_packed_replay(influxdb: InfluxDB, tmp_path: Path) -> None:
    """The packed parts of a cluster's sensors are probed in one statement: a replay of the second sensor's batch
    (in time), mapped 30 ms later, is found beside the first sensor's new data, and not stored twice."""
    store = v1_store(influxdb, tmp_path, raw_layout="packed")
    try:
        a, b = new_subject(), new_subject()
        store.write_raw_many(
            [batch(a, seq_first=0), *(batch(b, seq_first=q, placement="left_thigh") for q in (0, 100))]
        )
        later = ClockMapping(True, 5_000_000 - 30_000, T0_UTC_S, 1.0, 0.0, 0.8)
        replay = batch(b, seq_first=100, placement="left_thigh", clock=later)
        new = batch(a, seq_first=100)
        assert int(new.time_us()[0]) < int(replay.time_us()[0])
        report = store.write_raw_many([replay, new])
        assert report.moved_samples == 100 and report.collisions == []
        assert store.read_raw(b, "left_thigh").seq.tolist() == list(range(200))
        assert store.read_raw(a, "pelvis").seq.tolist() == list(range(200))
    finally:
        store.close()


def test_a_packed_writer_finds_a_points_replay_moved_just_out_of_its_span(influxdb: InfluxDB, tmp_path: Path) -> None:
    """The presence statement reaches 1 s past the spans: points stored before a switch end 5 ms before the
    replay's span, moved 995 ms later, and the replay is still found (not stored twice)."""
    points = v1_store(influxdb, tmp_path / "points")
    packed = v1_store(influxdb, tmp_path / "packed", raw_layout="packed")
    try:
        a = new_subject()
        points.write_raw(batch(a, seq_first=0))
        moved = ClockMapping(True, 5_000_000 - 995_000, T0_UTC_S, 1.0, 0.0, 0.8)
        report = packed.write_raw_many([batch(a, seq_first=0, clock=moved)])
        assert report.moved_samples == 100 and report.collisions == []
        assert packed.read_raw(a, "pelvis").seq.tolist() == list(range(100))
    finally:
        points.close()
        packed.close()


def test_each_packed_part_is_judged_by_its_own_sensors_spans(influxdb: InfluxDB, tmp_path: Path) -> None:
    """One statement answers the parts of a cluster's sensors: b's stored part (2 s before a's new span) is judged
    by b's replay, listed second, not by a's span, which it does not meet."""
    store = v1_store(influxdb, tmp_path, raw_layout="packed")
    try:
        a, b = new_subject(), new_subject()
        store.write_raw_many([batch(a, seq_first=0), batch(b, seq_first=0, placement="left_thigh")])
        later = ClockMapping(True, 5_000_000 - 30_000, T0_UTC_S, 1.0, 0.0, 0.8)
        report = store.write_raw_many(
            [batch(a, seq_first=300), batch(b, seq_first=0, placement="left_thigh", clock=later)]
        )
        assert report.moved_samples == 100 and report.collisions == []
        assert store.read_raw(b, "left_thigh").seq.tolist() == list(range(100))
    finally:
        store.close()
