"""Speed and memory of `gaitsym analyze` on a 30-minute, 3-sensor, 100 Hz home session, on ONE core.

Run: .venv/bin/python bench/analysis_speed.py [--minutes 30 (>= 11.6)] [--repeat 7] [--cpu N] [--recording DIR]
     [--gait-only]

The WHOLE analysis is timed: gait and exercises (analyze_recording's default), on the session with its
exercise markers (events.csv) and, reported separately, with the markers dropped after reading (the
exercise sets are then detected from the movement). ``--gait-only`` also times exercise_analyzer=None.

1. The session is simulated and written as a recording folder by a separate process (so this parent stays
   small), unless --recording names one.
2. Each repetition is a fresh interpreter pinned to one CPU (sched_setaffinity; OMP/OpenBLAS threads 1), with
   no state shared between runs (no caching across invocations). It times the imports, read_recording and
   analyze_recording (wall clock and process CPU time) and reports its peak RSS (VmHWM: reset by exec, so it
   is this process's own peak, imports included).
3. One more fresh run wraps the pipeline's steps with timers for the per-stage breakdown (the wrappers add
   a few microseconds per call), and one measures the tracemalloc peak of read + analyse (tracemalloc slows
   the run: its times are not used).

Figures are best-of-N (the machine is shared: the load average is printed with them) and medians.
mobgap comparison: its full pipeline runs ~300x real time on the pelvis sensor alone (issue 3); the ratio
printed is (session duration / (read + analyse) of all three sensors) / 300.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MOBGAP_REALTIME_FACTOR = 300.0

SIMULATE = r"""
import sys
from analytics.recording.io import write_recording
from simulator.session import simulate_session
session = simulate_session(seed=1, script="home", minutes=float(sys.argv[2]))
write_recording(sys.argv[1], session.recording)
"""

CHILD = r"""
import json, os, sys, time
os.sched_setaffinity(0, {int(sys.argv[3])})
mode = sys.argv[2]
case = sys.argv[4]

def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")

w0, c0 = time.perf_counter(), time.process_time()
from analytics.pipeline.analyze import analyze_recording
from analytics.recording.io import read_recording
w1, c1 = time.perf_counter(), time.process_time()
rss_imports = hwm_mb()
stages = {}
if mode == "stages":
    import analytics.pipeline.analyze as pipeline
    import analytics.recording.io as io
    import pandas as pd

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                stages[name] = stages.get(name, 0.0) + time.perf_counter() - t
        return wrapper

    import analytics.algorithms.pelvic_obliquity as pelvic
    import analytics.algorithms.exercise_signals as ex_signals
    import analytics.algorithms.exercise_sets as ex_sets
    import analytics.algorithms.exercise_detection as ex_detection

    wrapped = {
        pelvic: ("detect_gait_events", "still_gyro_bias_dps", "estimate_tilt", "obliquity_axes",
                 "smoothed_angular_speed_dps", "quiet_standing_mask", "obliquity_deg"),
        pipeline: ("stream_quality", "pelvis_signals", "standing_reference", "rotation_excursion_deg",
                   "estimate_thigh_axes", "check_thigh_sides", "detect_thigh_events", "_thigh_bouts", "_strides",
                   "pelvic_drop_deg", "summarize_gait", "asymmetry", "analyze_exercise_sets"),
        ex_sets: ("compute_signals", "analyze_set"),
        ex_signals: ("estimate_tilt", "smoothed_angular_speed_dps"),
        ex_detection: ("detect_sets",),
    }
    for module, names in wrapped.items():
        prefix = "" if module is pipeline else module.__name__.rsplit(".", 1)[1] + "."
        for name in names:
            if hasattr(module, name):  # (older pipelines lack some steps)
                setattr(module, name, timed(prefix + name, getattr(module, name)))
    if hasattr(pipeline, "analyze_exercise_sets"):  # the pipeline calls its default analyzer by identity
        pipeline.default_exercise_analyzer = lambda: pipeline.analyze_exercise_sets
    io.pd = type("pd", (), {"read_csv": staticmethod(timed("read: pandas.read_csv", pd.read_csv)),
                            "errors": pd.errors, "DataFrame": pd.DataFrame})
    io._read_sensor_csv = timed("read: one sensor file incl. validation", io._read_sensor_csv)
if mode == "trace":
    import tracemalloc
    tracemalloc.start()
w2, c2 = time.perf_counter(), time.process_time()
rec = read_recording(sys.argv[1])
w3, c3 = time.perf_counter(), time.process_time()
if case == "detection":
    import dataclasses
    rec = dataclasses.replace(rec, markers=())
doc = analyze_recording(rec, exercise_analyzer=None if case == "gait-only" else True)
w4, c4 = time.perf_counter(), time.process_time()
out = {"imports": w1 - w0, "read": w3 - w2, "analyse": w4 - w3, "cpu_imports": c1 - c0, "cpu_read": c3 - c2,
       "cpu_analyse": c4 - c3, "rss_mb": hwm_mb(), "rss_imports_mb": rss_imports, "stages": stages,
       "strides": len(doc["gait"]["strides"]), "duration_s": rec.duration_s,
       "sets": sum(e["exercise"] not in ("stand", "walk") for e in doc["exercises"]),
       "failed": [f["message"] for f in doc["quality"]["flags"] if f["code"] == "exercises_failed"]}
if mode == "trace":
    out["tracemalloc_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
print(json.dumps(out))
"""


def _run(code: str, *args: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"bench/analysis_speed.py: a child process failed:\n{out.stderr.strip()}")
    return json.loads(out.stdout) if out.stdout.strip() else {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--cpu", type=int, default=min(os.sched_getaffinity(0)), help="the one CPU to run on")
    ap.add_argument("--recording", help="an existing recording folder (default: simulate one)")
    ap.add_argument("--gait-only", action="store_true", help="also time the analysis without exercises")
    args = ap.parse_args()
    cases = ["markers", "detection"] + (["gait-only"] if args.gait_only else [])
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.recording or str(Path(tmp) / "rec")
        if not args.recording:
            _run(SIMULATE, folder, str(args.minutes))
        load_before = os.getloadavg()
        results: dict[str, dict] = {}
        for case in cases:  # interleaved, so that a change of machine load touches every case alike
            results[case] = {"runs": []}
        for _ in range(args.repeat):
            for case in cases:
                results[case]["runs"].append(_run(CHILD, folder, "plain", str(args.cpu), case))
        for case in cases:
            results[case]["stages"] = _run(CHILD, folder, "stages", str(args.cpu), case)
            results[case]["trace"] = _run(CHILD, folder, "trace", str(args.cpu), case)
        load_after = os.getloadavg()
    first = results["markers"]["runs"][0]
    print(
        f"{first['duration_s'] / 60:g} min, 3 sensors, 100 Hz home session ({first['strides']} strides); "
        f"{args.repeat} fresh runs per case on CPU {args.cpu} of {os.cpu_count()}; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    titles = {
        "markers": "WHOLE analysis (gait + exercises), sets from the exercise markers",
        "detection": "WHOLE analysis (gait + exercises), markers dropped: sets detected",
        "gait-only": "gait only (exercise_analyzer=None)",
    }
    for case in cases:
        _report(titles[case], results[case])


def _report(title: str, result: dict) -> None:
    runs, stages, trace = result["runs"], result["stages"], result["trace"]
    if runs[0]["failed"]:
        raise SystemExit(f"bench/analysis_speed.py: exercise analysis failed: {runs[0]['failed']}")
    keys = ("imports", "read", "analyse", "cpu_read", "cpu_analyse")
    best = {k: min(r[k] for r in runs) for k in keys}
    med = {k: sorted(r[k] for r in runs)[len(runs) // 2] for k in keys}
    totals = sorted(r["read"] + r["analyse"] for r in runs)
    duration = runs[0]["duration_s"]
    print(f"\n{title}: {runs[0]['sets']} exercise sets")
    for k in ("imports", "read", "analyse"):
        cpu = f"   (CPU time best {best['cpu_' + k]:.3f} s)" if k != "imports" else ""
        print(f"  {k:<8} best {best[k]:.3f} s, median {med[k]:.3f} s{cpu}")
    print(f"  read + analyse: best {totals[0]:.3f} s, median {totals[len(totals) // 2]:.3f} s")
    factor = duration / totals[0]
    print(
        f"  = {factor:.0f}x real time for three sensors; mobgap ~{MOBGAP_REALTIME_FACTOR:.0f}x on the pelvis alone: "
        f"{factor / MOBGAP_REALTIME_FACTOR:.1f}x faster"
    )
    print(
        f"  peak RSS of a clean read + analyse process {max(r['rss_mb'] for r in runs):.0f} MB "
        f"(runs {min(r['rss_mb'] for r in runs):.0f}-{max(r['rss_mb'] for r in runs):.0f}) "
        f"(after imports {runs[0]['rss_imports_mb']:.0f} MB); tracemalloc peak of read + analyse "
        f"{trace['tracemalloc_mb']:.0f} MB"
    )
    print(f"  per stage (one run, wall s; read {stages['read']:.3f}, analyse {stages['analyse']:.3f}):")
    nested = {"pelvis_signals": "pelvic_obliquity.", "analyze_exercise_sets": "exercise_"}
    listed = 0.0
    for name, seconds in sorted(stages["stages"].items(), key=lambda kv: -kv[1]):
        inner = not name.startswith("read:") and "." in name
        print(f"    {'  ' if inner else ''}{name:<{42 if inner else 44}} {seconds:.3f}")
        if not name.startswith("read:") and "." not in name:
            listed += seconds
    print(f"    {'analyse: everything else':<44} {stages['analyse'] - listed:.3f}")
    print(f"    (indented: parts of {', '.join(nested)})")


if __name__ == "__main__":
    main()
