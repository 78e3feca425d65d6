"""One session: the raw traces of the three sensors with the gait events (initial contacts) and the exercise sets
as annotations, the session's results, its exercise sets, and the samples known to be missing.

Open it from a session of the patient dashboard (the link sets the subject, the session and the time range to
the session's). Raw samples are kept for the raw retention (30 days by default): older sessions show results only.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import common, dashboard

from dashboards.influxql import Annotation, InfluxAnnotation
from dashboards.panels import (
    ACC,
    BAND_READINGS,
    DEGREE,
    GYR,
    PERCENT,
    SECONDS,
    SESSION_RESULT_UNITS,
    STANCE_STATUS,
    band_variable,
    exercise_variable,
    gaitsym_dashboard,
    note,
    query_variable,
    series_panel,
    side_variable,
    subject_variable,
    table_panel,
)
from dashboards.queries import query

UID = "gaitsym-session"
SAMPLE_PERIOD = "10ms"
"""The sensors' sample period (100 Hz): the raw panels never average over less."""
RAW_POINTS = 2000
SPAN_NULLS_MS = 250
"""Raw traces are drawn across empty intervals shorter than this (ms): the packed layout's display points stand
0.1 s apart, wider than the panels' finest interval; a longer run of missing samples stays a break in the line
(every missing sample is listed in the gaps table)."""
PLACEMENT_TITLES = {"pelvis": "Pelvis", "left_thigh": "Left thigh", "right_thigh": "Right thigh"}


def _session_variable() -> dash_b.QueryVariable:
    return query_variable(
        "session",
        "Session",
        "var.session",
        dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED,
        dashboard.VariableSort.ALPHABETICAL_DESC,
    )


def build() -> dash_b.Dashboard:
    d = (
        gaitsym_dashboard(
            "gaitsym: one session",
            UID,
            "Raw traces of the three sensors with gait events, exercise sets and gaps.",
            "now-7d",
        )
        .with_variable(subject_variable(multi=False))
        .with_variable(_session_variable())
        .with_variable(band_variable())
        .with_variable(exercise_variable())
        .with_variable(side_variable())
        .annotation(
            Annotation(
                InfluxAnnotation(
                    "Initial contacts (gait events)",
                    query("session.annotation.contacts").query,
                    "blue",
                    text_column="stance_time_s",
                    tags_column="side",
                )
            )
        )
        .annotation(
            Annotation(
                InfluxAnnotation(
                    "Exercise sets",
                    query("session.annotation.sets").query,
                    "green",
                    text_column="set",
                    tags_column="exercise,side",
                    time_end_column="end_unix_ms",
                )
            )
        )
    )
    d.with_panel(
        note(
            "How to read this page",
            "Set the time range to the session (the patient dashboard's session link does). Raw traces are means "
            "over the panel's resolution (never below the 10 ms sample period; 0.1 s for samples stored packed); a "
            "break in a line is at least 0.25 s with no stored sample: the gaps table lists every sample known to be "
            "missing. Blue markers: initial "
            "contacts (tag: the stance leg; text: stance time in s); green regions: exercise sets. Results are the "
            "final analysis only (live, provisional results are not shown).",
            height=3,
        )
    )
    summary = table_panel(
        "Session results",
        "The session's walking asymmetries with their 95 % intervals, status, reading against ±$band % "
        "(see the patient dashboard's note), warnings and data gaps the analysis ran across.",
        ["session.summary"],
        SESSION_RESULT_UNITS,
        height=5,
        readings=BAND_READINGS,
        statuses=STANCE_STATUS,
    )
    d.with_panel(summary)
    d.with_panel(
        table_panel(
            "Left and right",
            "Per stance leg: strides used, mean stance and step time, mean pelvic drop.",
            ["session.sides"],
            {
                "n_strides": "suffix: strides",
                "stance_time_s": SECONDS,
                "step_time_s": SECONDS,
                "pelvic_drop_deg": DEGREE,
            },
            height=5,
        )
    )
    for placement, title in PLACEMENT_TITLES.items():
        panel = series_panel(
            f"{title}: acceleration (m/s², gravity included) and angular rate (deg/s)",
            f"Raw samples of the {title.lower()} sensor, sensor axes; angular rate on the right axis. Samples stored "
            "packed (the store's packed raw layout) are shown as their means over each 0.1 s ('(0.1-s means)').",
            [f"session.raw.{placement}", f"session.raw_display.{placement}"],
            ACC,
            "acceleration (m/s²)",
            width=24,
            height=8,
        )
        panel.interval(SAMPLE_PERIOD).max_data_points(RAW_POINTS).show_points(common.VisibilityMode.NEVER).span_nulls(
            SPAN_NULLS_MS
        )
        panel.override_by_regexp(
            "^gyr_",
            [
                dashboard.DynamicConfigValue("unit", GYR),
                dashboard.DynamicConfigValue("custom.axisPlacement", "right"),
                dashboard.DynamicConfigValue("custom.axisLabel", "angular rate (deg/s)"),
            ],
        )
        d.with_panel(panel)
    d.with_panel(
        series_panel(
            "Stance time per stride, left vs right (s)",
            "Strides the session's summary includes (first and last of each side in a bout left out).",
            ["session.strides"],
            SECONDS,
            "stance time (s)",
            width=24,
            height=6,
        )
    )
    d.with_panel(
        table_panel(
            "Exercise sets",
            "Each set of the session with its quality metrics (per exercise: pelvis level for bridge and "
            "single-leg stance; amplitude and pelvic rollback for the clam; thigh internal rotation for the lunge).",
            ["session.sets"],
            {
                "hold_mean_s": SECONDS,
                "time_level_pct": PERCENT,
                "pelvic_drop_mean_deg": DEGREE,
                "thigh_rotation_amplitude_deg": DEGREE,
                "pelvic_rollback_deg": DEGREE,
                "thigh_internal_rotation_deg": DEGREE,
                "reps": "suffix: reps",
                "n_holds": "suffix: holds",
            },
            height=8,
        )
    )
    d.with_panel(
        table_panel(
            "Samples known to be missing (gaps)",
            "Per sensor: the sequence numbers never received or refused (reason), and how long they span. The "
            "analysis runs across them and flags the session (data_gap).",
            ["session.gaps"],
            {"duration_s": SECONDS},
            height=6,
        )
    )
    return d
