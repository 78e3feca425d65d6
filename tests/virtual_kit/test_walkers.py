"""Walkers beyond the default adult (simulator.walkers): each part does what its published source and the shared
real trials say, the truth stays exact, and a bad walker name is refused naming the setting.

Thigh flexion velocity of an aligned thigh sensor: the thigh's flexion is a negative rotation about its y (left)
axis (gait_model), so flexion velocity = -gyr_y (deg/s).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from analytics.algorithms.filters import butter_sos, zero_phase
from analytics.algorithms.thigh_events import detect_thigh_events
from analytics.recording import read_recording
from analytics.validation.gait_scores import load_reference
from sensor_gateway.errors import SimulationError
from simulator.config import SessionConfig
from simulator.session import simulate_session
from simulator.walker_steps import toe_off_lag_fraction
from simulator.walkers import WALKERS, walker_profile
from tests.datasets import shared_validation

FS = 100.0
SLOW = {"cadence_steps_per_min": 84.0, "walking_speed_mps": 0.8, "stance_pct": 64.0}


def _walk(walker: str, seed: int = 2, minutes: float = 1.0, **overrides):
    cfg = SessionConfig.for_walker(walker, seed=seed, script="walk", minutes=minutes, mounting="aligned", noise=0.0)
    return simulate_session(cfg, **overrides)


def _flexion(session, side: str) -> np.ndarray:
    return -session.recording.sensors[f"{side}_thigh"].gyr_dps[:, 1]


def _sweeps(w: np.ndarray) -> list[tuple[float, float]]:
    """(peak time s, degrees swept) of each positive flexion lobe peaking above 40 deg/s."""
    ws = zero_phase(butter_sos(4, 6.0, "lowpass", FS), w)
    peaks, _ = signal.find_peaks(ws, height=40.0, distance=round(0.5 * FS))
    out = []
    for p in peaks:
        a, b = p, p
        while a > 0 and ws[a - 1] >= 0:
            a -= 1
        while b < ws.size - 1 and ws[b + 1] >= 0:
            b += 1
        out.append((p / FS, float(ws[a : b + 1].sum() / FS)))
    return out


@pytest.mark.parametrize("walker", sorted(WALKERS))
def test_every_walker_keeps_an_exact_truth_at_its_published_pace(walker):
    session = _walk(walker, stance_asymmetry_pct=6.0)
    truth = session.truth["gait"]
    assert truth["summary"]["stance_si_pct"] == pytest.approx(6.0, abs=1e-3)
    cadences = []
    for bout in truth["bouts"]:
        ics = [c["t_s"] for c in truth["initial_contacts"] if bout["start_s"] <= c["t_s"] <= bout["end_s"]]
        cadences.append(60.0 * (len(ics) - 1) / (ics[-1] - ics[0]))
    # shuffling starts and stepwise turns slow a bout down a little, never by more than a tenth
    assert 0.88 < np.median(cadences) / walker_profile(walker).cadence_steps_per_min < 1.05


def test_an_unknown_walker_is_refused_naming_the_setting():
    with pytest.raises(SimulationError, match=r"walker \(--walker\)"):
        simulate_session(SessionConfig(walker="sprinter", script="walk", minutes=1.0))


def _ring_envelope(recording, ics, side: str) -> np.ndarray:
    """Mean 8-30 Hz gyroscope envelope (deg/s) of one thigh at 0, 10, ..., 300 ms after that leg's contacts."""
    band = zero_phase(butter_sos(4, (8.0, 30.0), "bandpass", FS), recording.sensors[f"{side}_thigh"].gyr_dps, axis=0)
    env = np.linalg.norm(band, axis=1)
    lags = np.arange(0, 31)
    rows = [env[round(t * FS) + lags] for t in ics if round(t * FS) + lags[-1] < env.size]
    return np.mean(rows, axis=0)


def test_lateral_thigh_straps_ring_after_contact_as_the_real_ones_do():
    folder = shared_validation("neura-sample") / "S02-Trial-Walk-1"
    real = read_recording(folder)
    real_ics = load_reference(folder / "reference_optical.json").initial_contacts
    soft = _walk("adult_lateral_thighs", **SLOW)
    rigid = _walk("adult", **SLOW)
    envelopes = {}
    for name, rec, ics in (
        ("real", real, real_ics),
        ("soft", soft.recording, [(c["t_s"], c["side"]) for c in soft.truth["gait"]["initial_contacts"]]),
        ("rigid", rigid.recording, [(c["t_s"], c["side"]) for c in rigid.truth["gait"]["initial_contacts"]]),
    ):
        per_side = [_ring_envelope(rec, [t for t, s in ics if s == side], side) for side in ("left", "right")]
        envelopes[name] = np.mean(per_side, axis=0)
    for name in ("real", "soft"):  # the ring grows over the loading response and peaks 50-150 ms after contact
        assert 5 <= int(np.argmax(envelopes[name])) <= 15, name
    assert 0.4 < envelopes["soft"].max() / envelopes["real"].max() < 2.5
    assert envelopes["soft"].max() > 10 * envelopes["rigid"].max()


def test_a_stepwise_turn_has_a_short_pivot_step_and_longer_stances():
    session = _walk("adult_stepwise_turns", seed=4, minutes=1.5)
    truth = session.truth["gait"]
    turning, straight = [], []
    yaw = zero_phase(butter_sos(4, 2.0, "lowpass", FS), session.recording.sensors["pelvis"].gyr_dps[:, 2])
    for bout in truth["bouts"]:
        ics = sorted(c["t_s"] for c in truth["initial_contacts"] if bout["start_s"] <= c["t_s"] <= bout["end_s"])
        if len(ics) < 16:
            continue
        i0, i1 = round(bout["start_s"] * FS), round(bout["end_s"] * FS)
        peak = i0 + int(np.argmax(np.abs(yaw[i0:i1])))
        # a 180-degree turn of 1.8-2.8 s peaks at 120-190 deg/s (the real trial's: 201 deg/s)
        assert 100.0 < abs(yaw[peak]) < 250.0
        for s in truth["strides"]:
            if bout["start_s"] <= s["start_s"] <= bout["end_s"] and s["included"]:
                share = s["stance_time_s"] / (s["end_s"] - s["start_s"])
                (turning if abs(s["start_s"] - peak / FS) < 1.2 else straight).append(share)
        for side in ("left", "right"):
            sweeps = [d for t, d in _sweeps(_flexion(session, side)) if bout["start_s"] < t < bout["end_s"]]
            near_turn = [d for t, d in _sweeps(_flexion(session, side)) if abs(t - peak / FS) < 1.5]
            assert min(near_turn) < 0.6 * np.median(sweeps) or side != _pivot_side(session, peak / FS)
    assert turning and np.mean(turning) > np.mean(straight) + 0.015


def _pivot_side(session, t_turn: float) -> str:
    """The leg whose swing near the turn is the shortest (the pivot step's)."""
    best = {
        side: min(d for t, d in _sweeps(_flexion(session, side)) if abs(t - t_turn) < 1.5) for side in ("left", "right")
    }
    return min(best, key=best.get)


def _starting_swing_deg(walker: str) -> list[float]:
    """Per bout, the thigh flexion (deg, both legs) from 1 s before the first contact to the third contact."""
    session = _walk(walker, seed=5, minutes=1.5)
    truth = session.truth["gait"]
    flexion = {side: np.clip(_flexion(session, side), 0.0, None) for side in ("left", "right")}
    out = []
    for bout in truth["bouts"]:
        ics = sorted(c["t_s"] for c in truth["initial_contacts"] if bout["start_s"] - 1e-6 <= c["t_s"] <= bout["end_s"])
        i0, i1 = round((ics[0] - 1.0) * FS), round(ics[2] * FS)
        out.append(sum(float(w[i0:i1].sum()) / FS for w in flexion.values()))
    return out


def test_a_shuffling_start_begins_with_short_swings():
    # the default model's start already ramps its first swing up (13 and 31 deg before full 38-deg swings; the
    # real walker's first swing: 32 deg); a shuffling start adds short steps: 13-21 % less swing to the third
    # contact here
    adult, shuffling = _starting_swing_deg("adult"), _starting_swing_deg("adult_shuffling_starts")
    assert len(adult) == len(shuffling) >= 2
    assert all(s < 0.9 * a for s, a in zip(shuffling, adult, strict=True))
    assert sum(shuffling) < 0.85 * sum(adult)


def test_an_older_walkers_toe_off_lags_the_thigh_curve_and_the_thigh_detector_reads_it_early():
    # the part of the simulator that real slow walkers show and no thigh feature can see: toe off later than the
    # thigh curve's landmark by 0-5 % of the cycle (Winter's normative curve to Perry & Burnfield's timing)
    session = _walk("older_80s", seed=1, minutes=1.5)
    lag_s = toe_off_lag_fraction(session.config) * 120.0 / session.config.cadence_steps_per_min
    assert lag_s > 0.03
    truth_fc = np.array([c["t_s"] for c in session.truth["gait"]["final_contacts"] if c["side"] == "left"])
    found = detect_thigh_events(_flexion(session, "left"), FS).toe_off_s
    errors = [f - truth_fc[np.argmin(np.abs(truth_fc - f))] for f in found if np.min(np.abs(truth_fc - f)) < 0.3]
    assert np.median(errors) == pytest.approx(-lag_s, abs=0.015)
