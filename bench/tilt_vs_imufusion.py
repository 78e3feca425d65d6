"""Tilt (the vertical in the sensor frame) from the vectorised estimator vs imufusion (x-io Fusion 1.3).

Run:  .venv/bin/python bench/tilt_vs_imufusion.py
Motion: the pelvis-like sway with 180-degree turns of testing/tilt_reference.py (exact gyro), plus white
noise and a constant gyro bias of 0.5 deg/s per axis (seeded). Prints the tilt error (deg; RMS and 99th
percentile after imufusion's 5 s start-up) and the time per 30 minutes of one sensor at 100 Hz.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.algorithms.tilt import estimate_tilt
from testing.tilt_reference import RATE_HZ, angle_deg, imufusion_up, walking_like_motion


def main() -> None:
    rows = []
    for seed in range(5):
        acc, gyr, up_true = walking_like_motion(seconds=120.0, seed=seed, bias_dps=0.5, noise=True)
        ours = angle_deg(estimate_tilt(acc, gyr, RATE_HZ).up, up_true)[500:]
        fusion = angle_deg(imufusion_up(acc, gyr), up_true)[500:]
        rows.append(
            (np.sqrt(np.mean(ours**2)), np.percentile(ours, 99), np.sqrt(np.mean(fusion**2)), np.percentile(fusion, 99))
        )
    r = np.array(rows).mean(axis=0)
    print(
        f"tilt error over 5 seeds x 120 s: ours RMS {r[0]:.2f} deg (p99 {r[1]:.2f}); "
        f"imufusion RMS {r[2]:.2f} deg (p99 {r[3]:.2f})"
    )

    acc, gyr, _ = walking_like_motion(seconds=1800.0, seed=0, bias_dps=0.5, noise=True)
    best = min(_timed(lambda: estimate_tilt(acc, gyr, RATE_HZ)) for _ in range(5))
    short = slice(0, int(120 * RATE_HZ))
    fusion_120 = _timed(lambda: imufusion_up(acc[short], gyr[short]))
    fusion_30min = fusion_120 * 15
    print(
        f"30 min, one sensor at 100 Hz: ours {best:.3f} s; imufusion {fusion_30min:.2f} s "
        f"(120 s timed x 15; includes reading the gravity vector per sample); ratio {fusion_30min / best:.0f}x"
    )


def _timed(func) -> float:
    t0 = time.perf_counter()
    func()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
