"""Is the stance SI's 95 % interval honest? How often it covers the simulated true SI, per simulated walker.

Run (repository root):

    .venv/bin/python bench/si_coverage.py                    # 40 sessions per walker, both event paths
    .venv/bin/python bench/si_coverage.py --seeds 10 --walkers adult frail_at_home

For every walker (simulator.walkers, at its published pace; plus the default adult at the NeuRA trial's slow
pace) and seed: a ``walk`` session of 1.5-6 min (drawn), random sensor mounting, noise and bias, a true stance SI
drawn uniformly in [-10, 10] % and pelvic drops in [0, 8] deg. The session is analysed (``analyze_recording``, no
exercises) along two paths: **thighs+pelvis** (as recorded) and **pelvis alone** (thigh files removed). For each,
the session's reported stance SI and its 95 % interval (``gait.summary.stance_asymmetry_evidence.si_ci95_pct``)
are compared with the truth's SI (the summary rule over the true strides).

Printed per walker and path: sessions; reported (an SI with an interval) and withheld (with the reasons);
**coverage** = reported sessions whose interval holds the true SI / reported sessions (target >= 0.90), with its
Wilson 95 % interval; the mean interval width; the mean and largest |SI error| of reported sessions; and how many
reported sessions miss the truth by more than 2 pp outside their interval. Sessions the simulator refuses
(a drawn SI that leaves no double support at that pace) are counted as skipped.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass, field, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from analytics.pipeline import analyze_recording  # noqa: E402
from analytics.recording.io import Recording  # noqa: E402
from sensor_gateway.errors import SimulationError  # noqa: E402
from simulator.config import SessionConfig  # noqa: E402
from simulator.session import simulate_session  # noqa: E402
from simulator.walkers import WALKERS  # noqa: E402

SLOW_PACE = {"cadence_steps_per_min": 84.0, "walking_speed_mps": 0.8, "stance_pct": 64.0}
"""The pace of the real three-sensor trial (NeuRA S02), kept as the slow variant of the default adult."""
TARGET = 0.90
PATHS = ("thighs+pelvis", "pelvis alone")


def variants() -> dict[str, SessionConfig]:
    """Every walker at its own pace, and the default adult at the NeuRA trial's slow pace."""
    out = {"adult": SessionConfig.for_walker("adult"), "adult, 84 steps/min": SessionConfig(**SLOW_PACE)}
    out.update({name: SessionConfig.for_walker(name) for name in WALKERS if name != "adult"})
    return out


def pelvis_alone(rec: Recording) -> Recording:
    return replace(rec, sensors={"pelvis": rec.sensors["pelvis"]})


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


@dataclass
class Tally:
    """One walker and path: what happened to each session's stance SI."""

    sessions: int = 0
    skipped: int = 0
    covered: int = 0
    reported: int = 0
    withheld: dict[str, int] = field(default_factory=dict)
    widths: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    far_misses: int = 0

    def add(self, doc: dict[str, Any], truth_si: float) -> dict[str, Any]:
        self.sessions += 1
        summary = doc["gait"]["summary"]
        evidence = summary["stance_asymmetry_evidence"]
        si, ci = summary["stance_si_pct"], evidence["si_ci95_pct"]
        row: dict[str, Any] = {"truth_si": truth_si, "si": si, "ci": ci, "withheld_reason": evidence["withheld_reason"]}
        if si is None or ci is None:
            reason = evidence["withheld_reason"] or "no interval"
            self.withheld[reason] = self.withheld.get(reason, 0) + 1
            return row
        self.reported += 1
        lo, hi = ci
        inside = lo <= truth_si <= hi
        self.covered += inside
        self.widths.append(hi - lo)
        self.errors.append(abs(si - truth_si))
        if not inside and min(abs(truth_si - lo), abs(truth_si - hi)) > 2.0:
            self.far_misses += 1
        row["covered"] = inside
        return row

    def summary(self) -> dict[str, Any]:
        cov = self.covered / self.reported if self.reported else None
        lo, hi = wilson(self.covered, self.reported)
        return {
            "sessions": self.sessions,
            "skipped": self.skipped,
            "reported": self.reported,
            "withheld": dict(self.withheld),
            "coverage": cov,
            "coverage_ci95": [lo, hi],
            "mean_width_pp": float(np.mean(self.widths)) if self.widths else None,
            "mean_abs_error_pp": float(np.mean(self.errors)) if self.errors else None,
            "max_abs_error_pp": float(np.max(self.errors)) if self.errors else None,
            "far_misses": self.far_misses,
        }


def row_text(name: str, path: str, s: dict[str, Any]) -> str:
    cov = "n/a" if s["coverage"] is None else f"{s['coverage']:.2f}"
    band = "" if s["coverage"] is None else f" [{s['coverage_ci95'][0]:.2f}, {s['coverage_ci95'][1]:.2f}]"
    verdict = "" if s["coverage"] is None else (" ok" if s["coverage"] >= TARGET else " **below 0.90**")
    withheld = ", ".join(f"{v} {k}" for k, v in sorted(s["withheld"].items())) or "0"

    def pp(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.1f}"

    return (
        f"| {name} | {path} | {s['sessions']} ({s['skipped']} skipped) | {s['reported']} | {withheld} | "
        f"{cov}{band}{verdict} | {pp(s['mean_width_pp'])} | {pp(s['mean_abs_error_pp'])} / "
        f"{pp(s['max_abs_error_pp'])} | {s['far_misses']} |"
    )


HEADER = (
    "| walker | path | sessions | reported | withheld | coverage of the true SI [Wilson 95 %] | mean interval "
    "width pp | SI error pp, mean / max | misses by > 2 pp |"
)
RULE = "|---|---|---|---|---|---|---|---|---|"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=40, help="sessions per walker")
    ap.add_argument("--minutes", type=float, nargs=2, default=(1.5, 6.0), metavar=("MIN", "MAX"))
    ap.add_argument("--walkers", nargs="*", default=None, help="only these variants (names as printed)")
    ap.add_argument("--json", type=Path, default=None, help="write every session's row here")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    chosen = variants()
    if args.walkers:
        unknown = [w for w in args.walkers if w not in chosen]
        if unknown:
            print(f"unknown walkers {unknown}; known: {list(chosen)}")
            return 2
        chosen = {k: v for k, v in chosen.items() if k in args.walkers}
    rows: list[dict[str, Any]] = []
    tallies: dict[tuple[str, str], Tally] = {}
    started = time.perf_counter()
    print(HEADER)
    print(RULE)
    for name, base in chosen.items():
        rng = np.random.default_rng(0)
        for path in PATHS:
            tallies[(name, path)] = Tally()
        for seed in range(1, args.seeds + 1):
            si = float(rng.uniform(-10, 10))
            drops = rng.uniform(0, 8, 2)
            minutes = float(rng.uniform(*args.minutes))
            try:
                sim = simulate_session(
                    replace(
                        base,
                        seed=seed,
                        script="walk",
                        minutes=minutes,
                        stance_asymmetry_pct=si,
                        pelvic_drop_left_deg=float(drops[0]),
                        pelvic_drop_right_deg=float(drops[1]),
                    )
                )
            except SimulationError:
                for path in PATHS:
                    tallies[(name, path)].skipped += 1
                continue
            truth_si = sim.truth["gait"]["summary"]["stance_si_pct"]
            for path, rec in (("thighs+pelvis", sim.recording), ("pelvis alone", pelvis_alone(sim.recording))):
                doc = analyze_recording(rec, exercise_analyzer=None)
                row = tallies[(name, path)].add(doc, truth_si)
                rows.append({"walker": name, "path": path, "seed": seed, "minutes": minutes, **row})
        for path in PATHS:
            print(row_text(name, path, tallies[(name, path)].summary()))
            sys.stdout.flush()
    print(f"\n{time.perf_counter() - started:.0f} s")
    if args.json is not None:
        summary = {f"{n} / {p}": t.summary() for (n, p), t in tallies.items()}
        args.json.write_text(json.dumps({"summary": summary, "sessions": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
