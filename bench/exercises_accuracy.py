"""Exercise analysis against simulator truth on many unseen seeds, with and without markers, and its speed.

Usage: .venv/bin/python bench/exercises_accuracy.py [--seeds 1000-1039] [--minutes 15]

Per seed: a home session (random mounting, noise, biases; tempo, rests, holds and partial repetitions vary,
simulator/exercises.py), analysed (1) with its markers and (2) with the markers removed.
Prints: repetition counts exact (%), metric errors (analysis - truth: mean, 95th percentile of |error|, max
|error|), hold-duration error, set detection precision/recall (a detected set matches a truth set of the
same exercise and side overlapping it by more than half of the shorter), rep counts of matched detected sets,
and the time of analyze_exercise_sets on a 30-minute session (median of 5 runs): standalone (computing the
pelvis chain itself) and with the pelvis chain passed in, as analyze_recording does (its marginal cost in the
whole analysis; bench/analysis_speed.py times the whole analysis in a clean process).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections import defaultdict

import numpy as np

from analytics.algorithms.exercise_sets import analyze_exercise_sets
from analytics.algorithms.pelvic_obliquity import pelvis_signals
from simulator import simulate_session

SKIP = ("stand", "walk")


def _overlap(a: dict, b: dict) -> float:
    inter = min(a["end_s"], b["end_s"]) - max(a["start_s"], b["start_s"])
    shorter = min(a["end_s"] - a["start_s"], b["end_s"] - b["start_s"])
    return inter / shorter if shorter > 0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="1000-1039")
    parser.add_argument("--minutes", type=float, default=15.0)
    args = parser.parse_args()
    lo, hi = (int(x) for x in args.seeds.split("-"))
    reps_ok = reps_n = 0
    errors: dict[str, list[float]] = defaultdict(list)
    hold_err: list[float] = []
    tp = fp = fn = 0
    det_reps_ok = det_reps_n = 0
    misses: list[str] = []
    for seed in range(lo, hi + 1):
        session = simulate_session(seed=seed, minutes=args.minutes)
        truth = [e for e in session.truth["exercises"] if e["exercise"] not in SKIP]
        marked = [e for e in analyze_exercise_sets(session.recording) if e["exercise"] not in SKIP]
        for a, t in zip(marked, truth, strict=True):
            reps_n += 1
            if a["reps"] == t["reps"]:
                reps_ok += 1
            else:
                misses.append(f"seed {seed} markers {t['exercise']}/{t['side']}: {a['reps']} vs {t['reps']}")
            for name, value in t["metrics"].items():
                got = a["metrics"].get(name)
                if got is not None and value is not None:
                    errors[f"{t['exercise']}.{name}"].append(got - value)
            if len(a["holds_s"]) == len(t["holds_s"]):
                hold_err.extend(np.subtract(a["holds_s"], t["holds_s"]).tolist())
        bare = dataclasses.replace(session.recording, markers=())
        found = [e for e in analyze_exercise_sets(bare) if e["exercise"] not in SKIP]
        used: set[int] = set()
        for d in found:
            match = next(
                (
                    k
                    for k, t in enumerate(truth)
                    if k not in used
                    and (t["exercise"], t["side"]) == (d["exercise"], d["side"])
                    and _overlap(d, t) > 0.5
                ),
                None,
            )
            if match is None:
                fp += 1
                misses.append(f"seed {seed} detected extra {d['exercise']}/{d['side']} at {d['start_s']:.0f} s")
                continue
            used.add(match)
            tp += 1
            det_reps_n += 1
            if d["reps"] == truth[match]["reps"]:
                det_reps_ok += 1
            else:
                misses.append(
                    f"seed {seed} detected {d['exercise']}/{d['side']}: {d['reps']} vs {truth[match]['reps']}"
                )
        for k, t in enumerate(truth):
            if k not in used:
                fn += 1
                misses.append(f"seed {seed} missed {t['exercise']}/{t['side']} at {t['start_s']:.0f} s")
    n_seeds = hi - lo + 1
    print(f"seeds {lo}-{hi} ({n_seeds} home sessions of {args.minutes:g} min, random mounting)")
    print(f"markers: repetitions exact in {reps_ok}/{reps_n} sets ({100.0 * reps_ok / reps_n:.1f} %)")
    print(f"{'metric (analysis - truth)':58s} {'mean':>7s} {'p95|e|':>7s} {'max|e|':>7s}")
    for name in sorted(errors):
        e = np.asarray(errors[name])
        print(f"{name:58s} {e.mean():7.3f} {np.percentile(np.abs(e), 95):7.3f} {np.abs(e).max():7.3f}")
    h = np.asarray(hold_err)
    print(f"{'hold duration, s':58s} {h.mean():7.3f} {np.percentile(np.abs(h), 95):7.3f} {np.abs(h).max():7.3f}")
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    print(f"detection (no markers): precision {precision:.3f} recall {recall:.3f} (tp {tp}, fp {fp}, fn {fn})")
    print(f"detection: repetitions exact in {det_reps_ok}/{det_reps_n} matched sets")
    for line in misses[:30]:
        print("  ", line)
    long = simulate_session(seed=lo, minutes=30.0)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        analyze_exercise_sets(long.recording)
        times.append(time.perf_counter() - t0)
    bare_long = dataclasses.replace(long.recording, markers=())
    det_times = []
    for _ in range(5):
        t0 = time.perf_counter()
        analyze_exercise_sets(bare_long)
        det_times.append(time.perf_counter() - t0)
    pelvis = long.recording.sensors["pelvis"]
    shared = pelvis_signals(pelvis.acc_mps2, pelvis.gyr_dps, long.recording.sampling_rate_hz)
    marginal: dict[str, list[float]] = {"markers": [], "detection": []}
    for _ in range(5):
        for case, rec in (("markers", long.recording), ("detection", bare_long)):
            t0 = time.perf_counter()
            analyze_exercise_sets(rec, pelvis=shared)
            marginal[case].append(time.perf_counter() - t0)
    print(
        f"speed, 30-min session ({long.recording.n_samples} samples x 3 sensors), median of 5: standalone markers "
        f"{statistics.median(times):.3f} s, detection {statistics.median(det_times):.3f} s; with the pipeline's "
        f"pelvis chain passed in: markers {statistics.median(marginal['markers']):.3f} s, detection "
        f"{statistics.median(marginal['detection']):.3f} s"
    )


if __name__ == "__main__":
    main()
