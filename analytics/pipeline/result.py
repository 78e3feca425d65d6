"""The typed result of one analysis and its gaitsym.result/1 document (analytics/results/result-v1.json).

The steps fill these records; ``AnalysisResult.to_dict`` is the only place that knows the document's layout.
Records the schema gives in full (contacts, strides, bouts, the gait summary, alignment, exercise sets) stay
the JSON-shaped dicts that analytics.results builds and checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analytics.algorithms.pelvic_obliquity import WALK_MARGIN_S
from analytics.algorithms.side_check import SEGMENT_EXCURSION_DEG
from analytics.algorithms.stride_checks import MIN_STRIDES_PER_SIDE, SOURCES_DISAGREE_PP
from analytics.results import RESULT_SCHEMA

GENERATOR_NAME = "gaitsym.analysis"
GENERATOR_VERSION = "0.1.0"
LOW_CONFIDENCE = 0.5
"""Alignment confidence below this is flagged."""

Record = dict[str, Any]
"""One JSON object of the document whose fields the schema fixes (a contact, stride, bout, summary block)."""


@dataclass(frozen=True)
class Flag:
    """Something that limits a number, said next to it: ``extra`` holds the optional fields (placement, span)."""

    code: str
    severity: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Record:
        return {"code": self.code, "severity": self.severity, "message": self.message, **self.extra}


class Flags:
    """The flags of one analysis, in the order the steps raise them."""

    def __init__(self) -> None:
        self.items: list[Flag] = []

    def add(self, code: str, severity: str, message: str, **extra: Any) -> None:
        self.items.append(Flag(code, severity, message, extra))


@dataclass(frozen=True)
class RecordingInfo:
    duration_s: float
    sampling_rate_hz: float
    placements: list[str]
    subject: str | None
    task: str

    def to_dict(self) -> Record:
        return {
            "duration_s": self.duration_s,
            "sampling_rate_hz": self.sampling_rate_hz,
            "placements": list(self.placements),
            "subject": self.subject,
            "task": self.task,
        }


@dataclass
class Gait:
    """Contacts (time-ordered), walking bouts, strides and the session summary."""

    initial_contacts: list[Record]
    final_contacts: list[Record]
    bouts: list[Record]
    strides: list[Record]
    summary: Record

    def to_dict(self) -> Record:
        return {
            "initial_contacts": self.initial_contacts,
            "final_contacts": self.final_contacts,
            "bouts": self.bouts,
            "strides": self.strides,
            "summary": self.summary,
        }


@dataclass
class Quality:
    """The flags, each sensor's alignment (placement -> block) and the paths of the numbers withheld."""

    flags: list[Flag]
    alignment: dict[str, Record]
    withheld: list[str]

    def to_dict(self) -> Record:
        return {"flags": [f.to_dict() for f in self.flags], "alignment": self.alignment, "withheld": self.withheld}


@dataclass(frozen=True)
class ObliquityTrace:
    """Pelvic obliquity relative to quiet standing, one value a sample (empty without a standing reference)."""

    obliquity_deg: list[float]
    rate_hz: float
    standing_baseline_deg: float | None

    def to_dict(self) -> Record:
        return {
            "obliquity_deg": self.obliquity_deg,
            "rate_hz": self.rate_hz,
            "t0_s": 0.0,
            "standing_baseline_deg": self.standing_baseline_deg,
        }


def generator_settings() -> Record:
    """The settings the document says it was made with."""
    return {
        "walk_margin_s": WALK_MARGIN_S,
        "segment_excursion_deg": SEGMENT_EXCURSION_DEG,
        "low_confidence": LOW_CONFIDENCE,
        "thigh_events": "swing-landmark phase interpolation (analytics.algorithms.thigh_events)",
        "stride_checks": "thigh contacts confirmed by the pelvis, plausibility rules, asymmetry gate "
        "(analytics.algorithms.stride_checks)",
        "min_strides_per_side": MIN_STRIDES_PER_SIDE,
        "sources_disagree_pp": SOURCES_DISAGREE_PP,
    }


@dataclass
class AnalysisResult:
    """One recording's analysis (source "analysis"); ``to_dict`` gives its gaitsym.result/1 document."""

    recording: RecordingInfo
    gait: Gait
    exercises: list[Record]
    quality: Quality
    pelvis: ObliquityTrace | None = None

    def to_dict(self) -> Record:
        doc: Record = {
            "schema": RESULT_SCHEMA,
            "source": "analysis",
            "generator": {"name": GENERATOR_NAME, "version": GENERATOR_VERSION, "settings": generator_settings()},
            "recording": self.recording.to_dict(),
            "gait": self.gait.to_dict(),
            "exercises": self.exercises,
            "quality": self.quality.to_dict(),
        }
        if self.pelvis is not None:
            doc["pelvis"] = self.pelvis.to_dict()
        return doc
