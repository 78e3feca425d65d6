"""One patient over weeks: stance-time SI and pelvic drop left vs right per session against a configurable band,
exercise quality per exercise and side, sessions and the gaps between them; flagged and withheld sessions as
annotations."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import dashboard

from dashboards.influxql import Annotation, InfluxAnnotation
from dashboards.panels import (
    BAND_NOTE,
    BAND_READINGS,
    DAYS,
    DEGREE,
    PERCENT,
    SECONDS,
    SESSION_RESULT_UNITS,
    STANCE_STATUS,
    band_variable,
    exercise_variable,
    gaitsym_dashboard,
    interval_overrides,
    note,
    reading_panel,
    series_panel,
    side_variable,
    subject_variable,
    table_panel,
)
from dashboards.queries import query

UID = "gaitsym-patient"
SESSION_LINK = (
    "/d/gaitsym-session/gaitsym-one-session?var-subject=${subject}&var-session=${__data.fields.session}"
    "&from=${__data.fields.Time}&to=${__data.fields.end_unix_ms}"
)


def build() -> dash_b.Dashboard:
    d = (
        gaitsym_dashboard(
            "gaitsym: one patient over weeks",
            UID,
            "Left/right asymmetry per session against a band, exercise quality per side, adherence.",
            "now-180d",
        )
        .with_variable(subject_variable(multi=False))
        .with_variable(band_variable())
        .with_variable(exercise_variable())
        .with_variable(side_variable())
        .annotation(
            Annotation(
                InfluxAnnotation(
                    "Flagged sessions",
                    query("patient.annotation.flags").query,
                    "orange",
                    text_column="warning_flags",
                    title_column="session",
                )
            )
        )
        .annotation(
            Annotation(
                InfluxAnnotation(
                    "Stance SI withheld",
                    query("patient.annotation.withheld").query,
                    "red",
                    text_column="stance_si_withheld_reason",
                    title_column="session",
                )
            )
        )
    )
    d.with_panel(
        note(
            "How to read this page",
            "One point per session (walking) or per exercise set. SI = 100 (L - R) / (0.5 (L + R)), positive when "
            f"the left value is larger. {BAND_NOTE} Orange markers: sessions with warnings; red markers: sessions "
            "whose stance SI was withheld (a gap in the line, never a value). Pelvic drop: the opposite hemipelvis's "
            "drop during each leg's stance (hip abductor control), relative to the patient's own quiet standing.",
            height=4,
        )
    )
    stance = series_panel(
        "Stance-time asymmetry per session (SI, %) with its 95 % interval and ±band",
        "Stance-time symmetry index per session, its 95 % bootstrap interval (shaded) and the band edges (dashed).",
        ["patient.stance_si"],
        PERCENT,
        "stance-time SI (%)",
    )
    interval_overrides(stance, "stance SI")
    d.with_panel(stance)
    drop_si = series_panel(
        "Pelvic-drop asymmetry per session (SI, %) with its 95 % interval and ±band",
        "Pelvic-drop symmetry index per session (undefined when a side's drop is not positive: see left vs right).",
        ["patient.pelvic_drop_si"],
        PERCENT,
        "pelvic-drop SI (%)",
    )
    interval_overrides(drop_si, "pelvic drop SI")
    d.with_panel(drop_si)
    d.with_panel(
        reading_panel(
            "Reading against ±$band % per session",
            "Green: the whole 95 % interval inside the band; orange: it crosses an edge; red: wholly outside; purple: "
            "not read (withheld, no interval, or analysed before intervals were stored).",
            "patient.reading",
        )
    )
    d.with_panel(
        series_panel(
            "Pelvic drop per session, left vs right stance (deg)",
            "Mean peak drop of the opposite hemipelvis during each leg's stance, per session.",
            ["patient.pelvic_drop"],
            DEGREE,
            "pelvic drop (deg)",
        )
    )
    d.with_panel(
        series_panel(
            "Stance time per session, left vs right (s)",
            "Mean stance time of each leg's included strides, per session (absent when withheld).",
            ["patient.stance_time"],
            SECONDS,
            "stance time (s)",
        )
    )
    sessions = table_panel(
        "Sessions",
        "Every session in the range, newest first. Click a session to open it. stance_event_source: which sensors' "
        "events the stance SI rests on; cross_check_*: the SI from thigh events and from pelvis events alone.",
        ["patient.sessions"],
        SESSION_RESULT_UNITS,
        height=9,
        readings=BAND_READINGS,
        statuses=STANCE_STATUS,
        hidden=("end_unix_ms",),
    )
    sessions.override_by_name(
        "session",
        [dashboard.DynamicConfigValue("links", [{"title": "Open this session", "url": SESSION_LINK}])],
    )
    d.with_panel(sessions)
    exercise_panels = [
        (
            "Bridge and single-leg stance: time with the pelvis level (%)",
            "Share of hold samples with the pelvis within 2 deg of level, per set and side (working leg).",
            ["patient.level.time_level"],
            PERCENT,
            "time level (%)",
        ),
        (
            "Bridge and single-leg stance: mean pelvic drop during holds (deg)",
            "Mean drop of the unsupported side during the holds, per set and side (positive: downward).",
            ["patient.level.drop"],
            DEGREE,
            "pelvic drop (deg)",
        ),
        (
            "Clam: thigh rotation amplitude and pelvic rollback (deg)",
            "Per set and side: how far the top thigh opens, and how far the pelvis rolls back with it (less is "
            "better).",
            ["patient.clam.amplitude", "patient.clam.rollback"],
            DEGREE,
            "angle (deg)",
        ),
        (
            "Lunge: thigh internal rotation (deg)",
            "Per set and side (front leg): rotation of the front thigh about its long axis during the lunge, "
            "positive = internal (the study trains lunges without it).",
            ["patient.lunge.rotation"],
            DEGREE,
            "internal rotation (deg)",
        ),
    ]
    for title, description, keys, unit, label in exercise_panels:
        d.with_panel(series_panel(title, description, keys, unit, label))
    d.with_panel(
        series_panel(
            "Sessions per week",
            "Sessions analysed per calendar week (Monday to Sunday, UTC).",
            ["patient.sessions_per_week"],
            "suffix: sessions",
            "sessions",
            width=8,
            bars=True,
        )
    )
    d.with_panel(
        series_panel(
            "Days since the previous session",
            "For each session, the days since the one before (the gaps between sessions).",
            ["patient.days_between"],
            DAYS,
            "days",
            width=8,
            bars=True,
        )
    )
    d.with_panel(
        series_panel(
            "Exercise sets per week, by exercise and side",
            "Sets done per calendar week; compare with the plan in force (table).",
            ["patient.sets_per_week"],
            "suffix: sets",
            "sets",
            width=8,
            bars=True,
        )
    )
    d.with_panel(
        table_panel(
            "Plan in force (gaitsym plan)",
            "Sets a week and repetitions a set the clinic asked for, per exercise and side; cleared: no plan any "
            "more. No row: no plan, adherence is counts only.",
            ["patient.plan"],
            {"sets_per_week": "suffix: sets/week", "reps_per_set": "suffix: reps"},
            height=6,
        )
    )
    return d
