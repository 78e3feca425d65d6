"""Measurements, points and their InfluxDB line-protocol form (precision µs); SCHEMA.md describes each one.

A point is identified, as in InfluxDB, by measurement + tag set + timestamp: writing it again overwrites
it. Tags are only what dashboards group by (subject, side, placement, exercise).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analytics.stores.errors import InvalidBatch

STORE_SCHEMA = "gaitsym.store/1"
RAW = "raw"
RAW_PACKED = "raw_packed"
"""Raw samples packed one point per batch part (`raw_packed`; written with `raw_layout=packed`, read always)."""
RAW_DISPLAY = "raw_display"
"""Sums and counts of packed samples over each 0.1 s, for the dashboards only (`raw_display`: InfluxQL cannot unpack
a part)."""
RAW_BATCH = "raw_batch"
STRIDE = "stride"
EXERCISE_SET = "exercise_set"
SESSION_SUMMARY = "session_summary"
RESULT_MEASUREMENTS = (STRIDE, EXERCISE_SET, SESSION_SUMMARY)
STRIDE_LIVE = "stride_live"
EXERCISE_SET_LIVE = "exercise_set_live"
LIVE_MEASUREMENTS = (STRIDE_LIVE, EXERCISE_SET_LIVE)
"""Provisional results of live segments: their own measurements, appended (never a DELETE while a session runs),
removed by the session's final `Store.replace_results`. Final results are never touched by a live analysis."""
LIVE_OF = {STRIDE: STRIDE_LIVE, EXERCISE_SET: EXERCISE_SET_LIVE}
RAW_LAYOUT = "raw_layout"
"""The database's raw layout marker (`influx_layout`): which layout its workers write raw samples in, from when."""
GAP = "gap"
"""Samples known to be missing (uplink ``gap`` messages), kept with the results (no retention)."""
MEASUREMENTS = (RAW, RAW_PACKED, RAW_DISPLAY, RAW_BATCH, *RESULT_MEASUREMENTS, *LIVE_MEASUREMENTS, GAP, RAW_LAYOUT)

FieldValue = float | int | str | bool


@dataclass(frozen=True)
class Point:
    """One point: measurement, tags (dashboards group by them), fields (values), timestamp in µs."""

    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: Mapping[str, FieldValue]
    time_us: int

    @property
    def series(self) -> str:
        return ",".join([self.measurement, *(f"{k}={v}" for k, v in self.tags)])


# ------------------------------------------------------------------------------------------ line protocol


@functools.lru_cache(maxsize=4096)
def _escape_key(text: str) -> str:
    """Keys, tag values and measurement names repeat from point to point: escaped once (cached)."""
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _escape_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidBatch(f"field value {value!r}: line protocol has no NaN or infinity")
        return repr(value)
    return _escape_string(str(value))


def point_line(point: Point) -> str:
    """One line of InfluxDB line protocol (precision µs); fields sorted, tags sorted as InfluxDB keys them."""
    head = _escape_key(point.measurement) + "".join(
        f",{_escape_key(k)}={_escape_key(v)}" for k, v in sorted(point.tags) if v != ""
    )
    body = ",".join(f"{_escape_key(k)}={format_field(v)}" for k, v in sorted(point.fields.items()))
    if not body:
        raise InvalidBatch(f"{point.series}: a point needs at least one field")
    return f"{head} {body} {point.time_us}"


_FLOAT_TEXT: dict[int, str] = {}
"""repr() of float64 values seen in raw samples, keyed by their bit pattern (so 0.0 and -0.0 stay apart)."""
_FLOAT_TEXT_MAX = 1 << 18
"""Entries kept before the cache starts over (about 35 MB at most). Sensor values are int16 counts times a
per-range scale, so a worker meets a bounded set of values (65,536 per range): once a value has been seen, its text
is a lookup instead of a shortest-repr conversion (the costly part of the line protocol)."""


def float_texts(values: npt.ArrayLike) -> list[str]:
    """``repr(float(v))`` of every value (flattened, C order): the text `format_field` writes for a float.

    The same strings as ``[repr(v) for v in values]``, from a cache keyed by each float64's bits."""
    flat = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    keys = flat.view(np.int64).tolist()
    cache = _FLOAT_TEXT
    try:
        return list(map(cache.__getitem__, keys))
    except KeyError:
        pass
    if len(cache) > _FLOAT_TEXT_MAX:
        cache.clear()
    out = []
    for key, value in zip(keys, flat.tolist(), strict=True):
        text = cache.get(key)
        if text is None:
            text = cache[key] = repr(value)
        out.append(text)
    return out
