"""Truth follows the knobs and the schema; settings are checked; seeds reproduce."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from analytics.recording.io import read_recording, write_recording
from analytics.results import validate_result
from sensor_gateway.errors import SimulationError
from simulator import SessionConfig, simulate_session
from simulator.kinematics import obliquity_deg


@pytest.fixture(scope="module")
def asymmetric():
    cfg = SessionConfig(
        seed=5, script="walk", minutes=3, stance_asymmetry_pct=8.0, pelvic_drop_left_deg=6.0, pelvic_drop_right_deg=3.0
    )
    mirrored = SessionConfig(
        seed=5, script="walk", minutes=3, stance_asymmetry_pct=-8.0, pelvic_drop_left_deg=3.0, pelvic_drop_right_deg=6.0
    )
    return simulate_session(cfg), simulate_session(mirrored)


def test_stance_asymmetry_knob_gives_exact_truth_si(asymmetric):
    summary = asymmetric[0].truth["gait"]["summary"]
    assert summary["stance_si_pct"] == pytest.approx(8.0, abs=0.05)
    assert summary["n_strides"]["left"] >= 20 and summary["n_strides"]["right"] >= 20


def test_pelvic_drop_knobs_appear_in_truth(asymmetric):
    drop = asymmetric[0].truth["gait"]["summary"]["pelvic_drop_deg"]
    assert drop["left"] == pytest.approx(6.0, abs=0.4)
    assert drop["right"] == pytest.approx(3.0, abs=0.4)


def test_mirrored_settings_give_mirrored_truth(asymmetric):
    a, b = (s.truth["gait"]["summary"] for s in asymmetric)
    assert b["stance_si_pct"] == pytest.approx(-a["stance_si_pct"], abs=1e-6)
    assert b["stance_time_s"]["left"] == pytest.approx(a["stance_time_s"]["right"], abs=1e-5)
    assert b["stance_time_s"]["right"] == pytest.approx(a["stance_time_s"]["left"], abs=1e-5)
    assert b["pelvic_drop_deg"]["left"] == pytest.approx(a["pelvic_drop_deg"]["right"], abs=0.3)
    assert b["pelvic_drop_deg"]["right"] == pytest.approx(a["pelvic_drop_deg"]["left"], abs=0.3)


def test_truth_strides_are_consistent_with_events_and_obliquity(asymmetric):
    truth = asymmetric[0].truth
    rate = truth["pelvis"]["rate_hz"]
    obliquity = np.asarray(truth["pelvis"]["obliquity_deg"])
    ics = {(c["t_s"], c["side"]) for c in truth["gait"]["initial_contacts"]}
    fcs = {(c["t_s"], c["side"]) for c in truth["gait"]["final_contacts"]}
    for s in truth["gait"]["strides"]:
        assert (s["start_s"], s["side"]) in ics and (s["end_s"], s["side"]) in ics
        fc = round(s["start_s"] + s["stance_time_s"], 6)
        assert any(abs(fc - t) < 2e-6 and side == s["side"] for t, side in fcs)
        assert s["stance_time_s"] + s["swing_time_s"] == pytest.approx(s["end_s"] - s["start_s"], abs=2e-6)
        i0, i1 = int(np.ceil(s["start_s"] * rate)), int(np.floor(fc * rate))
        sign = 1.0 if s["side"] == "left" else -1.0  # left stance: the right hemipelvis drops (obliquity > 0)
        assert s["pelvic_drop_deg"] == pytest.approx((sign * obliquity[i0 : i1 + 1]).max(), abs=0.006)
    # the truth trajectory is the true pelvis obliquity relative to standing
    raw = obliquity_deg(asymmetric[0].motion.quat["pelvis"])
    np.testing.assert_allclose(obliquity, raw - truth["pelvis"]["standing_baseline_deg"], atol=0.006)


def test_home_session_recording_and_truth_are_valid(home_session, tmp_path):
    validate_result(home_session.truth)
    assert home_session.truth["source"] == "simulator"
    folder = write_recording(tmp_path / "rec", home_session.recording, truth=home_session.truth)
    back = read_recording(folder)
    assert back.n_samples == home_session.recording.n_samples
    assert set(back.sensors) == {"pelvis", "left_thigh", "right_thigh"}
    validate_result(json.loads((folder / "truth.json").read_text()))
    sets = {(m.exercise, m.side, m.set) for m in back.markers}
    assert sets == {(e["exercise"], e["side"], e["set"]) for e in home_session.truth["exercises"]}
    exercises = {e["exercise"] for e in home_session.truth["exercises"]}
    assert exercises == {
        "stand",
        "walk",
        "clam",
        "single_leg_bridge",
        "single_leg_stance",
        "lunge",
        "pelvic_tilt",
        "quadruped_leg_raise",
    }


EXPECTED_METRICS = {
    "single_leg_bridge": {"pelvic_drop_mean_deg", "pelvic_drop_peak_deg", "time_level_pct"},
    "single_leg_stance": {"pelvic_drop_mean_deg", "pelvic_drop_peak_deg", "time_level_pct"},
    "quadruped_leg_raise": {"pelvic_drop_mean_deg", "pelvic_drop_peak_deg", "time_level_pct"},
    "pelvic_tilt": {"obliquity_abs_mean_deg", "obliquity_abs_peak_deg", "time_level_pct"},
    "clam": {"thigh_rotation_amplitude_deg", "pelvic_rollback_deg"},
    "lunge": {"thigh_internal_rotation_deg", "pelvic_drop_deg"},
}


def test_exercise_truth_has_the_schema_metrics_and_plausible_values(home_session):
    for entry in home_session.truth["exercises"]:
        expected = EXPECTED_METRICS.get(entry["exercise"], set())
        assert set(entry["metrics"]) == expected, entry["exercise"]
        if entry["exercise"] in EXPECTED_METRICS:
            assert entry["reps"] >= 3
        if entry["exercise"] == "clam":
            assert 25 < entry["metrics"]["thigh_rotation_amplitude_deg"] < 45
            assert 2 < entry["metrics"]["pelvic_rollback_deg"] < 9
        if entry["exercise"] == "single_leg_bridge":
            assert len(entry["holds_s"]) == entry["reps"] and entry["holds_s"][0] == pytest.approx(10.0, abs=1.0)


def test_mounting_changes_signals_not_truth():
    random = simulate_session(script="walk", seed=3, mounting="random")
    aligned = simulate_session(script="walk", seed=3, mounting="aligned")
    assert not np.allclose(random.recording.sensors["pelvis"].acc_mps2, aligned.recording.sensors["pelvis"].acc_mps2)
    for doc in (random.truth, aligned.truth):
        doc["generator"]["settings"].pop("mounting")
    assert random.truth == aligned.truth
    # same physics: the norms agree up to noise
    norm_r = np.linalg.norm(random.recording.sensors["pelvis"].gyr_dps, axis=1)
    norm_a = np.linalg.norm(aligned.recording.sensors["pelvis"].gyr_dps, axis=1)
    assert np.abs(norm_r - norm_a).mean() < 2.0


def test_seeds_are_reproducible():
    a, b, c = (simulate_session(script="walk", seed=s, minutes=1.0) for s in (9, 9, 10))
    assert a.truth == b.truth
    for p in a.recording.sensors:
        np.testing.assert_array_equal(a.recording.sensors[p].acc_mps2, b.recording.sensors[p].acc_mps2)
        np.testing.assert_array_equal(a.recording.sensors[p].gyr_dps, b.recording.sensors[p].gyr_dps)
    assert a.truth["gait"] != c.truth["gait"]


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"stance_asymmetry_pct": 40.0}, "stance_asymmetry_pct (--stance-asymmetry)"),
        ({"pelvic_drop_left_deg": float("nan")}, "pelvic_drop_left_deg (--pelvic-drop-left)"),
        ({"rate_hz": 5.0}, "rate_hz (--rate)"),
        ({"mounting": "glued"}, "mounting (--mounting)"),
        ({"script": "marathon"}, "script (--script)"),
        ({"minutes": 3.0}, "minutes (--minutes)"),
        ({"noise": -1.0}, "noise (--noise)"),
        ({"packet_loss": 1.5}, "packet_loss (--packet-loss)"),
        ({"drift_ppm": (1.0, 2.0)}, "drift_ppm (--drift-ppm)"),
        ({"seed": -1}, "seed (--seed)"),
    ],
)
def test_bad_settings_raise_simulation_error_naming_the_setting(overrides, name):
    with pytest.raises(SimulationError, match=name.replace("(", r"\(").replace(")", r"\)")):
        simulate_session(**overrides)


def test_cli_writes_a_recording_and_rejects_bad_settings(tmp_path):
    out = tmp_path / "walk"
    cmd = [sys.executable, "-m", "gaitsym.cli", "simulate"]
    ok = subprocess.run(
        [*cmd, str(out), "--script", "walk", "--minutes", "1", "--stance-asymmetry", "5", "--drift-ppm", "10,-10,0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    truth = json.loads((out / "truth.json").read_text())
    assert truth["gait"]["summary"]["stance_si_pct"] == pytest.approx(5.0, abs=0.05)
    assert truth["generator"]["settings"]["drift_ppm"] == [10.0, -10.0, 0.0]
    bad = subprocess.run(
        [*cmd, str(tmp_path / "bad"), "--pelvic-drop-left", "40"], capture_output=True, text=True, check=False
    )
    assert bad.returncode != 0
    assert "pelvic_drop_left_deg (--pelvic-drop-left)" in bad.stderr and "Traceback" not in bad.stderr
    helptext = subprocess.run([*cmd, "--help"], capture_output=True, text=True, check=False).stdout
    for unit in ("deg", "Hz", "deg/s", "m/s^2", "ppm", "minutes"):
        assert unit in helptext


def test_cli_module_is_import_light():
    code = "import sys, simulator.cli; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_thirty_minute_session_is_fast():
    import time

    start = time.perf_counter()
    session = simulate_session(minutes=30.0)
    elapsed = time.perf_counter() - start
    assert session.recording.duration_s > 29 * 60
    assert elapsed < 10.0, elapsed
