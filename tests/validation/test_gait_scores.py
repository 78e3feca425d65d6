"""Scoring a result's gait block against reference events: recall, errors, extra contacts, wrong sides, stance,
and the stance SI as a clinician would read it (ok, flagged or withheld)."""

from __future__ import annotations

import json

import pytest

from analytics.errors import RecordingError
from analytics.validation.gait_scores import load_reference, pool, reference_stance_si, score_gait
from tests.datasets import MOBGAP_LAB


def _doc(ics, fcs, strides, si, flags=()):
    return {
        "gait": {
            "initial_contacts": [{"t_s": t, "side": s} for t, s in ics],
            "final_contacts": [{"t_s": t, "side": s} for t, s in fcs],
            "strides": strides,
            "summary": {"stance_si_pct": si},
        },
        "quality": {"flags": [{"code": c, "severity": sev, "message": ""} for c, sev in flags]},
    }


def _as_detected(ref, shift_s=0.0):
    """A document whose events are the reference's, shifted."""
    strides = [
        {"side": side, "start_s": ic + shift_s, "stance_time_s": stance, "flags": []}
        for side, ic, stance in ref.stances
    ]
    return _doc(
        [(t + shift_s, s) for t, s in ref.initial_contacts],
        [(t + shift_s, s) for t, s in ref.final_contacts],
        strides,
        ref.stance_si_pct,
    )


@pytest.fixture(scope="module")
def ref():
    return load_reference(MOBGAP_LAB / "HA-001_Test11_Trial1" / "reference_stereophoto.json")


def test_the_reference_scored_against_itself_is_perfect(ref):
    s = score_gait(_as_detected(ref), ref).summary()
    assert s["ic_recall"] == 1.0 and s["ic_mae_ms"] == 0.0 and s["extra_ic"] == 0 and s["wrong_side"] == 0
    assert s["fc_mae_ms"] == 0.0 and s["stance_mae_ms"] == 0.0 and s["stance_n"] == s["stance_ref_n"]
    assert s["si_abs_err_pp"] == 0.0 and s["si_ok"] == 1


def test_errors_are_detected_minus_reference(ref):
    s = score_gait(_as_detected(ref, shift_s=0.03), ref).summary()
    assert s["ic_bias_ms"] == pytest.approx(30.0) and s["fc_bias_ms"] == pytest.approx(30.0)
    assert s["stance_mae_ms"] == pytest.approx(0.0, abs=1e-9)


def test_duplicates_wrong_sides_and_implausible_strides_are_counted(ref):
    doc = _as_detected(ref)
    t0, side0 = ref.initial_contacts[3]
    doc["gait"]["initial_contacts"].append({"t_s": t0 + 0.1, "side": side0})  # a duplicate inside a bout
    doc["gait"]["initial_contacts"][5]["side"] = "left" if ref.initial_contacts[5][1] == "right" else "right"
    doc["gait"]["strides"][0]["flags"] = ["stance_implausible"]  # the analysis does not stand behind it
    s = score_gait(doc, ref).summary()
    assert s["extra_ic"] == 1 and s["wrong_side"] == 1 and s["ic_recall"] == 1.0
    assert s["stance_n"] == s["stance_ref_n"] - 1


def test_si_status_says_whether_the_number_was_shown_plainly(ref):
    ok = score_gait(_as_detected(ref), ref)
    flagged = _as_detected(ref)
    flagged["quality"]["flags"] = [{"code": "thigh_sides_unconfirmed", "severity": "warning", "message": ""}]
    withheld = _as_detected(ref)
    withheld["gait"]["summary"]["stance_si_pct"] = None
    withheld["quality"]["flags"] = [{"code": "asymmetry_too_few_strides", "severity": "withheld", "message": ""}]
    kit_only = _as_detected(ref)
    kit_only["quality"]["flags"] = [{"code": "thigh_missing", "severity": "warning", "message": ""}]
    scores = [ok, score_gait(flagged, ref), score_gait(withheld, ref), score_gait(kit_only, ref)]
    assert [s.si_status[0] for s in scores] == ["ok", "flagged", "withheld", "ok"]
    assert scores[2].si_flags[0] == ("asymmetry_too_few_strides",)
    pooled = pool(scores).summary()
    assert (pooled["si_ok"], pooled["si_flagged"], pooled["si_withheld"]) == (2, 1, 1)
    assert pooled["ic_recall"] == 1.0


def test_reference_si_follows_the_summary_rule():
    # per side and bout the first and last stance are excluded: left 0.8 (x2), right 0.6 (x2) remain
    stances = [("left", t, 5.0 if t in (0.0, 4.0) else 0.8) for t in (0.0, 1.0, 2.0, 4.0)]
    stances += [("right", t + 0.5, 9.0 if t in (0.0, 4.0) else 0.6) for t in (0.0, 1.0, 2.0, 4.0)]
    assert reference_stance_si(stances, [(0.0, 5.0)]) == pytest.approx(100 * 0.2 / 0.7)
    assert reference_stance_si(stances[:2], [(0.0, 5.0)]) is None


def test_neura_style_reference_uses_qc_ok_stances(tmp_path):
    path = tmp_path / "reference_optical.json"
    doc = {
        "initial_contacts": [{"t_s": 1.0, "side": "left"}],
        "final_contacts": [{"t_s": 1.8, "side": "left"}],
        "walking_bouts": [{"start_s": 0.5, "end_s": 9.0}],
        "stances": [
            {"side": "left", "ic_s": 1.0, "fc_s": 1.8, "stance_time_s": 0.8, "qc_ok": True},
            {"side": "left", "ic_s": 2.0, "fc_s": 4.0, "stance_time_s": 2.0, "qc_ok": False},
        ],
    }
    path.write_text(json.dumps(doc))
    ref = load_reference(path)
    assert ref.system == "optical" and ref.stances == (("left", 1.0, 0.8),)


@pytest.mark.parametrize(
    "broken",
    [
        "not json",
        json.dumps([1, 2]),
        json.dumps({"initial_contacts": [{"t_s": 1.0, "side": "up"}], "final_contacts": [], "walking_bouts": []}),
        json.dumps({"initial_contacts": [{"t_s": "1"}], "final_contacts": [], "walking_bouts": []}),
        json.dumps({"initial_contacts": [], "final_contacts": []}),
    ],
)
def test_a_malformed_reference_is_refused_naming_the_file(tmp_path, broken):
    path = tmp_path / "reference_x.json"
    path.write_text(broken)
    with pytest.raises(RecordingError, match=r"reference_x\.json"):
        load_reference(path)
