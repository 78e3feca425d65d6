"""What gaitsym.store/1 gained for the dashboards and the report, on every store: the session summary's evidence
fields (what the stance asymmetry rests on, every SI's 95 % interval, warnings, the session's end) and the exercise
plan (`gaitsym plan`). Additive: results without the evidence block get none of the fields (unknown, not normal)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from conftest import v1_store

from analytics.stores import Store
from analytics.stores.model import Provenance, results_from_document
from analytics.stores.plans import InvalidPlan, cleared_plan, in_force, make_plan
from analytics.stores.results_model import evidence_fields
from gaitsym.cli import main
from testing.dashboard_seed import analysed
from testing.influxdb_server import InfluxDB

T0_US = 1_790_000_000 * 1_000_000
DAY_US = 86_400 * 1_000_000


def _summary_fields(store: Store, doc: dict[str, Any], session: str) -> dict[str, Any]:
    prov = Provenance(analysis_id=session, result_version=1, algorithm="test")
    store.replace_results(results_from_document(doc, subject="P1", session=session, t0_us=T0_US, provenance=prov))
    (row,) = [
        r
        for r in store.read_results("P1", session=session)
        if r.measurement == "session_summary" and r.tags["side"] == "none"
    ]
    return dict(row.fields)


def test_reported_stance_si_stores_what_it_rests_on(store: Store) -> None:
    doc = analysed("asymmetric").doc
    summary = doc["gait"]["summary"]
    evidence = summary["stance_asymmetry_evidence"]
    fields = _summary_fields(store, doc, "S1")
    assert fields["stance_si_status"] == "reported" and "stance_si_withheld_reason" not in fields
    assert fields["stance_event_source"] == evidence["event_source"] == "thigh+pelvis"
    assert [fields["stance_si_ci95_low_pct"], fields["stance_si_ci95_high_pct"]] == pytest.approx(
        evidence["si_ci95_pct"]
    )
    for metric in ("stance_time_s", "step_time_s", "pelvic_drop_deg"):
        ci = summary["asymmetry"][metric]["si_ci95_pct"]
        assert [fields[f"{metric}_si_ci95_low_pct"], fields[f"{metric}_si_ci95_high_pct"]] == pytest.approx(ci)
    cross = evidence["cross_check"]
    assert fields["cross_check_thigh_si_pct"] == pytest.approx(cross["thigh_events_si_pct"])
    assert fields["cross_check_pelvis_si_pct"] == pytest.approx(cross["pelvis_events_si_pct"])
    assert fields["n_warnings"] == 0 and "warning_flags" not in fields
    assert fields["n_sets"] == sum(1 for ex in doc["exercises"] if ex["exercise"] not in ("stand", "walk"))
    assert fields["end_unix_ms"] == (T0_US + round(doc["recording"]["duration_s"] * 1e6)) // 1000
    sets = [r for r in store.read_results("P1", session="S1") if r.measurement == "exercise_set"]
    assert all(r.fields["end_unix_ms"] == (T0_US + round(r.fields["end_s"] * 1e6)) // 1000 for r in sets)


def test_withheld_stance_si_stores_status_and_reason_never_an_interval(store: Store) -> None:
    doc = analysed("withheld").doc
    fields = _summary_fields(store, doc, "S2")
    assert fields["stance_si_status"] == "withheld"
    assert fields["stance_si_withheld_reason"] == "asymmetry_too_few_strides"
    assert not {k for k in fields if k.startswith(("stance_si_ci95", "stance_time_s_si_ci95", "stance_si_pct"))}
    assert fields["n_warnings"] >= 1 and "asymmetry_too_few_strides" in fields["warning_flags"].split(",")


def test_results_without_evidence_get_no_evidence_fields() -> None:
    doc = copy.deepcopy(analysed("asymmetric").doc)
    summary = doc["gait"]["summary"]
    del summary["stance_asymmetry_evidence"]
    for block in summary["asymmetry"].values():
        block.pop("si_ci95_pct")
    assert evidence_fields(summary) == {}


def test_plans_are_kept_as_a_history_and_the_latest_is_in_force(store: Store) -> None:
    store.write_plan(make_plan("P7", "clam", "left", 3, 20, T0_US))
    store.write_plan(make_plan("P7", "lunge", "right", 2, None, T0_US + DAY_US))
    store.write_plan(make_plan("P7", "clam", "left", 5, 10, T0_US + 2 * DAY_US))
    store.write_plan(cleared_plan("P7", "lunge", "right", T0_US + 3 * DAY_US))
    store.write_plan(make_plan("P8", "pelvic_tilt", "none", 7, 20, T0_US))
    history = store.read_plans("P7")
    assert [(p.exercise, p.side, p.sets_per_week, p.reps_per_set, p.cleared) for p in history] == [
        ("clam", "left", 3, 20, False),
        ("lunge", "right", 2, None, False),
        ("clam", "left", 5, 10, False),
        ("lunge", "right", 0, None, True),
    ]
    assert [(p.exercise, p.sets_per_week) for p in in_force(history)] == [("clam", 5)]
    assert [p.exercise for p in store.read_plans("P8")] == ["pelvic_tilt"]
    assert store.read_plans("nobody") == []


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("P 1", "clam", "left", 3, None), "subject"),
        (("P1", "clams", "left", 3, None), "exercise"),
        (("P1", "clam", "none", 3, None), "side"),
        (("P1", "pelvic_tilt", "left", 3, None), "side"),
        (("P1", "walk", "none", 3, None), "exercise"),
        (("P1", "clam", "left", 0, None), "sets_per_week"),
        (("P1", "clam", "left", True, None), "sets_per_week"),
        (("P1", "clam", "left", 3, 1001), "reps_per_set"),
    ],
)
def test_a_bad_plan_is_refused_naming_the_field(args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(InvalidPlan, match=f"^{field}: "):
        make_plan(*args, T0_US)


def test_plan_command_sets_shows_and_clears(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--store", str(tmp_path / "store.sqlite"), "--subject", "P1"]
    assert main(["plan", *where]) == 0
    assert "no plan in force for P1: adherence shows counts only" in capsys.readouterr().out
    assert (
        main(["plan", *where, "--exercise", "clam", "--side", "left", "--sets-per-week", "3", "--reps-per-set", "20"])
        == 0
    )
    out = capsys.readouterr().out
    assert "plan set: P1 clam left: 3 sets a week, 20 repetitions a set" in out
    assert main(["plan", *where, "--exercise", "clam", "--side", "left", "--clear"]) == 0
    assert "no plan in force" in capsys.readouterr().out
    assert main(["plan", *where, "--history"]) == 0
    assert "cleared" in capsys.readouterr().out
    assert main(["plan", *where, "--exercise", "clam", "--side", "none", "--sets-per-week", "3"]) == 2
    assert "side must be 'left' or 'right'" in capsys.readouterr().err
    assert main(["plan", *where, "--sets-per-week", "3"]) == 2
    assert "--exercise and --side are needed" in capsys.readouterr().err


def test_results_policy_keeps_52_week_shards(influxdb: InfluxDB, tmp_path: Path) -> None:
    """Results are sparse: InfluxQL pays per shard a query touches, and 7-day shards (InfluxDB's default for a
    policy kept forever) made the clinic overview 6-10x slower (bench/RESULTS.md, "Dashboard queries")."""
    store = v1_store(influxdb, tmp_path)
    try:
        policies = {r["name"]: r for r in store.rows('SHOW RETENTION POLICIES ON "gaitsym"')}
    finally:
        store.close()
    assert policies["results"]["shardGroupDuration"] == "8736h0m0s"  # 52 weeks
    assert policies["raw"]["shardGroupDuration"] == "24h0m0s"
