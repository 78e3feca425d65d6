"""gaitsym.result/1: the summary rule (shared by truth and analysis) and the schema validator."""

from __future__ import annotations

import copy
import itertools
import math

import pytest

from analytics.errors import ResultSchemaError
from analytics.results import (
    add_step_times,
    asymmetry,
    gait_asymmetry_pct,
    mark_included,
    ratio,
    result_schema,
    summarize_gait,
    symmetry_index_pct,
    validate_result,
)
from analytics.results.summary import Resamples


def _walk(stance_left: float, stance_right: float, n_per_side: int = 6, bouts: int = 1, drop=(5.0, 3.0)):
    """Alternating strides L, R, L, R... 0.55 s apart, per bout; known stance times and drops."""
    strides = []
    for bout in range(bouts):
        t0 = 100.0 * bout
        for k in range(2 * n_per_side):
            side = "left" if k % 2 == 0 else "right"
            start = t0 + 0.55 * k
            stance = stance_left if side == "left" else stance_right
            strides.append(
                {
                    "side": side,
                    "start_s": start,
                    "end_s": start + 1.1,
                    "stance_time_s": stance,
                    "swing_time_s": 1.1 - stance,
                    "pelvic_drop_deg": drop[0] if side == "left" else drop[1],
                    "bout": bout,
                }
            )
    for stride, inc in zip(strides, mark_included(strides), strict=True):
        stride["included"] = inc
    add_step_times(strides)
    return strides


def test_symmetry_measures_match_their_definitions():
    assert symmetry_index_pct(0.66, 0.60) == pytest.approx(100 * 0.06 / 0.63)
    assert ratio(0.66, 0.60) == pytest.approx(1.1)
    assert gait_asymmetry_pct(0.66, 0.60) == pytest.approx(100 * math.log(1.1))
    assert symmetry_index_pct(0.6, 0.66) == pytest.approx(-symmetry_index_pct(0.66, 0.6))
    for undefined in ((None, 1.0), (1.0, None), (0.0, 1.0), (-1.0, 2.0)):
        assert symmetry_index_pct(*undefined) is None
        assert ratio(*undefined) is None
        assert gait_asymmetry_pct(*undefined) is None


def test_below_20_percent_si_and_ga_agree_closely():
    for r in (0.62, 0.64, 0.66, 0.68):
        assert abs(abs(symmetry_index_pct(r, 0.6)) - gait_asymmetry_pct(r, 0.6)) < 0.3


def test_initiation_and_termination_strides_of_each_side_and_bout_are_excluded():
    strides = _walk(0.66, 0.60, n_per_side=4, bouts=2)
    for bout in (0, 1):
        for side in ("left", "right"):
            mine = sorted((s for s in strides if s["bout"] == bout and s["side"] == side), key=lambda s: s["start_s"])
            assert [s["included"] for s in mine] == [False, True, True, False]


def test_summary_is_the_mean_of_included_strides_with_si_sign_positive_when_left_is_longer():
    strides = _walk(0.66, 0.60)
    # an excluded stride with a wild value must not move the summary
    first_left = min((s for s in strides if s["side"] == "left"), key=lambda s: s["start_s"])
    first_left["stance_time_s"] = 5.0
    summary = summarize_gait(strides)
    assert summary["n_strides"] == {"left": 4, "right": 4}
    assert summary["stance_time_s"] == {"left": pytest.approx(0.66), "right": pytest.approx(0.60)}
    assert summary["stance_si_pct"] == pytest.approx(symmetry_index_pct(0.66, 0.60))
    assert summary["stance_si_pct"] > 0
    assert summary["pelvic_drop_deg"] == {"left": pytest.approx(5.0), "right": pytest.approx(3.0)}
    assert summary["asymmetry"]["pelvic_drop_deg"]["diff"] == pytest.approx(2.0)
    assert summary["step_time_s"] == {"left": pytest.approx(0.55), "right": pytest.approx(0.55)}


def test_mirrored_strides_give_mirrored_summary():
    summary = summarize_gait(_walk(0.66, 0.60, drop=(5.0, 3.0)))
    mirror = summarize_gait(_walk(0.60, 0.66, drop=(3.0, 5.0)))
    assert mirror["stance_si_pct"] == pytest.approx(-summary["stance_si_pct"])
    assert mirror["stance_ga_pct"] == pytest.approx(summary["stance_ga_pct"])
    assert mirror["pelvic_drop_deg"]["left"] == summary["pelvic_drop_deg"]["right"]


def test_bootstrap_interval_contains_the_estimate_is_deterministic_and_absent_for_one_stride():
    strides = _walk(0.66, 0.60)
    for i, s in enumerate(strides):  # some stride-to-stride variability
        s["stance_time_s"] += 0.01 * ((i * 7) % 5 - 2)
    block = summarize_gait(strides)["asymmetry"]["stance_time_s"]
    lo, hi = block["si_ci95_pct"]
    assert lo < block["si_pct"] < hi
    assert summarize_gait(strides)["asymmetry"]["stance_time_s"]["si_ci95_pct"] == [lo, hi]
    assert summarize_gait(strides, bootstrap=False)["asymmetry"]["stance_time_s"]["si_ci95_pct"] is None
    few = _walk(0.66, 0.60, n_per_side=3)
    assert summarize_gait(few)["asymmetry"]["stance_time_s"]["si_ci95_pct"] is None


def test_a_side_without_included_strides_gives_null_not_a_number():
    strides = [s for s in _walk(0.66, 0.60) if s["side"] == "left"]
    summary = summarize_gait(strides)
    assert summary["stance_time_s"]["right"] is None
    assert summary["stance_si_pct"] is None and summary["stance_ga_pct"] is None


def _document():
    strides = _walk(0.66, 0.60)
    return {
        "schema": "gaitsym.result/1",
        "source": "analysis",
        "generator": {"name": "test", "version": "0"},
        "recording": {"duration_s": 10.0, "sampling_rate_hz": 100.0, "placements": ["pelvis"]},
        "gait": {
            "initial_contacts": [{"t_s": s["start_s"], "side": s["side"]} for s in strides],
            "final_contacts": [],
            "bouts": [{"start_s": 0.0, "end_s": 8.0}],
            "strides": strides,
            "summary": {
                **summarize_gait(strides),
                "stance_asymmetry_evidence": {
                    "status": "reported",
                    "withheld_reason": None,
                    "event_source": "thigh+pelvis",
                    "strides_used": {"left": 4, "right": 4},
                    "contacts_dropped": 1,
                    "contacts_from_pelvis": 1,
                },
            },
        },
        "exercises": [
            {
                "exercise": "clam",
                "side": "left",
                "set": 1,
                "start_s": 1.0,
                "end_s": 2.0,
                "reps": 3,
                "holds_s": [],
                "metrics": {"thigh_rotation_amplitude_deg": 30.0},
                "flags": [],
            }
        ],
        "quality": {"flags": [{"code": "thigh_missing", "severity": "info", "message": "no thigh sensors"}]},
    }


def test_schema_accepts_a_full_document():
    validate_result(_document())


def test_schema_documents_a_contact_the_pelvis_stood_in_with_and_how_many():
    doc = _document()
    doc["gait"]["initial_contacts"][1]["source"] = "pelvis"
    doc["gait"]["initial_contacts"][2]["source"] = "thigh"
    validate_result(doc)
    schema = result_schema()
    assert schema["$defs"]["contact"]["properties"]["source"]["enum"] == ["thigh", "pelvis"]
    assert "contacts_from_pelvis" in schema["$defs"]["asymmetry_evidence"]["properties"]


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda d: d["gait"]["strides"][0].__setitem__("side", "up"), "gait/strides/0/side"),
        (lambda d: d["gait"]["summary"].pop("stance_si_pct"), "gait/summary"),
        (lambda d: d["exercises"][0].__setitem__("exercise", "yoga"), "exercises/0/exercise"),
        (lambda d: d["exercises"][0].__setitem__("side", "both"), "exercises/0/side"),
        (lambda d: d.__setitem__("schema", "gaitsym.result/2"), "schema"),
        (lambda d: d["quality"]["flags"][0].__setitem__("severity", "fatal"), "quality/flags/0/severity"),
        (lambda d: d["gait"]["initial_contacts"][0].__setitem__("source", "knee"), "gait/initial_contacts/0/source"),
        (
            lambda d: d["gait"]["summary"]["stance_asymmetry_evidence"].__setitem__("contacts_from_pelvis", -1),
            "gait/summary/stance_asymmetry_evidence/contacts_from_pelvis",
        ),
    ],
)
def test_schema_rejects_and_names_the_path(edit, where):
    doc = copy.deepcopy(_document())
    edit(doc)
    with pytest.raises(ResultSchemaError, match=where):
        validate_result(doc)


def test_schema_exercise_ids_are_the_vocabulary():
    from gaitsym_common.uplink.vocabulary import EXERCISE_IDS

    enum = result_schema()["$defs"]["exercise_set"]["properties"]["exercise"]["enum"]
    assert tuple(enum) == EXERCISE_IDS


def test_bootstrap_interval_agrees_with_a_ten_times_larger_independent_bootstrap():
    """The batched int16 resampling is the plain percentile bootstrap: its 95% interval of SI matches one from
    20000 resamples drawn independently, within the Monte Carlo error of 2000 resamples (~6% of the width)."""
    import numpy as np

    rng = np.random.default_rng(11)
    left, right = rng.normal(0.66, 0.02, 300), rng.normal(0.62, 0.03, 280)
    lo, hi = asymmetry(left, right, bootstrap=True)["si_ci95_pct"]
    big = np.random.default_rng(99)
    lm = left[big.integers(0, left.size, (20000, left.size))].mean(1)
    rm = right[big.integers(0, right.size, (20000, right.size))].mean(1)
    ref_lo, ref_hi = np.percentile(200.0 * (lm - rm) / (lm + rm), [2.5, 97.5])
    width = ref_hi - ref_lo
    assert abs(lo - ref_lo) < 0.06 * width and abs(hi - ref_hi) < 0.06 * width


def test_shared_resamples_give_the_intervals_of_separate_calls() -> None:
    import numpy as np

    rng = np.random.default_rng(5)
    shared: Resamples = {}
    for _ in range(3):
        left, right = rng.normal(0.66, 0.02, 40), rng.normal(0.62, 0.03, 38)
        alone = asymmetry(left, right, bootstrap=True)["si_ci95_pct"]
        assert asymmetry(left, right, bootstrap=True, resamples=shared)["si_ci95_pct"] == alone
    assert list(shared) == [(40, 38)]


def _strides_from(contacts: list[tuple[float, str]], skip_starts: tuple[float, ...] = ()) -> list[dict]:
    """Same-foot strides between consecutive contacts of one bout (none starting at ``skip_starts``)."""
    strides = []
    for side in ("left", "right"):
        times = sorted(t for t, s in contacts if s == side)
        for a, b in itertools.pairwise(times):
            if a not in skip_starts:
                strides.append(
                    {
                        "side": side,
                        "start_s": a,
                        "end_s": b,
                        "stance_time_s": 0.6 * (b - a),
                        "bout": 0,
                        "included": True,
                    }
                )
    return sorted(strides, key=lambda s: s["start_s"])


STEP = 0.55
WALK = [(round(STEP * k, 6), "left" if k % 2 == 0 else "right") for k in range(12)]
"""Alternating contacts one step apart, left first."""


def _step_of(strides: list[dict], start_s: float) -> float | None:
    return next(s["step_time_s"] for s in strides if s["start_s"] == start_s)


def test_a_step_across_a_missed_contact_is_not_a_step():
    # the right contact at 5 steps is missing: the left stride starting at 6 steps is three steps from the last
    # right contact (a step time of 1.65 s in a walk of 0.55 s steps, a -47 % step SI on a simulated walk)
    contacts = [c for c in WALK if c[0] != WALK[5][0]]
    strides = _strides_from(contacts)
    add_step_times(strides, [{"t_s": t, "side": s} for t, s in contacts])
    assert _step_of(strides, WALK[6][0]) is None
    assert _step_of(strides, WALK[7][0]) == pytest.approx(STEP)
    assert all(s["step_time_s"] == pytest.approx(STEP) for s in strides if s["start_s"] not in (0.0, WALK[6][0]))


def test_a_step_is_measured_from_the_previous_contact_even_where_no_stride_starts_there():
    strides = _strides_from(WALK, skip_starts=(WALK[5][0],))  # e.g. a stride with no toe off inside was not built
    add_step_times(strides, [{"t_s": t, "side": s} for t, s in WALK])
    assert _step_of(strides, WALK[6][0]) == pytest.approx(STEP)


def test_no_step_is_measured_from_or_to_a_contact_the_pelvis_stood_in_with():
    contacts = [{"t_s": t, "side": s} for t, s in WALK]
    contacts[5]["source"] = "pelvis"
    strides = _strides_from(WALK)
    add_step_times(strides, contacts)
    assert _step_of(strides, WALK[5][0]) is None  # its own start is the pelvis's
    assert _step_of(strides, WALK[6][0]) is None  # measured from the pelvis's contact
    assert _step_of(strides, WALK[7][0]) == pytest.approx(STEP)


def test_without_contacts_the_strides_own_contacts_give_the_same_steps():
    # the simulator's truth passes no contacts: every one of its contacts starts or ends a stride
    with_contacts, without = _strides_from(WALK), _strides_from(WALK)
    add_step_times(with_contacts, [{"t_s": t, "side": s} for t, s in WALK])
    add_step_times(without)
    assert [s["step_time_s"] for s in with_contacts] == [s["step_time_s"] for s in without]
    assert without[0]["step_time_s"] is None and all(s["step_time_s"] == pytest.approx(STEP) for s in without[1:])
