"""One session as a format writer sees it: its plan and labels, its sensors' raw streams (each read once), and the
tables built after the streams (which find the gaps)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analytics.stores import Store
from analytics.stores.model import GapRecord, ResultRow
from export.columns import GAPS, RESULT_TABLES, Column
from export.errors import StoreChangedDuringExport
from export.files import Progress
from export.plan import SessionPlan, iso
from export.raw_stream import SensorStream, SensorSummary
from export.tables import batch_columns, batch_rows, event_columns, event_rows, result_rows, undeclared


@dataclass(frozen=True)
class Table:
    """One of a session's small tables: its rows and its declared columns (the same in every session)."""

    name: str
    rows: list[dict[str, Any]]
    columns: list[Column]


@dataclass
class SessionContext:
    """What a format writer gets for one session: the plan, labels, the sensor streams to read (each once), and
    the tables (built after the streams, which find the gaps)."""

    store: Store
    plan: SessionPlan
    subject_label: str
    session_label: str
    out: Path
    with_serials: bool
    chunk_samples: int
    progress: Progress
    recorded_gaps: list[GapRecord]
    results: list[ResultRow]
    result_columns: dict[str, list[Column]]
    """Per result table, the export's columns (`export.tables.StoredFields`)."""
    batch_keys: dict[int, int] = field(default_factory=dict)
    summaries: dict[str, SensorSummary] = field(default_factory=dict)

    def stream(self, placement: str) -> SensorStream:
        s = SensorStream(self.store, self.plan, placement, self.recorded_gaps, self.batch_keys, self.chunk_samples)
        self.summaries[placement] = s.summary
        return s

    @property
    def start_us(self) -> int:
        """The session's first exported sample (UTC): the origin of onsets and latencies."""
        firsts = [s.first_utc_us for s in self.summaries.values() if s.first_utc_us is not None]
        return min(firsts) if firsts else self.plan.first_us

    def tables(self) -> list[Table]:
        gaps = [g.row() for p in self.plan.placements if p in self.summaries for g in self.summaries[p].gaps]
        gaps.sort(key=lambda g: (g["placement"], g["time_before_utc_us"] or g["time_after_utc_us"] or 0))
        tables = [
            Table("batches", batch_rows(self.plan.batches, self.with_serials), batch_columns(self.with_serials)),
            Table("gaps", gaps, list(GAPS)),
            Table("events", event_rows(self.results, self.start_us), event_columns()),
        ]
        for name, table in RESULT_TABLES.items():
            rows = result_rows(self.results, table, self.with_serials)
            columns = self.result_columns[name]
            bad = undeclared(rows, columns)
            if bad:  # the columns were found from these same results before writing: they were replaced since
                raise StoreChangedDuringExport(
                    f"subject {self.plan.subject} session {self.plan.session}: its stored results changed while "
                    f"exporting ({name}: {', '.join(bad[:5])} not seen before; a re-analysis?): export again"
                )
            tables.append(Table(name, rows, columns))
        return tables

    def manifest_entry(self) -> dict[str, Any]:
        return {
            "subject_id": self.plan.subject,
            "session_id": self.plan.session,
            "subject_label": self.subject_label,
            "session_label": self.session_label,
            "first_sample_utc": iso(self.start_us),
            "sensors": {
                p: {
                    "samples": s.n_samples,
                    "samples_without_utc": s.n_sensor_time,
                    "duplicates": s.n_duplicates,
                    "gaps": len(s.gaps),
                    "missing_samples": sum(g.n_missing for g in s.gaps),
                    "nominal_rate_hz": s.nominal_rate_hz(),
                    "effective_rate_hz": s.effective_rate_hz(),
                }
                for p, s in self.summaries.items()
            },
        }
