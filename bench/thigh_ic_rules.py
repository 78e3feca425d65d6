"""Candidate thigh initial-contact (IC) rules, scored through the whole analysis on simulated truth (every walker of
simulator.walkers, the default and slow walks) and on every real trial with thigh sensors against its reference.

Run:  .venv/bin/python bench/thigh_ic_rules.py [--seeds N] [--minutes M] [--rules a,b1,...] [--shared DIR]

Each rule replaces only the detector's IC step (analytics.algorithms.thigh_events._initial_contact_s); toe offs,
swing detection, pelvis confirmation and the stride checks are the pipeline's own. Rules (docs/thigh_events.md,
"Initial contact"):
- ``a`` extrapolation from the peak flexion at the late swing's phase rate (the detector's rule);
- ``b1`` posture: IC where the thigh, past its peak flexion, has extended back by the normative curve's share of
  its forward rotation from the swing's onset to its peak flexion;
- ``c`` peak flexion plus the normative lag, scaled by the swing's own duration from the detector's toe off to
  its peak flexion;
- ``c2`` the same, scaled by the thigh's forward rotation time, from the swing's onset (the velocity's last rise
  through ``SWING_ONSET_FRACTION`` of the swing peak) to its peak flexion: a fixed phase of the swing's own
  rotation, independent of the toe-off rule.
Not scored: a phase-portrait angle of (rotation share, velocity share), because on the normative curve itself the
extension velocity peaks at ~96 % of the cycle and eases into contact, so the angle passes its IC value twice
(first crossing 60 ms early on the exact curve).
Every normative figure is computed here from the simulator's copy of the normative curve
(simulator.gait_model.THIGH_FLEXION_DEG), the same curve the detector's phases come from.

Prints per walker and rule: IC recall (within 200 ms), IC MAE and bias (ms), extra ICs, stance MAE (bias) and the
stance SI's mean |error| (pp) and largest unflagged |error|.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import analytics.algorithms.thigh_events as te  # noqa: E402
from analytics.pipeline import analyze_recording  # noqa: E402
from analytics.recording.io import read_recording  # noqa: E402
from analytics.validation.gait_scores import GaitScore, load_reference, pool, reference_from_truth, score_gait  # noqa: E402
from simulator.gait_model import THIGH_FLEXION_DEG  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _normative() -> dict[str, float]:
    """The normative curve's figures each rule uses (phases are fractions of the cycle)."""
    ph = np.arange(200_000) / 200_000
    a, v = THIGH_FLEXION_DEG(ph), THIGH_FLEXION_DEG(ph, 1)
    ip = int(np.argmax(v))
    jf = ip + int(np.flatnonzero(v[ip:] < 0)[0])
    io = int(np.flatnonzero(v[:ip] < te.SWING_ONSET_FRACTION * v[ip])[-1])
    rot = float(a[jf] - a[io])
    back = float(a[jf] - a[0])  # extension from peak flexion to IC (phase 0 = 1)
    return {
        "peak_flex": float(ph[jf]),
        "back_fraction": back / rot,
        "lag_per_rotation_time": (1.0 - float(ph[jf])) / (float(ph[jf]) - float(ph[io])),
        "lag_per_swing": (1.0 - float(ph[jf])) / (float(ph[jf]) - te.PHASE_TOE_OFF),
    }


NORM = _normative()


def _onset_angle(ws: np.ndarray, peaks: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Each swing's onset (s; NaN without a lobe start) and the thigh angle (deg) at every sample."""
    angle = np.concatenate([[0.0], np.cumsum(0.5 * (ws[1:] + ws[:-1]))]) / fs
    onset = np.full(peaks.size, np.nan)
    for k, p in enumerate(peaks.tolist()):
        below = np.flatnonzero(ws[:p] < te.SWING_ONSET_FRACTION * ws[p])
        if below.size:
            i = int(below[-1])
            level = te.SWING_ONSET_FRACTION * ws[p]
            onset[k] = (i + (level - ws[i]) / (ws[i + 1] - ws[i])) / fs
    return onset, angle


def rule_a(ws, peaks, t_peak, t_flex, toe_off, fs):
    rate = (te.PHASE_PEAK_FLEXION - te.PHASE_SWING_PEAK) / (t_flex - t_peak)
    return t_flex + (1.0 - te.PHASE_PEAK_FLEXION) / rate


def _first_after(t_flex: np.ndarray, fs: float, n: int, reached: Callable[[int, int, int], np.ndarray]) -> np.ndarray:
    out = np.full(t_flex.size, np.nan)
    for k, tf in enumerate(t_flex.tolist()):
        lo = int(np.ceil(tf * fs))
        hi = min(n - 1, lo + round(0.5 * fs))
        if hi <= lo:
            continue
        hit = np.flatnonzero(reached(k, lo, hi))
        if hit.size:
            out[k] = (lo + int(hit[0])) / fs
    return out


def rule_b1(ws, peaks, t_peak, t_flex, toe_off, fs):
    onset, angle = _onset_angle(ws, peaks, fs)
    times = np.arange(ws.size) / fs
    a_on = np.interp(onset, times, angle)
    a_flex = np.interp(t_flex, times, angle)
    target = a_flex - NORM["back_fraction"] * (a_flex - a_on)
    found = _first_after(t_flex, fs, ws.size, lambda k, lo, hi: angle[lo:hi] <= target[k])
    # between the sample before the first one past the target and that one, linearly
    for k in np.flatnonzero(np.isfinite(found)):
        j = round(found[k] * fs)
        if j >= 1 and angle[j - 1] > target[k]:
            found[k] = (j - 1 + (angle[j - 1] - target[k]) / (angle[j - 1] - angle[j])) / fs
    return np.where(np.isfinite(found), found, rule_a(ws, peaks, t_peak, t_flex, toe_off, fs))


def rule_c(ws, peaks, t_peak, t_flex, toe_off, fs):
    return t_flex + NORM["lag_per_swing"] * (t_flex - toe_off)


def rule_c2(ws, peaks, t_peak, t_flex, toe_off, fs):
    onset, _ = _onset_angle(ws, peaks, fs)
    found = t_flex + NORM["lag_per_rotation_time"] * (t_flex - onset)
    return np.where(np.isfinite(found), found, rule_a(ws, peaks, t_peak, t_flex, toe_off, fs))


RULES: dict[str, Callable[..., np.ndarray]] = {"a": rule_a, "b1": rule_b1, "c": rule_c, "c2": rule_c2}


def analyse_with(rule: str, rec: Any) -> dict[str, Any]:
    original = te._initial_contact_s
    te._initial_contact_s = RULES[rule]
    try:
        return analyze_recording(rec, exercise_analyzer=None)
    finally:
        te._initial_contact_s = original


def row(label: str, rule: str, score: GaitScore) -> str:
    s = score.summary()

    def f(v: Any, spec: str = ".0f") -> str:
        return "n/a" if v is None else format(v, spec)

    return (
        f"| {label} | {rule} | {f(s['ic_recall'], '.2f')} | {f(s['ic_mae_ms'])} | {f(s['ic_bias_ms'], '+.0f')} | "
        f"{s['extra_ic']} | {f(s['stance_mae_ms'])} ({f(s['stance_bias_ms'], '+.0f')}) | "
        f"{f(s['si_abs_err_pp'], '.2f')} | {f(s['si_max_unflagged_err_pp'], '.1f')} |"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=None)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--rules", default=",".join(RULES))
    ap.add_argument("--walkers", default="", help="comma-separated walk names (default: all)")
    ap.add_argument("--no-real", action="store_true")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    rules = args.rules.split(",")
    print("normative:", {k: round(v, 4) for k, v in NORM.items()})
    print()
    print(
        "| walk | rule | IC recall | IC MAE ms | IC bias ms | extra ICs | stance MAE ms (bias) | SI mean abs err pp | "
        "SI max unflagged pp |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    if not args.no_real:
        configured = os.environ.get("GAITSYM_SHARED_DIR")
        shared = args.shared or (Path(configured) if configured else REPO.parent / "shared")
        for rec_file in sorted((shared / "validation").rglob("recording.json")):
            folder = rec_file.parent
            refs = sorted(folder.glob("reference_*.json"))
            if not refs:
                continue
            rec = read_recording(folder)
            if not {"left_thigh", "right_thigh"} <= set(rec.sensors):
                continue
            for rule in rules:
                doc = analyse_with(rule, rec)
                for ref_file in refs:
                    print(
                        row(
                            f"real {folder.name} ({load_reference(ref_file).system})",
                            rule,
                            score_gait(doc, load_reference(ref_file)),
                        ),
                        flush=True,
                    )
    if args.seeds > 0:
        from simulator.walkers import WALKERS, walker_profile

        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))  # `testing`, the repository's unshipped harnesses
        from testing.asymmetric_walks import asymmetric_walks

        walks: dict[str, dict[str, Any]] = {
            "sim normal": {},
            "sim slow": {"cadence_steps_per_min": 84.0, "walking_speed_mps": 0.8, "stance_pct": 64.0},
        }
        for name in WALKERS:
            if name != "adult":
                walks[f"sim {name}"] = {"walker": name, **walker_profile(name).pace()}
        chosen = [w for w in args.walkers.split(",") if w]
        for walk, settings in walks.items():
            if chosen and walk not in chosen:
                continue
            scores: dict[str, list[GaitScore]] = {r: [] for r in rules}
            for drawn in asymmetric_walks(args.seeds, args.minutes, **settings):
                sim = drawn.session
                ref = reference_from_truth(sim.truth)
                for rule in rules:
                    scores[rule].append(score_gait(analyse_with(rule, sim.recording), ref))
            for rule in rules:
                print(row(walk, rule, pool(scores[rule])), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def acceleration_ic_s(acc_mps2: np.ndarray, long_axis: Any, swing_peak_s: np.ndarray, fs: float) -> np.ndarray:
    """Rule ``d``: after each swing peak, the first upward crossing of 1 g by the thigh's axial acceleration
    low-passed at five times the stride frequency (the IC feature of a public Python re-implementation of
    Gurchiek, Garabed & McGinnis 2020, Gait Posture 80:214, a thigh-worn accelerometer; the stride frequency here
    is the median spacing of the detector's swing peaks). NaN where none lies within 0.8 s."""
    from analytics.algorithms.filters import butter_sos, zero_phase

    axial = np.asarray(acc_mps2, dtype=np.float64) @ np.asarray(long_axis, dtype=np.float64) / 9.80665
    if np.median(axial) < 0:  # the long axis as estimated may point down the thigh
        axial = -axial
    out = np.full(swing_peak_s.size, np.nan)
    if swing_peak_s.size < 2:
        return out
    stride_hz = 1.0 / float(np.median(np.diff(swing_peak_s)))
    low = zero_phase(butter_sos(4, min(5.0 * stride_hz, 0.45 * fs), "lowpass", fs), axial)
    up = np.flatnonzero((low[:-1] < 1.0) & (low[1:] >= 1.0))
    for k, tp in enumerate(swing_peak_s.tolist()):
        after = up[(up / fs > tp) & (up / fs < tp + 0.8)]
        if after.size:
            i = int(after[0])
            out[k] = (i + (1.0 - low[i]) / (low[i + 1] - low[i])) / fs
    return out


def detector_level(name: str, rec: Any, ref: Any) -> dict[str, list[float]]:
    """IC error (s) of rules ``a`` and ``d`` against the nearest reference IC of the same side within 0.2 s, on
    the detector's own swings (no pelvis confirmation), and how many reference ICs each found."""
    from analytics.algorithms.pelvic_obliquity import pelvis_signals
    from analytics.algorithms.thigh_alignment import estimate_thigh_axes

    fs = rec.sampling_rate_hz
    pelvis = rec.sensors["pelvis"]
    ps = pelvis_signals(pelvis.acc_mps2, pelvis.gyr_dps, fs, unusable=np.zeros(rec.n_samples, dtype=bool))
    errors: dict[str, list[float]] = {"a": [], "d": []}
    for side in ("left", "right"):
        data = rec.sensors[f"{side}_thigh"]
        axes = estimate_thigh_axes(data.acc_mps2, data.gyr_dps, fs, ps.walking, ps.standing)
        ev = te.detect_thigh_events(axes.flexion_velocity_dps(data.gyr_dps), fs, ps.walking)
        ics = np.array([t for t, s in ref.initial_contacts if s == side])
        found = {"a": ev.initial_contact_s, "d": acceleration_ic_s(data.acc_mps2, axes.long_axis, ev.swing_peak_s, fs)}
        for rule, times in found.items():
            for t in times[np.isfinite(times)]:
                if ics.size and np.min(np.abs(ics - t)) <= 0.2:
                    errors[rule].append(float(t - ics[np.argmin(np.abs(ics - t))]))
    return errors
