"""Simulated pelvis signals against real walking (Mobilise-D lab data, tests/data/mobgap-lab).

Per walking bout (real: reference_indip.json walking_bouts and strides; simulated: truth bouts and strides):
cadence (steps/min), RMS of the dynamic acceleration (m/s^2) and angular velocity (deg/s) on the body axes
up / right / forward, and the harmonic ratio (HR, median over strides, 20 harmonics) of vertical and forward
acceleration. The simulated pelvis sensor is aligned (sensor axes = pelvis axes), the real one was worn x up,
y right, z forward, so both are compared on body axes.

Real ranges over the 8 bouts (3 straight lab walks, 5 daily-living bouts with turns), measured here:
cadence 65-102 steps/min; acc RMS up 0.97-3.81, right 0.91-1.92, forward 0.86-2.92 m/s^2;
gyro RMS yaw 18.4-58.6, pitch 13.1-54.2, roll 7.3-24.3 deg/s; HR vertical 0.85-3.89, forward 0.80-2.01.
Tolerance: a simulated bout must fall within [0.85 x min, 1.15 x max] of the real range (one healthy
participant, 8 bouts: the real range is narrow). Simulated (default settings, seed 3): cadence ~105,
acc RMS ~1.9 / 1.0 / 1.1, gyro RMS ~30-40 / 16 / 12, HR ~3.3-4.1 / 1.8-2.0.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from simulator import simulate_session
from tests.datasets import MOBGAP_LAB

DATA = MOBGAP_LAB
TOLERANCE = 0.15
METRICS = ("cadence", "acc_up", "acc_right", "acc_fwd", "gyr_yaw", "gyr_pitch", "gyr_roll", "hr_v", "hr_ap")


def harmonic_ratio(signal: np.ndarray, rate: float, strides: list[tuple[float, float]]) -> float:
    ratios = []
    for start, end in strides:
        x = signal[round(start * rate) : round(end * rate)]
        spectrum = np.abs(np.fft.rfft(x - x.mean()))[1:21]
        ratios.append(spectrum[1::2].sum() / spectrum[0::2].sum())
    return float(np.median(ratios))


def bout_metrics(acc, gyr, rate, ics, strides, start, end) -> dict[str, float]:
    """acc, gyr: (n, 3) on body axes (up, right, forward)."""
    a = acc[int(start * rate) : int(end * rate)]
    g = gyr[int(start * rate) : int(end * rate)]
    acc_rms = np.sqrt(((a - a.mean(0)) ** 2).mean(0))
    gyr_rms = np.sqrt(((g - g.mean(0)) ** 2).mean(0))
    return {
        "cadence": 60.0 * (len(ics) - 1) / (ics[-1] - ics[0]),
        "acc_up": acc_rms[0],
        "acc_right": acc_rms[1],
        "acc_fwd": acc_rms[2],
        "gyr_yaw": gyr_rms[0],
        "gyr_pitch": gyr_rms[1],
        "gyr_roll": gyr_rms[2],
        "hr_v": harmonic_ratio(acc[:, 0], rate, strides),
        "hr_ap": harmonic_ratio(acc[:, 2], rate, strides),
    }


def real_bouts() -> list[dict[str, float]]:
    out = []
    for trial in sorted(DATA.iterdir()):
        frame = pd.read_csv(trial / "pelvis.csv")
        ref = json.loads((trial / "reference_indip.json").read_text())
        acc = frame[["acc_x", "acc_y", "acc_z"]].to_numpy()  # x up, y right, z forward
        gyr = frame[["gyr_x", "gyr_y", "gyr_z"]].to_numpy()
        for bout in ref["walking_bouts"]:
            lo, hi = bout["start_s"] - 0.01, bout["end_s"] + 0.01
            ics = [c["t_s"] for c in ref["initial_contacts"] if lo <= c["t_s"] <= hi]
            strides = [(s["start_s"], s["end_s"]) for s in ref["strides"] if s["start_s"] >= lo and s["end_s"] <= hi]
            out.append(bout_metrics(acc, gyr, 100.0, ics, strides, bout["start_s"], bout["end_s"]))
    return out


def test_simulated_walking_falls_in_the_range_of_real_walking():
    assert DATA.is_dir(), f"vendored validation data missing at {DATA}"
    real = real_bouts()
    assert len(real) == 8
    ranges = {m: (min(b[m] for b in real), max(b[m] for b in real)) for m in METRICS}
    session = simulate_session(script="walk", seed=3, minutes=2.0, mounting="aligned")
    data = session.recording.sensors["pelvis"]
    # pelvis frame x forward, y left, z up -> up, right, forward
    acc = np.column_stack([data.acc_mps2[:, 2], -data.acc_mps2[:, 1], data.acc_mps2[:, 0]])
    gyr = np.column_stack([data.gyr_dps[:, 2], -data.gyr_dps[:, 1], data.gyr_dps[:, 0]])
    gait = session.truth["gait"]
    assert len(gait["bouts"]) >= 3
    for index, bout in enumerate(gait["bouts"]):
        ics = [c["t_s"] for c in gait["initial_contacts"] if bout["start_s"] <= c["t_s"] <= bout["end_s"]]
        strides = [(s["start_s"], s["end_s"]) for s in gait["strides"] if s["bout"] == index]
        sim = bout_metrics(acc, gyr, session.recording.sampling_rate_hz, ics, strides, bout["start_s"], bout["end_s"])
        for metric, (lo, hi) in ranges.items():
            assert (1 - TOLERANCE) * lo <= sim[metric] <= (1 + TOLERANCE) * hi, (index, metric, sim[metric], lo, hi)
