"""One session as a format writer sees it: its plan and labels, its sensors' raw streams (each read once), and the
tables built after the streams (which find the gaps)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analytics.stores import Store
from analytics.stores.model import GapRecord, ResultRow
from export.files import Progress
from export.plan import SessionPlan, iso
from export.raw_stream import SensorStream, SensorSummary
from export.tables import batch_rows, event_rows, result_rows


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

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        gaps = [g.row() for p in self.plan.placements if p in self.summaries for g in self.summaries[p].gaps]
        gaps.sort(key=lambda g: (g["placement"], g["time_before_utc_us"] or g["time_after_utc_us"] or 0))
        return {
            "batches": batch_rows(self.plan.batches, self.with_serials),
            "gaps": gaps,
            "events": event_rows(self.results, self.start_us),
            "strides": result_rows(self.results, "stride", self.with_serials, keep_clock=False),
            "exercise_sets": result_rows(self.results, "exercise_set", self.with_serials, keep_clock=False),
            "session_summary": result_rows(self.results, "session_summary", self.with_serials, keep_clock=True),
        }

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
