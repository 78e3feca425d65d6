"""The fast paths of a raw export give what the plain ones give: the embedded store's whole-range read (ADBC, the
session not read per row when it was asked for) and its keyset pages through sqlite3 return the same rows, session
column included; raw Parquet files use only encodings and codecs every reader decodes, and read back equal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics.stores import embedded_reads
from analytics.stores.embedded import EmbeddedStore
from testing.stores.storelib import batch
from tests.export.seeding import SESSION, SUBJECT, bits, export, seed

BROADLY_READ_ENCODINGS = {"PLAIN", "RLE", "RLE_DICTIONARY", "PLAIN_DICTIONARY", "DELTA_BINARY_PACKED"}
BROADLY_READ_CODECS = {"UNCOMPRESSED", "SNAPPY", "ZSTD"}


def _rows(store: EmbeddedStore, session: str | None, chunk_samples: int) -> pa.Table:
    chunks = list(store.raw_chunks(SUBJECT, "pelvis", session=session, chunk_samples=chunk_samples))
    assert all(c.schema.equals(embedded_reads.raw_chunk_schema()) for c in chunks)
    return pa.Table.from_batches(chunks, schema=embedded_reads.raw_chunk_schema())


@pytest.mark.parametrize("session", [SESSION, None])
def test_whole_range_read_equals_keyset_pages(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch, session: str | None
) -> None:
    assert embedded_reads.adbc_available()  # a dependency: the fast path is the one under test
    seed(store, results=False, n_batches=4)
    store.write_raw(batch(SUBJECT, seq_first=400, serial="GS-PLV-9001", boot_epoch=10, session=None))  # no session
    fast = _rows(store, session, chunk_samples=150)
    monkeypatch.setattr(embedded_reads, "adbc_available", lambda: False)
    plain = _rows(store, session, chunk_samples=150)
    assert fast.num_rows == plain.num_rows == (400 if session else 500)
    assert fast.equals(plain)
    sessions = fast.column("session").to_pylist()
    assert sessions[:400] == [SESSION] * 400 and sessions[400:] == [None] * (fast.num_rows - 400)


def test_raw_parquet_uses_only_broadly_read_encodings_and_reads_back_equal(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    seed(store, results=False, skip={"pelvis": 2})
    out = export(store, tmp_path / "pq", "parquet", chunk_samples=250, with_serials=True)
    (path,) = out.glob("raw/*/*/pelvis.parquet")
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups > 1
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            col = meta.row_group(g).column(c)
            assert set(col.encodings) <= BROADLY_READ_ENCODINGS, (col.path_in_schema, col.encodings)
            assert col.compression in BROADLY_READ_CODECS, (col.path_in_schema, col.compression)
            assert col.statistics is not None and col.statistics.has_min_max, col.path_in_schema
    table = pq.read_table(path)
    stored = store.read_raw(SUBJECT, "pelvis")
    values = np.column_stack(
        [table.column(f).to_numpy() for f in ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")]
    )
    assert np.array_equal(bits(values), bits(np.hstack([stored.acc_mps2, stored.gyr_dps])))
    assert table.column("seq").to_pylist() == stored.seq.tolist()
    assert table.column("t_sensor_us").to_pylist() == stored.t_sensor_us.tolist()
    assert table.column("time_utc_us").cast(pa.int64()).to_pylist() == stored.time_us.tolist()
    assert set(table.column("serial").to_pylist()) == {"GS-PLV-9001"}
