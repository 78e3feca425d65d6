"""Raw samples packed one point per batch part (`raw_packed`), and unpacked again: a pure codec, no IO.

InfluxDB 1.6 spends most of its CPU per field value of a point, and raw samples are 300 points of 11 fields per
subject-second; one point per part of a batch, its samples in one string field, cost it 87 % less in the
real-time raw bench (docs/raw-layout-packed.md, bench/RESULTS.md "Storage: InfluxDB CPU"). This module is that
layout's codec; `influx_packed` reads and writes such points for the InfluxDB store (`raw_layout=packed`).

A part is a run of one batch's samples whose mapped times rise by at most `PART_STEP_MAX_US` from one sample to
the next and span at most `PART_MAX_US` (the bound a reader of a time range looks back by). Its point stands at its
first sample's time, tags ``subject`` and ``placement``; fields:

- ``serial`` (str), ``boot_epoch``, ``seq_first``, ``seq_last``, ``n``, ``t_sensor_us_first``, ``time_last_us``
  (int), ``session`` (str, absent when the batch has none);
- ``enc``: ``"i2"`` when every value is an int16 count times one scale per sensor that gives it back bit for bit
  (what `firmware_protocol.packet_arrays` makes), with ``acc_scale`` (m/s² per count) and ``gyr_scale`` (deg/s per
  count); else ``"f8"``;
- ``samples``: base64 of little-endian arrays, in order: the steps of mapped time, sensor time and sequence
  (int32 under ``i2``, int64 under ``f8``; n - 1 each), then per sample acc x, y, z, gyr x, y, z (int16 counts
  under ``i2``, float64 under ``f8``).

Units as `raw_model`: times in µs, acc m/s² (gravity included), gyr deg/s, seq in samples since boot.

A stored part is read back as untrusted input (another writer, another version, a hand-made point): `unpack`
checks every field's type and range, the base64, the arrays' lengths against ``n``, rising times within the part
bounds, rising sequence numbers and finite values, and raises `InvalidStoredPart` naming the field.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.stores.errors import InvalidBatch, InvalidStoredPart
from analytics.stores.points import RAW_PACKED, FieldValue, Point
from analytics.stores.raw_model import RawSamples, RawSeries
from firmware_protocol.packet import ImuPacket
from firmware_protocol.wire import ACC_RANGES_G, GYR_RANGES_DPS
from gaitsym_common.uplink.limits import MAX_BATCH_SPAN, MAX_BOOT_EPOCH, MAX_COUNTER

PART_STEP_MAX_US = 50_000
"""Two consecutive samples of a part are at most this far apart in mapped time (µs; the write check's
`raw_plan.SPAN_JOIN_US`): a batch mapped far apart becomes several parts."""
PART_MAX_US = 5_000_000
"""A part's last sample is at most this long after its first (µs): a read of [t0, t1] asks for the parts starting
in [t0 - PART_MAX_US, t1]."""
PART_MAX_SAMPLES = 600
"""Samples in one part at most: InfluxDB's documentation gives 64 KB as a string field's limit (1.6.7 kept a
400-KB one whole, measured, but the limit is the documented one), and 600 samples as float64 (`f8`: 72 bytes a
sample) are 58 KB of base64. A 1-s batch at 100 Hz is one part; the firmware's top rate, 1 kHz,
makes two; a 4,096-sample burst seven."""
TIME_LIMIT_US = 2**62
"""A stored part's time lies within ±this (µs; InfluxDB's own range is ±2**63 ns): with at most `PART_MAX_SAMPLES`
steps of at most `PART_STEP_MAX_US` its samples' times cannot overflow."""
TICK_STEP_MAX = 2**32
"""A part's sensor clock steps by at most this (µs) from one sample to the next: its samples come from u32 counters
unwrapped forward."""
PART_MAX_TEXT = 4 * math.ceil((3 * 8 * (PART_MAX_SAMPLES - 1) + 6 * 8 * PART_MAX_SAMPLES) / 3)
"""The longest ``samples`` text a valid part can have (``f8`` at `PART_MAX_SAMPLES`)."""

_INT32 = np.iinfo(np.int32)


def _packet_scales(acc_range_g: int, gyr_range_dps: int) -> tuple[float, float]:
    """(m/s², deg/s) per count of these ranges, computed as the decoder computes them."""
    packet = ImuPacket(sequence=0, timestamp_us=0, acc_range_g=acc_range_g, gyr_range_dps=gyr_range_dps, samples=())
    return packet.acc_scale_mps2, packet.gyr_scale_dps


_SCALES: tuple[tuple[float, ...], tuple[float, ...]] = (
    tuple(_packet_scales(g, GYR_RANGES_DPS[0])[0] for g in ACC_RANGES_G),
    tuple(_packet_scales(ACC_RANGES_G[0], d)[1] for d in GYR_RANGES_DPS),
)
"""The count scales of the firmware's ranges (m/s² and deg/s per count)."""


def part_bounds(
    time_us: npt.ArrayLike, seq: npt.ArrayLike | None = None, t_sensor_us: npt.ArrayLike | None = None
) -> list[tuple[int, int]]:
    """[a, b) index ranges of the parts of samples with these mapped times (in the batch's order): a new part
    wherever the time does not rise, rises by more than `PART_STEP_MAX_US`, would take the part past `PART_MAX_US`,
    or past `PART_MAX_SAMPLES` samples; and, when given, wherever the sequence does not rise by 1 to
    `MAX_BATCH_SPAN` or the sensor clock by 0 to `TICK_STEP_MAX` (what `unpack` accepts of a part)."""
    t = np.asarray(time_us, dtype=np.int64)
    steps = [np.diff(t)]
    if seq is not None:
        steps.append(np.diff(np.asarray(seq, dtype=np.int64)))
    if t_sensor_us is not None:
        steps.append(np.diff(np.asarray(t_sensor_us, dtype=np.int64)))
    return _bounds(t, *steps, checks=(seq is not None, t_sensor_us is not None))


_STEP_RANGES = ((1, PART_STEP_MAX_US), (1, MAX_BATCH_SPAN), (0, TICK_STEP_MAX))
"""(smallest, largest) step within a part: of the mapped time, the sequence, the sensor clock."""


def _bounds(t: np.ndarray, *steps: np.ndarray, checks: tuple[bool, bool] = (True, True)) -> list[tuple[int, int]]:
    n = len(t)
    if n == 0:
        return []
    ranges = [_STEP_RANGES[0], *(r for r, on in zip(_STEP_RANGES[1:], checks, strict=True) if on)]
    one = n <= PART_MAX_SAMPLES and int(t[-1]) - int(t[0]) <= PART_MAX_US  # the usual batch: one part
    if one and (
        n == 1 or all(lo <= int(d.min()) and int(d.max()) <= hi for d, (lo, hi) in zip(steps, ranges, strict=True))
    ):
        return [(0, n)]
    cut = np.zeros(n - 1, dtype=bool)
    for d, (lo, hi) in zip(steps, ranges, strict=True):
        cut |= (d < lo) | (d > hi)
    breaks = (np.flatnonzero(cut) + 1).tolist()
    out = []
    for a, b in zip([0, *breaks], [*breaks, n], strict=True):
        while a < b:  # within a run every step is small: cut it by span and count (offsets from the part's first time)
            end = min(b, a + PART_MAX_SAMPLES, a + int(np.searchsorted(t[a:b] - t[a], PART_MAX_US, side="right")))
            out.append((a, end))
            a = end
    return out


def _counts(values: np.ndarray, scales: np.ndarray) -> np.ndarray | None:
    """int16 counts that give back ``values`` (n, 6) bit for bit times ``scales`` (one per column), or None."""
    with np.errstate(over="ignore", invalid="ignore"):  # values far beyond any count: no scale fits
        counts = np.rint(values / scales)
    if counts.size and (counts.min() < -32768 or counts.max() > 32767):
        return None
    packed = counts.astype("<i2")
    # what `unpack` gives back, compared bit for bit (-0.0 equals 0.0 as a number; a count of 0 gives +0.0)
    if not np.array_equal((packed * scales).view(np.int64), values.view(np.int64)):
        return None
    return packed


def _fitted(values: np.ndarray, first: tuple[float, float] | None) -> tuple[float, float, np.ndarray] | None:
    """(acc scale, gyr scale, counts) of a part's (n, 6) values: the declared ranges' scales first, then any of
    the firmware's (per sensor); None when no scale gives every value back."""
    if first is not None:
        packed = _counts(values, np.repeat(np.asarray(first, dtype=np.float64), 3))
        if packed is not None:
            return first[0], first[1], packed
    fits = []
    for cols, scales in ((slice(0, 3), _SCALES[0]), (slice(3, 6), _SCALES[1])):
        part = np.ascontiguousarray(values[:, cols])
        fit = next(((s, c) for s in scales if (c := _counts(part, np.full(3, s))) is not None), None)
        if fit is None:
            return None
        fits.append(fit)
    return fits[0][0], fits[1][0], np.column_stack([fits[0][1], fits[1][1]])


def pack(samples: RawSamples) -> list[Point]:
    """The `raw_packed` points of a batch's samples (all of them: the write rule picks the samples first).
    InvalidBatch names a field outside what a stored part may hold (the uplink's limits keep a batch within)."""
    if len(samples.serial) > 256 or (samples.session is not None and len(samples.session) > 256):
        raise InvalidBatch(f"{samples.describe()}: serial or session longer than 256 characters")
    if not 0 <= samples.boot_epoch <= MAX_BOOT_EPOCH:
        raise InvalidBatch(f"{samples.describe()}: boot_epoch outside 0..{MAX_BOOT_EPOCH}: no packed part holds it")
    part = _one_part(samples)
    return [part] if part is not None else _pack_parts(samples)


@functools.lru_cache(maxsize=64)
def _declared_scales(acc_range_g: int, gyr_range_dps: int) -> tuple[float, float, np.ndarray]:
    """(m/s², deg/s) per count of these ranges, and the six columns' scales as one row (read-only)."""
    acc, gyr = _packet_scales(acc_range_g, gyr_range_dps)
    row = np.array([acc, acc, acc, gyr, gyr, gyr], dtype=np.float64)
    row.flags.writeable = False
    return acc, gyr, row


_STORED_STEP_RANGES = (_STEP_RANGES[0], _STEP_RANGES[2], _STEP_RANGES[1])
"""`_STEP_RANGES` in the order the steps are stored: mapped time, sensor clock, sequence."""


def _one_part(samples: RawSamples) -> Point | None:
    """The usual batch's one point in a few whole-array steps, or None where `_pack_parts` must decide: several
    parts, counts not at the declared ranges' scales (or none declared), a step beyond int32, a column out of
    range. Where it gives a point it is `_pack_parts`' own, byte for byte (tests/stores/test_raw_packed.py pins
    it): this runs for every batch a worker stores."""
    declared = samples.sensor
    n = len(samples.seq)
    if (
        declared is None
        or not 1 < n <= PART_MAX_SAMPLES
        or declared.acc_range_g not in ACC_RANGES_G
        or declared.gyr_range_dps not in GYR_RANGES_DPS
    ):
        return None
    acc_scale, gyr_scale, row = _declared_scales(declared.acc_range_g, declared.gyr_range_dps)
    times, seq, ticks = samples.time_us(), samples.seq, samples.t_sensor_us
    t0, t_last = int(times[0]), int(times[-1])
    if t_last - t0 > PART_MAX_US or t0 < -TIME_LIMIT_US or t_last > TIME_LIMIT_US:
        return None
    if int(seq[0]) < 0 or int(seq[-1]) > MAX_COUNTER or int(ticks[0]) < 0 or int(ticks[-1]) > MAX_COUNTER:
        return None
    stacked = np.stack([times, ticks, seq])  # the steps' stored order
    steps = stacked[:, 1:] - stacked[:, :-1]
    lows, highs = steps.min(axis=1).tolist(), steps.max(axis=1).tolist()
    for lo, hi, (least, most) in zip(lows, highs, _STORED_STEP_RANGES, strict=True):
        if lo < least or hi > most:
            return None
    if highs[1] > _INT32.max or highs[2] > _INT32.max:
        return None
    values = np.concatenate([samples.acc_mps2, samples.gyr_dps], axis=1)
    # a count out of int16's range, or not giving its value back, makes the product differ from the value's bits
    with np.errstate(over="ignore", invalid="ignore"):
        counts = np.rint(values / row).astype("<i2")
    if (counts * row).tobytes() != values.tobytes():
        return None
    fields = _part_fields(samples, 0, n)
    fields.update(enc="i2", acc_scale=acc_scale, gyr_scale=gyr_scale)
    blob = steps.astype("<i4").tobytes() + counts.tobytes()
    fields["samples"] = base64.b64encode(blob).decode("ascii")
    return Point(RAW_PACKED, (("placement", samples.placement), ("subject", samples.subject)), fields, t0)


def _part_fields(samples: RawSamples, a: int, b: int) -> dict[str, FieldValue]:
    """A part's identity and extent (samples ``a``..``b - 1`` of the batch), before its encoding and samples."""
    times, seq, ticks = samples.time_us(), samples.seq, samples.t_sensor_us
    fields: dict[str, FieldValue] = {
        "serial": samples.serial,
        "boot_epoch": int(samples.boot_epoch),
        "seq_first": int(seq[a]),
        "seq_last": int(seq[b - 1]),
        "n": b - a,
        "t_sensor_us_first": int(ticks[a]),
        "time_last_us": int(times[b - 1]),
    }
    if samples.session is not None:
        fields["session"] = samples.session
    return fields


def _pack_parts(samples: RawSamples) -> list[Point]:
    """`pack` for any batch: cut into parts, each part's scales fitted (the declared ones first)."""
    times, seq, ticks = samples.time_us(), samples.seq, samples.t_sensor_us
    steps = (np.diff(times), np.diff(seq), np.diff(ticks))
    values = np.concatenate([samples.acc_mps2, samples.gyr_dps], axis=1)
    declared = samples.sensor
    first = None
    if declared is not None and declared.acc_range_g in ACC_RANGES_G and declared.gyr_range_dps in GYR_RANGES_DPS:
        first = _declared_scales(declared.acc_range_g, declared.gyr_range_dps)[:2]
    tags = (("placement", samples.placement), ("subject", samples.subject))
    points = []
    for a, b in _bounds(times, *steps):
        # within a part every value rises: its ends bound it
        for name, column, lo, hi in (
            ("seq", seq, 0, MAX_COUNTER),
            ("t_sensor_us", ticks, 0, MAX_COUNTER),
            ("time_us", times, -TIME_LIMIT_US, TIME_LIMIT_US),
        ):
            if int(column[a]) < lo or int(column[b - 1]) > hi:
                raise InvalidBatch(f"{samples.describe()}: {name} outside {lo}..{hi}: no packed part holds it")
        fields = _part_fields(samples, a, b)
        dt, ds, dk = (d[a : b - 1] for d in steps)
        part_steps = [dt, dk, ds]  # stored in this order: mapped time, sensor clock, sequence
        fitted = _fitted(values[a:b], first)
        if fitted is not None and all(int(d.max(initial=0)) <= _INT32.max for d in part_steps[1:]):
            arrays = [d.astype("<i4") for d in part_steps] + [fitted[2]]
            fields.update(enc="i2", acc_scale=fitted[0], gyr_scale=fitted[1])
        else:
            arrays = [d.astype("<i8") for d in part_steps] + [values[a:b].astype("<f8")]
            fields["enc"] = "f8"
        blob = b"".join(np.ascontiguousarray(x).tobytes() for x in arrays)
        fields["samples"] = base64.b64encode(blob).decode("ascii")
        points.append(Point(RAW_PACKED, tags, fields, int(times[a])))
    return points


# ------------------------------------------------------------------------------------------ back again


def _int(fields: Mapping[str, Any], name: str, lo: int, hi: int) -> int:
    value = fields.get(name)
    # a JSON reader may hand integers back as floats: taken where a float holds them exactly
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidStoredPart(name, f"{value!r} is not an integer in {lo}..{hi}")
    return value


def _str(fields: Mapping[str, Any], name: str, limit: int, optional: bool = False) -> str | None:
    value = fields.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidStoredPart(name, f"{_shown(value)} is not a text of at most {limit} characters")
    return value


def _scale(fields: Mapping[str, Any], name: str) -> float:
    value = fields.get(name)
    try:
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an integer beyond any float
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise InvalidStoredPart(name, f"{_shown(value)} is not a positive finite number")
    return number


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def unpack(time_us: int, fields: Mapping[str, Any]) -> RawSeries:
    """One stored part's samples (the point's time and its fields as read back), checked as untrusted input:
    InvalidStoredPart names the first field that is wrong."""
    time_us = _int({"time": time_us}, "time", -TIME_LIMIT_US, TIME_LIMIT_US)
    n = _int(fields, "n", 1, PART_MAX_SAMPLES)
    boot_epoch = _int(fields, "boot_epoch", 0, MAX_BOOT_EPOCH)
    seq_first = _int(fields, "seq_first", 0, MAX_COUNTER)
    seq_last = _int(fields, "seq_last", 0, MAX_COUNTER)
    tick_first = _int(fields, "t_sensor_us_first", 0, MAX_COUNTER)
    time_last = _int(fields, "time_last_us", -TIME_LIMIT_US, TIME_LIMIT_US)
    serial = _str(fields, "serial", 256)
    session = _str(fields, "session", 256, optional=True)
    enc = fields.get("enc")
    if not isinstance(enc, str) or enc not in ("i2", "f8"):
        raise InvalidStoredPart("enc", f"{_shown(enc)} is neither 'i2' nor 'f8'")
    text = _str(fields, "samples", PART_MAX_TEXT)
    assert text is not None
    try:
        blob = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidStoredPart("samples", f"not base64 ({exc})") from exc
    step, value = ("<i4", "<i2") if enc == "i2" else ("<i8", "<f8")
    step_bytes, value_bytes = np.dtype(step).itemsize * (n - 1), np.dtype(value).itemsize * 6 * n
    if len(blob) != 3 * step_bytes + value_bytes:
        raise InvalidStoredPart("samples", f"{len(blob)} bytes, {enc} with n={n} takes {3 * step_bytes + value_bytes}")
    steps = [np.frombuffer(blob, step, n - 1, i * step_bytes).astype(np.int64) for i in range(3)]
    values = np.frombuffer(blob, value, 6 * n, 3 * step_bytes).reshape(n, 6).astype(np.float64)
    if enc == "i2":
        acc_scale, gyr_scale = _scale(fields, "acc_scale"), _scale(fields, "gyr_scale")
        with np.errstate(over="ignore"):  # a hostile scale's overflow is refused just below
            values[:, :3] *= acc_scale
            values[:, 3:] *= gyr_scale
    if not np.isfinite(values).all():  # stored non-finite, or a count times a huge scale
        raise InvalidStoredPart("samples", "a value is not finite")
    if (steps[0] <= 0).any() or (steps[0] > PART_STEP_MAX_US).any():
        raise InvalidStoredPart("samples", f"mapped times do not rise by 1..{PART_STEP_MAX_US} us a sample")
    if (steps[2] <= 0).any() or (steps[2] > MAX_BATCH_SPAN).any():
        raise InvalidStoredPart("samples", f"sequence numbers do not rise by 1..{MAX_BATCH_SPAN} a sample")
    if (steps[1] < 0).any() or (steps[1] > TICK_STEP_MAX).any():
        raise InvalidStoredPart("samples", f"sensor times do not rise by 0..{TICK_STEP_MAX} us a sample")
    times = time_us + np.concatenate([[0], np.cumsum(steps[0])])
    seq = seq_first + np.concatenate([[0], np.cumsum(steps[2])])
    if int(times[-1]) != time_last or time_last - time_us > PART_MAX_US:
        raise InvalidStoredPart("time_last_us", f"{time_last} is not the part's last time ({int(times[-1])})")
    if int(seq[-1]) != seq_last:  # below MAX_COUNTER with the steps bounded: no int64 wrap on the way
        raise InvalidStoredPart("seq_last", f"{seq_last} is not the part's last sequence number ({int(seq[-1])})")
    return RawSeries(
        time_us=times.astype(np.int64),
        seq=seq.astype(np.int64),
        t_sensor_us=(tick_first + np.concatenate([[0], np.cumsum(steps[1])])).astype(np.int64),
        boot_epoch=np.full(n, boot_epoch, dtype=np.int64),
        serial=(serial or "",) * n,
        session=(session,) * n,
        acc_mps2=np.ascontiguousarray(values[:, :3]),
        gyr_dps=np.ascontiguousarray(values[:, 3:]),
    )


def merge(parts: Sequence[RawSeries], t0_us: int | None = None, t1_us: int | None = None) -> RawSeries:
    """The samples of parts in [t0_us, t1_us] (inclusive; None: unbounded), sorted by time, one per time: two
    stored samples at one time have one identity (the write rule), so a repeat is a copy (a part stored twice, or
    a re-sent batch overlapping a stored one) and the first part's is kept."""
    if not parts:
        return _empty()
    times = np.concatenate([p.time_us for p in parts])
    keep = np.ones(len(times), dtype=bool)
    if t0_us is not None:
        keep &= times >= t0_us
    if t1_us is not None:
        keep &= times <= t1_us
    order = np.flatnonzero(keep)
    order = order[np.argsort(times[order], kind="stable")]
    first = np.ones(len(order), dtype=bool)
    first[1:] = times[order][1:] != times[order][:-1]
    order = order[first]
    serial = [s for p in parts for s in p.serial]
    session = [s for p in parts for s in p.session]
    return RawSeries(
        time_us=times[order],
        seq=np.concatenate([p.seq for p in parts])[order],
        t_sensor_us=np.concatenate([p.t_sensor_us for p in parts])[order],
        boot_epoch=np.concatenate([p.boot_epoch for p in parts])[order],
        serial=tuple(serial[i] for i in order),
        session=tuple(session[i] for i in order),
        acc_mps2=np.concatenate([p.acc_mps2 for p in parts])[order],
        gyr_dps=np.concatenate([p.gyr_dps for p in parts])[order],
    )


def _empty() -> RawSeries:
    ints = np.zeros(0, dtype=np.int64)
    return RawSeries(ints, ints, ints, ints, (), (), np.zeros((0, 3)), np.zeros((0, 3)))


__all__ = [
    "PART_MAX_SAMPLES",
    "PART_MAX_US",
    "PART_STEP_MAX_US",
    "RAW_PACKED",
    "merge",
    "pack",
    "part_bounds",
    "unpack",
]
