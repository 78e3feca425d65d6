"""Every query of every provisioned dashboard (panel targets, variables, annotations) run on the seeded real
InfluxDB as Grafana would run it, as the read-only user of the provisioned data source; each must return rows,
and the rows must be the seeded sessions' values (InfluxDB answers a misspelled field with nothing, not an error).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

from analytics.results.reading import read_si
from analytics.stores.model import EXERCISE_SET, SESSION_SUMMARY, STRIDE, SessionResults
from dashboards import provisioning, queries
from testing.dashboard_seed import Seeded
from testing.grafana_queries import ALL, Variable, dashboard_queries, rows, substitute

DAY_MS = 86_400_000
CODES = {"within": queries.WITHIN, "uncertain": queries.UNCERTAIN, "outside": queries.OUTSIDE, "withheld": None}
NOT_SETS = ("stand", "walk")

Runner = Callable[..., list[dict[str, Any]]]


def _all(multi: bool = True) -> Variable:
    return Variable(ALL, multi=multi, include_all=True, all_value=".*")


def dashboard_state(seeded: Seeded, uid: str) -> tuple[dict[str, Variable], int, int]:
    """Variables and time range a clinician would have on each dashboard (the defaults, a subject chosen)."""
    now = seeded.now_ms
    if uid == "gaitsym-clinic":
        variables = {"subject": _all(), "band": Variable("10"), "worse_pp": Variable("3"), "worse_deg": Variable("1")}
        return variables, now - 90 * DAY_MS, now
    if uid == "gaitsym-patient":
        variables = {"subject": Variable("p-steady"), "band": Variable("10"), "exercise": _all(), "side": _all()}
        return variables, now - 180 * DAY_MS, now
    assert seeded.raw_session is not None
    summary = _summary(seeded.raw_session)
    variables = {
        "subject": Variable("p-steady"),
        "session": Variable(seeded.raw_session.session),
        "band": Variable("10"),
        "exercise": _all(),
        "side": _all(),
    }
    return variables, seeded.raw_session.start_us // 1000, int(summary["end_unix_ms"])


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    files = provisioning.render()
    return {doc["uid"]: doc for name, text in files.items() if name.endswith(".json") for doc in [json.loads(text)]}


def _key_of(text: str) -> str:
    matches = [k for k, q in queries.Q.items() if q.query == text]
    assert len(matches) == 1, f"query not (or more than once) in dashboards.queries: {text[:120]}"
    return matches[0]


@pytest.fixture(scope="module")
def answers(seeded: Seeded, dashboards: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Every dashboard query's answer in its dashboard's default state, by query key."""
    out: dict[str, list[dict[str, Any]]] = {}
    for uid, doc in dashboards.items():
        variables, from_ms, to_ms = dashboard_state(seeded, uid)
        for dq in dashboard_queries(doc):
            text = substitute(
                dq.query,
                variables,
                from_ms=from_ms,
                to_ms=to_ms,
                max_data_points=dq.max_data_points,
                min_interval=dq.min_interval,
                annotation=dq.annotation,
            )
            out[_key_of(dq.query)] = seeded.grafana.run(text)
    return out


@pytest.fixture(scope="module")
def run(seeded: Seeded) -> Runner:
    """Run one registry query in a dashboard's state with some variables changed."""

    def runner(key: str, uid: str, **changed: Variable) -> list[dict[str, Any]]:
        variables, from_ms, to_ms = dashboard_state(seeded, uid)
        variables.update(changed)
        return seeded.grafana.run(substitute(queries.Q[key].query, variables, from_ms=from_ms, to_ms=to_ms))

    return runner


# ------------------------------------------------------------------------------------------ helpers on the seed


def _summary(results: SessionResults, side: str = "none") -> Mapping[str, Any]:
    (point,) = [p for p in results.points if p.measurement == SESSION_SUMMARY and dict(p.tags)["side"] == side]
    return point.fields


def _sets(results: SessionResults) -> list[tuple[dict[str, str], Mapping[str, Any], int]]:
    return [
        (dict(p.tags), p.fields, p.time_us)
        for p in results.points
        if p.measurement == EXERCISE_SET and dict(p.tags)["exercise"] not in NOT_SETS
    ]


def _in(results: SessionResults, from_ms: int, to_ms: int, *, after: bool = False) -> bool:
    t = results.start_us // 1000
    return (from_ms < t if after else from_ms <= t) and t <= to_ms


def _code(fields: Mapping[str, Any], prefix: str, band: float) -> int | None:
    """The band reading `analytics.results.reading.read_si` gives a session's SI, as the dashboards code it."""
    low, high = fields.get(f"{prefix}_ci95_low_pct"), fields.get(f"{prefix}_ci95_high_pct")
    value = fields.get(f"{prefix}_pct")
    interval = None if low is None or high is None else (low, high)
    reading = read_si(value, interval, band_pct=band)
    if reading.verdict == "uncertain" and interval is None:
        return None  # the dashboards cannot read a value without an interval: "not read", never normal
    return CODES[reading.verdict]


def _by_subject(series: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in rows(series):
        assert row["subject"] not in out, f"two rows for {row['subject']}"
        out[row["subject"]] = row
    return out


def _close(a: float | None, b: float | None, tol: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


# ------------------------------------------------------------------------------------------ every query


def test_every_dashboard_query_is_in_the_registry_and_every_registry_query_in_a_dashboard(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    used = [_key_of(dq.query) for doc in dashboards.values() for dq in dashboard_queries(doc)]
    assert set(used) == set(queries.Q), "a query defined in dashboards.queries is used by no dashboard"
    panels = [key for key in used if not key.startswith("var.")]
    assert len(panels) == len(set(panels)), "one query shown by two panels"


def test_every_query_returns_rows(answers: dict[str, list[dict[str, Any]]]) -> None:
    empty = [key for key, series in answers.items() if not any(s.get("values") for s in series)]
    assert not empty, f"queries answered with nothing (a misspelled field or tag?): {empty}"


IDENTIFIERS = {"set", "boot_epoch", "seq_first_missing", "seq_last_missing", "stance_reading", "pelvic_drop_reading"}
"""Numeric table columns that are ids or reading codes (shown through value mappings), not quantities."""


def test_every_number_in_a_table_has_a_unit(
    dashboards: dict[str, dict[str, Any]], answers: dict[str, list[dict[str, Any]]]
) -> None:
    for doc in dashboards.values():
        for panel in doc["panels"]:
            if panel["type"] != "table":
                continue
            units = {
                o["matcher"]["options"]
                for o in panel["fieldConfig"]["overrides"]
                if any(p["id"] == "unit" for p in o["properties"])
            }
            for target in panel["targets"]:
                for row in rows(answers[_key_of(target["query"])]):
                    numbers = {k for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool)}
                    missing = numbers - units - IDENTIFIERS - {"time"}
                    assert not missing, (panel["title"], sorted(missing))


def test_no_query_reads_live_provisional_results(dashboards: dict[str, dict[str, Any]]) -> None:
    for doc in dashboards.values():
        for dq in dashboard_queries(doc):
            assert "_live" not in dq.query, dq.where


# ------------------------------------------------------------------------------------------ clinic overview


def test_clinic_latest_session_per_subject_with_readings_never_normal_when_unknown(
    seeded: Seeded, answers: dict[str, list[dict[str, Any]]], run: Runner
) -> None:
    seen = set()
    for band in (10.0, 5.0, 15.0):
        got = _by_subject(run("clinic.latest", "gaitsym-clinic", band=Variable(f"{band:g}")))
        seen |= {row[name] for row in got.values() for name in ("stance_reading", "pelvic_drop_reading")}
        assert set(got) == set(seeded.sessions)
        for subject, sessions in seeded.sessions.items():
            latest = _summary(sessions[0][1])
            row = got[subject]
            for name in ("stance_si_pct", "pelvic_drop_deg_diff", "stance_si_status", "stance_si_withheld_reason"):
                assert (
                    _close(row[name], latest.get(name))
                    if isinstance(row[name], float)
                    else row[name] == latest.get(name)
                )
            assert row["stance_reading"] == _code(latest, "stance_si", band), (subject, band)
            assert row["pelvic_drop_reading"] == _code(latest, "pelvic_drop_deg_si", band), (subject, band)
    assert seen == {queries.WITHIN, queries.UNCERTAIN, queries.OUTSIDE, None}, "every reading compared with read_si"
    default = _by_subject(answers["clinic.latest"])
    assert default["p-asym"]["pelvic_drop_reading"] == queries.OUTSIDE
    assert default["p-withheld"]["stance_si_status"] == "withheld"
    assert default["p-withheld"]["stance_reading"] is None
    assert default["p-old"]["stance_si_pct"] > 10 and default["p-old"]["stance_reading"] is None
    assert default["p-old"]["stance_si_status"] is None  # unknown: the table says so, never "reported"


def test_clinic_attention_lists(seeded: Seeded, answers: dict[str, list[dict[str, Any]]], run: Runner) -> None:
    flagged = _by_subject(answers["clinic.withheld_or_flagged"])
    assert set(flagged) == {"p-withheld", "p-steady"}
    assert flagged["p-withheld"]["stance_si_withheld_reason"] == "asymmetry_too_few_strides"
    assert flagged["p-steady"]["warning_flags"] == "data_gap" and flagged["p-steady"]["n_warnings"] == 1

    outside = _by_subject(answers["clinic.outside_band"])
    assert set(outside) == {"p-asym"}, "p-old's SI is outside but has no interval: unknown, not listed"
    assert outside["p-asym"]["pelvic_drop_reading"] == queries.OUTSIDE
    low = outside["p-asym"]["pelvic_drop_deg_si_ci95_low_pct"]
    assert run("clinic.outside_band", "gaitsym-clinic", band=Variable(f"{low + 1:.1f}")) == []

    now = seeded.now_ms
    recent = [_summary(r) for _, r in seeded.sessions["p-asym"] if _in(r, now - 14 * DAY_MS, now, after=True)]
    before = [
        _summary(r) for _, r in seeded.sessions["p-asym"] if _in(r, now - 28 * DAY_MS, now - 14 * DAY_MS, after=True)
    ]
    assert len(recent) == 13 and len(before) == 14  # day 14 starts before the recent window
    for key, field, change, threshold in (
        ("clinic.worsening.stance", "stance_si_pct", "stance_si_change_pp", "worse_pp"),
        ("clinic.worsening.drop", "pelvic_drop_deg_diff", "pelvic_drop_diff_change_deg", "worse_deg"),
    ):
        worsening = _by_subject(answers[key])
        assert set(worsening) == {"p-asym"}, key
        expected = sum(abs(f[field]) for f in recent) / len(recent) - sum(abs(f[field]) for f in before) / len(before)
        assert _close(worsening["p-asym"][change], expected, 1e-6), key
        assert run(key, "gaitsym-clinic", **{threshold: Variable(f"{expected + 0.5:.3f}")}) == []

    lapsed = _by_subject(answers["clinic.no_recent_session"])
    assert set(lapsed) == {"p-lapsed"}
    in_range = [r for _, r in seeded.sessions["p-lapsed"] if _in(r, seeded.now_ms - 90 * DAY_MS, seeded.now_ms)]
    assert lapsed["p-lapsed"]["sessions_in_range"] == len(in_range)
    assert lapsed["p-lapsed"]["sessions_last_7_days"] == 0


def test_clinic_adherence(seeded: Seeded, answers: dict[str, list[dict[str, Any]]]) -> None:
    now = seeded.now_ms
    per_week = _by_subject(answers["clinic.adherence.sessions"])
    sets = _by_subject(answers["clinic.adherence.sets"])
    for subject, sessions in seeded.sessions.items():
        recent = [r for _, r in sessions if _in(r, now - 28 * DAY_MS, now, after=True)]
        if recent:
            assert _close(per_week[subject]["sessions_per_week"], len(recent) / 4)
        week = [r for _, r in sessions if _in(r, now - 7 * DAY_MS, now, after=True)]
        counted = [r for r in week if "n_sets" in _summary(r)]
        if week:
            row = sets[subject]
            assert row["sessions_last_7_days"] == len(week)
            assert row["sessions_with_set_count"] == (len(counted) or None)  # stored before n_sets: not counted
            assert row["sets_last_7_days"] == (sum(len(_sets(r)) for r in counted) if counted else None)
        assert bool(week) == (subject in sets)
    planned = _by_subject(answers["clinic.adherence.plan"])
    expected: dict[str, int] = {}
    for (subject, _, _), sets_a_week in seeded.plans.items():
        expected[subject] = expected.get(subject, 0) + (sets_a_week or 0)
    assert {s: r["planned_sets_per_week"] for s, r in planned.items()} == expected


# ------------------------------------------------------------------------------------------ one patient


def _patient_sessions(seeded: Seeded) -> list[SessionResults]:
    return [r for _, r in seeded.sessions["p-steady"] if _in(r, seeded.now_ms - 180 * DAY_MS, seeded.now_ms)]


def test_patient_trends_per_session(seeded: Seeded, answers: dict[str, list[dict[str, Any]]]) -> None:
    sessions = sorted(_patient_sessions(seeded), key=lambda r: r.start_us)
    times = [r.start_us // 1000 for r in sessions]
    (si,) = answers["patient.stance_si"]
    assert [v[0] for v in si["values"]] == times
    column = {c: i for i, c in enumerate(si["columns"])}
    for values, results in zip(si["values"], sessions, strict=True):
        fields = _summary(results)
        assert _close(values[column["stance SI"]], fields.get("stance_si_pct"))
        assert _close(values[column["95 % interval low"]], fields.get("stance_si_ci95_low_pct"))
        assert values[column["band +"]] == 10 and values[column["band -"]] == -10
    withheld = [r for r in sessions if _summary(r).get("stance_si_status") == "withheld"]
    assert withheld and all(_summary(r).get("stance_si_pct") is None for r in withheld)

    (reading,) = answers["patient.reading"]
    for values, results in zip(reading["values"], sessions, strict=True):
        assert values[1] == _code(_summary(results), "stance_si", 10.0)
        assert values[2] == _code(_summary(results), "pelvic_drop_deg_si", 10.0)

    for key, field in (("patient.pelvic_drop", "pelvic_drop_deg"), ("patient.stance_time", "stance_time_s")):
        by_side = {s["tags"]["side"]: s for s in answers[key]}
        assert set(by_side) == {"left", "right"}
        for side, series in by_side.items():
            expected = [(r.start_us // 1000, _summary(r, side).get(field)) for r in sessions]
            expected = [(t, v) for t, v in expected if v is not None]
            assert [t for t, _ in series["values"]] == [t for t, _ in expected], (key, side)
            assert [v for _, v in series["values"]] == pytest.approx([v for _, v in expected]), (key, side)

    (drop_si,) = answers["patient.pelvic_drop_si"]
    assert [v[1] for v in drop_si["values"]] == pytest.approx(
        [_summary(r).get("pelvic_drop_deg_si_pct") for r in sessions], nan_ok=True
    )


def test_patient_sessions_table_and_annotations(seeded: Seeded, answers: dict[str, list[dict[str, Any]]]) -> None:
    sessions = _patient_sessions(seeded)  # newest first, as the table
    table = list(rows(answers["patient.sessions"]))
    assert [r["session"] for r in table] == [s.session for s in sessions]
    for row, results in zip(table, sessions, strict=True):
        fields = _summary(results)
        assert row["stance_si_status"] == fields.get("stance_si_status")
        assert row["stance_event_source"] == fields.get("stance_event_source")
        assert _close(row["cross_check_pelvis_si_pct"], fields.get("cross_check_pelvis_si_pct"))
        assert row["stance_reading"] == _code(fields, "stance_si", 10.0)
        assert row["end_unix_ms"] == fields["end_unix_ms"]
    flagged = list(rows(answers["patient.annotation.flags"]))
    assert [(r["session"], r["warning_flags"]) for r in flagged] == [
        ("s-p-steady-09", "asymmetry_too_few_strides"),  # a withheld value is also a warning
        ("s-p-steady-01", "data_gap"),
    ]
    withheld = list(rows(answers["patient.annotation.withheld"]))
    assert [(r["session"], r["stance_si_withheld_reason"]) for r in withheld] == [
        ("s-p-steady-09", "asymmetry_too_few_strides")
    ]


@pytest.mark.parametrize(
    ("key", "field", "exercises"),
    [
        ("patient.level.time_level", "time_level_pct", ("single_leg_bridge", "single_leg_stance")),
        ("patient.level.drop", "pelvic_drop_mean_deg", ("single_leg_bridge", "single_leg_stance")),
        ("patient.clam.amplitude", "thigh_rotation_amplitude_deg", ("clam",)),
        ("patient.clam.rollback", "pelvic_rollback_deg", ("clam",)),
        ("patient.lunge.rotation", "thigh_internal_rotation_deg", ("lunge",)),
    ],
)
def test_patient_exercise_quality_per_exercise_and_side(
    seeded: Seeded, answers: dict[str, list[dict[str, Any]]], key: str, field: str, exercises: tuple[str, ...]
) -> None:
    expected: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for results in _patient_sessions(seeded):
        for tags, fields, t in _sets(results):
            if tags["exercise"] in exercises and field in fields:
                expected.setdefault((tags["exercise"], tags["side"]), []).append((t // 1000, fields[field]))
    got = {(s["tags"]["exercise"], s["tags"]["side"]): [tuple(v) for v in s["values"]] for s in answers[key]}
    assert set(got) == set(expected) and {side for _, side in got} == {"left", "right"}
    for series, points in expected.items():
        assert [t for t, _ in got[series]] == [t for t, _ in sorted(points)], series
        assert [v for _, v in got[series]] == pytest.approx([v for _, v in sorted(points)]), series


def test_patient_sessions_gaps_and_sets_against_plan(seeded: Seeded, answers: dict[str, list[dict[str, Any]]]) -> None:
    sessions = _patient_sessions(seeded)
    (per_week,) = answers["patient.sessions_per_week"]
    assert sum(v[1] for v in per_week["values"]) == len(sessions)
    (between,) = answers["patient.days_between"]
    assert [v[1] for v in between["values"]] == [2.0] * (len(sessions) - 1)
    sets = sum(v[1] for s in answers["patient.sets_per_week"] for v in s["values"])
    assert sets == sum(len(_sets(r)) for r in sessions)
    plans = {(r["exercise"], r["side"]): r for r in rows(answers["patient.plan"])}
    expected = {(e, s): n for (subject, e, s), n in seeded.plans.items() if subject == "p-steady"}
    assert {k: (None if r["cleared"] else r["sets_per_week"]) for k, r in plans.items()} == expected
    assert plans[("clam", "left")]["reps_per_set"] == 5 and plans[("single_leg_bridge", "left")]["reps_per_set"] is None


def test_patient_variables_and_band(seeded: Seeded, answers: dict[str, list[dict[str, Any]]], run: Runner) -> None:
    subjects = {v[1] for s in answers["var.subject"] for v in s["values"]}
    assert subjects == set(seeded.sessions)
    exercises = {v[1] for s in answers["var.exercise"] for v in s["values"]}
    assert exercises == {t["exercise"] for r in _patient_sessions(seeded) for t, _, _ in _sets(r)}
    clams = run("patient.clam.amplitude", "gaitsym-patient", side=Variable(("left",), multi=True, include_all=True))
    assert [s["tags"]["side"] for s in clams] == ["left"]
    (wide,) = run("patient.stance_si", "gaitsym-patient", band=Variable("7.5"))
    assert {v[-2] for v in wide["values"]} == {7.5}


# ------------------------------------------------------------------------------------------ one session


def test_session_results_sets_gaps_and_events(seeded: Seeded, answers: dict[str, list[dict[str, Any]]]) -> None:
    results = seeded.raw_session
    assert results is not None
    (summary,) = list(rows(answers["session.summary"]))
    assert summary["session"] == results.session and summary["warning_flags"] == "data_gap"
    sides = {r["side"]: r for r in rows(answers["session.sides"])}
    assert {s: r["n_strides"] for s, r in sides.items()} == {
        s: _summary(results, s)["n_strides"] for s in ("left", "right")
    }
    strides = {s["tags"]["side"]: len(s["values"]) for s in answers["session.strides"]}
    assert strides == {s: _summary(results, s)["n_strides"] for s in ("left", "right")}
    contacts = list(rows(answers["session.annotation.contacts"]))
    assert len(contacts) == sum(1 for p in results.points if p.measurement == STRIDE)
    table = list(rows(answers["session.sets"]))
    assert len(table) == len(_sets(results))
    regions = list(rows(answers["session.annotation.sets"]))
    assert len(regions) == len(_sets(results)) and all(r["end_unix_ms"] > r["time"] for r in regions)
    (gap,) = list(rows(answers["session.gaps"]))
    assert (gap["placement"], gap["seq_first_missing"], gap["seq_last_missing"]) == ("left_thigh", 12_000, 12_049)
    assert results.session in {v[1] for s in answers["var.session"] for v in s["values"]}


def _bucket_means(seeded: Seeded, placement: str, lo: int, hi: int, step_ms: int) -> dict[int, np.ndarray]:
    """The seeded session's samples ``lo..hi`` (indices) averaged per panel bucket of ``step_ms``: bucket start (ms
    since 1970) -> means (acc x y z, gyr x y z)."""
    from testing.dashboard_seed import analysed

    assert seeded.raw_session is not None
    data = analysed("home").recording.sensors[placement]
    values = np.hstack([data.acc_mps2, data.gyr_dps])[lo:hi]
    t_ms = seeded.raw_session.start_us // 1000 + np.arange(lo, hi) * 10  # 100 Hz
    bucket = t_ms // step_ms * step_ms
    return {int(b): values[bucket == b].mean(axis=0) for b in np.unique(bucket)}


@pytest.mark.parametrize("placement", ["pelvis", "left_thigh", "right_thigh"])
def test_session_raw_traces(seeded: Seeded, answers: dict[str, list[dict[str, Any]]], placement: str) -> None:
    """A session stored across a clinic's switch of raw layout: its samples stored one point per sample plot from
    ``raw``, those stored packed from the display series, each bucket the mean of its samples in that layout (the
    display's sums are rounded to 4 decimals, so a bucket's mean is within 5e-5), nothing plotted twice."""
    from testing.dashboard_seed import analysed

    (points,) = answers[f"session.raw.{placement}"]
    (packed,) = answers[f"session.raw_display.{placement}"]
    columns = ["time", "acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]
    assert points["columns"] == columns and packed["columns"] == columns
    n = len(analysed("home").recording.sensors[placement].acc_mps2)
    step_ms = 500  # 13.7 min over 2000 points, rounded as Grafana rounds $__interval
    for series, lo, hi, tolerance in (
        (points, 0, seeded.raw_switch, 1e-9),
        (packed, seeded.raw_switch, n, 5e-5 + 1e-9),
    ):
        shown = {v[0]: v[1:] for v in series["values"] if v[1] is not None}
        expected = _bucket_means(seeded, placement, lo, hi, step_ms)
        assert shown.keys() == expected.keys() and len(shown) > 700
        for t, means in expected.items():
            assert shown[t] == pytest.approx(means.tolist(), abs=tolerance), t


def test_the_raw_panels_name_the_display_traces(dashboards: dict[str, dict[str, Any]]) -> None:
    panels = [p for p in dashboards["gaitsym-session"]["panels"] if "raw" in " ".join(_panel_keys(p))]
    assert len(panels) == 3
    for panel in panels:
        aliases = {t["alias"] for t in panel["targets"]}
        assert aliases == {"$col", queries.DISPLAY_ALIAS}  # a packed stretch is labelled as means
        assert panel["fieldConfig"]["defaults"]["custom"]["spanNulls"] == 250


def _panel_keys(panel: dict[str, Any]) -> list[str]:
    return [_key_of(t["query"]) for t in panel.get("targets") or [] if "query" in t]
