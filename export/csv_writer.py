"""CSV: per subject and session a folder (labels, `export.labels`) holding one file per sensor
(``raw_<placement>.csv``) and the session's tables (``batches.csv``, ``gaps.csv``, ``events.csv``,
``strides.csv``, ``exercise_sets.csv``, ``session_summary.csv``); at the top ``subjects.csv`` and ``sessions.csv``
(original ids beside labels) and ``README.md`` saying every column and unit.

Floats are written by Arrow's CSV writer as the shortest text that reads back to the same float64 (every
conforming reader, pandas and Python's float() included, gets the stored value bit for bit); integers as
integers; an empty cell is a value that does not exist (unknown, or no UTC time). Every table has its header,
its declared columns (`export.columns`), also when it has no row (a session without walking has no stride).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from export.columns import SESSIONS_INDEX, SUBJECTS_INDEX
from export.files import atomic_path, write_text
from export.raw_table import raw_output, raw_schema
from export.readme import csv_readme
from export.session import SessionContext
from export.tables import arrow_table

TABLE_FILES = ("batches", "gaps", "events", "strides", "exercise_sets", "session_summary")


def write_csv_table(path: Path, table: Any) -> None:
    import pyarrow.csv as pacsv

    with atomic_path(path) as tmp:
        pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(quoting_style="needed"))


class CsvWriter:
    def __init__(self, out: Path, with_serials: bool) -> None:
        self.out = out
        self.with_serials = with_serials

    def session_dir(self, ctx: SessionContext) -> Path:
        return self.out / ctx.subject_label / ctx.session_label

    def write_session(self, ctx: SessionContext) -> list[Path]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        folder = self.session_dir(ctx)
        files = []
        schema = raw_schema(self.with_serials, parquet=False)
        options = pacsv.WriteOptions(quoting_style="needed")
        for placement in ctx.plan.placements:
            path = folder / f"raw_{placement}.csv"
            with atomic_path(path) as tmp, pacsv.CSVWriter(str(tmp), schema, write_options=options) as w:
                for chunk in ctx.stream(placement).chunks():
                    batch = raw_output(chunk, self.with_serials)
                    w.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
                    ctx.progress.add(chunk.n)
            files.append(path)
        for table in ctx.tables():
            path = folder / f"{table.name}.csv"
            write_csv_table(path, arrow_table(table.rows, table.columns))
            files.append(path)
        return files

    def finish(self, sessions: Sequence[SessionContext], subject_labels: dict[str, str]) -> list[Path]:
        subjects = [{"subject_id": s, "label": lab} for s, lab in subject_labels.items()]
        index = [
            {
                "subject_id": c.plan.subject,
                "session_id": c.plan.session,
                "subject_label": c.subject_label,
                "session_label": c.session_label,
                "first_sample_utc_us": c.start_us,
                "folder": f"{c.subject_label}/{c.session_label}",
            }
            for c in sessions
        ]
        write_csv_table(self.out / "subjects.csv", arrow_table(subjects, SUBJECTS_INDEX))
        write_csv_table(self.out / "sessions.csv", arrow_table(index, SESSIONS_INDEX))
        write_text(self.out / "README.md", csv_readme(self.with_serials))
        return [self.out / "subjects.csv", self.out / "sessions.csv", self.out / "README.md"]
