"""Simulated walking around gait events has the signs and timing measured on real lower-back walking
(docs/gait-physiology-real-vs-simulator.md, bench/gait_events_sim.py --evidence): around each initial contact (IC) the
pelvis yaw rate turns away from the contacting side, the medio-lateral acceleration points away from the stance
leg after IC (no push towards it), and the vertical acceleration has a local minimum at the contralateral final
contact (FC) after the loading peak. Pelvis frame (aligned sensor): x forward, y left, z up; m/s^2, deg/s.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy import signal

from simulator import simulate_session

FS = 100.0


@cache
def _session():
    return simulate_session(script="walk", seed=5, minutes=2.0, mounting="aligned", noise=0.0)


def _filtered() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = _session().recording.sensors["pelvis"]
    low = signal.butter(4, 8.0, "lowpass", fs=FS, output="sos")
    high = signal.butter(2, 0.5, "highpass", fs=FS, output="sos")
    acc = signal.sosfiltfilt(low, d.acc_mps2 - d.acc_mps2.mean(0), axis=0)
    yaw = signal.sosfiltfilt(high, signal.sosfiltfilt(low, d.gyr_dps[:, 2]))
    return acc[:, 1], acc[:, 2], yaw


def _steady(kind: str) -> list[dict]:
    """Events at least 2 s inside their bout (no initiation, termination)."""
    gait = _session().truth["gait"]
    bouts = [(b["start_s"] + 2.0, b["end_s"] - 2.0) for b in gait["bouts"]]
    return [e for e in gait[kind] if any(lo <= e["t_s"] <= hi for lo, hi in bouts)]


def test_yaw_rate_at_initial_contact_turns_away_from_the_contacting_side() -> None:
    _, _, yaw = _filtered()
    ics = _steady("initial_contacts")
    signed = [(1.0 if e["side"] == "left" else -1.0) * yaw[round(e["t_s"] * FS)] for e in ics]
    assert len(signed) > 50
    assert np.mean(np.array(signed) < 0) >= 0.9  # real: 0.83-0.88 of ICs, mean about -15 deg/s
    assert np.mean(signed) < -8.0


def test_medio_lateral_acceleration_points_away_from_the_new_stance_leg() -> None:
    ml, _, _ = _filtered()
    ics = _steady("initial_contacts")
    half = round(0.28 * FS)
    diffs, early = [], []
    for e in ics:
        i = round(e["t_s"] * FS)
        sign = 1.0 if e["side"] == "left" else -1.0
        diffs.append(sign * (ml[i : i + half].mean() - ml[i - half : i].mean()))
        early.append(sign * ml[i + 6])
    assert np.mean(early) < 0.0  # no jolt towards the stance leg just after IC (real mean: -0.5 m/s^2 at +60 ms)
    assert np.mean(np.array(diffs) < 0) >= 0.9  # real mean difference: -1.2 to -1.4 m/s^2
    assert np.mean(diffs) < -0.5


def test_final_contact_is_at_the_first_dip_after_the_loading_peak() -> None:
    _, a_v, _ = _filtered()
    gait = _session().truth["gait"]
    offsets = []
    for fc in _steady("final_contacts"):
        ic = max((e["t_s"] for e in gait["initial_contacts"] if e["t_s"] < fc["t_s"]), default=None)
        assert ic is not None
        i0 = round(ic * FS)
        peak = i0 + int(np.argmax(a_v[i0 : i0 + 15]))
        seg = a_v[peak : peak + 35]
        dips = np.flatnonzero((seg[1:-1] < seg[:-2]) & (seg[1:-1] <= seg[2:])) + 1
        assert dips.size
        offsets.append((peak + dips[0]) / FS - fc["t_s"])
    assert np.median(np.abs(offsets)) <= 0.03
