"""The small tables written beside each session's raw streams: batches (clock mapping and the sensor's
declarations), gaps, gait events, strides, exercise sets, session summaries. Rows are dicts; `arrow_table`
types them (every stored field kept, numbers made one type per column).

Events are the initial and final contacts of each stored stride: the store keeps strides (SCHEMA.md, ``stride``),
not every contact, so a contact outside any stride (the first and last steps of a bout) is not exported.
Initial contact = the stride's start; final contact = start + stance time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from analytics.stores.export_reads import BatchRecord
from analytics.stores.model import ResultRow
from export.columns import BATCHES, EVENTS, MSG_ID, PROVENANCE, SERIAL, Column

_STRIDE_ORDER = ("start_s", "end_s", "stance_time_s", "swing_time_s", "step_time_s", "pelvic_drop_deg", "bout")
_LAST = ("included", "flags", *(c.name for c in PROVENANCE))


def batch_rows(batches: Sequence[BatchRecord], with_serials: bool) -> list[dict[str, Any]]:
    rows = []
    for key, b in enumerate(batches):
        synced = b.time_us >= 0
        row: dict[str, Any] = {
            "batch": key,
            "placement": b.placement,
            "boot_epoch": b.boot_epoch,
            "seq_first": b.seq_first,
            "seq_last": b.seq_last,
            "n_samples": b.n_samples,
            "t_sensor_us_first": b.t_sensor_us_first,
            "time_first_utc_us": b.time_us if synced else None,
            "time_last_utc_us": b.time_last_us if synced else None,
            "utc_synced": b.clock.utc_synced,
            "ref_sensor_us": b.clock.ref_sensor_us,
            "ref_utc_s": b.clock.ref_utc_s,
            "rate": b.clock.rate,
            "drift_ppm": b.clock.drift_ppm,
            "jitter_ms": b.clock.jitter_ms,
            "sample_rate_hz": b.sample_rate_hz,
            "acc_range_g": b.acc_range_g,
            "gyr_range_dps": b.gyr_range_dps,
            "firmware": b.firmware,
        }
        if with_serials:
            row["serial"] = b.serial
            row["msg_id"] = b.msg_id
        rows.append(row)
    return rows


def batch_columns(with_serials: bool) -> list[Column]:
    return [*BATCHES, SERIAL, MSG_ID] if with_serials else list(BATCHES)


def _scrub_clock(text: Any) -> Any:
    """The clock provenance (JSON per placement) names each sensor's serial: left out unless asked for."""
    try:
        clock = json.loads(text)
    except (TypeError, ValueError):
        return text
    if isinstance(clock, dict):
        for value in clock.values():
            if isinstance(value, dict):
                value.pop("serial", None)
    return json.dumps(clock, sort_keys=True, separators=(",", ":"))


def result_rows(
    rows: Sequence[ResultRow], measurement: str, with_serials: bool, keep_clock: bool
) -> list[dict[str, Any]]:
    """Rows of one result measurement: time, tags (subject left out: the folder says it), every stored field."""
    out = []
    for r in rows:
        if r.measurement != measurement:
            continue
        row: dict[str, Any] = {"time_utc_us": r.time_us}
        row.update({k: v for k, v in sorted(r.tags.items()) if k != "subject"})
        fields = dict(r.fields)
        fields.pop("session", None)
        clock = fields.pop("clock", None)
        for key in _STRIDE_ORDER:
            if key in fields:
                row[key] = fields.pop(key)
        last = {k: fields.pop(k) for k in _LAST if k in fields}
        row.update(sorted(fields.items()))
        row.update(last)
        if keep_clock and clock is not None:
            row["clock"] = clock if with_serials else _scrub_clock(clock)
        out.append(row)
    return out


def event_rows(rows: Sequence[ResultRow], session_start_us: int) -> list[dict[str, Any]]:
    """Initial and final contacts of the stored strides, in time order, with the strides' provenance."""
    events = []
    for r in rows:
        if r.measurement != "stride":
            continue
        side = r.tags.get("side")
        prov = {c.name: r.fields.get(c.name) for c in PROVENANCE}
        included = r.fields.get("included")
        contacts = [("initial_contact", r.time_us)]
        stance = r.fields.get("stance_time_s")
        if isinstance(stance, int | float) and not isinstance(stance, bool):
            contacts.append(("final_contact", r.time_us + round(float(stance) * 1e6)))
        for event, t in contacts:
            events.append(
                {
                    "time_utc_us": t,
                    "onset_s": (t - session_start_us) / 1e6,
                    "event": event,
                    "side": side,
                    "stride_included": included,
                    **prov,
                }
            )
    events.sort(key=lambda e: (e["time_utc_us"], e["event"], e["side"] or ""))
    return events


def event_columns() -> list[Column]:
    return [*EVENTS, *PROVENANCE]


def arrow_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column] | None = None, times: bool = False) -> Any:
    """Rows as an Arrow table. With ``columns``: exactly those columns, typed as declared. Without: every key seen,
    in first-seen order; a column holding ints and floats becomes float (InfluxDB answers a whole float as an
    int); ``time_utc_us`` stays int. ``times``: time columns typed as UTC timestamps (Parquet)."""
    import pyarrow as pa

    from export.columns import arrow_schema

    if columns is not None:
        schema = arrow_schema(list(columns), parquet=times)
        data = {c.name: [r.get(c.name) for r in rows] for c in columns}
        ints = {c.name: pa.array(data[c.name], type=pa.int64()) for c in columns if c.kind == "time"}
        arrays = [
            ints[c.name].cast(schema.field(c.name).type)
            if c.name in ints
            else pa.array(data[c.name], schema.field(c.name).type)
            for c in columns
        ]
        return pa.Table.from_arrays(arrays, schema=schema)
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r))
    arrays, fields = [], []
    for name in names:
        values = [r.get(name) for r in rows]
        kinds = {type(v) for v in values if v is not None}
        if name == "time_utc_us":
            arr = pa.array(values, type=pa.int64())
            if times:
                arr = arr.cast(pa.timestamp("us", tz="UTC"))
        elif kinds == {bool}:
            arr = pa.array(values, type=pa.bool_())
        elif kinds and kinds <= {int}:
            arr = pa.array(values, type=pa.int64())
        elif kinds and kinds <= {int, float}:
            arr = pa.array([None if v is None else float(v) for v in values], type=pa.float64())
        else:
            arr = pa.array(
                [None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values], pa.string()
            )
        arrays.append(arr)
        fields.append(pa.field(name, arr.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
