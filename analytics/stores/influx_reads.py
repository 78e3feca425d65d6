"""InfluxDB's reads for a research export: raw samples in chunks, the batch index, gaps, the raw retention.
Called by `InfluxStore`'s thin methods of the same names.

Raw chunks are keyset pages: ``time > last LIMIT n`` per retention policy (sensor time first: it lies before
1970), so empty stretches between sessions cost nothing and each answer is bounded. Each page is asked for as
CSV (parsed by Arrow's CSV reader, exact for float64) and read as JSON from a server that answers otherwise.
A row read half-written (InfluxDB stores each field apart: a point being written can show some fields only) is
not yet stored and is left out, as in `InfluxStore.read_raw`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, Protocol

from analytics.stores.errors import StoreError
from analytics.stores.export_reads import (
    RAW_CHUNK_COLUMNS,
    BatchRecord,
    batch_record,
    conform_chunk,
    duration_s,
    gap_record,
    raw_chunk_schema,
    record_order,
)
from analytics.stores.influx_codec import TIME_MAX_NS, from_clause, quote_ident, quote_str, time_clause
from analytics.stores.influx_transport import InfluxConfig, InfluxTransport
from analytics.stores.points import GAP, RAW, RAW_BATCH
from analytics.stores.raw_model import SENSOR_SLOT_US, SENSOR_SLOTS, GapRecord


class InfluxStore(Protocol):
    """What these reads use of `analytics.stores.influx.InfluxStore` (which calls them: no import back)."""

    config: InfluxConfig
    transport: InfluxTransport

    def query(self, q: str, rp: str | None = None) -> list[dict[str, Any]]: ...

    def rows(self, q: str) -> Iterator[dict[str, Any]]: ...

    def retention_policies(self) -> dict[str, str]: ...


PAGE_MAX = 20_000
"""Rows per page at most: the transport asks for chunks of 20,000 rows, so a page is one chunk of the answer."""


def _rp_bounds(store: InfluxStore, start_us: int | None, end_us: int | None) -> list[tuple[str, int, int]]:
    """(policy, first µs, last µs) in time order: sensor time (< 0) lives in its own policy, UTC in the raw one."""
    # every stored point lies in [first sensor-time slot, far future]: bounds InfluxQL's nanoseconds can hold
    lo = max(-SENSOR_SLOTS * SENSOR_SLOT_US, -(1 << 62) if start_us is None else start_us)
    hi = min(TIME_MAX_NS // 1000, (1 << 62) if end_us is None else end_us)
    out = []
    if lo < 0:
        out.append((store.config.sensor_time_rp, lo, min(hi, -1)))
    if hi >= 0:
        out.append((store.config.raw_rp, max(lo, 0), hi))
    return [(rp, a, b) for rp, a, b in out if a <= b]


def raw_chunks(
    store: InfluxStore,
    subject: str,
    placement: str,
    *,
    start_us: int | None,
    end_us: int | None,
    session: str | None,
    chunk_samples: int,
) -> Iterator[Any]:
    """`Store.raw_chunks` from InfluxDB: keyset pages (times after the last row read) in each retention policy the
    range touches, sensor time first."""
    where = f"subject = {quote_str(subject)} AND placement = {quote_str(placement)}"
    if session is not None:
        where += f" AND session = {quote_str(session)}"
    cols = ", ".join(quote_ident(c) for c in RAW_CHUNK_COLUMNS[1:])
    page = max(1, min(chunk_samples, PAGE_MAX))
    for rp, lo, hi in _rp_bounds(store, start_us, end_us):
        after = lo - 1
        while after < hi:
            q = (
                f"SELECT {cols} FROM {from_clause(store.config.database, rp, RAW)} WHERE {where} AND "
                f"{time_clause(after + 1, hi)} LIMIT {page}"
            )
            batch, last, n_rows = _page(store, q)
            if n_rows == 0:
                break
            if batch is not None and batch.num_rows:
                yield batch
            after = last
            if n_rows < page:
                break


def _page(store: InfluxStore, q: str) -> tuple[Any, int, int]:
    """One page: (complete rows as a chunk or None, time of its last row, rows answered)."""
    csv = store.transport.query_csv(q)
    if csv is not None:
        return _page_from_csv(csv)
    values: list[list[Any]] = []
    for series in store.query(q):
        values.extend(series.get("values", []))
    return _page_from_values(values)


def _page_from_csv(data: bytes) -> tuple[Any, int, int]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    schema = raw_chunk_schema()
    types = {f.name: f.type for f in schema if f.name not in ("time_us",)}
    types["time"] = pa.int64()
    table = pacsv.read_csv(
        io.BytesIO(data),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            include_columns=["time", *RAW_CHUNK_COLUMNS[1:]],
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    n_rows = table.num_rows
    if not n_rows:
        return None, 0, 0
    last = int(table.column("time")[n_rows - 1].as_py())
    table = table.rename_columns(["time_us", *table.column_names[1:]])
    complete = pc.invert(pc.is_null(table.column("time_us")))
    for name in RAW_CHUNK_COLUMNS:
        if name not in ("serial", "session"):
            complete = pc.and_(complete, pc.is_valid(table.column(name)))
    table = table.filter(complete)
    batch = table.combine_chunks().to_batches()
    return (conform_chunk(batch[0]) if batch else None), last, n_rows


def _page_from_values(values: list[list[Any]]) -> tuple[Any, int, int]:
    import pyarrow as pa

    if not values:
        return None, 0, 0
    last = int(values[-1][0])
    numeric = (0, 1, 2, 3, 6, 7, 8, 9, 10, 11)
    rows = [v for v in values if all(v[i] is not None for i in numeric)]
    if not rows:
        return None, last, len(values)
    cols = list(zip(*rows, strict=True))
    schema = raw_chunk_schema()
    arrays = [
        pa.array(["" if x is None else x for x in c] if name == "session" else c, type=schema.field(name).type)
        for name, c in zip(RAW_CHUNK_COLUMNS, cols, strict=True)
    ]
    return conform_chunk(pa.RecordBatch.from_arrays(arrays, schema=schema)), last, len(values)


def raw_batches(
    store: InfluxStore, subject: str, *, start_us: int | None, end_us: int | None, session: str | None
) -> list[BatchRecord]:
    """The subject's batch-index points timestamped in the range (both raw policies), optionally of one session."""
    where = f"subject = {quote_str(subject)}"
    if session is not None:
        where += f" AND session = {quote_str(session)}"
    out: list[BatchRecord] = []
    for rp, lo, hi in _rp_bounds(store, start_us, end_us):
        q = f"SELECT * FROM {from_clause(store.config.database, rp, RAW_BATCH)} WHERE {where} AND {time_clause(lo, hi)}"
        for row in store.rows(q):
            out.append(batch_record(str(row["placement"]), int(row["time"]), row))
    out.sort(key=record_order)
    return out


def utc_claims(store: InfluxStore, subject: str, placement: str, serial: str, boot_epoch: int) -> list[tuple[int, int]]:
    """``(seq_first, seq_last)`` of a sensor boot's UTC batch-index points (`raw_remap.moved_index`)."""
    where = (
        f"subject = {quote_str(subject)} AND placement = {quote_str(placement)} AND serial = {quote_str(serial)} "
        f"AND boot_epoch = {int(boot_epoch)} AND {time_clause(0, None)}"
    )
    source = from_clause(store.config.database, store.config.raw_rp, RAW_BATCH)
    rows = store.rows(f"SELECT seq_first, seq_last FROM {source} WHERE {where}")
    return [(int(r["seq_first"]), int(r["seq_last"])) for r in rows]


def gaps(store: InfluxStore, subject: str, *, session: str | None) -> list[GapRecord]:
    """The subject's recorded gaps (results policy), optionally of one session."""
    where = f"subject = {quote_str(subject)}"
    if session is not None:
        where += f" AND session = {quote_str(session)}"
    q = (
        f"SELECT * FROM {from_clause(store.config.database, store.config.results_rp, GAP)} WHERE {where} AND "
        f"{time_clause(None, None)}"
    )
    out = [gap_record(subject, str(row["placement"]), row) for row in store.rows(q)]
    out.sort(key=lambda g: (g.placement, g.serial, g.boot_epoch, g.seq_first))
    return out


def raw_retention_s(store: InfluxStore) -> float | None:
    """How long the raw policy keeps samples (s), from the server; None when kept forever or the server does not
    say (2.x answers SHOW RETENTION POLICIES only through DBRP mappings)."""
    try:
        policies = store.retention_policies()
    except StoreError:
        return None
    text = policies.get(store.config.raw_rp)
    return None if text is None else duration_s(text)
