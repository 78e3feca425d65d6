"""Fuzz target of the store's packed raw parts read back (`analytics.stores.raw_packed.unpack`): what another
writer, an older version or a hand-made point may have left in `raw_packed`.

Valid parts (int16 counts or float64 values, any length and time steps within the part bounds) with one thing
changed: a field replaced by a hostile value, the packed bytes flipped, cut or extended (base64 kept valid, so the
length and content checks are reached), or the base64 text broken. The property: `InvalidStoredPart`, or samples
that keep every promise a reader relies on."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import numpy as np
from hypothesis import strategies as st

from analytics.stores.errors import InvalidStoredPart
from analytics.stores.model import samples_from_arrays
from analytics.stores.raw_model import RawSamples
from analytics.stores.raw_packed import PART_MAX_US, PART_STEP_MAX_US, merge, pack, unpack
from gaitsym_common.uplink.envelope import ClockMapping

_CLOCK = ClockMapping(True, 0, 1_795_800_000.0, 1.0, 0.0, 0.5)
_HOSTILE: list[Any] = [
    None,
    True,
    -1,
    0,
    2**31,
    2**63,
    -(2**63) - 1,
    1e300,
    1e308,
    -0.0,
    float("nan"),
    float("inf"),
    "",
    "x" * 5000,
    "A" * 8,
    "\x00",
    [],
]
_FIELDS = [
    "n",
    "serial",
    "boot_epoch",
    "session",
    "seq_first",
    "seq_last",
    "t_sensor_us_first",
    "time_last_us",
    "enc",
    "samples",
    "acc_scale",
    "gyr_scale",
]


@st.composite
def stored_parts(draw: st.DrawFn) -> tuple[int, dict[str, Any]]:
    """(point time, fields) of one stored part: a valid one, then one thing changed."""
    n = draw(st.integers(1, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    steps = rng.integers(1, draw(st.sampled_from([2, 10_001, PART_STEP_MAX_US])), n)
    steps[0] = 0
    ticks = 5_000_000 + np.cumsum(steps)
    if draw(st.booleans()):  # counts as the decoder scales them (packed as int16), or any values (float64)
        acc = rng.integers(-32768, 32768, (n, 3)) * (16 / 32768.0 * 9.80665)
        gyr = rng.integers(-32768, 32768, (n, 3)) * (2000 / 32768.0)
    else:
        acc, gyr = rng.normal(0, 1e3, (n, 3)), rng.normal(0, 1e3, (n, 3))
    samples = samples_from_arrays(
        subject="P1",
        session=draw(st.sampled_from([None, "S1"])),
        placement="pelvis",
        serial="GS-1",
        boot_epoch=2,
        seq=10 + np.cumsum(rng.integers(1, 3, n)),
        t_sensor_us=ticks,
        acc_mps2=acc,
        gyr_dps=gyr,
        clock=_CLOCK,
    )
    points = pack(samples)
    point = points[draw(st.integers(0, len(points) - 1))]
    fields = dict(point.fields)
    how = draw(st.sampled_from(["field", "bytes", "cut", "extend", "text", "steps", "none"]))
    blob = bytearray(base64.b64decode(str(fields["samples"])))
    if how == "field":
        fields[draw(st.sampled_from(_FIELDS))] = draw(st.sampled_from(_HOSTILE))
    elif how == "bytes" and blob:
        for _ in range(draw(st.integers(1, 8))):
            blob[draw(st.integers(0, len(blob) - 1))] = draw(st.integers(0, 255))
        fields["samples"] = base64.b64encode(bytes(blob)).decode()
    elif how == "cut":
        fields["samples"] = base64.b64encode(bytes(blob[: draw(st.integers(0, len(blob)))])).decode()
    elif how == "extend":
        fields["samples"] = base64.b64encode(bytes(blob) + draw(st.binary(min_size=1, max_size=64))).decode()
    elif how == "steps" and int(fields["n"]) > 1:
        # one step of the mapped time, sensor clock or sequence set to anything, the part's own last time and
        # sequence number made to agree: the checks past those are reached
        k, wide = int(fields["n"]) - 1, 4 if fields["enc"] == "i2" else 8
        which, at = draw(st.integers(0, 2)), draw(st.integers(0, k - 1))
        kind = f"<i{wide}"
        arrays = [np.frombuffer(bytes(blob), kind, k, i * k * wide).astype(np.int64) for i in range(3)]
        info = np.iinfo(kind)
        arrays[which][at] = draw(st.sampled_from([0, -1, 1, info.max, info.min, 2**31, PART_STEP_MAX_US + 1]))
        arrays[which][at] = min(max(arrays[which][at], info.min), info.max)
        rest = bytes(blob[3 * k * wide :])
        blob = bytearray(b"".join(a.astype(kind).tobytes() for a in arrays) + rest)
        fields["samples"] = base64.b64encode(bytes(blob)).decode()
        fields["time_last_us"] = point.time_us + sum(int(v) for v in arrays[0])
        fields["seq_last"] = int(fields["seq_first"]) + sum(int(v) for v in arrays[2])
    elif how == "text":
        text = str(fields["samples"])
        at = draw(st.integers(0, len(text)))
        fields["samples"] = text[:at] + draw(st.text(max_size=8)) + text[at:]
    return point.time_us, fields


def check_stored_part(example: tuple[int, dict[str, Any]]) -> None:
    time_us, fields = example
    try:
        series = unpack(time_us, fields)
    except InvalidStoredPart:
        return
    n = len(series)
    assert n == fields["n"] and len(series.serial) == len(series.session) == n
    times, seq, ticks = series.time_us.tolist(), series.seq.tolist(), series.t_sensor_us.tolist()  # no int64 wrap
    assert times[0] == time_us and times[-1] == fields["time_last_us"] and times[-1] - times[0] <= PART_MAX_US
    assert all(0 < b - a <= PART_STEP_MAX_US for a, b in itertools.pairwise(times))
    assert all(b > a for a, b in itertools.pairwise(seq)) and seq[-1] == fields["seq_last"] and seq[0] >= 0
    assert all(b >= a for a, b in itertools.pairwise(ticks)) and ticks[0] >= 0
    assert np.isfinite(series.acc_mps2).all() and np.isfinite(series.gyr_dps).all()
    assert series.acc_mps2.shape == series.gyr_dps.shape == (n, 3)


@st.composite
def written_batches(draw: st.DrawFn) -> RawSamples:
    """Batches as the write rule lets them through: one sensor boot, sequence and sensor clock rising (any steps,
    the mapped times rising with them), in UTC or in sensor time, values counts times a scale or any floats (-0.0,
    subnormals, huge)."""
    n = draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    seq_steps = rng.integers(1, draw(st.sampled_from([2, 3, 2**31 + 2, 2**33])), n)
    tick_steps = rng.integers(1, draw(st.sampled_from([10_001, 60_000, 2**33])), n)
    seq = draw(st.integers(0, 2**40)) + np.cumsum(seq_steps) - seq_steps[0]
    ticks = draw(st.integers(0, 2**40)) + np.cumsum(tick_steps) - tick_steps[0]
    if draw(st.booleans()):
        scale = draw(st.sampled_from([2 / 32768.0 * 9.80665, 16 / 32768.0 * 9.80665, 125 / 32768.0]))
        values = rng.integers(-32768, 32768, (n, 6)) * scale
    else:
        values = rng.normal(0, draw(st.sampled_from([1.0, 1e300])), (n, 6))
    for special in draw(st.lists(st.sampled_from([-0.0, 0.0, 5e-324, -1e308]), max_size=3)):
        values[draw(st.integers(0, n - 1)), draw(st.integers(0, 5))] = special
    synced = draw(st.booleans())
    clock = _CLOCK if synced else ClockMapping(False, 0, None, 1.0, 0.0, 0.0)
    return samples_from_arrays(
        subject="P1",
        session=draw(st.sampled_from([None, "S1"])),
        placement="left_thigh",
        serial="GS-1",
        boot_epoch=draw(st.integers(0, 2**32 - 1)),
        seq=np.minimum(seq, 2**53 - 1),
        t_sensor_us=np.minimum(ticks, 2**53 - 1),
        acc_mps2=values[:, :3],
        gyr_dps=values[:, 3:],
        clock=clock,
    )


def check_round_trip(samples: RawSamples) -> None:
    """Every batch the write rule lets through packs, and its parts give back every column bit for bit."""
    times = samples.time_us()
    if len(np.unique(times)) < len(times):
        return  # two samples on one point: the write rule refuses the second before a store packs anything
    points = pack(samples)
    assert sum(int(p.fields["n"]) for p in points) == len(samples)
    back = merge([unpack(p.time_us, dict(p.fields)) for p in points])
    order = np.argsort(times, kind="stable")
    assert back.time_us.tolist() == times[order].tolist()
    assert back.seq.tolist() == samples.seq[order].tolist()
    assert back.t_sensor_us.tolist() == samples.t_sensor_us[order].tolist()
    for got, sent in ((back.acc_mps2, samples.acc_mps2), (back.gyr_dps, samples.gyr_dps)):
        assert got.view(np.int64).tolist() == np.ascontiguousarray(sent[order]).view(np.int64).tolist()
    assert set(back.session) == {samples.session} and set(back.serial) == {samples.serial}
