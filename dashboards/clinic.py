"""Clinic overview: every subject's latest walking asymmetries with their confidence, adherence, data-quality and
withheld flags; the subjects who need attention first (latest session withheld or flagged, an asymmetry outside
the band, worsening over 4 weeks, no session in 7 days)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.models import dashboard

from dashboards.panels import (
    BAND_NOTE,
    BAND_READINGS,
    DEGREE,
    PERCENT,
    SECONDS,
    STANCE_STATUS,
    band_variable,
    choice_variable,
    gaitsym_dashboard,
    note,
    subject_variable,
    table_panel,
)

UID = "gaitsym-clinic"
PATIENT_LINK = "/d/gaitsym-patient/gaitsym-one-patient?var-subject=${__data.fields.subject}&${__url_time_range}"

SI_UNITS = {
    "stance_si_pct": PERCENT,
    "stance_si_ci95_low_pct": PERCENT,
    "stance_si_ci95_high_pct": PERCENT,
    "pelvic_drop_deg_si_pct": PERCENT,
    "pelvic_drop_deg_si_ci95_low_pct": PERCENT,
    "pelvic_drop_deg_si_ci95_high_pct": PERCENT,
    "pelvic_drop_deg_diff": DEGREE,
}


def _link_to_patient(panel: table.Panel) -> None:
    panel.override_by_name(
        "subject",
        [
            dashboard.DynamicConfigValue(
                "links", [{"title": "Open this patient over weeks", "url": PATIENT_LINK, "targetBlank": False}]
            )
        ],
    )


def build() -> dash_b.Dashboard:
    d = (
        gaitsym_dashboard(
            "gaitsym: clinic overview",
            UID,
            "Every subject's latest session, adherence and flags; who needs attention first.",
            "now-90d",
        )
        .with_variable(subject_variable(multi=True))
        .with_variable(band_variable())
        .with_variable(
            choice_variable(
                "worse_pp",
                "Worsening: stance |SI| up by (percentage points)",
                ["2", "3", "5"],
                "3",
                "Mean |stance SI| of the last 2 weeks minus that of the 2 weeks before, above which a subject is "
                "listed as worsening. A clinic's choice, not a validated threshold.",
            )
        )
        .with_variable(
            choice_variable(
                "worse_deg",
                "Worsening: pelvic drop |L-R| up by (deg)",
                ["0.5", "1", "2"],
                "1",
                "Mean |pelvic drop left - right| of the last 2 weeks minus that of the 2 weeks before (deg), above "
                "which a subject is listed as worsening. A clinic's choice, not a validated threshold.",
            )
        )
    )
    d.with_panel(
        note(
            "How to read this page",
            "Top: subjects who need attention, one table per reason. Below: every subject's latest session in the "
            "time range and their adherence. Values are per session (the latest one in the range) and come from the "
            f"final analysis only. {BAND_NOTE} A subject with no session in the whole time range does not appear: "
            "widen the range. *Unknown* / *not recorded*: the session was analysed before that evidence was stored "
            "(`gaitsym reanalyze` fills it in); it is never shown as normal.",
            height=4,
        )
    )
    attention = [
        (
            "Needs attention: latest session withheld or flagged",
            "The latest session's stance asymmetry was withheld (why: the reason) or its analysis raised warnings "
            "(data gaps, an unusable sensor, low alignment confidence...).",
            "clinic.withheld_or_flagged",
            {"n_warnings": "suffix: warnings", "duration_s": SECONDS},
            (),
            STANCE_STATUS,
        ),
        (
            "Needs attention: asymmetry outside the band",
            "The latest session's stance-time or pelvic-drop SI has its whole 95 % interval beyond ±$band %.",
            "clinic.outside_band",
            SI_UNITS,
            BAND_READINGS,
            (),
        ),
        (
            "Needs attention: stance asymmetry worsening over 4 weeks",
            "Mean |stance SI| of the last 2 weeks of the range minus that of the 2 weeks before (percentage points), "
            "when above the chosen amount.",
            "clinic.worsening.stance",
            {"stance_si_change_pp": "suffix: pp"},
            (),
            (),
        ),
        (
            "Needs attention: pelvic-drop asymmetry worsening over 4 weeks",
            "Mean |pelvic drop left - right| of the last 2 weeks of the range minus that of the 2 weeks before "
            "(deg), when above the chosen amount.",
            "clinic.worsening.drop",
            {"pelvic_drop_diff_change_deg": DEGREE},
            (),
            (),
        ),
        (
            "Needs attention: no session in the last 7 days",
            "Subjects with sessions in the time range but none in its last 7 days (their latest session: the table "
            "below).",
            "clinic.no_recent_session",
            {
                "sessions_last_7_days": "suffix: sessions",
                "sessions_in_range": "suffix: sessions",
            },
            (),
            (),
        ),
    ]
    for title, description, key, units, readings, statuses in attention:
        panel = table_panel(title, description, [key], units, width=12, height=6, readings=readings, statuses=statuses)
        _link_to_patient(panel)
        d.with_panel(panel)
    latest = table_panel(
        "Every subject: latest session",
        "Stance-time SI and pelvic-drop SI (%, positive: left larger) with their 95 % intervals and reading against "
        "±$band %; status of the stance SI and why it was withheld; the events it rests on; pelvic drop left - right "
        "(deg); warnings and data gaps.",
        ["clinic.latest"],
        SI_UNITS | {"n_warnings": "suffix: warnings", "duration_s": SECONDS},
        height=10,
        readings=BAND_READINGS,
        statuses=STANCE_STATUS,
    )
    _link_to_patient(latest)
    d.with_panel(latest)
    adherence = table_panel(
        "Adherence",
        "Sessions per week over the last 4 weeks of the range; sessions and exercise sets in its last 7 days (sets "
        "counted in the sessions_with_set_count sessions: those analysed before the count was stored are not); sets "
        "a week the plan in force asks for (`gaitsym plan`; blank: no plan, counts only).",
        ["clinic.adherence.sessions", "clinic.adherence.sets", "clinic.adherence.plan"],
        {
            "sessions_per_week": "suffix: sessions/week",
            "sets_last_7_days": "suffix: sets",
            "sessions_with_set_count": "suffix: sessions",
            "sessions_last_7_days": "suffix: sessions",
            "planned_sets_per_week": "suffix: sets/week",
        },
        height=8,
    )
    adherence.with_transformation(
        dashboard.DataTransformerConfig(id_val="joinByField", options={"byField": "subject", "mode": "outer"})
    )
    adherence.with_transformation(
        dashboard.DataTransformerConfig(
            id_val="organize", options={"excludeByName": {"Time": True, "Time 1": True, "Time 2": True, "Time 3": True}}
        )
    )
    _link_to_patient(adherence)
    d.with_panel(adherence)
    return d
