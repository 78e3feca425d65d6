"""CPU of the live gait analysis alone: `analytics.pipeline.live.LiveGait.step` fed simulated walks a second at a
time, as the worker feeds it one gateway batch set after another.

No broker, no store, no worker: what one live window costs the worker's thread, so that a change to the analysis
can be measured in seconds instead of a real-time run (`bench/worker_latency.py` is what a clinic sees). Walks of the
simulator's walk script (several seeds), 1-s steps, the session's estimates at phase 17 s; the figure is the
smallest total over the repeats (the machine is shared: the smallest is the least disturbed), per step and per
analysed window (a step that found no stride ready analyses nothing).

Run: .venv/bin/python bench/live_step_cpu.py [--seeds 1 2 3 4] [--minutes 2] [--repeats 5] [--src DIR]
     (--src: the source tree to measure, e.g. a `git archive` of another commit; default this one)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--src", type=Path, default=ROOT)
    args = ap.parse_args()
    sys.path.insert(0, str(args.src.resolve()))
    import numpy as np

    from analytics.pipeline.live import LiveGait
    from simulator.session import simulate_session

    recordings = [simulate_session(seed=s, minutes=args.minutes, script="walk").recording for s in args.seeds]
    best: tuple[float, int, int, int] | None = None
    for _ in range(args.repeats):
        cpu, steps, windows, strides = 0.0, 0, 0, 0
        for rec in recordings:
            fs = rec.sampling_rate_hz
            gait = LiveGait(tuple(rec.sensors), fs, phase_s=17)
            step = round(fs)
            n = rec.sensors["pelvis"].acc_mps2.shape[0]
            for a in range(0, n - step + 1, step):
                rows = {
                    p: np.hstack([s.acc_mps2[a : a + step], s.gyr_dps[a : a + step]]) for p, s in rec.sensors.items()
                }
                gait.extend_rows(rows)
                t0 = time.thread_time()
                strides += len(gait.step())
                cpu += time.thread_time() - t0
                steps += 1
            windows += gait.counters.windows
        if best is None or cpu < best[0]:
            best = (cpu, steps, windows, strides)
    assert best is not None
    cpu, steps, windows, strides = best
    print(
        f"LiveGait.step over {steps} 1-s steps ({len(recordings)} walks x {args.minutes:g} min, smallest of "
        f"{args.repeats}): {cpu:.3f} s CPU = {cpu / steps * 1e3:.2f} ms a step, {cpu / max(windows, 1) * 1e3:.2f} ms "
        f"an analysed window ({windows} windows, {strides} strides given out); src {args.src}"
    )


if __name__ == "__main__":
    main()
