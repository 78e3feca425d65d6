"""Thigh signals around reference gait events: the real three-sensor trial against the simulator.

Run:  .venv/bin/python bench/thigh_events_evidence.py [--shared DIR]

For every thigh with reference events (``<shared>/validation/*/*/`` folders with thigh sensors and a reference,
and simulated slow and normal walks, seed 3, 2 min, truth events), the mean over the reference initial and final
contacts of both legs, at lags -300..+300 ms, of:
- the thigh's flexion velocity (deg/s) on the detector's 15 Hz low-pass (thigh axes found as the pipeline does);
- the same on a 6 Hz low-pass (what survives below the soft-tissue band);
- the 8-30 Hz envelope (vector norm of the band-passed signals) of the thigh gyroscope (deg/s) and
  accelerometer (m/s^2): heel-strike impact and soft-tissue ringing.
Also, per positive flexion lobe with a peak above the detector's swing threshold, the thigh rotation it sweeps
(deg): swings against ringing; and, for each reference toe off, the error (ms, mean and median) of the candidate
toe-off features: the detector's own (the thigh's posture: a share of the swing's rotation), the rising velocity's
crossing of the normative curve's share of the swing peak (the previous rule), the first release's extrapolation
from the swing peak, the velocity's - to + zero crossing bracketed with the swing peak at the normative curve's
fraction, and the largest angular acceleration (docs/thigh_events.md, "Toe off").
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

from analytics.algorithms.filters import butter_sos, zero_phase
from analytics.algorithms.pelvic_obliquity import pelvis_signals
from analytics.algorithms.thigh_alignment import estimate_thigh_axes
from analytics.algorithms.thigh_events import (
    LOWPASS_HZ,
    MIN_SWING_PEAK_DPS,
    PHASE_PEAK_FLEXION,
    PHASE_SWING_PEAK,
    PHASE_TOE_OFF,
    detect_thigh_events,
)
from analytics.recording.io import Recording, read_recording
from analytics.validation.gait_scores import GaitReference, load_reference, reference_from_truth
from simulator.config import SessionConfig
from simulator.gait_model import THIGH_FLEXION_DEG
from simulator.session import simulate_session
from simulator.walkers import walker_profile

REPO = Path(__file__).resolve().parents[1]
LAGS_MS = np.array([-300, -200, -150, -100, -50, 0, 50, 100, 150, 200, 300])


def thigh_signals(rec: Recording) -> dict[str, dict[str, np.ndarray]]:
    fs = rec.sampling_rate_hz
    pelvis = rec.sensors["pelvis"]
    ps = pelvis_signals(pelvis.acc_mps2, pelvis.gyr_dps, fs, unusable=np.zeros(rec.n_samples, dtype=bool))
    band = butter_sos(4, (8.0, 30.0), "bandpass", fs)
    out = {}
    for side in ("left", "right"):
        data = rec.sensors[f"{side}_thigh"]
        axes = estimate_thigh_axes(data.acc_mps2, data.gyr_dps, fs, ps.walking, ps.standing)
        w = axes.flexion_velocity_dps(data.gyr_dps)
        out[side] = {
            "flexion 15 Hz": zero_phase(butter_sos(4, LOWPASS_HZ, "lowpass", fs), w),
            "flexion 6 Hz": zero_phase(butter_sos(4, 6.0, "lowpass", fs), w),
            "gyro 8-30 Hz": np.linalg.norm(zero_phase(band, data.gyr_dps, axis=0), axis=1),
            "acc 8-30 Hz": np.linalg.norm(zero_phase(band, data.acc_mps2, axis=0), axis=1),
            "_walking": ps.walking,
        }
    return out


def report(name: str, rec: Recording, ref: GaitReference) -> None:
    fs = rec.sampling_rate_hz
    sig = thigh_signals(rec)
    lags = np.round(LAGS_MS * fs / 1000).astype(int)
    for key in ("flexion 15 Hz", "flexion 6 Hz", "gyro 8-30 Hz", "acc 8-30 Hz"):
        for kind, events in (("IC", ref.initial_contacts), ("FC", ref.final_contacts)):
            rows = []
            for t, side in events:
                i = round(t * fs)
                if i + lags[0] >= 0 and i + lags[-1] < rec.n_samples:
                    rows.append(sig[side][key][i + lags])
            mean = np.mean(rows, axis=0)
            cells = " | ".join(f"{v:+.0f}" if key.startswith("flexion") else f"{v:.1f}" for v in mean)
            print(f"| {name} | {kind} | {key} | {len(rows)} | {cells} |")
    sweeps = []
    for side in ("left", "right"):
        w, walking = sig[side]["flexion 15 Hz"], sig[side]["_walking"]
        peaks, _ = signal.find_peaks(w, height=MIN_SWING_PEAK_DPS)
        for p in peaks[walking[peaks]]:
            a, b = p, p
            while a > 0 and w[a - 1] >= 0:
                a -= 1
            while b < w.size - 1 and w[b + 1] >= 0:
                b += 1
            sweeps.append(float(w[a : b + 1].sum() / fs))
    low = np.round(np.sort(sweeps)[:14], 1).tolist()
    print(
        f"\n{name}: rotation per positive flexion lobe (deg): n {len(sweeps)}, median "
        f"{np.median(sweeps):.1f}, lowest {low}\n"
    )


def toe_off_candidates(
    name: str, rec: Recording, ref: GaitReference, sides: tuple[str, ...] = ("left", "right")
) -> None:
    """Error (ms) of each candidate toe-off feature on the reference toe offs (see the module docstring)."""
    fs = rec.sampling_rate_hz
    pelvis = rec.sensors["pelvis"]
    ps = pelvis_signals(pelvis.acc_mps2, pelvis.gyr_dps, fs, unusable=np.zeros(rec.n_samples, dtype=bool))
    phases = np.arange(4000) / 4000
    angle, velocity = THIGH_FLEXION_DEG(phases), THIGH_FLEXION_DEG(phases, 1)
    p_ext, p_peak = float(phases[np.argmin(angle)]), float(phases[np.argmax(velocity)])
    bracket = (PHASE_TOE_OFF - p_ext) / (p_peak - p_ext)
    level = float(THIGH_FLEXION_DEG(PHASE_TOE_OFF, 1) / velocity.max())
    errors: dict[str, list[float]] = {
        "detector": [],
        "velocity level": [],
        "extrapolated": [],
        "zero crossing": [],
        "max acceleration": [],
    }
    for side in sides:
        data = rec.sensors[f"{side}_thigh"]
        axes = estimate_thigh_axes(data.acc_mps2, data.gyr_dps, fs, ps.walking, ps.standing)
        w = axes.flexion_velocity_dps(data.gyr_dps)
        ev = detect_thigh_events(w, fs, ps.walking)
        ws = zero_phase(butter_sos(4, LOWPASS_HZ, "lowpass", fs), w)
        accel = np.gradient(zero_phase(butter_sos(4, 6.0, "lowpass", fs), w)) * fs
        fcs = np.array([t for t, s in ref.final_contacts if s == side])
        for to, tp in zip(ev.toe_off_s, ev.swing_peak_s, strict=True):
            if fcs.size == 0 or np.min(np.abs(fcs - to)) > 0.25:
                continue
            fc = fcs[np.argmin(np.abs(fcs - to))]
            ip = round(tp * fs)
            j = ip
            while j > 0 and ws[j] > 0:
                j -= 1
            t_zero = (j + (-ws[j]) / (ws[j + 1] - ws[j])) / fs
            z = ip
            while z < ws.size - 1 and ws[z] > 0:
                z += 1
            t_flex = (z - 1 + ws[z - 1] / (ws[z - 1] - ws[z])) / fs
            rate = (PHASE_PEAK_FLEXION - PHASE_SWING_PEAK) / (t_flex - tp)
            errors["detector"].append(to - fc)
            below = np.flatnonzero(ws[j:ip] < level * ws[ip])
            if below.size:
                i = j + int(below[-1])
                crossing = (i + (level * ws[ip] - ws[i]) / (ws[i + 1] - ws[i])) / fs
                errors["velocity level"].append(crossing - fc)
            errors["extrapolated"].append(tp - (PHASE_SWING_PEAK - PHASE_TOE_OFF) / rate - fc)
            errors["zero crossing"].append(t_zero + bracket * (tp - t_zero) - fc)
            errors["max acceleration"].append((j + int(np.argmax(accel[j : ip + 1]))) / fs - fc)
    cells = " | ".join(f"{1e3 * np.mean(v):+.0f} ({1e3 * np.median(v):+.0f})" if v else "n/a" for v in errors.values())
    print(f"| {name} | {len(errors['detector'])} | {cells} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=None)
    args = ap.parse_args()
    configured = os.environ.get("GAITSYM_SHARED_DIR")
    shared = args.shared or (Path(configured) if configured else REPO.parent / "shared")
    real: list[tuple[str, Recording, GaitReference]] = []
    print("| source | event | signal | n | " + " | ".join(f"{v:+d} ms" for v in LAGS_MS) + " |")
    print("|---|---|---|---|" + "---|" * LAGS_MS.size)
    for rec_file in sorted((shared / "validation").rglob("recording.json")):
        folder = rec_file.parent
        refs = sorted(folder.glob("reference_*.json"))
        rec = read_recording(folder)
        if refs and {"left_thigh", "right_thigh"} <= set(rec.sensors):
            report(folder.name, rec, load_reference(refs[0]))
            real.append((folder.name, rec, load_reference(refs[0])))
    slow = {"cadence_steps_per_min": 84.0, "walking_speed_mps": 0.8, "stance_pct": 64.0}
    walks: dict[str, dict[str, Any]] = {
        "sim slow": slow,
        "sim": {},
        "sim slow, lateral thighs": {**slow, "walker": "adult_lateral_thighs"},
        "sim older 80s at home": {**walker_profile("older_80s_at_home").pace(), "walker": "older_80s_at_home"},
    }
    sims = {}
    for name, settings in walks.items():
        sim = simulate_session(seed=3, script="walk", minutes=2.0, **settings)
        sims[name] = sim
        report(name, sim.recording, reference_from_truth(sim.truth))
    print("Toe-off candidates, error against the reference toe offs, ms: mean (median)")
    print()
    print(
        "| source | toe offs | detector (posture) | velocity level | extrapolated from the swing peak | "
        "zero crossing, bracketed | max accel. |"
    )
    print("|---|---|---|---|---|---|---|")
    for real_name, real_rec, real_ref in real:
        toe_off_candidates(real_name, real_rec, real_ref)
    for name, sim in sims.items():
        toe_off_candidates(name, sim.recording, reference_from_truth(sim.truth))
    # one leg's stance longer and its swing shorter than the other's: a toe-off rule that moves with the pace of
    # stance against swing errs in opposite directions on the two legs
    for si in (-10.0, 10.0):
        sim = simulate_session(seed=3, script="walk", minutes=2.0, stance_asymmetry_pct=si)
        for side in ("left", "right"):
            toe_off_candidates(f"sim SI {si:+.0f} %, {side}", sim.recording, reference_from_truth(sim.truth), (side,))
    for walker in ("older_70s", "older_80s", "frail", "older_80s_at_home"):
        for seed in (1, 2):
            cfg = SessionConfig.for_walker(walker, seed=seed, script="walk", minutes=2.0, stance_asymmetry_pct=5.0)
            sim = simulate_session(cfg)
            toe_off_candidates(f"sim {walker} seed {seed}", sim.recording, reference_from_truth(sim.truth))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
