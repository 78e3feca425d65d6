"""analyze_recording on simulated walks: agreement with truth, invariance to mounting, mirror symmetry,
missing/swapped/misplaced sensors, bad input, schema validity."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_testlib import (
    flag_codes,
    match_errors_s,
    mirrored,
    relabelled,
    rotated,
    walk,
    with_sensors,
    without,
)

from analytics.errors import AnalyticsError, InsufficientData, InvalidSignal
from analytics.pipeline import analyze_recording
from analytics.recording.io import SensorData
from analytics.results import validate_result


def _analyze(recording):
    doc = analyze_recording(recording, exercise_analyzer=None)
    validate_result(doc)
    return doc


@pytest.fixture(scope="module")
def base():
    session = walk()
    return session, _analyze(session.recording)


@pytest.mark.parametrize("seed", [3, 11])
def test_agrees_with_simulated_truth(seed):
    session = walk(seed=seed, si=-6.0 if seed == 11 else 8.0)
    doc = _analyze(session.recording)
    truth = session.truth["gait"]
    assert {b["source"] for b in doc["gait"]["bouts"]} == {"thigh"}
    for kind in ("initial_contacts", "final_contacts"):
        errors = match_errors_s(doc["gait"][kind], truth[kind])
        assert len(errors) >= 0.95 * len(truth[kind])
        assert all(side_ok for _, side_ok in errors)
        assert np.median(np.abs([e for e, _ in errors])) <= 0.010
    s, t = doc["gait"]["summary"], truth["summary"]
    # bench/analysis_accuracy.py: largest error 0.54 pp over 20 seeds (a toe-off rule that moved with the pace
    # of stance against swing read these SIs ~15 % large: 1.3 and 0.9 pp off here)
    assert abs(s["stance_si_pct"] - t["stance_si_pct"]) <= 1.0
    lo, hi = s["asymmetry"]["stance_time_s"]["si_ci95_pct"]
    assert lo < s["stance_si_pct"] < hi
    for side in ("left", "right"):
        assert abs(s["pelvic_drop_deg"][side] - t["pelvic_drop_deg"][side]) <= 0.5
    assert doc["source"] == "analysis" and doc["generator"]["name"] == "gaitsym.analysis"
    assert flag_codes(doc)["dynamic_calibration_relative"] == "info"
    assert doc["quality"]["withheld"] == []


def test_every_bout_has_its_own_asymmetry(base):
    _, doc = base
    bouts = doc["gait"]["bouts"]
    assert len(bouts) >= 2
    for i, bout in enumerate(bouts):
        n = sum(1 for s in doc["gait"]["strides"] if s["bout"] == i)
        assert bout["n_strides"] == n > 0
        block = bout["asymmetry"]["stance_time_s"]
        assert block["si_pct"] is not None and block["n_left"] > 0 and block["n_right"] > 0
    first_last = [s for s in doc["gait"]["strides"] if not s["included"]]
    assert len(first_last) == 4 * len(bouts)  # first and last stride of each side per bout


def test_rotated_mountings_give_the_same_result(base):
    session, doc = base
    for seed in (1, 2):
        other = _analyze(rotated(session.recording, seed))
        errors = match_errors_s(other["gait"]["initial_contacts"], doc["gait"]["initial_contacts"])
        assert len(errors) == len(doc["gait"]["initial_contacts"]) == len(other["gait"]["initial_contacts"])
        assert all(abs(e) <= 0.005 and side_ok for e, side_ok in errors)
        a, b = other["gait"]["summary"], doc["gait"]["summary"]
        assert abs(a["stance_si_pct"] - b["stance_si_pct"]) <= 1.0
        for side in ("left", "right"):
            assert abs(a["pelvic_drop_deg"][side] - b["pelvic_drop_deg"][side]) <= 0.3


def test_mirrored_walker_gives_mirrored_results(base):
    session, doc = base
    mirror = _analyze(mirrored(session.recording))
    a, b = mirror["gait"]["summary"], doc["gait"]["summary"]
    assert a["stance_si_pct"] == pytest.approx(-b["stance_si_pct"], abs=0.2)
    assert a["pelvic_drop_deg"]["left"] == pytest.approx(b["pelvic_drop_deg"]["right"], abs=0.1)
    assert a["pelvic_drop_deg"]["right"] == pytest.approx(b["pelvic_drop_deg"]["left"], abs=0.1)
    errors = match_errors_s(mirror["gait"]["initial_contacts"], doc["gait"]["initial_contacts"])
    assert all(abs(e) <= 0.005 and not side_ok for e, side_ok in errors)


def test_symmetric_walker_has_near_zero_asymmetry():
    session = walk(seed=5, si=0.0, drop_left=3.0, drop_right=3.0)
    s = _analyze(session.recording)["gait"]["summary"]
    truth = session.truth["gait"]["summary"]["asymmetry"]["pelvic_drop_deg"]["diff"]  # stride-to-stride noise
    assert abs(s["stance_si_pct"]) <= 1.0
    assert abs(s["asymmetry"]["pelvic_drop_deg"]["diff"] - truth) <= 1.0  # bench: side-mean error max 0.62 deg


def test_missing_thigh_falls_back_to_pelvis_and_says_so(base):
    session, _ = base
    doc = _analyze(without(session.recording, "left_thigh"))
    assert {b["source"] for b in doc["gait"]["bouts"]} == {"pelvis"}
    codes = flag_codes(doc)
    assert codes["thigh_missing"] == "warning" and "pelvis_only_events" in codes
    errors = match_errors_s(doc["gait"]["initial_contacts"], session.truth["gait"]["initial_contacts"])
    assert len(errors) >= 0.9 * len(session.truth["gait"]["initial_contacts"])
    assert np.mean([side_ok for _, side_ok in errors]) >= 0.8  # sides from the remaining thigh


def test_swapped_thighs_are_detected_and_side_numbers_withheld(base):
    session, worn = base
    # the kit as worn: sides confirmed (the simulator's pelvis yaw timing is the measured one, lead 0)
    assert not {"thigh_sides_swapped", "thigh_sides_unconfirmed"} & set(flag_codes(worn))
    assert worn["quality"]["alignment"]["left_thigh"]["side_check_score"] > 0.5
    doc = _analyze(relabelled(session.recording, {"left_thigh": "right_thigh", "right_thigh": "left_thigh"}))
    assert flag_codes(doc)["thigh_sides_swapped"] == "withheld"
    assert doc["quality"]["alignment"]["left_thigh"]["side_check_score"] < -0.5
    s = doc["gait"]["summary"]
    assert s["stance_si_pct"] is None and s["pelvic_drop_deg"] == {"left": None, "right": None}
    assert "gait.summary.stance_si_pct" in doc["quality"]["withheld"]


def test_sensor_on_the_wrong_segment_is_detected(base):
    session, _ = base
    doc = _analyze(relabelled(session.recording, {"pelvis": "left_thigh", "left_thigh": "pelvis"}))
    severities = {f["severity"] for f in doc["quality"]["flags"] if f["code"] == "wrong_segment"}
    assert severities == {"withheld", "warning"}  # the pelvis name on a thigh; the thigh name on the pelvis
    assert doc["gait"]["summary"]["stance_si_pct"] is None


def test_saturation_is_flagged_and_excluded(base):
    session, _doc = base
    rec = session.recording
    thigh = rec.sensors["left_thigh"]
    limit = 0.8 * np.abs(thigh.gyr_dps).max()
    clipped = SensorData("left_thigh", thigh.acc_mps2, np.clip(thigh.gyr_dps, -limit, limit))
    out = _analyze(with_sensors(rec, {**rec.sensors, "left_thigh": clipped}))
    flags = [f for f in out["quality"]["flags"] if f["code"] == "saturation"]
    assert flags and all(f["placement"] == "left_thigh" for f in flags)
    marked = [s for s in out["gait"]["strides"] if "saturation" in s["flags"]]
    assert marked and not any(s["included"] for s in marked)


def test_dropout_of_a_thigh_uses_the_pelvis_for_that_bout(base):
    session, doc = base
    rec = session.recording
    thigh = rec.sensors["right_thigh"]
    start = round((doc["gait"]["bouts"][0]["start_s"] + 3.0) * rec.sampling_rate_hz)
    acc, gyr = thigh.acc_mps2.copy(), thigh.gyr_dps.copy()
    acc[start : start + 200] = acc[start]
    gyr[start : start + 200] = gyr[start]
    out = _analyze(with_sensors(rec, {**rec.sensors, "right_thigh": SensorData("right_thigh", acc, gyr)}))
    assert "sensor_dropout" in flag_codes(out)
    sources = [b["source"] for b in out["gait"]["bouts"]]
    assert sources[0] == "pelvis" and "thigh" in sources[1:]


def test_no_standing_withholds_pelvic_drop(base):
    session, doc = base
    rec = session.recording
    cut = round((doc["gait"]["bouts"][0]["start_s"] - 0.5) * rec.sampling_rate_hz)
    end = round((doc["gait"]["bouts"][0]["end_s"] + 0.3) * rec.sampling_rate_hz)
    sensors = {k: SensorData(k, v.acc_mps2[cut:end], v.gyr_dps[cut:end]) for k, v in rec.sensors.items()}
    short = with_sensors(rec, sensors)
    short = type(rec)(rec.sampling_rate_hz, rec.time_s[cut:end] - rec.time_s[cut], sensors)
    out = _analyze(short)
    codes = flag_codes(out)
    assert codes["no_standing_reference"] == "withheld" and codes["no_standing"] == "warning"
    assert out["gait"]["summary"]["pelvic_drop_deg"] == {"left": None, "right": None}
    assert out["gait"]["summary"]["stance_si_pct"] is not None
    assert out["quality"]["alignment"]["pelvis"]["confidence"] < doc["quality"]["alignment"]["pelvis"]["confidence"]


def test_bad_input_raises_a_clear_error(base):
    session, _ = base
    rec = session.recording
    with pytest.raises(InsufficientData, match="no pelvis sensor"):
        analyze_recording(without(rec, "pelvis"))
    with pytest.raises(InvalidSignal, match="Recording"):
        analyze_recording({"pelvis": None})  # type: ignore[arg-type]
    pelvis = rec.sensors["pelvis"]
    acc = pelvis.acc_mps2.copy()
    acc[100, 1] = np.nan
    with pytest.raises(AnalyticsError, match="NaN"):
        analyze_recording(with_sensors(rec, {**rec.sensors, "pelvis": SensorData("pelvis", acc, pelvis.gyr_dps)}))


def test_injected_exercise_analyzer_is_used(base):
    session, _ = base
    entry = {
        "exercise": "stand",
        "side": "none",
        "set": 1,
        "start_s": 0.0,
        "end_s": 9.0,
        "reps": None,
        "holds_s": [9.0],
        "metrics": {},
        "flags": [],
    }
    doc = analyze_recording(session.recording, exercise_analyzer=lambda rec: [entry])
    validate_result(doc)
    assert doc["exercises"] == [entry]


@pytest.mark.parametrize(("drop_left", "drop_right"), [(0.3, 6.0), (6.5, 0.0)])
def test_one_sided_pelvic_drop_is_measured_on_the_true_medio_lateral_axis(drop_left, drop_right):
    """A one-sided drop rolls the pelvis further to one side: gravity then leaks into the sensor's
    medio-lateral axis with even harmonics, which used to turn the forward axis by 12-16 deg and bias the drop
    by up to 0.6 deg. Obliquity is now taken about axes found from tilt-levelled accelerations."""
    session = walk(seed=5, si=7.0, drop_left=drop_left, drop_right=drop_right, minutes=2.0)
    doc = _analyze(session.recording)
    mounting = session.sensors["pelvis"].mounting
    true_left, true_up = mounting.inv().apply([0.0, 1.0, 0.0]), mounting.inv().apply([0.0, 0.0, 1.0])
    left = np.array(doc["quality"]["alignment"]["pelvis"]["left"])
    horizontal = left - (left @ true_up) * true_up
    assert np.degrees(np.arccos(horizontal @ true_left / np.linalg.norm(horizontal))) < 4.0
    s, t = doc["gait"]["summary"], session.truth["gait"]["summary"]
    for side in ("left", "right"):
        assert abs(s["pelvic_drop_deg"][side] - t["pelvic_drop_deg"][side]) <= 0.3
    assert doc["quality"]["alignment"]["pelvis"]["gyro_bias_dps"] is not None
