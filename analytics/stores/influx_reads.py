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
import logging
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from analytics.stores import influx_packed
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
from analytics.stores.influx_codec import (
    TIME_MAX_NS,
    from_clause,
    quote_ident,
    quote_str,
    raw_series_from_csv,
    raw_series_from_values,
    time_clause,
)
from analytics.stores.influx_transport import InfluxConfig, InfluxTransport
from analytics.stores.points import GAP, RAW, RAW_BATCH
from analytics.stores.raw_model import RAW_FIELDS, SENSOR_SLOT_US, SENSOR_SLOTS, GapRecord, RawSeries
from analytics.stores.raw_packed import PART_MAX_US, RAW_PACKED, merge
from gaitsym_common.redaction import redact_url

log = logging.getLogger("gaitsym.stores")


class InfluxStore(Protocol):
    """What these reads use of `analytics.stores.influx.InfluxStore` (which calls them: no import back)."""

    config: InfluxConfig
    transport: InfluxTransport

    def query(self, q: str, rp: str | None = None) -> list[dict[str, Any]]: ...

    def rows(self, q: str) -> Iterator[dict[str, Any]]: ...

    def retention_policies(self) -> dict[str, str]: ...


def raw_points(
    store: InfluxStore,
    rps: Sequence[str],
    subject: str,
    placement: str,
    start_us: int | None,
    end_us: int | None,
    session: str | None,
) -> list[RawSeries]:
    """`InfluxStore.read_raw_points`: the samples stored one point per sample (``raw``) in each of ``rps``, read
    as CSV (JSON from a server that answers otherwise, or whose CSV this reader cannot read)."""
    where = influx_packed.where(subject, placement, session) + " AND " + time_clause(start_us, end_us)
    cols = ("seq", "t_sensor_us", "boot_epoch", "serial", "session", *RAW_FIELDS)
    parts: list[RawSeries] = []
    for rp in rps:
        q = f"SELECT {', '.join(quote_ident(c) for c in cols)} FROM {from_clause(store.config.database, rp, RAW)}"
        q += f" WHERE {where}"
        csv = store.transport.query_csv(q)
        if csv is not None:
            try:
                parts.append(raw_series_from_csv(csv))
                continue
            except ValueError as exc:  # pandas' parser errors too: a CSV layout this reader does not know
                store.transport.csv_supported = False
                log.warning("%s: raw samples' CSV unreadable (%s): reading JSON", redact_url(store.transport.base), exc)
        values: list[list[Any]] = []
        for series in store.query(q):
            values.extend(series.get("values", []))
        parts.append(raw_series_from_values(values))
    return parts


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
    where = influx_packed.where(subject, placement, session)
    cols = ", ".join(quote_ident(c) for c in RAW_CHUNK_COLUMNS[1:])
    page = max(1, min(chunk_samples, PAGE_MAX))
    for rp, lo, hi in _rp_bounds(store, start_us, end_us):
        if _has_parts(store, rp, where, lo, hi):  # packed parts (docs/raw-layout-packed.md): both layouts merged
            yield from _merged_chunks(store, rp, where, cols, lo, hi, page, chunk_samples)
            continue
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


def _has_parts(store: InfluxStore, rp: str, where: str, lo: int, hi: int) -> bool:
    """Whether packed parts may hold samples of the range (one small read: a part's length field)."""
    q = (
        f'SELECT count("n") FROM {from_clause(store.config.database, rp, RAW_PACKED)} WHERE {where} AND '
        f"{time_clause(lo - PART_MAX_US, hi)}"
    )
    return any(series.get("values") for series in store.query(q))


PARTS_PAGE = 200
"""Packed parts per page of a merged export read (about 20,000 samples of 1-s batches at 100 Hz)."""


def _merged_chunks(
    store: InfluxStore, rp: str, where: str, cols: str, lo: int, hi: int, page: int, chunk_samples: int
) -> Iterator[Any]:
    """A range holding packed parts: its per-sample points (keyset pages) and its parts (keyset pages of parts by
    their first time) merged in time order, one sample per time; what both streams have complete (up to the
    smaller of the last time each has read) is given out, the rest waits for the next pages."""
    db = store.config.database
    point_after, part_after = lo - 1, lo - PART_MAX_US - 1  # a part starting before lo may hold samples from lo on
    point_done = part_done = False
    pending: list[RawSeries] = []
    while True:
        point_edge = hi if point_done else point_after
        part_edge = hi if part_done else part_after
        if not point_done and (part_done or point_edge <= part_edge):
            q = f"SELECT {cols} FROM {from_clause(db, rp, RAW)} WHERE {where} AND {time_clause(point_after + 1, hi)}"
            batch, last, n_rows = _page(store, f"{q} LIMIT {page}")
            if batch is not None and batch.num_rows:
                pending.append(series_of_chunk(batch))
            point_after, point_done = (last, n_rows < page) if n_rows else (point_after, True)
        elif not part_done:
            q = influx_packed.select_statement(db, rp, where, None, hi, parts_from=part_after + 1)
            answer = store.query(f"{q} LIMIT {PARTS_PAGE}")
            times = [int(v[0]) for series in answer for v in series.get("values") or []]  # a bad part counts too
            pending += [p.samples for _, _, p in influx_packed.parts_of(answer, "exporting raw")]
            part_after, part_done = (max(times), len(times) < PARTS_PAGE) if times else (part_after, True)
        edge = min(hi if point_done else point_after, hi if part_done else part_after, hi)
        ready = merge(pending, lo, edge)
        pending = [merge(pending, edge + 1, hi)] if edge < hi else []
        for a in range(0, len(ready), chunk_samples):
            yield chunk_of_series(ready, a, a + chunk_samples)
        if point_done and part_done:
            return


def series_of_chunk(batch: Any) -> RawSeries:
    """A raw chunk (Arrow, `raw_chunk_schema`) as a series."""
    col = {name: batch.column(name) for name in RAW_CHUNK_COLUMNS}
    ints = {k: col[k].to_numpy(zero_copy_only=False).astype(np.int64) for k in RAW_CHUNK_COLUMNS[:4]}
    return RawSeries(
        time_us=ints["time_us"],
        seq=ints["seq"],
        t_sensor_us=ints["t_sensor_us"],
        boot_epoch=ints["boot_epoch"],
        serial=tuple(col["serial"].to_pylist()),
        session=tuple(col["session"].to_pylist()),
        acc_mps2=np.column_stack([col[k].to_numpy(zero_copy_only=False) for k in RAW_FIELDS[:3]]),
        gyr_dps=np.column_stack([col[k].to_numpy(zero_copy_only=False) for k in RAW_FIELDS[3:]]),
    )


def chunk_of_series(series: RawSeries, a: int, b: int) -> Any:
    """Samples a..b of a series as a raw chunk (Arrow, `raw_chunk_schema`)."""
    import pyarrow as pa

    schema = raw_chunk_schema()
    values = {
        "time_us": series.time_us[a:b],
        "seq": series.seq[a:b],
        "t_sensor_us": series.t_sensor_us[a:b],
        "boot_epoch": series.boot_epoch[a:b],
        "serial": list(series.serial[a:b]),
        "session": list(series.session[a:b]),
        **{k: series.acc_mps2[a:b, i] for i, k in enumerate(RAW_FIELDS[:3])},
        **{k: series.gyr_dps[a:b, i] for i, k in enumerate(RAW_FIELDS[3:])},
    }
    arrays = [pa.array(values[f.name], type=f.type) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


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
