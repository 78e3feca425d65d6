"""Stored rows -> the typed report (pure): absent evidence fields read as unknown, never as normal; withheld
values keep their reason; exercise sets against the plan in force; the trend one point per session."""

from __future__ import annotations

from typing import Any

import pytest

from analytics.stores.model import ResultRow
from analytics.stores.plans import ExercisePlan
from report.errors import UnknownSession
from report.gather import report_from_rows, set_flags, trend_points

DAY_US = 86400 * 1_000_000
T0 = 1_780_000_000 * 1_000_000


def summary(
    session: str, t_us: int, none: dict[str, Any], left: dict[str, Any], right: dict[str, Any], version: int = 1
):
    common = {"session": session, "result_version": version, "duration_s": 600.0}
    return [
        ResultRow("session_summary", t_us, {"side": "none", "subject": "P1"}, {**common, **none}),
        ResultRow("session_summary", t_us, {"side": "left", "subject": "P1"}, {**common, **left}),
        ResultRow("session_summary", t_us, {"side": "right", "subject": "P1"}, {**common, **right}),
    ]


SIDES = {"stance_time_s": 0.70, "step_time_s": 0.56, "pelvic_drop_deg": 3.1, "n_strides": 40}
SIDES_R = {"stance_time_s": 0.68, "step_time_s": 0.55, "pelvic_drop_deg": 2.9, "n_strides": 41}


def test_current_fields_give_a_reading_with_its_interval_and_evidence() -> None:
    none = {
        "stance_si_pct": 2.9,
        "stance_si_status": "reported",
        "stance_si_ci95_low_pct": 1.0,
        "stance_si_ci95_high_pct": 4.8,
        "stance_event_source": "thigh+pelvis",
        "cross_check_thigh_si_pct": 2.9,
        "cross_check_pelvis_si_pct": 3.4,
        "step_time_s_si_pct": 1.8,
        "step_time_s_si_ci95_low_pct": -12.0,
        "step_time_s_si_ci95_high_pct": 3.0,
        "pelvic_drop_deg_si_pct": 6.7,
        "pelvic_drop_deg_si_ci95_low_pct": 2.0,
        "pelvic_drop_deg_si_ci95_high_pct": 11.0,
    }
    report = report_from_rows("P1", "S1", summary("S1", T0, none, SIDES, SIDES_R), [])
    stance = report.asymmetry("stance_time_s")
    assert stance.reading.verdict == "within" and stance.reading.ci95_pct == (1.0, 4.8)
    assert (stance.left, stance.right) == (0.70, 0.68)
    assert report.asymmetry("step_time_s").reading.verdict == "uncertain"
    assert report.asymmetry("pelvic_drop_deg").reading.verdict == "uncertain"
    assert report.stance_evidence.status == "reported"
    assert report.stance_evidence.event_source == "thigh+pelvis"
    assert report.stance_evidence.cross_check_pelvis_si_pct == 3.4
    assert report.n_strides == (40, 41)


def test_older_results_without_status_or_interval_are_never_read_as_normal() -> None:
    # stored before the evidence fields existed: an SI well inside the band, no interval, no status
    report = report_from_rows("P1", "S1", summary("S1", T0, {"stance_si_pct": 1.0}, SIDES, SIDES_R), [])
    reading = report.asymmetry("stance_time_s").reading
    assert reading.verdict == "uncertain"
    assert report.stance_evidence.status == "unknown"


def test_older_results_with_no_value_are_withheld_for_a_reason_read_from_flags_or_unknown() -> None:
    flagged = summary("S1", T0, {"flags": "asymmetry_too_few_strides,dynamic_calibration_relative"}, {}, {})
    report = report_from_rows("P1", "S1", flagged, [])
    assert report.asymmetry("stance_time_s").reading.withheld_reason == "asymmetry_too_few_strides"
    assert report.asymmetry("step_time_s").reading.withheld_reason == "asymmetry_too_few_strides"
    bare = report_from_rows("P1", "S1", summary("S1", T0, {}, {}, {}), [])
    assert bare.asymmetry("stance_time_s").reading.verdict == "withheld"
    assert bare.asymmetry("stance_time_s").reading.withheld_reason == "unknown"


def test_withheld_status_wins_over_a_value_and_keeps_its_reason() -> None:
    none = {"stance_si_status": "withheld", "stance_si_withheld_reason": "asymmetry_sources_disagree"}
    left = {"pelvic_drop_deg": 3.0}
    right = {"pelvic_drop_deg": -0.5}  # hip hiking: the SI is undefined, the difference is not
    report = report_from_rows("P1", "S1", summary("S1", T0, none, left, right), [])
    assert report.asymmetry("stance_time_s").reading.withheld_reason == "asymmetry_sources_disagree"
    assert report.stance_evidence.withheld_reason == "asymmetry_sources_disagree"
    drop = report.asymmetry("pelvic_drop_deg")
    assert drop.reading.verdict == "withheld" and drop.reading.withheld_reason == "asymmetry_undefined"
    assert drop.diff == pytest.approx(3.5)


def test_trend_is_one_point_per_session_oldest_first_newest_version_wins() -> None:
    rows = (
        summary("S2", T0, {"stance_si_pct": 5.0}, {"pelvic_drop_deg": 4.0}, {}, version=1)
        + summary("S2", T0, {"stance_si_pct": 3.0}, {"pelvic_drop_deg": 3.5}, {}, version=2)
        + summary("S1", T0 - 7 * DAY_US, {"stance_si_status": "withheld"}, {}, {})
    )
    points = trend_points(rows, 10.0)
    assert [p.session for p in points] == ["S1", "S2"]
    assert points[0].stance.verdict == "withheld"
    assert points[1].stance.si_pct == 3.0 and points[1].drop_left_deg == 3.5


def _set(t_us: int, session: str, exercise: str, side: str, **fields: Any) -> ResultRow:
    return ResultRow(
        "exercise_set", t_us, {"exercise": exercise, "side": side, "subject": "P1"}, {"session": session, **fields}
    )


def test_exercise_lines_count_the_week_against_the_plan_in_force() -> None:
    rows = summary("S3", T0, {}, {}, {}) + [
        _set(T0 + 1, "S3", "clam", "left", set=1, reps=8, hold_mean_s=10.2, thigh_rotation_amplitude_deg=30.0),
        _set(T0 + 2, "S3", "clam", "left", set=2, reps=6, thigh_rotation_amplitude_deg=34.0, pelvic_rollback_deg=None),
        _set(T0 + 3, "S3", "walk", "none", set=1),
    ]
    history = [
        _set(T0 - 2 * DAY_US, "S2", "clam", "left", set=1),
        _set(T0 - 9 * DAY_US, "S1", "clam", "left", set=1),  # more than a week before: not counted
    ]
    plans = [
        ExercisePlan("P1", "clam", "left", 4, 10, T0 - 30 * DAY_US),
        ExercisePlan("P1", "single_leg_bridge", "right", 3, None, T0 - 30 * DAY_US),
        ExercisePlan("P1", "lunge", "left", 2, None, T0 - 30 * DAY_US),
        ExercisePlan("P1", "lunge", "left", 0, None, T0 - DAY_US, cleared=True),
        ExercisePlan("P1", "clam", "right", 5, None, T0 + 30 * DAY_US),  # set after the session: not in force
    ]
    report = report_from_rows("P1", "S3", rows, history, plans=plans)
    lines = {(line.exercise, line.side): line for line in report.exercises}
    assert set(lines) == {("clam", "left"), ("single_leg_bridge", "right")}  # walking is not an exercise
    clam = lines[("clam", "left")]
    assert (clam.sets_done, clam.sets_week, clam.planned_per_week, clam.planned_reps_per_set) == (2, 3, 4, 10)
    assert clam.reps == 14 and clam.hold_mean_s == pytest.approx(10.2)
    assert dict(clam.metrics)["thigh_rotation_amplitude_deg"] == pytest.approx(32.0)
    bridge = lines[("single_leg_bridge", "right")]
    assert (bridge.sets_done, bridge.planned_per_week, bridge.reps) == (0, 3, None)
    assert report.has_plan


def test_set_flags_split_on_codes_even_when_messages_hold_commas() -> None:
    notes = set_flags("hold_interrupted: repetitions [1, 3]; their holds include it,partial_repetitions: 2 below 50 %")
    assert [(n.code, n.detail) for n in notes] == [
        ("hold_interrupted", "repetitions [1, 3]; their holds include it"),
        ("partial_repetitions", "2 below 50 %"),
    ]


def test_a_session_without_summary_is_refused_by_name() -> None:
    with pytest.raises(UnknownSession, match="S9"):
        report_from_rows("P1", "S9", [_set(T0, "S9", "clam", "left")], [])


def test_the_command_defaults_are_the_band_rule_and_the_trend_window() -> None:
    from analytics.results.reading import DEFAULT_SI_BAND_PCT
    from gaitsym.cli import build_parser
    from report.gather import DEFAULT_TREND_WEEKS

    args = build_parser().parse_args(["report", "--subject", "P1", "--out", "r.html"])
    assert (args.band, args.trend_weeks) == (DEFAULT_SI_BAND_PCT, DEFAULT_TREND_WEEKS)
    for bad in (["--band", "0"], ["--band", "nan"], ["--trend-weeks", "-1"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["report", "--subject", "P1", "--out", "r.html", *bad])
