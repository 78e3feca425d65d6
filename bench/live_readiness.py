"""How much data after a stride's last contact the live analysis needs before it gives the stride out.

A live stride cannot be given out before the samples just after its last contact are in (the zero-phase filters'
edge, the pelvis's loading peak that confirms a contact). With the gateway's batches, a stride whose last contact
lies closer to a batch's end than that waits for the next batch: a whole ``batch_s`` more latency. This bench feeds
`analytics.pipeline.live.LiveGait` simulated walks (the simulator's walk script, several seeds) in steps of
``--steps`` seconds and prints, per step length, the distribution of (data end when the stride was given out -
the stride's last contact), s, and the share over one step. With short steps it is the analysis's own need; with
1-s steps it is what the default batch adds. Deterministic (seeded), no timing.

Run: .venv/bin/python bench/live_readiness.py [--seeds 1 2 3] [--minutes 2] [--steps 0.1 1.0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.pipeline.live import LiveGait  # noqa: E402
from simulator.session import simulate_session  # noqa: E402


def lags_s(seed: int, minutes: float, step_s: float, steady_after_s: float = 0.0) -> list[float]:
    """(data end when given out - stride end), s, of every live stride of one simulated walk ending
    ``steady_after_s`` or more after the first one's end (a session's first strides wait for its estimates)."""
    rec = simulate_session(seed=seed, minutes=minutes, script="walk").recording
    fs = 100.0
    placements = tuple(rec.sensors)
    gait = LiveGait(placements, fs)
    n = rec.sensors["pelvis"].acc_mps2.shape[0]
    step = max(1, round(step_s * fs))
    out = []
    first_end: float | None = None
    for a in range(0, n - step + 1, step):
        rows = {
            p: np.hstack([rec.sensors[p].acc_mps2[a : a + step], rec.sensors[p].gyr_dps[a : a + step]])
            for p in placements
        }
        gait.extend_rows(rows)
        for stride in gait.step():
            end_s = float(stride["end_s"])
            first_end = end_s if first_end is None else first_end
            if end_s >= first_end + steady_after_s:
                out.append((a + step) / fs - end_s)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--steps", type=float, nargs="+", default=[0.1, 1.0])
    ap.add_argument("--steady-after", type=float, default=15.0, help="s of each session's strides left out of 'steady'")
    args = ap.parse_args()
    print("| step (s) | strides | p10 | p50 | p90 | p99 (s) | share over one step |")
    print("|---|---|---|---|---|---|---|")
    for steady in (0.0, args.steady_after):
        for step_s in args.steps:
            lags = np.array([x for seed in args.seeds for x in lags_s(seed, args.minutes, step_s, steady)])
            p = np.percentile(lags, [10, 50, 90, 99])
            share = float((lags > step_s).mean())
            what = f"{step_s:g}" + (f", steady (after {steady:g} s)" if steady else ", all")
            print(f"| {what} | {lags.size} | {p[0]:.3f} | {p[1]:.3f} | {p[2]:.3f} | {p[3]:.3f} | {share:.3f} |")


if __name__ == "__main__":
    main()
