"""Speed and memory of `gaitsym analyze` on a 30-minute, 3-sensor, 100 Hz home session (one core).

Run: OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/analysis_speed.py [--minutes 30]
Writes the simulated recording once to a temporary folder, then in a fresh interpreter per repetition
times: imports, read_recording, analyze_recording (no caching across invocations); peak RSS and the
tracemalloc peak of read + analyse.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time, tracemalloc
t0 = time.perf_counter()
from analytics.pipeline import analyze_recording
from analytics.recording.io import read_recording
t1 = time.perf_counter()
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
trace = sys.argv[2] == "1"
if trace:
    tracemalloc.start()
t2 = time.perf_counter()
rec = read_recording(sys.argv[1])
t3 = time.perf_counter()
doc = analyze_recording(rec, exercise_analyzer=None)
t4 = time.perf_counter()
peak = tracemalloc.get_traced_memory()[1] if trace else 0
print(json.dumps({"imports": t1 - t0, "read": t3 - t2, "analyse": t4 - t3, "rss_mb": resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_after_imports_mb": rss0 / 1024, "tracemalloc_mb": peak / 2**20,
    "strides": len(doc["gait"]["strides"])}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from analytics.recording.io import write_recording
    from sensor_gateway.virtual_kit.session import simulate_session

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "rec"
        session = simulate_session(seed=1, script="home", minutes=args.minutes)
        write_recording(folder, session.recording)
        runs = []
        for i in range(args.repeat + 1):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(folder), "1" if i == 0 else "0"],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(out.stdout))
    timed = runs[1:]
    best = {k: min(r[k] for r in timed) for k in ("imports", "read", "analyse")}
    med = {k: sorted(r[k] for r in timed)[len(timed) // 2] for k in ("imports", "read", "analyse")}
    print(
        f"{args.minutes:g} min, 3 sensors, 100 Hz home session ({timed[0]['strides']} strides), "
        f"{args.repeat} fresh runs:"
    )
    for k in ("imports", "read", "analyse"):
        print(f"  {k:<8} best {best[k]:.3f} s, median {med[k]:.3f} s")
    print(f"  read + analyse: best {best['read'] + best['analyse']:.3f} s, median {med['read'] + med['analyse']:.3f} s")
    print(
        f"  peak RSS {max(r['rss_mb'] for r in timed):.0f} MB "
        f"(after imports {timed[0]['rss_after_imports_mb']:.0f} MB);"
        f" tracemalloc peak of read + analyse {runs[0]['tracemalloc_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
