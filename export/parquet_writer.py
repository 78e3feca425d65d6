"""Parquet (pyarrow): one dataset per table, each partitioned by subject and session (hive style,
``raw/subject=<label>/session=<label>/<placement>.parquet``), typed columns (times as UTC timestamps in µs, the
sample values float64 as stored), units and meanings in each field's metadata; the original ids in the
``subject_id`` and ``session_id`` columns. ``pyarrow.dataset.dataset(OUT / "raw", partitioning="hive")`` reads
every session at once.

Row groups are the store's chunks (64k samples). Raw-sample files use only encodings and codecs every Parquet
reader has (pyarrow, pandas, polars, DuckDB, Spark, R arrow): text and the per-boot and per-batch integers
dictionary-encoded, the sensor clock, sequence and UTC time delta-encoded (DELTA_BINARY_PACKED: a few bits a row),
both snappy-compressed; the float64 values plain and uncompressed. Measured here on 30-min sessions (writing
alone): snappy on the floats would make it 1.7x slower for files a third smaller; dictionary encoding of floats
4x slower for 10 % less space; byte-stream-split floats with snappy are as fast and a third smaller, but not every
reader in use decodes them (polars gained it in 2024). The files are about the size (+2 %) that plain, all-snappy
ones had.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from export.columns import PLACEMENT, SESSION_ID, SUBJECT_ID, arrow_schema
from export.files import atomic_path, write_text
from export.raw_table import raw_output, raw_schema
from export.readme import parquet_readme
from export.session import SessionContext
from export.tables import arrow_table

DICTIONARY_COLUMNS = ["subject_id", "session_id", "placement", "serial", "boot_epoch", "batch"]
"""Text and the integers that hold one value for thousands of rows (a sensor boot, a batch): a few bytes each."""
DELTA_COLUMNS = ["time_utc_us", "t_sensor_us", "seq"]
"""Integers that grow by about the same step every row: delta encoding stores a few bits per row."""
FLOAT_COLUMNS = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]


def raw_file_options(columns: Sequence[str]) -> dict[str, Any]:
    """`pyarrow.parquet.ParquetWriter` options for a raw-sample file of these columns."""
    return {
        "compression": {c: ("none" if c in FLOAT_COLUMNS else "snappy") for c in columns},
        "use_dictionary": [c for c in DICTIONARY_COLUMNS if c in columns],
        "column_encoding": {c: "DELTA_BINARY_PACKED" for c in DELTA_COLUMNS if c in columns},
        "write_statistics": True,
    }


def partition(root: Path, table: str, ctx: SessionContext) -> Path:
    return root / table / f"subject={ctx.subject_label}" / f"session={ctx.session_label}"


def write_parquet_table(path: Path, table: Any) -> None:
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="snappy")


class ParquetExport:
    def __init__(self, out: Path, with_serials: bool) -> None:
        self.out = out
        self.with_serials = with_serials

    def write_session(self, ctx: SessionContext) -> list[Path]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        files = []
        leading = (SUBJECT_ID, SESSION_ID, PLACEMENT)
        schema = raw_schema(self.with_serials, parquet=True, constants=leading)
        for placement in ctx.plan.placements:
            path = partition(self.out, "raw", ctx) / f"{placement}.parquet"
            constants = {"subject_id": ctx.plan.subject, "session_id": ctx.plan.session, "placement": placement}
            with (
                atomic_path(path) as tmp,
                pq.ParquetWriter(str(tmp), schema, **raw_file_options(schema.names)) as w,
            ):
                for chunk in ctx.stream(placement).chunks():
                    batch = raw_output(chunk, self.with_serials, parquet=True, constants=constants)
                    w.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
                    ctx.progress.add(chunk.n)
            files.append(path)
        for t in ctx.tables():  # the same columns in every session's file: one schema per dataset
            table = arrow_table(t.rows, t.columns, times=True)
            ids = {SUBJECT_ID: ctx.plan.subject, SESSION_ID: ctx.plan.session}
            for i, (column, value) in enumerate(ids.items()):
                field = arrow_schema([column], parquet=True).field(0)
                table = table.add_column(i, field, pa.array([value] * table.num_rows, pa.string()))
            path = partition(self.out, t.name, ctx) / "part-0.parquet"
            write_parquet_table(path, table)
            files.append(path)
        return files

    def finish(self, sessions: Sequence[SessionContext], subject_labels: dict[str, str]) -> list[Path]:
        write_text(self.out / "README.md", parquet_readme(self.with_serials))
        return [self.out / "README.md"]
