"""The thigh left/right check and the wrong-segment check over many simulated walkers, and the left/right
check's cue on the real lower-back recordings.

Run:  .venv/bin/python bench/side_check.py [--seeds 40] [--minutes 1] [--first-seed 0] [--yaw-noise DPS]

Simulated part: per seed, ``simulate_session(seed, script="walk")`` (random mounting, noise, biases; stance SI
uniform in [-8, 8] % (drawn again when the simulator refuses it: a seed's stance shares can leave no double
support),
pelvic drops uniform in [0, 8] deg), then ``analyze_recording`` on
- ``worn``: the kit as simulated (correctly worn): a ``thigh_sides_swapped`` flag is a FALSE ALARM (it would
  withhold the patient's side numbers); ``thigh_sides_unconfirmed`` is counted as "cannot tell";
- ``swapped``: the two thigh sensors' names exchanged: ``thigh_sides_swapped`` is a DETECTION;
- ``one thigh, right side`` / ``one thigh, wrong side``: only the right thigh's sensor, named right_thigh
  (correct) or left_thigh (wrong side);
- ``pelvis <-> left thigh``: pelvis and left-thigh sensors' names exchanged: both ``wrong_segment`` flags
  (withheld on the pelvis name, warning on the thigh name) are a detection;
and records the check's score, agreement and vote count (``analytics.algorithms.side_check``).
The simulated pelvis yaw repeats exactly from stride to stride (every vote agrees), easier than real walking
(93-95 % of votes agree, see below); ``--yaw-noise`` adds to the pelvis gyro, about the sensor's vertical
(mean specific force), Gaussian noise band-passed to 0.3-3 Hz with the given RMS (deg/s), independent per seed,
to the worn and swapped cases: the figures at that noise show how the check degrades (towards "cannot tell",
never towards a false alarm, is the requirement).

Real part (tests/data/mobgap-lab, lower back only, no thigh sensors exist there): the per-IC votes
(``ic_yaw_votes``) at the reference ICs (optical and INDIP) standing in for thigh ICs, shifted by -150..+150 ms
(a thigh IC detector's timing error), with the true and with exchanged side labels; ``decide`` on each trial.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

from analytics.algorithms.side_check import SideCheck, check_thigh_sides, decide, ic_yaw_votes
from analytics.pipeline import analyze_recording
from analytics.recording.io import Recording, SensorData, read_recording
from sensor_gateway.errors import SimulationError
from simulator.session import simulate_session

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "mobgap-lab"  # vendored (Apache-2.0)
TRIALS = ("HA-001_Test11_Trial1", "HA-001_Test5_Trial1", "HA-001_Test5_Trial2")
REFERENCES = ("stereophoto", "indip")
SHIFTS_MS = (-150, -100, -50, 0, 50, 100, 150)


def _relabel(rec: Recording, mapping: dict[str, str], drop: tuple[str, ...] = ()) -> Recording:
    sensors = {}
    for placement, data in rec.sensors.items():
        if placement in drop:
            continue
        name = mapping.get(placement, placement)
        sensors[name] = SensorData(name, data.acc_mps2, data.gyr_dps)
    return Recording(rec.sampling_rate_hz, rec.time_s, sensors)


def _codes(doc: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in doc["quality"]["flags"]:
        out.setdefault(f["code"], set()).add(f["severity"])
    return out


def _side_outcome(doc: dict[str, Any]) -> str:
    codes = _codes(doc)
    if "thigh_sides_swapped" in codes:
        return "swapped"
    if "thigh_sides_unconfirmed" in codes:
        return "cannot tell"
    return "as named"


def _yaw_noise(rec: Recording, rms_dps: float, seed: int) -> Recording:
    """The recording with band-passed Gaussian noise (0.3-3 Hz, ``rms_dps`` RMS) added to the pelvis yaw rate."""
    if rms_dps <= 0:
        return rec
    pelvis = rec.sensors["pelvis"]
    fs = rec.sampling_rate_hz
    up = pelvis.acc_mps2.mean(axis=0)
    up /= np.linalg.norm(up)
    rng = np.random.default_rng(20_000 + seed)
    sos = signal.butter(2, (0.3, 3.0), "bandpass", fs=fs, output="sos")
    noise = signal.sosfiltfilt(sos, rng.standard_normal(pelvis.gyr_dps.shape[0]))
    noise *= rms_dps / np.sqrt(np.mean(noise**2))
    sensors = dict(rec.sensors)
    sensors["pelvis"] = SensorData("pelvis", pelvis.acc_mps2, pelvis.gyr_dps + noise[:, None] * up[None, :])
    return Recording(rec.sampling_rate_hz, rec.time_s, sensors)


def simulated(seeds: list[int], minutes: float, yaw_noise_dps: float) -> dict[str, Any]:
    cases = ("worn", "swapped", "one thigh, right side", "one thigh, wrong side")
    outcomes: dict[str, list[str]] = {c: [] for c in cases}
    scores: dict[str, list[float]] = {c: [] for c in cases}
    checks: list[SideCheck] = []
    segment_ok = 0
    for seed in seeds:
        rng = np.random.default_rng(10_000 + seed)
        while True:  # some seeds' stance shares leave no double support at some SI: draw again
            try:
                session = simulate_session(
                    seed=seed,
                    script="walk",
                    minutes=minutes,
                    stance_asymmetry_pct=float(rng.uniform(-8, 8)),
                    pelvic_drop_left_deg=float(rng.uniform(0, 8)),
                    pelvic_drop_right_deg=float(rng.uniform(0, 8)),
                )
                break
            except SimulationError:
                continue
        rec = _yaw_noise(session.recording, yaw_noise_dps, seed)
        variants = {
            "worn": rec,
            "swapped": _relabel(rec, {"left_thigh": "right_thigh", "right_thigh": "left_thigh"}),
            "one thigh, right side": _relabel(rec, {}, drop=("left_thigh",)),
            "one thigh, wrong side": _relabel(rec, {"right_thigh": "left_thigh"}, drop=("left_thigh",)),
        }
        for case, r in variants.items():
            doc = analyze_recording(r, exercise_analyzer=None)
            outcomes[case].append(_side_outcome(doc))
            align = doc["quality"]["alignment"]
            score = next((a["side_check_score"] for a in align.values() if "side_check_score" in a), None)
            scores[case].append(np.nan if score is None else float(score))
        # the algorithm directly on the worn kit (vote count, agreement), as the pipeline calls it
        fs = rec.sampling_rate_hz
        doc = analyze_recording(rec, exercise_analyzer=None)
        walking = np.zeros(rec.time_s.size, dtype=bool)
        for b in doc["gait"]["bouts"]:
            walking[max(0, round((b["start_s"] - 1.5) * fs)) : round((b["end_s"] + 1.5) * fs) + 1] = True
        up = np.median(rec.sensors["pelvis"].acc_mps2[walking], axis=0)
        up /= np.linalg.norm(up)
        from analytics.algorithms.thigh_alignment import estimate_thigh_axes

        flex = {}
        for side in ("left", "right"):
            d = rec.sensors[f"{side}_thigh"]
            flex[side] = estimate_thigh_axes(d.acc_mps2, d.gyr_dps, fs, walking).flexion_velocity_dps(d.gyr_dps)
        checks.append(check_thigh_sides(rec.sensors["pelvis"].gyr_dps @ up, flex, fs, walking))
        seg = _codes(
            analyze_recording(_relabel(rec, {"pelvis": "left_thigh", "left_thigh": "pelvis"}), exercise_analyzer=None)
        )
        segment_ok += seg.get("wrong_segment", set()) == {"withheld", "warning"}
        print(
            f"seed {seed:3d}: "
            + ", ".join(f"{c}={outcomes[c][-1]} ({scores[c][-1]:+.2f})" for c in cases)
            + f"; worn n={checks[-1].n_contacts} agree={checks[-1].agreement:.2f}"
            + f"; segment={'ok' if seg.get('wrong_segment', set()) == {'withheld', 'warning'} else 'MISSED'}",
            flush=True,
        )
    summary: dict[str, Any] = {
        case: {
            "as named": outcomes[case].count("as named"),
            "cannot tell": outcomes[case].count("cannot tell"),
            "swapped": outcomes[case].count("swapped"),
            "score_min": float(np.nanmin(scores[case])),
            "score_median": float(np.nanmedian(scores[case])),
            "score_max": float(np.nanmax(scores[case])),
        }
        for case in cases
    }
    summary["worn_algorithm"] = {
        "n_contacts_median": float(np.median([c.n_contacts for c in checks])),
        "agreement_min": float(min(c.agreement for c in checks)),
        "agreement_median": float(np.median([c.agreement for c in checks])),
    }
    summary["wrong_segment_detected"] = segment_ok
    summary["n_seeds"] = len(seeds)
    summary["yaw_noise_dps"] = yaw_noise_dps
    return summary


def real() -> list[dict[str, Any]]:
    rows = []
    for system in REFERENCES:
        for shift in SHIFTS_MS:
            votes_all = []
            decisions = []
            per_trial: list[int] = []
            for trial in TRIALS:
                rec = read_recording(DATA / trial)
                ref = json.loads((DATA / trial / f"reference_{system}.json").read_text("utf-8"))
                acc, gyr, fs = rec.sensors["pelvis"].acc_mps2, rec.sensors["pelvis"].gyr_dps, rec.sampling_rate_hz
                walking = np.zeros(acc.shape[0], dtype=bool)
                for b in ref["walking_bouts"]:
                    walking[max(0, round((b["start_s"] - 1.5) * fs)) : round((b["end_s"] + 1.5) * fs) + 1] = True
                up = np.median(acc[walking], axis=0)
                up /= np.linalg.norm(up)
                yaw = gyr @ up
                ics = {
                    side: np.array([c["t_s"] for c in ref["initial_contacts"] if c["side"] == side]) + shift / 1000
                    for side in ("left", "right")
                }
                votes = ic_yaw_votes(yaw, fs, ics, walking)
                votes_all.append(votes)
                per_trial.append(votes.size)
                d_ok = decide(votes)
                d_sw = decide(-votes)  # the same ICs with exchanged side labels
                decisions.append((d_ok.swapped, d_sw.swapped))
            v = np.concatenate(votes_all)
            pooled = decide(v)
            rows.append(
                {
                    "reference": system,
                    "shift_ms": shift,
                    "n": int(v.size),
                    "per_trial": "/".join(str(k) for k in per_trial),
                    "agreement": pooled.agreement,
                    "score": pooled.score,
                    "trials_named_ok": sum(a is False for a, _ in decisions),
                    "trials_named_cannot_tell": sum(a is None for a, _ in decisions),
                    "trials_named_swapped": sum(a is True for a, _ in decisions),
                    "trials_exchanged_detected": sum(b is True for _, b in decisions),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--yaw-noise", type=float, default=0.0, help="pelvis yaw-rate noise RMS, deg/s")
    parser.add_argument("--no-sim", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    print("real lower-back recordings, reference ICs as stand-ins for thigh ICs:")
    columns = ["reference", "shift ms", "n ICs (per trial)", "agreement", "score"]
    columns += ["trials named ok / cannot tell / swapped", "trials exchanged detected"]
    print("| " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|---|")
    for r in real():
        print(
            f"| {r['reference']} | {r['shift_ms']:+d} | {r['n']} ({r['per_trial']}) | {r['agreement']:.2f} | "
            f"{r['score']:+.2f} | "
            f"{r['trials_named_ok']} / {r['trials_named_cannot_tell']} / {r['trials_named_swapped']} | "
            f"{r['trials_exchanged_detected']} / {len(TRIALS)} |"
        )
    if not args.no_sim:
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        print(json.dumps(simulated(seeds, args.minutes, args.yaw_noise), indent=1))
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
