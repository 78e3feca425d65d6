"""Fuzz target of the store's packed raw parts read back (`analytics.stores.raw_packed.unpack`): what another
writer, an older version or a hand-made point may have left in `raw_packed`.

Valid parts (int16 counts or float64 values, any length and time steps within the part bounds) with one thing
changed: a field replaced by a hostile value, the packed bytes flipped, cut or extended (base64 kept valid, so the
length and content checks are reached), or the base64 text broken. The property: `InvalidStoredPart`, or samples
that keep every promise a reader relies on."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from hypothesis import strategies as st

from analytics.stores.errors import InvalidStoredPart
from analytics.stores.model import samples_from_arrays
from analytics.stores.raw_packed import PART_MAX_US, PART_STEP_MAX_US, pack, unpack
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
    how = draw(st.sampled_from(["field", "bytes", "cut", "extend", "text", "none"]))
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
    assert series.time_us[0] == time_us and series.time_us[-1] == fields["time_last_us"]
    assert series.time_us[-1] - series.time_us[0] <= PART_MAX_US
    steps = np.diff(series.time_us)
    assert ((steps > 0) & (steps <= PART_STEP_MAX_US)).all()
    assert (np.diff(series.seq) > 0).all() and series.seq[-1] == fields["seq_last"]
    assert np.isfinite(series.acc_mps2).all() and np.isfinite(series.gyr_dps).all()
    assert series.acc_mps2.shape == series.gyr_dps.shape == (n, 3)
