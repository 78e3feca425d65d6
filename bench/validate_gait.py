"""One command that scores the gait analysis on every real trial with reference events, and on simulated kits.

Run (repository root):

    .venv/bin/python bench/validate_gait.py                      # gaitsym only
    make bench-venv && .venv-bench/bin/python bench/validate_gait.py --mobgap   # + mobgap's ICs side by side

Options: ``--shared DIR`` (default: $GAITSYM_SHARED_DIR or ../shared beside the checkout; its ``validation``
folder is searched), ``--seeds N --minutes M`` (simulated kits; 0 seeds skips them), ``--json PATH`` (every
row as JSON), ``--no-real``.

Real trials: every folder under ``<shared>/validation`` and ``tests/data`` holding a ``recording.json`` and at
least one ``reference_<system>.json`` (a trial found in both places is scored once). Each is analysed
(``analyze_recording``, no exercises) along two paths:
- ``thighs+pelvis``: the recording as recorded (only where it has thigh sensors);
- ``pelvis alone``: the same recording with the thigh files removed;
and, with ``--mobgap`` (needs mobgap in the venv), mobgap 1.2.0's GsdIluz -> IcdIonescu -> LrcUllrich on the
pelvis sensor in its body frame (ICs and sides only: no FC, no stance).

Simulated kits (``--seeds``): ``walk`` sessions with random mounting, noise and bias, a stance SI drawn in
[-10, 10] % and pelvic drops in [0, 8] deg per seed (as bench/analysis_accuracy.py), at the simulator's default
walk (105 steps/min, 1.25 m/s, stance 61 %) and a slow walk (84 steps/min, 0.8 m/s, stance 64 %: the pace of
the NeuRA trial); then (``--walker-seeds``, default 10 each) every other walker of simulator.walkers at its own
published pace (lateral thighs on soft tissue, stepwise turns, shuffling starts, older and frail walkers, and
their combinations); the reference is the simulator's truth.

Also printed, from the real trials against optical capture: each trial's mean stance-time error per side, their
left-minus-right difference d (with the part of it stride-to-stride scatter explains, se(d)) and their mean c;
then the event-timing figures the stance SI's interval rests on (analytics.algorithms.stride_checks): the RMS of
c over trials and paths (COMMON_TIMING_ERROR_S), the RMS of d of the pelvis path (PELVIS_SIDE_TIMING_ERROR_S) and
sqrt(mean(d^2 - se(d)^2)) over both paths (SIDE_TIMING_ERROR_FLOOR_S).

Scores (analytics.validation.gait_scores): IC recall and MAE (ms) within 200 ms, extra ICs (detected inside a
reference bout, matching nothing: duplicates), wrong side (matched ICs), FC MAE and bias (ms), stance MAE and
bias (ms), the stance SI the analysis reports against the reference's (summary rule on both), and whether it
was reported plainly (ok), with a warning (flagged) or withheld, with the flag codes. Pooled rows pool the events
of every trial; their SI columns give the mean |error| over reported SIs, the largest |error| of an SI
reported with no flag, and how many were ok / flagged / withheld.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from analytics.algorithms.stride_checks import (  # noqa: E402
    COMMON_TIMING_ERROR_S,
    PELVIS_SIDE_TIMING_ERROR_S,
    SIDE_TIMING_ERROR_FLOOR_S,
    STRIDE_FLAGS,
)
from analytics.pipeline import analyze_recording  # noqa: E402
from analytics.recording.io import Recording, read_recording  # noqa: E402
from analytics.validation.gait_scores import (  # noqa: E402
    GaitReference,
    GaitScore,
    load_reference,
    pool,
    reference_from_truth,
    score_gait,
)

REPO = Path(__file__).resolve().parents[1]
OPTICAL = {"stereophoto": "optical", "optical": "optical", "indip": "indip", "truth": "truth"}
"""Reference systems pooled together: optical capture (any lab's), INDIP, simulator truth."""


def shared_dir(arg: Path | None) -> Path:
    if arg is not None:
        return arg
    configured = os.environ.get("GAITSYM_SHARED_DIR")
    return Path(configured) if configured else REPO.parent / "shared"


def find_trials(roots: list[Path]) -> list[tuple[str, Path]]:
    """(dataset/trial, folder) of every trial with a recording and a reference, each name once."""
    seen: dict[str, Path] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for rec in sorted(root.rglob("recording.json")):
            folder = rec.parent
            if not any(folder.glob("reference_*.json")):
                continue
            name = f"{folder.parent.name}/{folder.name}"
            seen.setdefault(name, folder)
    return sorted(seen.items())


def pelvis_alone(rec: Recording) -> Recording:
    return replace(rec, sensors={"pelvis": rec.sensors["pelvis"]})


def mobgap_doc(rec: Recording) -> dict[str, Any]:
    """mobgap's ICs and sides on the pelvis sensor, as the gait block of a result document (no FC, no stance)."""
    import pandas as pd
    from mobgap.gait_sequences import GsdIluz
    from mobgap.initial_contacts import IcdIonescu
    from mobgap.laterality import LrcUllrich
    from mobgap.utils.conversions import to_body_frame

    fs = rec.sampling_rate_hz
    s = rec.sensors["pelvis"]
    cols = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]
    body = to_body_frame(pd.DataFrame(np.column_stack([s.acc_mps2, s.gyr_dps]), columns=cols))
    lrc = LrcUllrich(**LrcUllrich.PredefinedParameters.msproject_all)
    ics = []
    for _, gs in GsdIluz().detect(body, sampling_rate_hz=fs).gs_list_.iterrows():
        start, end = int(gs["start"]), int(gs["end"])
        data = body.iloc[start:end].reset_index(drop=True)
        found = IcdIonescu().detect(data, sampling_rate_hz=fs).ic_list_
        if found.empty:
            continue
        lr = lrc.clone().predict(data, found, sampling_rate_hz=fs).ic_lr_list_
        ics += [
            {"t_s": (start + int(i)) / fs, "side": str(side)} for i, side in zip(lr["ic"], lr["lr_label"], strict=True)
        ]
    return {
        "gait": {"initial_contacts": ics, "final_contacts": [], "strides": [], "summary": {"stance_si_pct": None}},
        "quality": {"flags": []},
    }


def fmt(v: Any, digits: int = 0) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:+.{digits}f}" if digits == 1 else f"{v:.{digits}f}"
    return str(v)


HEADER = (
    "| trial | reference | path | IC recall | IC MAE ms | extra ICs | wrong side | FC MAE ms | FC bias ms | "
    "stances scored | stance MAE ms (bias) | SI reported % | SI reference % | SI status |"
)
RULE = "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"


def _stances(s: dict[str, Any], mobgap: bool) -> tuple[str, str]:
    """The "stances scored" and "stance MAE (bias)" cells."""
    if mobgap:
        return "n/a", "n/a"
    mae = "n/a" if s["stance_mae_ms"] is None else f"{s['stance_mae_ms']:.0f} ({s['stance_bias_ms']:+.0f})"
    return f"{s['stance_n']}/{s['stance_ref_n']}", mae


def trial_row(trial: str, system: str, path: str, score: GaitScore, mobgap: bool) -> str:
    s = score.summary()
    scored, stance = _stances(s, mobgap)
    status = "n/a" if mobgap else score.si_status[0]
    if not mobgap and score.si_flags[0]:
        status += " (" + ", ".join(score.si_flags[0]) + ")"
    return (
        f"| {trial} | {system} | {path} | {fmt(s['ic_recall'], 2)} | {fmt(s['ic_mae_ms'])} | {s['extra_ic']} | "
        f"{s['wrong_side']} | {fmt(s['fc_mae_ms'])} | {fmt(s['fc_bias_ms'])} | {scored} | "
        f"{stance} | {'n/a' if mobgap else fmt(score.si_reported[0], 1)} | {fmt(score.si_reference[0], 1)} | {status} |"
    )


def pooled_row(label: str, system: str, path: str, score: GaitScore, mobgap: bool) -> str:
    s = score.summary()
    scored, stance = _stances(s, mobgap)
    si = "n/a"
    status = "n/a"
    if not mobgap:
        err, worst = s["si_abs_err_pp"], s["si_max_unflagged_err_pp"]
        si = (
            f"mean abs err {'n/a' if err is None else f'{err:.1f}'} pp; max unflagged "
            f"{'n/a' if worst is None else f'{worst:.1f}'}"
        )
        status = f"{s['si_ok']} ok / {s['si_flagged']} flagged / {s['si_withheld']} withheld"
    return (
        f"| **{label}** | {system} | {path} | {fmt(s['ic_recall'], 2)} | {fmt(s['ic_mae_ms'])} | {s['extra_ic']} | "
        f"{s['wrong_side']} | {fmt(s['fc_mae_ms'])} | {fmt(s['fc_bias_ms'])} | {scored} | "
        f"{stance} | {si} | | {status} |"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=None, help="the shared folder (holds validation/)")
    ap.add_argument("--mobgap", action="store_true", help="also score mobgap's ICs (needs mobgap installed)")
    ap.add_argument("--no-real", action="store_true", help="skip the real trials")
    ap.add_argument("--seeds", type=int, default=20, help="simulated sessions per walk (0: none)")
    ap.add_argument("--walker-seeds", type=int, default=10, help="simulated sessions per other walker (0: none)")
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--json", type=Path, default=None, help="write every row's figures here")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.mobgap:
        try:
            import mobgap  # noqa: F401
        except ImportError:
            print("--mobgap: mobgap is not installed in this venv (make bench-venv; .venv-bench/bin/python)")
            return 2

    rows: list[dict[str, Any]] = []
    pooled: dict[tuple[str, str, str], list[GaitScore]] = {}

    timing: list[tuple[str, str, float, float, float]] = []

    def record(group: str, trial: str, ref: GaitReference, path: str, doc: dict[str, Any]) -> None:
        score = score_gait(doc, ref)
        if group == "real" and OPTICAL.get(ref.system) == "optical":
            errors = side_stance_errors_s(doc, ref)
            if errors is not None:
                timing.append((trial, path, *errors))
        is_mobgap = path == "mobgap (pelvis)"
        print(trial_row(trial, ref.system, path, score, is_mobgap))
        sys.stdout.flush()
        pooled.setdefault((group, OPTICAL.get(ref.system, ref.system), path), []).append(score)
        rows.append(
            {
                "trial": trial,
                "reference": ref.system,
                "path": path,
                **score.summary(),
                "si_reported": score.si_reported[0],
                "si_reference": score.si_reference[0],
                "si_status": score.si_status[0],
                "si_flags": list(score.si_flags[0]),
            }
        )

    print(HEADER)
    print(RULE)
    if not args.no_real:
        roots = [shared_dir(args.shared) / "validation", REPO / "tests" / "data"]
        trials = find_trials(roots)
        if not trials:
            print(f"(no real trials found under {', '.join(map(str, roots))})")
        for name, folder in trials:
            rec = read_recording(folder)
            refs = [load_reference(p) for p in sorted(folder.glob("reference_*.json"))]
            docs: dict[str, dict[str, Any]] = {}
            if "left_thigh" in rec.sensors or "right_thigh" in rec.sensors:
                docs["thighs+pelvis"] = analyze_recording(rec, exercise_analyzer=None)
            docs["pelvis alone"] = analyze_recording(pelvis_alone(rec), exercise_analyzer=None)
            if args.mobgap:
                docs["mobgap (pelvis)"] = mobgap_doc(rec)
            for ref in refs:
                for path, doc in docs.items():
                    record("real", name, ref, path, doc)

    if args.seeds > 0:
        from simulator.walkers import STRESSES, WALKERS, walker_profile

        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))  # `testing`, the repository's unshipped harnesses
        from testing.asymmetric_walks import asymmetric_walks

        walks: dict[str, tuple[dict[str, Any], int]] = {
            "sim normal": ({}, args.seeds),
            "sim slow": ({"cadence_steps_per_min": 84.0, "walking_speed_mps": 0.8, "stance_pct": 64.0}, args.seeds),
        }
        for name in WALKERS:
            if name != "adult":
                walks[f"sim {name}"] = ({"walker": name, **walker_profile(name).pace()}, args.walker_seeds)
        for name in STRESSES:  # fault models, reported beside the walkers, never pooled with them
            walks[f"stress {name}"] = ({"walker": name, **walker_profile(name).pace()}, args.walker_seeds)
        for walk, (settings, count) in walks.items():
            for drawn in asymmetric_walks(count, args.minutes, **settings):
                sim, seed = drawn.session, drawn.seed
                ref = reference_from_truth(sim.truth)
                for path, rec in (("thighs+pelvis", sim.recording), ("pelvis alone", pelvis_alone(sim.recording))):
                    record(walk, f"{walk} seed {seed}", ref, path, analyze_recording(rec, exercise_analyzer=None))

    print()
    print("Pooled:")
    print()
    print(HEADER)
    print(RULE)
    for (group, system, path), scores in pooled.items():
        print(pooled_row(group, system, path, pool(scores), path == "mobgap (pelvis)"))
        summ = pool(scores).summary()
        rows.append({"trial": f"pooled {group}", "reference": system, "path": path, **summ})
    if timing:
        print()
        print("Stance-time error per side against optical capture (ms; strides the analysis flags are left out):")
        print()
        print("| trial | path | left | right | d = left - right (se) | c = mean |")
        print("|---|---|---|---|---|---|")
        for trial, path, left, right, se in timing:
            print(
                f"| {trial} | {path} | {1e3 * left:+.0f} | {1e3 * right:+.0f} | {1e3 * (left - right):+.1f} "
                f"({1e3 * se:.1f}) | {1e3 * 0.5 * (left + right):+.0f} |"
            )
        common = float(np.sqrt(np.mean([(0.5 * (left + right)) ** 2 for _, _, left, right, _ in timing])))
        pelvis_d = [left - right for _, path, left, right, _ in timing if path == "pelvis alone"]
        pelvis = float(np.sqrt(np.mean(np.square(pelvis_d)))) if pelvis_d else float("nan")
        excess = float(np.mean([(left - right) ** 2 - se**2 for _, _, left, right, se in timing]))
        floor = float(np.sqrt(max(excess, 0.0)))
        print()
        print(
            f"RMS c {1e3 * common:.0f} ms (COMMON_TIMING_ERROR_S {1e3 * COMMON_TIMING_ERROR_S:.0f}); RMS d, pelvis "
            f"alone {1e3 * pelvis:.0f} ms (PELVIS_SIDE_TIMING_ERROR_S {1e3 * PELVIS_SIDE_TIMING_ERROR_S:.0f}); "
            f"d beyond stride scatter {1e3 * floor:.0f} ms (SIDE_TIMING_ERROR_FLOOR_S "
            f"{1e3 * SIDE_TIMING_ERROR_FLOOR_S:.0f})"
        )
        rows.append(
            {"trial": "stance timing vs optical", "common_s": common, "pelvis_side_s": pelvis, "floor_s": floor}
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


def side_stance_errors_s(doc: dict[str, Any], ref: GaitReference) -> tuple[float, float, float] | None:
    """Mean stance-time error (s) of each side's strides the analysis does not flag, matched to the reference
    stance of the same side whose contact is nearest (within 0.2 s), and the standard error of their difference
    from the stride-to-stride scatter (pooled SD); None without two strides on each side."""
    errors: dict[str, np.ndarray] = {}
    for side in ("left", "right"):
        found = []
        for stride in doc["gait"]["strides"]:
            if stride["side"] != side or set(stride["flags"]) & set(STRIDE_FLAGS):
                continue
            near = [(abs(ic - stride["start_s"]), stance) for s, ic, stance in ref.stances if s == side]
            if near and min(near)[0] <= 0.2:
                found.append(stride["stance_time_s"] - min(near)[1])
        if len(found) < 2:
            return None
        errors[side] = np.asarray(found)
    left, right = errors["left"], errors["right"]
    pooled = (np.sum((left - left.mean()) ** 2) + np.sum((right - right.mean()) ** 2)) / (left.size + right.size - 2)
    se = float(np.sqrt(pooled * (1.0 / left.size + 1.0 / right.size)))
    return float(left.mean()), float(right.mean()), se


if __name__ == "__main__":
    raise SystemExit(main())
