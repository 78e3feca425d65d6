"""The packed raw parts' codec (`analytics.stores.raw_packed`): golden vectors both ways, bit-for-bit round trips of
what the packet decoder makes, the part bounds, one sample per time on the way back, hostile stored parts, and
parts written to and read back from a real InfluxDB 1.6."""

from __future__ import annotations

import base64
import itertools
import json
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analytics.stores.errors import InvalidBatch, InvalidStoredPart
from analytics.stores.influx_codec import from_clause
from analytics.stores.model import samples_from_arrays
from analytics.stores.points import point_line
from analytics.stores.raw_model import RawSamples, RawSeries
from analytics.stores.raw_packed import (
    PART_MAX_SAMPLES,
    PART_MAX_US,
    PART_STEP_MAX_US,
    RAW_PACKED,
    _one_part,
    _pack_parts,
    merge,
    pack,
    part_bounds,
    unpack,
)
from analytics.stores.vectors.make_vectors import CLOCK, batch_from_json, point_json
from firmware_protocol.packet import ImuPacket, encode_packet
from firmware_protocol.packet_arrays import decode_packets
from firmware_protocol.wire import ACC_RANGES_G, GYR_RANGES_DPS
from gaitsym_common.uplink.envelope import ClockMapping, SensorIdentity
from testing.influxdb_server import InfluxDB

VECTORS = json.loads(resources.files("analytics.stores.vectors").joinpath("raw_packed.json").read_text())


def _bits(a: np.ndarray) -> list[str]:
    return [float(v).hex() for v in np.asarray(a, dtype=np.float64).reshape(-1)]


def assert_same_samples(series: RawSeries, samples: RawSamples) -> None:
    """Every column of what came back is the batch's, bit for bit."""
    order = np.argsort(samples.time_us(), kind="stable")
    assert series.time_us.tolist() == samples.time_us()[order].tolist()
    assert series.seq.tolist() == samples.seq[order].tolist()
    assert series.t_sensor_us.tolist() == samples.t_sensor_us[order].tolist()
    assert series.boot_epoch.tolist() == [samples.boot_epoch] * len(samples)
    assert series.serial == (samples.serial,) * len(samples)
    assert series.session == (samples.session,) * len(samples)
    assert _bits(series.acc_mps2) == _bits(samples.acc_mps2[order])
    assert _bits(series.gyr_dps) == _bits(samples.gyr_dps[order])


def batch(seq: Any, ticks: Any, acc: Any, gyr: Any, clock: ClockMapping = CLOCK, **kw: Any) -> RawSamples:
    return samples_from_arrays(
        subject="P001",
        session=kw.get("session", "S1"),
        placement="left_thigh",
        serial="GS-7",
        boot_epoch=3,
        seq=seq,
        t_sensor_us=ticks,
        acc_mps2=acc,
        gyr_dps=gyr,
        clock=clock,
        sensor=kw.get("sensor"),
    )


def decoded_batch(
    rng: np.random.Generator, acc_range_g: int, gyr_range_dps: int, n_packets: int = 10, rate_hz: float = 100.0
) -> RawSamples:
    """A batch as the worker makes it: packets encoded as a sensor sends them, decoded by `decode_packets`."""
    packets = []
    for k in range(n_packets):
        counts = rng.integers(-32768, 32768, (10, 6))
        packet = ImuPacket(
            sequence=500 + 10 * k,
            timestamp_us=8_000_000 + round(10 * k * 1e6 / rate_hz),
            acc_range_g=acc_range_g,
            gyr_range_dps=gyr_range_dps,
            samples=tuple(tuple(int(v) for v in row) for row in counts),
        )
        packets.append(encode_packet(packet))
    arrays = decode_packets(packets, seq_first=500, timestamp_us_first=8_000_000, sample_rate_hz=rate_hz)
    sensor = SensorIdentity("GS-7", 3, rate_hz, acc_range_g, gyr_range_dps)
    return batch(arrays.seq, arrays.t_sensor_us, arrays.acc_mps2, arrays.gyr_dps, sensor=sensor)


# ------------------------------------------------------------------------------------------ golden vectors


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["name"])
def test_golden_vectors_pack_to_their_points(vector: dict[str, Any]) -> None:
    assert [point_json(p) for p in pack(batch_from_json(vector["batch"]))] == vector["points"]


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["name"])
def test_golden_vectors_unpack_to_their_batch(vector: dict[str, Any]) -> None:
    parts = [unpack(p["time"], p["fields"]) for p in vector["points"]]
    assert_same_samples(merge(parts), batch_from_json(vector["batch"]))


def test_golden_vectors_cover_both_encodings_and_several_parts() -> None:
    encodings = {p["fields"]["enc"] for v in VECTORS["valid"] for p in v["points"]}
    assert encodings == {"i2", "f8"}
    assert max(len(v["points"]) for v in VECTORS["valid"]) >= 2


@pytest.mark.parametrize("vector", VECTORS["malformed"], ids=lambda v: v["name"])
def test_malformed_vectors_are_refused_naming_their_field(vector: dict[str, Any]) -> None:
    with pytest.raises(InvalidStoredPart) as caught:
        unpack(vector["time"], vector["fields"])
    assert caught.value.field == vector["field"]
    assert vector["field"] in str(caught.value)


# ------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("acc_range_g", ACC_RANGES_G)
@pytest.mark.parametrize("gyr_range_dps", GYR_RANGES_DPS)
def test_what_the_packet_decoder_makes_packs_as_counts_and_comes_back_bit_for_bit(
    acc_range_g: int, gyr_range_dps: int
) -> None:
    samples = decoded_batch(np.random.default_rng(acc_range_g * 10_000 + gyr_range_dps), acc_range_g, gyr_range_dps)
    points = pack(samples)
    assert [p.fields["enc"] for p in points] == ["i2"]
    assert_same_samples(merge([unpack(p.time_us, p.fields) for p in points]), samples)


def test_a_batch_without_declared_ranges_still_packs_as_counts() -> None:
    samples = decoded_batch(np.random.default_rng(5), 4, 500)
    bare = batch(samples.seq, samples.t_sensor_us, samples.acc_mps2, samples.gyr_dps, sensor=None)
    assert [p.fields["enc"] for p in pack(bare)] == ["i2"]


def test_values_that_are_no_counts_pack_as_float64_and_come_back_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    seq = np.arange(40)
    # a range changed inside the batch (two scales), a value off the count grid, -0.0 and a subnormal
    first, second = decoded_batch(rng, 2, 125, 2), decoded_batch(rng, 16, 2000, 2)
    acc = np.vstack([first.acc_mps2, second.acc_mps2])
    gyr = np.vstack([first.gyr_dps, second.gyr_dps])
    gyr[3, 1] = -0.0
    acc[5, 2] = 5e-324
    samples = batch(seq, 1_000 + seq * 10_000, acc, gyr)
    points = pack(samples)
    assert [p.fields["enc"] for p in points] == ["f8"]
    assert_same_samples(merge([unpack(p.time_us, p.fields) for p in points]), samples)


def test_sequence_steps_past_int32_pack_as_float64_and_past_a_batch_span_start_a_part() -> None:
    rng = np.random.default_rng(2)
    samples = decoded_batch(rng, 8, 1000, 1)
    for jump, encodings in ((2**31 - 1, ["f8"]), (2**33, ["i2", "i2"])):  # a step of 2**31 does not fit int32
        seq = samples.seq.copy()
        seq[5:] += jump  # as if the samples between were refused
        jumped = batch(seq, samples.t_sensor_us, samples.acc_mps2, samples.gyr_dps)
        points = pack(jumped)
        assert [p.fields["enc"] for p in points] == encodings
        assert_same_samples(merge([unpack(p.time_us, p.fields) for p in points]), jumped)


def test_negative_zero_keeps_its_sign_in_a_batch_of_counts() -> None:
    samples = decoded_batch(np.random.default_rng(12), 16, 2000, 1)
    acc, gyr = samples.acc_mps2.copy(), samples.gyr_dps.copy()
    acc[2, 0], gyr[4, 2] = 0.0, -0.0  # a count of 0 times the scale is +0.0: -0.0 is no count
    signed = batch(samples.seq, samples.t_sensor_us, acc, gyr)
    (point,) = pack(signed)
    assert point.fields["enc"] == "f8"
    assert_same_samples(unpack(point.time_us, point.fields), signed)


def test_a_batch_outside_what_a_part_may_hold_is_refused_naming_the_field() -> None:
    samples = decoded_batch(np.random.default_rng(13), 16, 2000, 1)
    for field, change in (
        ("seq", {"seq": samples.seq - 10_000}),
        ("t_sensor_us", {"ticks": samples.t_sensor_us + 2**53}),
    ):
        seq = change.get("seq", samples.seq)
        ticks = change.get("ticks", samples.t_sensor_us)
        with pytest.raises(InvalidBatch, match=field):
            pack(batch(seq, ticks, samples.acc_mps2, samples.gyr_dps))


def test_sensor_time_batches_before_1970_round_trip() -> None:
    unsynced = ClockMapping(False, 0, None, 1.0, 0.0, 0.0)
    samples = decoded_batch(np.random.default_rng(3), 16, 2000)
    slot = batch(samples.seq, samples.t_sensor_us, samples.acc_mps2, samples.gyr_dps, unsynced, session=None)
    points = pack(slot)
    assert all(p.time_us < 0 for p in points)
    assert_same_samples(merge([unpack(p.time_us, p.fields) for p in points]), slot)


def _variants() -> list[tuple[str, RawSamples]]:
    """Batches with declared ranges, the usual one and each way a batch may leave the one-step path."""
    rng = np.random.default_rng(41)
    out: list[tuple[str, RawSamples]] = []
    for g, d in itertools.product(ACC_RANGES_G, GYR_RANGES_DPS):
        out.append((f"decoded {g} g {d} dps", decoded_batch(rng, g, d)))
    base = decoded_batch(rng, 8, 1000)
    sensor = base.sensor

    def changed(name: str, seq: Any = None, ticks: Any = None, acc: Any = None, gyr: Any = None, **kw: Any) -> None:
        b = batch(
            base.seq if seq is None else seq,
            base.t_sensor_us if ticks is None else ticks,
            base.acc_mps2 if acc is None else acc,
            base.gyr_dps if gyr is None else gyr,
            sensor=kw.pop("sensor", sensor),
            **kw,
        )
        out.append((name, b))

    for name, (row, col, value) in {
        "-0.0": (3, 1, -0.0),
        "off the grid": (5, 4, 0.123456789),
        "beyond int16": (9, 5, 1e300),
        "subnormal": (0, 0, 5e-324),
    }.items():
        acc, gyr = base.acc_mps2.copy(), base.gyr_dps.copy()
        (acc if col < 3 else gyr)[row, col % 3] = value
        changed(name, acc=acc, gyr=gyr)
    other = decoded_batch(rng, 16, 250)  # counts of other ranges than those declared
    changed("other ranges than declared", acc=other.acc_mps2, gyr=other.gyr_dps)
    changed("no ranges declared", sensor=None)
    changed("undeclarable ranges", sensor=SensorIdentity("GS-7", 3, 100.0, 3, 600))
    changed("no session", session=None)
    changed("not synchronised", clock=ClockMapping(False, 0, None, 1.0, 0.0, 0.0))
    for n in (1, 2):
        changed(f"{n} samples", base.seq[:n], base.t_sensor_us[:n], base.acc_mps2[:n], base.gyr_dps[:n])
    for n_packets in (60, 61):  # 6 s at 100 Hz: past a part's span; 610 also past its count
        long = decoded_batch(rng, 4, 500, n_packets)
        out.append((f"{10 * n_packets} samples", long))
    for n_packets in (60, 100):  # the firmware's top rate: 600 samples are one part, 1,000 past a part's count
        out.append((f"{10 * n_packets} samples at 1 kHz", decoded_batch(rng, 4, 500, n_packets, rate_hz=1000.0)))
    for name, at, step in (
        ("a tick repeated", 4, -10_000),
        ("time going back", 4, -20_000),
        ("a 60-ms step", 4, 50_000),
        ("a tick step past a part's", 4, 2**32),
    ):
        ticks = base.t_sensor_us.copy()
        ticks[at:] += step
        changed(name, ticks=ticks)
    for name, jump in (("a sequence step past int32", 2**31 - 1), ("a sequence step past a batch", 2**33)):
        seq = base.seq.copy()
        seq[5:] += jump
        changed(name, seq=seq)
    spread = base.t_sensor_us[0] + np.arange(len(base.seq)) * 49_000  # just within a part's step, 4.85 s
    changed("steps of 49 ms", ticks=spread)
    changed("sequence out of range", seq=base.seq - 10_000)
    changed("sequence past its limit", seq=base.seq + (2**53 - 1) - int(base.seq[50]))
    changed("sensor time out of range", ticks=base.t_sensor_us + 2**53)
    changed("sensor time before its origin", ticks=base.t_sensor_us - int(base.t_sensor_us[0]) - 1)
    # a tick step past int32 within a part's 50 ms only under a clock running ~50,000 times slow (10-Hz ticks)
    slow = ClockMapping(True, 0, 1.7e9, 2e-5, 0.0, 0.8)
    ticks = np.arange(len(base.seq), dtype=np.int64) * 100_000
    ticks[6:] += 2**31
    changed("a tick step past int32", ticks=ticks, clock=slow)
    return out


@pytest.mark.parametrize(("name", "samples"), _variants(), ids=[name for name, _ in _variants()])
def test_the_usual_batch_packs_in_one_step_as_the_general_path_packs_it(name: str, samples: RawSamples) -> None:
    """`pack` takes a one-step path for the usual batch: it must give the general path's points, line for line."""
    try:
        expected = [point_line(p) for p in _pack_parts(samples)]
    except InvalidBatch as exc:
        with pytest.raises(InvalidBatch, match=str(exc).split(": ", 1)[1].split(" ")[0]):
            pack(samples)
        assert _one_part(samples) is None
        return
    assert [point_line(p) for p in pack(samples)] == expected
    one = _one_part(samples)
    if one is not None:
        assert [point_line(one)] == expected
    if name.startswith("decoded") or name in ("no session", "not synchronised", "2 samples", "600 samples at 1 kHz"):
        assert one is not None, "the usual batch leaves the one-step path"


# ------------------------------------------------------------------------------------------ part bounds


def test_part_bounds_cut_where_time_jumps_goes_back_or_runs_too_long() -> None:
    t = list(range(0, 100_000, 10_000))  # 10 samples, 10 ms apart
    t += [t[-1] + PART_STEP_MAX_US + 1]  # a jump: a new part
    t += [t[-1] - 5_000]  # back in time: a new part
    t += [t[-1] + 10_000 * k for k in range(1, 4)]
    assert part_bounds(t) == [(0, 10), (10, 11), (11, 15)]
    assert part_bounds([]) == []
    assert part_bounds([5]) == [(0, 1)]
    assert part_bounds([0, 0]) == [(0, 1), (1, 2)]  # a repeated time: never two samples of a part at one time
    assert part_bounds([2**63 - 10, 2**63 - 5]) == [(0, 2)]  # offsets from the part's start: no int64 wrap
    assert part_bounds([0, 10, 20], seq=[1, 1, 2]) == [(0, 1), (1, 3)]  # the sequence must rise
    assert part_bounds([0, 10, 20], t_sensor_us=[5, 4, 6]) == [(0, 1), (1, 3)]  # the sensor clock must not fall


def test_part_bounds_keep_every_part_within_its_span_and_count() -> None:
    long_run = np.arange(0, 3 * PART_MAX_US, 40_000)  # 25 Hz for 15 s: spans cut
    bounds = part_bounds(long_run)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(long_run)
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(bounds))
    assert all(long_run[b - 1] - long_run[a] <= PART_MAX_US for a, b in bounds)
    # each part as long as allowed (its last sample exactly 5 s after its first), the rest in the last
    assert [b - a for a, b in bounds] == [126, 126, 123]
    dense = np.arange(PART_MAX_SAMPLES * 2 + 3)  # 1 us apart: the count cuts first
    assert [b - a for a, b in part_bounds(dense)] == [PART_MAX_SAMPLES, PART_MAX_SAMPLES, 3]


def test_every_packed_part_is_within_the_bounds_a_reader_relies_on() -> None:
    rng = np.random.default_rng(8)
    samples = decoded_batch(rng, 16, 2000, 100)  # 1,000 samples over 10 s (a link stalled, then a burst)
    ticks = samples.t_sensor_us.copy()
    ticks[300:] += 120_000  # a clock jump after 3 s; the 7 s after it are cut at 5 s
    jumpy = batch(samples.seq, ticks, samples.acc_mps2, samples.gyr_dps)
    points = pack(jumpy)
    assert [p.fields["n"] for p in points] == [300, 501, 199]
    for p in points:
        part = unpack(p.time_us, p.fields)
        assert part.time_us[0] == p.time_us and p.fields["time_last_us"] - p.time_us <= PART_MAX_US
        assert (np.diff(part.time_us) > 0).all() and (np.diff(part.time_us) <= PART_STEP_MAX_US).all()
    assert sum(int(p.fields["n"]) for p in points) == len(jumpy)
    assert_same_samples(merge([unpack(p.time_us, p.fields) for p in points]), jumpy)


# ------------------------------------------------------------------------------------------ reading back


def test_merge_keeps_one_sample_per_time_and_trims_to_the_range() -> None:
    rng = np.random.default_rng(4)
    samples = decoded_batch(rng, 16, 2000, 4)  # 40 samples
    t = samples.time_us()
    whole = [unpack(p.time_us, p.fields) for p in pack(samples)]
    # the same part stored twice, and a re-batched copy of samples 10-29 (a gateway that batched again)
    again = [unpack(p.time_us, p.fields) for p in pack(samples.take(np.arange(40) >= 10))]
    merged = merge([*whole, *whole, *again])
    assert_same_samples(merged, samples)
    inside = merge([*whole, *again], int(t[5]), int(t[30]))
    assert inside.time_us.tolist() == t[5:31].tolist()
    assert _bits(inside.acc_mps2) == _bits(samples.acc_mps2[5:31])
    assert len(merge([], 0, 10)) == 0
    assert len(merge(whole, int(t[-1]) + 1, None)) == 0


def test_a_stored_part_of_another_writer_is_checked_field_by_field() -> None:
    samples = decoded_batch(np.random.default_rng(6), 16, 2000, 1)
    (point,) = pack(samples)
    fields = dict(point.fields)
    base = unpack(point.time_us, fields)
    # a JSON reader may give integers back as floats: read as the integers they are
    floated = {k: float(v) if isinstance(v, int) and abs(v) < 2**53 else v for k, v in fields.items()}
    assert unpack(point.time_us, floated).seq.tolist() == base.seq.tolist()
    hostile = {
        "n": [True, 1.5, -1, PART_MAX_SAMPLES + 1, None],
        "serial": [None, 7, "x" * 300],
        "session": [7],
        "samples": [None, "x", fields["samples"] + "A"],
        # 1e308: counts times it overflow; 10**400: no float holds it
        "acc_scale": [float("nan"), float("inf"), -1.0, "1", 1e308, 10**400],
        "boot_epoch": [2**63, "3", -1, 2**32],
        "seq_first": [-1, float(2**60), 2**53],  # a float beyond 2**53 may not be the integer stored
        "t_sensor_us_first": [None, -5],
        "enc": [np.array(["i2"]), 2],
    }
    for name, values in hostile.items():
        for value in values:
            with pytest.raises(InvalidStoredPart) as caught:
                unpack(point.time_us, {**fields, name: value})
            assert caught.value.field in (name, "samples"), (name, value, caught.value)
    with pytest.raises(InvalidStoredPart, match="time_last_us"):
        unpack(point.time_us - 1, fields)  # the point's time moved: the part no longer ends where it says
    for time_us in ("1", 1000.5, 2**63):
        with pytest.raises(InvalidStoredPart, match="time"):
            unpack(time_us, fields)  # type: ignore[arg-type]


def test_a_part_whose_times_or_sequence_numbers_do_not_rise_is_refused() -> None:
    samples = decoded_batch(np.random.default_rng(7), 16, 2000, 1)  # 10 samples: 9 steps of each, int32
    (point,) = pack(samples)
    assert point.fields["enc"] == "i2"

    def with_step(offset: int, step: int) -> dict[str, Any]:
        blob = bytearray(base64.b64decode(str(point.fields["samples"])))
        blob[offset : offset + 4] = step.to_bytes(4, "little", signed=True)
        return {**point.fields, "samples": base64.b64encode(bytes(blob)).decode()}

    for step in (0, -10_000, PART_STEP_MAX_US + 1):  # the first time step: two samples at one time, back, too far
        with pytest.raises(InvalidStoredPart, match="mapped times"):
            unpack(point.time_us, with_step(0, step))
    for step in (0, -1):  # the first sequence step (after the 9 time and 9 sensor-clock steps)
        with pytest.raises(InvalidStoredPart, match="sequence numbers"):
            unpack(point.time_us, with_step(2 * 9 * 4, step))
    with pytest.raises(InvalidStoredPart, match="sensor times"):
        unpack(point.time_us, with_step(9 * 4, -1))  # the sensor clock going back


def test_sequence_steps_that_would_wrap_int64_are_refused() -> None:
    rng = np.random.default_rng(14)
    samples = batch(np.arange(5), 1_000 + np.arange(5) * 10_000, rng.normal(0, 9, (5, 3)), rng.normal(0, 90, (5, 3)))
    (point,) = pack(samples)
    assert point.fields["enc"] == "f8"  # steps as int64: 4 time, 4 sensor-clock, then 4 sequence steps
    blob = bytearray(base64.b64decode(str(point.fields["samples"])))
    blob[64:96] = np.full(4, 2**62, dtype="<i8").tobytes()  # four steps of 2**62 sum to 2**64: back where it began
    fields = {**point.fields, "samples": base64.b64encode(bytes(blob)).decode()}
    with pytest.raises(InvalidStoredPart, match="sequence numbers"):
        unpack(point.time_us, fields)


# ------------------------------------------------------------------------------------------ a real InfluxDB


def test_parts_written_to_influxdb_read_back_bit_for_bit(tmp_path: Path) -> None:
    """Line protocol of the packed points into a real InfluxDB 1.6, read back with InfluxQL (JSON): the same
    samples (the strings survive the server, its integers and floats come back as the codec needs)."""
    from analytics.stores.influx import InfluxConfig, InfluxStore
    from analytics.stores.quarantine import Quarantine
    from testing.influxdb_server import WORKER_PASSWORD, WORKER_USER
    from testing.servers import killed_after

    for server in killed_after(InfluxDB(tmp_path / "influxdb").start()):
        config = InfluxConfig(url=server.url, username=WORKER_USER, password=WORKER_PASSWORD, retry_for_s=5.0)
        store = InfluxStore(config, Quarantine(tmp_path / "q.sqlite"))
        try:
            rng = np.random.default_rng(9)
            # mapped to an hour ago: inside the raw policy's 30 days whenever the test runs
            now = ClockMapping(True, 8_000_000, time.time() - 3600.0, 1.0, 0.0, 0.5)
            counted = decoded_batch(rng, 16, 2000, 30)
            counted = batch(counted.seq, counted.t_sensor_us, counted.acc_mps2, counted.gyr_dps, now)
            # float64 values (the longest text a sample makes) in a burst of the longest batch the uplink takes:
            # parts of at most PART_MAX_SAMPLES keep each string under the 64 KB InfluxDB documents
            n = 4096
            ticks = 20_000_000 + np.arange(n) * 1_000
            floats = batch(np.arange(n), ticks, rng.normal(0, 9, (n, 3)), rng.normal(0, 90, (n, 3)), now)
            for samples in (counted, floats):
                lines = [point_line(p) for p in pack(samples)]
                report = store.transport.write_lines("raw", lines, "packed", store.quarantine, "P001")
                assert not report.quarantined
            rows = list(store.rows(f"SELECT * FROM {from_clause(config.database, 'raw', RAW_PACKED)}"))
            assert len(rows) == 1 + 7  # one part, and 4,096 samples at 1 kHz in parts of 600
            parts = [unpack(int(r["time"]), {k: v for k, v in r.items() if v is not None}) for r in rows]
            for samples in (counted, floats):
                mine = [p for p in parts if p.t_sensor_us[0] in samples.t_sensor_us]
                assert_same_samples(merge(mine), samples)
        finally:
            store.close()
