"""The session report as typed records: what `report.gather` reads from a store and `report.page` renders.

Units: times in s, angles in degrees, SI in %, timestamps in µs since 1970 (UTC; negative: sensor time, the
gateway's clock was not synchronised). Readings are `analytics.results.reading.SiReading` (the one band rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from analytics.results.reading import SiReading

StanceStatus = Literal["reported", "withheld", "unknown"]
"""``unknown``: results stored before the status was kept (never read as reported)."""


@dataclass(frozen=True)
class Asymmetry:
    """One gait measure of the session, left vs right, and its reading against the band."""

    metric: str
    """``stance_time_s``, ``step_time_s`` or ``pelvic_drop_deg`` (report.wording.METRIC_WORDS)."""
    left: float | None
    right: float | None
    diff: float | None
    """left - right, in the metric's unit."""
    reading: SiReading


@dataclass(frozen=True)
class StanceEvidence:
    """What the session's stance-time asymmetry rests on (the session summary's evidence fields)."""

    status: StanceStatus
    withheld_reason: str | None
    event_source: str | None
    cross_check_thigh_si_pct: float | None
    cross_check_pelvis_si_pct: float | None


@dataclass(frozen=True)
class FlagNote:
    code: str
    detail: str
    """The message stored with the code (untrusted text; may be empty)."""


@dataclass(frozen=True)
class ExerciseLine:
    """One exercise on one side in the session: its sets together."""

    exercise: str
    label: str
    side: str
    sets_done: int
    """Sets in this session."""
    sets_week: int
    """Sets in the 7 days up to the end of this session (this session included)."""
    planned_per_week: int | None
    """Sets a week of the plan in force at the session (`gaitsym plan`); None without a plan (counts only)."""
    planned_reps_per_set: int | None
    reps: int | None
    """Complete repetitions over the sets (None: no set counts repetitions)."""
    hold_mean_s: float | None
    metrics: tuple[tuple[str, float | None], ...]
    """Each quality metric, the mean over the sets that have it (None: withheld in every set)."""
    flags: tuple[FlagNote, ...]


@dataclass(frozen=True)
class TrendPoint:
    """One session in the trend (oldest first; the report's own session included)."""

    session: str
    time_us: int
    stance: SiReading
    stance_status: StanceStatus
    drop_left_deg: float | None
    drop_right_deg: float | None


@dataclass(frozen=True)
class SessionReport:
    subject: str
    session: str
    time_us: int
    """The session's first analysed sample (µs, UTC; negative: sensor time)."""
    duration_s: float | None
    result_version: int | None
    algorithm: str | None
    band_pct: float
    n_strides: tuple[int | None, int | None]
    """Summarised strides (left, right)."""
    asymmetries: tuple[Asymmetry, ...]
    stance_evidence: StanceEvidence
    exercises: tuple[ExerciseLine, ...]
    session_flags: tuple[str, ...]
    gaps: str | None
    """The known-missing samples the analysis ran across (placement and sequence ranges), as stored."""
    excluded_strides: tuple[tuple[str, int], ...]
    """Strides left out of the averages, per rule code."""
    trend: tuple[TrendPoint, ...]
    trend_weeks: float
    has_plan: bool
    generated_us: int

    def asymmetry(self, metric: str) -> Asymmetry:
        return next(a for a in self.asymmetries if a.metric == metric)
