"""The small tables written beside each session's raw streams: batches (clock mapping and the sensor's
declarations), gaps, gait events, strides, exercise sets, session summaries. Rows are dicts; `arrow_table` types
them by their declared columns (`export.columns`): every table has its columns, and its header, with no rows too.

Result tables (strides, exercise sets, session summaries) have the same columns in every session of an export:
their declared columns plus any field stored that the declaration does not name, found by `StoredFields` over
every session's results before anything is written (a Parquet dataset takes its columns from its first file, so a
column missing from one session's file would vanish from every session). A value that does not fit its declared
type widens the column (int -> float, anything else -> text) for the whole export, never drops the value.

Events are the initial and final contacts of each stored stride (`stride_contacts`): the store keeps strides
(SCHEMA.md, ``stride``), not every contact, so a contact outside any stride (the first and last steps of a bout)
is not exported. Initial contact = the stride's start; final contact = start + stance time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from analytics.stores.export_reads import BatchRecord
from analytics.stores.model import ResultRow
from export.columns import BATCHES, EVENTS, MSG_ID, PROVENANCE, RESULT_TABLES, SERIAL, Column, ResultTable

NUMBERS = {"int", "float"}


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
            "utc_synced": b.clock.utc_synced and not b.moved_to_utc,  # as the gateway sent it (columns.BATCHES)
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


def result_rows(rows: Sequence[ResultRow], table: ResultTable, with_serials: bool) -> list[dict[str, Any]]:
    """Rows of one result table: time, tags (subject left out: the folder says it), every stored field (the
    session's id left out: the folder says it; the clock provenance only where the table keeps it)."""
    out = []
    for r in rows:
        if r.measurement != table.measurement:
            continue
        row: dict[str, Any] = {"time_utc_us": r.time_us}
        row.update({k: v for k, v in r.tags.items() if k != "subject"})
        fields = dict(r.fields)
        fields.pop("session", None)
        clock = fields.pop("clock", None)
        row.update(fields)
        if table.keeps_clock and clock is not None:
            row["clock"] = clock if with_serials else _scrub_clock(clock)
        out.append(row)
    return out


def value_kind(value: Any) -> str:
    """A stored value's column kind: bool, int, float or text (anything else is written as JSON text)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "text"


def fits(kind: str, column_kind: str) -> bool:
    """A value of ``kind`` goes into a ``column_kind`` column unchanged (an int is a whole float: InfluxDB answers a
    whole float as an int; text takes anything, as JSON)."""
    if column_kind == "text" or kind == column_kind:
        return True
    return kind == "int" and column_kind in ("float", "time")


def column_kind(declared: str | None, seen: set[str]) -> str:
    """The kind of a result column: the declared one when every value seen fits it, else the narrowest that
    holds them all (bool; int; int and float -> float; anything else -> text)."""
    if declared is not None and all(fits(k, declared) for k in seen):
        return declared
    kinds = seen | ({declared} if declared is not None else set())
    if kinds == {"bool"}:
        return "bool"
    if kinds <= {"int", "time"}:
        return "int"
    if kinds <= NUMBERS | {"time"}:
        return "float"
    return "text"


class StoredFields:
    """The result columns of one export: what every session's stored results hold, gathered before anything is
    written, so every session's file of a table gets the same columns (`columns`)."""

    def __init__(self, with_serials: bool) -> None:
        self.with_serials = with_serials
        self.seen: dict[str, dict[str, set[str]]] = {name: {} for name in RESULT_TABLES}

    def add(self, rows: Sequence[ResultRow]) -> None:
        for name, table in RESULT_TABLES.items():
            seen = self.seen[name]
            for row in result_rows(rows, table, self.with_serials):
                for key, value in row.items():
                    kinds = seen.setdefault(key, set())
                    if value is not None:
                        kinds.add(value_kind(value))

    def columns(self, name: str) -> list[Column]:
        """The table's declared columns (types widened where a stored value does not fit), then every field stored
        that the declaration does not name (by name, typed by its values), before the flags and provenance."""
        table = RESULT_TABLES[name]
        seen = self.seen[name]
        declared = {c.name for c in table.declared}

        def typed(c: Column) -> Column:
            kind = column_kind(c.kind, seen.get(c.name, set()))
            return c if kind == c.kind else Column(c.name, kind, c.unit, c.meaning + f" (stored as {kind} here)")

        extra = [
            Column(k, column_kind(None, seen[k]), "", "a stored field this export's README does not describe")
            for k in sorted(seen)
            if k not in declared
        ]
        return [*(typed(c) for c in table.lead + table.fields), *extra, *(typed(c) for c in table.trail)]


def undeclared(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> list[str]:
    """Keys of ``rows`` with no column, and values that do not fit their column (``key=value``): none when the
    rows are the ones the columns were found from."""
    kinds = {c.name: c.kind for c in columns}
    bad: dict[str, None] = {}
    for r in rows:
        for key, value in r.items():
            if key not in kinds:
                bad[key] = None
            elif value is not None and not fits(value_kind(value), kinds[key]):
                bad[f"{key}={value!r}"] = None
    return list(bad)


def stride_contacts(row: ResultRow) -> list[tuple[str, int]]:
    """The foot contacts a stored stride stands for, (event, UTC µs): its initial contact (the stride's start)
    and, when its stance time is stored, its final contact (start + stance time)."""
    contacts = [("initial_contact", row.time_us)]
    stance = row.fields.get("stance_time_s")
    if isinstance(stance, int | float) and not isinstance(stance, bool):
        contacts.append(("final_contact", row.time_us + round(float(stance) * 1e6)))
    return contacts


def event_rows(rows: Sequence[ResultRow], session_start_us: int) -> list[dict[str, Any]]:
    """Initial and final contacts of the stored strides, in time order, with the strides' provenance."""
    events = []
    for r in rows:
        if r.measurement != "stride":
            continue
        prov = {c.name: r.fields.get(c.name) for c in PROVENANCE}
        for event, t in stride_contacts(r):
            events.append(
                {
                    "time_utc_us": t,
                    "onset_s": (t - session_start_us) / 1e6,
                    "event": event,
                    "side": r.tags.get("side"),
                    "stride_included": r.fields.get("included"),
                    **prov,
                }
            )
    events.sort(key=lambda e: (e["time_utc_us"], e["event"], e["side"] or ""))
    return events


def event_columns() -> list[Column]:
    return [*EVENTS, *PROVENANCE]


def _text(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else json.dumps(value)


def arrow_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], times: bool = False) -> Any:
    """Rows as an Arrow table of exactly ``columns``, typed as declared (a missing key is null; text columns take
    any value, as JSON). ``times``: time columns typed as UTC timestamps (Parquet)."""
    import pyarrow as pa

    from export.columns import arrow_schema

    schema = arrow_schema(list(columns), parquet=times)
    arrays = []
    for c in columns:
        values = [r.get(c.name) for r in rows]
        if c.kind == "time":
            arrays.append(pa.array(values, type=pa.int64()).cast(schema.field(c.name).type))
        elif c.kind == "text":
            arrays.append(pa.array([_text(v) for v in values], pa.string()))
        elif c.kind == "float":
            arrays.append(pa.array([None if v is None else float(v) for v in values], pa.float64()))
        else:
            arrays.append(pa.array(values, schema.field(c.name).type))
    return pa.Table.from_arrays(arrays, schema=schema)
