"""What the stores answer to a research export, in the same shape from either store: raw samples in chunks
(Arrow record batches, `RAW_CHUNK_SCHEMA`), the batch index read back (`BatchRecord`: the clock mapping used and
what the sensor declared), gaps (`GapRecord`), and how long raw samples are kept. Pure: no I/O here.

Units as in the store: timestamps integer µs (UTC, or sensor time before 1970 while a gateway clock was not
synchronised), acc m/s² (gravity included), gyr deg/s, t_sensor_us sensor µs, seq samples since boot.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from analytics.stores.errors import StoreQueryError
from analytics.stores.raw_model import RAW_FIELDS, GapRecord
from gaitsym_common.uplink.envelope import ClockMapping

RAW_CHUNK_COLUMNS = ("time_us", "seq", "t_sensor_us", "boot_epoch", "serial", "session", *RAW_FIELDS)
"""Columns of every raw chunk, in this order: ints, then serial and session (strings; session null when the
sample belongs to none), then the six values."""
DEFAULT_CHUNK_SAMPLES = 65_536
"""Rows per chunk: ~5 MB of Arrow columns, a bounded working set whatever the range read."""


@functools.cache
def raw_chunk_schema() -> Any:
    """The Arrow schema of a raw chunk (pyarrow imported only by the export's reads)."""
    import pyarrow as pa

    ints = [pa.field(c, pa.int64(), nullable=False) for c in RAW_CHUNK_COLUMNS[:4]]
    texts = [pa.field("serial", pa.string(), nullable=False), pa.field("session", pa.string())]
    floats = [pa.field(c, pa.float64(), nullable=False) for c in RAW_FIELDS]
    return pa.schema(ints + texts + floats)


def conform_chunk(batch: Any, session: str | None = None) -> Any:
    """A record batch with `RAW_CHUNK_COLUMNS` cast to the chunk schema (a reader may infer other types for an
    all-null or empty column); an empty session text is a sample of no session (null). ``session``: the session
    every row was selected by, when the reader did not read it per row (the batch then has no session column)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = raw_chunk_schema()
    columns = []
    for f in schema:
        if f.name == "session" and session is not None:
            value = pa.scalar(session or None, pa.string())  # as read per row: an empty text is no session
            columns.append(pa.repeat(value, batch.num_rows))
            continue
        col = batch.column(batch.schema.get_field_index(f.name))
        if col.type != f.type:
            col = col.cast(f.type)
        if f.name == "session":
            col = pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
        columns.append(col)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


@dataclass(frozen=True)
class BatchRecord:
    """One `raw_batch` index point read back: which samples of which sensor boot a batch stored, the clock mapping
    that placed them, and the sensor's declared rate, ranges and firmware (None: stored before those fields
    existed, i.e. unknown)."""

    placement: str
    time_us: int
    """Mapped time of the batch's first stored sample (sensor time before 1970 when not synchronised), µs."""
    time_last_us: int
    serial: str
    boot_epoch: int
    session: str | None
    msg_id: str | None
    seq_first: int
    seq_last: int
    n_samples: int
    t_sensor_us_first: int
    clock: ClockMapping
    sample_rate_hz: float | None
    acc_range_g: int | None
    gyr_range_dps: int | None
    firmware: str | None
    moved_to_utc: bool = False
    """Stored in sensor time first (the gateway's clock not synchronised), moved to UTC later by ``clock``."""


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def batch_record(placement: str, time_us: int, fields: Mapping[str, Any]) -> BatchRecord:
    """A `BatchRecord` from an index point's fields as either store returns them (StoreQueryError when a field the
    index always holds is missing: not an index point)."""
    try:
        ref_utc = fields.get("ref_utc_s")
        return BatchRecord(
            placement=placement,
            time_us=int(time_us),
            time_last_us=int(fields["time_last_us"]),
            serial=str(fields["serial"]),
            boot_epoch=int(fields["boot_epoch"]),
            session=None if fields.get("session") is None else str(fields["session"]),
            msg_id=None if fields.get("msg_id") is None else str(fields["msg_id"]),
            seq_first=int(fields["seq_first"]),
            seq_last=int(fields["seq_last"]),
            n_samples=int(fields["n_samples"]),
            t_sensor_us_first=int(fields["t_sensor_us_first"]),
            clock=ClockMapping(
                utc_synced=bool(fields["utc_synced"]),
                ref_sensor_us=int(fields["ref_sensor_us"]),
                ref_utc_s=None if ref_utc is None else float(ref_utc),
                rate=float(fields["rate"]),
                drift_ppm=float(fields["drift_ppm"]),
                jitter_ms=float(fields["jitter_ms"]),
            ),
            sample_rate_hz=None if fields.get("sample_rate_hz") is None else float(fields["sample_rate_hz"]),
            acc_range_g=_opt_int(fields.get("acc_range_g")),
            gyr_range_dps=_opt_int(fields.get("gyr_range_dps")),
            firmware=None if fields.get("firmware") is None else str(fields["firmware"]),
            moved_to_utc=bool(fields.get("moved_to_utc", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreQueryError(f"raw_batch point at {time_us} ({placement}): unreadable index fields ({exc})") from exc


def gap_record(subject: str, placement: str, fields: Mapping[str, Any]) -> GapRecord:
    """A `GapRecord` from a gap point's fields (StoreQueryError when one it always holds is missing)."""
    try:
        return GapRecord(
            subject=subject,
            session=None if fields.get("session") is None else str(fields["session"]),
            placement=placement,
            serial=str(fields["serial"]),
            boot_epoch=int(fields["boot_epoch"]),
            seq_first=int(fields["seq_first_missing"]),
            seq_last=int(fields["seq_last_missing"]),
            duration_s=float(fields["duration_s"]),
            reason=str(fields["reason"]),
            msg_id=str(fields.get("msg_id") or ""),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreQueryError(f"gap point of {subject} {placement}: unreadable fields ({exc})") from exc


def record_order(record: BatchRecord) -> tuple[str, int, int]:
    return (record.placement, record.time_us, record.seq_first)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_UNIT_S["w"] = 7 * 86400.0


def duration_s(text: str) -> float | None:
    """Seconds of an InfluxDB duration as SHOW RETENTION POLICIES prints it (``720h0m0s``) or as it is configured
    (``30d``, ``INF``); None for an infinite one (``0s``, ``INF``). StoreQueryError when unreadable."""
    text = text.strip()
    if text.upper() == "INF":
        return None
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise StoreQueryError(f"retention duration {text!r}: not an InfluxDB duration")
    seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    return seconds or None
