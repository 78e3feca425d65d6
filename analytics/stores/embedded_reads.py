"""The embedded store's reads for a research export: raw samples in chunks straight into Arrow, the batch index,
gaps. Called by `EmbeddedStore`'s thin methods of the same names.

Raw chunks come through the ADBC SQLite driver (PyPI ``adbc-driver-sqlite``, Apache Arrow's): it reads rows into
Arrow columns in C, about 1.5 million samples a second on one core here, where the standard library's sqlite3
makes one Python tuple per row (about 0.37 million a second). It opens the store file read-only on its own
connection, so one statement streams the whole range (a consistent snapshot: SQLite's WAL lets the worker go on
writing meanwhile) without holding the store's lock. An in-memory store (tests) or a machine without the driver
is read with sqlite3, a chunk at a time under the store's lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from analytics.stores.export_reads import (
    RAW_CHUNK_COLUMNS,
    BatchRecord,
    batch_record,
    conform_chunk,
    gap_record,
    raw_chunk_schema,
    record_order,
)
from analytics.stores.points import GAP, RAW_BATCH
from analytics.stores.raw_model import RAW_FIELDS, GapRecord

_LOWEST, _HIGHEST = -(1 << 62), 1 << 62
_SESSION_COLUMN = "ifnull(session, '') AS session, "
_SELECT = (
    "SELECT time_us, seq, t_sensor_us, boot_epoch, serial, "
    + _SESSION_COLUMN
    + ", ".join(RAW_FIELDS)
    + " FROM raw WHERE subject = ? AND placement = ? AND time_us >= ? AND time_us <= ?"
)


def _raw_query(
    subject: str, placement: str, start_us: int | None, end_us: int | None, session: str | None
) -> tuple[str, list[Any]]:
    sql = _SELECT
    args: list[Any] = [subject, placement, _LOWEST if start_us is None else start_us]
    args.append(_HIGHEST if end_us is None else end_us)
    if session is not None:
        sql += " AND session = ?"
        args.append(session)
    return sql, args


def adbc_available() -> bool:
    try:
        import adbc_driver_sqlite.dbapi  # noqa: F401
    except ImportError:
        return False
    return True


def raw_chunks(
    path: str,
    db: sqlite3.Connection,
    lock: threading.Lock,
    subject: str,
    placement: str,
    *,
    start_us: int | None,
    end_us: int | None,
    session: str | None,
    chunk_samples: int,
) -> Iterator[Any]:
    """`Store.raw_chunks` from the file: through ADBC when it can, else in keyset pages through sqlite3."""
    sql, args = _raw_query(subject, placement, start_us, end_us, session)
    if path != ":memory:" and adbc_available():
        if session is not None:  # every row holds it: not read per row (each column read costs ~8 % of the read)
            sql = sql.replace(_SESSION_COLUMN, "", 1)
        yield from _adbc_chunks(path, sql + " ORDER BY time_us", args, chunk_samples, session)
    else:
        yield from _sqlite_chunks(db, lock, sql, args, chunk_samples)


def _adbc_chunks(path: str, sql: str, args: list[Any], chunk_samples: int, session: str | None) -> Iterator[Any]:
    import adbc_driver_sqlite.dbapi as adbc

    uri = Path(path).resolve().as_uri() + "?mode=ro"
    with adbc.connect(uri) as conn, conn.cursor() as cur:
        cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(max(1, chunk_samples))})
        cur.execute(sql, args)
        for batch in cur.fetch_record_batch():
            if batch.num_rows:
                yield conform_chunk(batch, session)


def _sqlite_chunks(
    db: sqlite3.Connection, lock: threading.Lock, sql: str, args: list[Any], chunk_samples: int
) -> Iterator[Any]:
    """Keyset pages (time after the last one read): each page its own short read under the store's lock."""
    import pyarrow as pa

    schema = raw_chunk_schema()
    after = args[2] - 1
    while True:
        page_args = [*args[:2], after + 1, *args[3:]]
        with lock:
            rows = db.execute(sql + f" ORDER BY time_us LIMIT {max(1, chunk_samples)}", page_args).fetchall()
        if not rows:
            return
        cols = list(zip(*rows, strict=True))
        arrays = [pa.array(c, type=schema.field(name).type) for name, c in zip(RAW_CHUNK_COLUMNS, cols, strict=True)]
        yield conform_chunk(pa.RecordBatch.from_arrays(arrays, schema=schema))
        after = int(rows[-1][0])


def raw_batches(
    db: sqlite3.Connection,
    lock: threading.Lock,
    subject: str,
    *,
    start_us: int | None,
    end_us: int | None,
    session: str | None,
) -> list[BatchRecord]:
    """The subject's batch-index points timestamped in the range, optionally of one session."""
    sql = "SELECT time_us, tags, fields FROM points WHERE subject = ? AND measurement = ? AND time_us BETWEEN ? AND ?"
    args: list[Any] = [subject, RAW_BATCH, _LOWEST if start_us is None else start_us]
    args.append(_HIGHEST if end_us is None else end_us)
    if session is not None:
        sql += " AND json_extract(fields, '$.session') = ?"
        args.append(session)
    with lock:
        rows = db.execute(sql, args).fetchall()
    out = [batch_record(json.loads(tags)["placement"], int(t), json.loads(fields)) for t, tags, fields in rows]
    out.sort(key=record_order)
    return out


def utc_claims(db: sqlite3.Connection, subject: str, placement: str, serial: str, boot: int) -> list[tuple[int, int]]:
    """``(seq_first, seq_last)`` of a sensor boot's UTC batch-index points (`raw_remap.moved_index`; called within
    the caller's transaction: no lock taken)."""
    rows = db.execute(
        "SELECT json_extract(fields, '$.seq_first'), json_extract(fields, '$.seq_last') FROM points WHERE "
        "measurement = ? AND subject = ? AND json_extract(tags, '$.placement') = ? AND json_extract(fields, '$.serial')"
        " = ? AND json_extract(fields, '$.boot_epoch') = ? AND time_us >= 0",
        (RAW_BATCH, subject, placement, serial, boot),
    ).fetchall()
    return [(int(a), int(b)) for a, b in rows]


def gaps(db: sqlite3.Connection, lock: threading.Lock, subject: str, *, session: str | None) -> list[GapRecord]:
    """The subject's recorded gaps, optionally of one session, by placement, sensor boot and first missing sample."""
    sql = "SELECT tags, fields FROM points WHERE subject = ? AND measurement = ?"
    args: list[Any] = [subject, GAP]
    if session is not None:
        sql += " AND json_extract(fields, '$.session') = ?"
        args.append(session)
    with lock:
        rows = db.execute(sql, args).fetchall()
    out = [gap_record(subject, json.loads(tags)["placement"], json.loads(fields)) for tags, fields in rows]
    out.sort(key=lambda g: (g.placement, g.serial, g.boot_epoch, g.seq_first))
    return out
