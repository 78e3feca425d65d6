"""Pelvis-only gait events on real data: gaitsym's detector vs mobgap 1.2.0, against INDIP and optical capture.

Run:  make bench-venv && .venv-bench/bin/python bench/gait_events_real.py
      [--data tests/data/mobgap-lab] [--no-mobgap]

For each recording of the mobgap lab example data (lower-back McRoberts MM+, 100 Hz), runs
- ours: ``analytics.algorithms.gait_events.detect_gait_events`` on the raw sensor-frame signals (it finds the
  body axes itself), and
- mobgap: GsdIluz (gait sequences) -> IcdIonescu (ICs) -> LrcUllrich(msproject_all) (left/right) per gait
  sequence, the IC/laterality blocks of mobgap's MobilisedPipelineHealthy. mobgap is given the data already in
  its body frame (x up, y ML, z forward: the recorded frame), an advantage ours does not get.

Metrics per trial and pooled, against each reference:
- IC recall at 200/100/50 ms (greedy one-to-one nearest matching; optical capture only has events inside its
  camera volume, so recall is judged against the events each reference has), precision (detections inside the
  reference's walking bouts +-0.25 s that match a reference IC within 200 ms), IC MAE and mean error (ms,
  detected - reference), left/right accuracy of matched ICs;
- FC MAE / mean error (ms); stance time MAE (ms) over strides whose start and end ICs both match (200 ms, same
  side); stance-time and step-time symmetry index SI = 100 (L - R) / (0.5 (L + R)) per trial (first and last
  stride/step of each bout dropped), error = ours - reference in percentage points;
- speed on one core (BLAS/numba threads = 1): seconds per minute of data (best of 5 after a warm-up), the
  mobgap / ours ratio, and the same on a 30-minute signal made by tiling Test11.
mobgap gives no FCs, so no FC or stance numbers for it.
"""

from __future__ import annotations

import os

# One core, as the performance goal is stated (and so that BLAS threads do not fight on a busy machine).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from analytics.algorithms.gait_events import detect_gait_events  # noqa: E402
from analytics.recording.io import read_recording  # noqa: E402
from analytics.validation.matching import match_events  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "mobgap-lab"  # vendored (Apache-2.0)
TRIALS = ("HA-001_Test11_Trial1", "HA-001_Test5_Trial1", "HA-001_Test5_Trial2")
REFERENCES = ("stereophoto", "indip")
TOL_S = 0.2


@dataclass
class Detected:
    ic_t: list[float]
    ic_side: list[str]
    fc_t: list[float] = field(default_factory=list)
    fc_side: list[str] = field(default_factory=list)
    # strides: (start_s, end_s, side, stance_s | None)
    strides: list[tuple[float, float, str, float | None]] = field(default_factory=list)
    bouts: list[tuple[float, float]] = field(default_factory=list)
    seconds: float = 0.0


def run_ours(acc: np.ndarray, gyr: np.ndarray, fs: float) -> Detected:
    ev = detect_gait_events(acc, gyr, fs)
    return Detected(
        ic_t=[e.t_s for e in ev.initial_contacts],
        ic_side=[e.side for e in ev.initial_contacts],
        fc_t=[e.t_s for e in ev.final_contacts],
        fc_side=[e.side for e in ev.final_contacts],
        strides=[(s.start_s, s.end_s, s.side, s.stance_time_s) for s in ev.strides],
        bouts=[(b.start_s, b.end_s) for b in ev.walking_bouts],
    )


def run_mobgap(acc: np.ndarray, gyr: np.ndarray, fs: float) -> Detected:
    import pandas as pd
    from mobgap.gait_sequences import GsdIluz
    from mobgap.initial_contacts import IcdIonescu
    from mobgap.laterality import LrcUllrich
    from mobgap.utils.conversions import to_body_frame

    frame = pd.DataFrame(np.column_stack([acc, gyr]), columns=["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"])
    body = to_body_frame(frame)
    gs_list = GsdIluz().detect(body, sampling_rate_hz=fs).gs_list_
    lrc = LrcUllrich(**LrcUllrich.PredefinedParameters.msproject_all)
    ic_t: list[float] = []
    ic_side: list[str] = []
    bouts = []
    for _, gs in gs_list.iterrows():
        start, end = int(gs["start"]), int(gs["end"])
        data = body.iloc[start:end].reset_index(drop=True)
        ics = IcdIonescu().detect(data, sampling_rate_hz=fs).ic_list_
        if ics.empty:
            continue
        lr = lrc.clone().predict(data, ics, sampling_rate_hz=fs).ic_lr_list_
        ic_t += [(start + int(i)) / fs for i in lr["ic"]]
        ic_side += [str(s) for s in lr["lr_label"]]
        bouts.append((start / fs, end / fs))
    return Detected(ic_t=ic_t, ic_side=ic_side, bouts=bouts)


def timed(func, acc, gyr, fs, repeats: int = 5) -> Detected:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = func(acc, gyr, fs)
        best = min(best, time.perf_counter() - t0)
    out.seconds = best
    return out


def match(ref: list[float], det: list[float], tol_s: float) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of the nearest (reference, detected) pairs within tol_s (s)."""
    return match_events(ref, det, tol_s)


def symmetry_index(left: list[float], right: list[float]) -> float | None:
    if not left or not right:
        return None
    m_l, m_r = float(np.mean(left)), float(np.mean(right))
    return 100.0 * (m_l - m_r) / (0.5 * (m_l + m_r))


def _inside(t: float, bouts: list[tuple[float, float]]) -> int:
    for k, (a, b) in enumerate(bouts):
        if a - 1e-6 <= t <= b + 1e-6:
            return k
    return -1


def stance_si(strides: list[tuple[float, float, str, float | None]], bouts: list[tuple[float, float]]) -> float | None:
    """Stance-time SI from strides, the first and last stride of each bout dropped."""
    by_bout: dict[int, list] = {}
    for s in strides:
        if s[3] is not None:
            by_bout.setdefault(_inside(s[0], bouts), []).append(s)
    left: list[float] = []
    right: list[float] = []
    for items in by_bout.values():
        items.sort()
        for s in items[1:-1]:
            (left if s[2] == "left" else right).append(s[3])
    return symmetry_index(left, right)


def step_si(ic_t: list[float], ic_side: list[str], bouts: list[tuple[float, float]]) -> float | None:
    """Step-time SI (step of side S = IC_S - preceding contralateral IC), first and last step dropped."""
    order = np.argsort(ic_t)
    t = [ic_t[i] for i in order]
    s = [ic_side[i] for i in order]
    by_bout: dict[int, list[tuple[float, str]]] = {}
    for i in range(1, len(t)):
        b = _inside(t[i], bouts)
        if b >= 0 and b == _inside(t[i - 1], bouts) and s[i] != s[i - 1]:
            by_bout.setdefault(b, []).append((t[i] - t[i - 1], s[i]))
    left: list[float] = []
    right: list[float] = []
    for items in by_bout.values():
        for dt, side in items[1:-1]:
            (left if side == "left" else right).append(dt)
    return symmetry_index(left, right)


def evaluate(det: Detected, ref: dict) -> dict[str, list]:
    r_t = [e["t_s"] for e in ref["initial_contacts"]]
    r_s = [e["side"] for e in ref["initial_contacts"]]
    pairs = match(r_t, det.ic_t, TOL_S)
    wbs = [(w["start_s"] - 0.25, w["end_s"] + 0.25) for w in ref["walking_bouts"]]
    out: dict[str, list] = {
        "n_ref": [len(r_t)],
        "n_det_in_ref": [sum(_inside(t, wbs) >= 0 for t in det.ic_t)],
        "n_match": [len(pairs)],
        "n_match100": [len(match(r_t, det.ic_t, 0.1))],
        "n_match50": [len(match(r_t, det.ic_t, 0.05))],
        "ic_err": [det.ic_t[j] - r_t[i] for i, j in pairs],
        "lr_ok": [det.ic_side[j] == r_s[i] for i, j in pairs],
        "fc_err": [],
        "stance_err": [],
        "stance_si_err": [],
        "step_si_err": [],
    }
    if det.fc_t:
        f_t = [e["t_s"] for e in ref["final_contacts"]]
        out["fc_err"] = [det.fc_t[j] - f_t[i] for i, j in match(f_t, det.fc_t, TOL_S)]
        for s in ref["strides"]:
            if s.get("stance_time_s") is None:
                continue
            cands = [
                d
                for d in det.strides
                if d[3] is not None
                and d[2] == s["side"]
                and abs(d[0] - s["start_s"]) <= TOL_S
                and abs(d[1] - s["end_s"]) <= TOL_S
            ]
            if cands:
                best = min(cands, key=lambda d: abs(d[0] - s["start_s"]))
                out["stance_err"].append(best[3] - s["stance_time_s"])
        ref_bouts = [(w["start_s"], w["end_s"]) for w in ref["walking_bouts"]]
        ref_strides = [(s["start_s"], s["end_s"], s["side"], s.get("stance_time_s")) for s in ref["strides"]]
        si_ref, si_det = stance_si(ref_strides, ref_bouts), stance_si(det.strides, det.bouts)
        if si_ref is not None and si_det is not None:
            out["stance_si_err"] = [si_det - si_ref]
    ref_bouts = [(w["start_s"], w["end_s"]) for w in ref["walking_bouts"]]
    st_ref, st_det = step_si(r_t, r_s, ref_bouts), step_si(det.ic_t, det.ic_side, det.bouts)
    if st_ref is not None and st_det is not None:
        out["step_si_err"] = [st_det - st_ref]
    return out


def summarise(m: dict[str, list]) -> dict[str, float | None]:
    def mean_abs_ms(x: list) -> float | None:
        return float(np.mean(np.abs(x)) * 1000) if x else None

    def mean_ms(x: list) -> float | None:
        return float(np.mean(x) * 1000) if x else None

    n_ref = sum(m["n_ref"])
    return {
        "IC recall@200": sum(m["n_match"]) / n_ref,
        "@100": sum(m["n_match100"]) / n_ref,
        "@50": sum(m["n_match50"]) / n_ref,
        "IC precision": sum(m["n_match"]) / max(1, sum(m["n_det_in_ref"])),
        "IC MAE ms": mean_abs_ms(m["ic_err"]),
        "IC ME ms": mean_ms(m["ic_err"]),
        "L/R acc": float(np.mean(m["lr_ok"])) if m["lr_ok"] else None,
        "FC MAE ms": mean_abs_ms(m["fc_err"]),
        "FC ME ms": mean_ms(m["fc_err"]),
        "stance MAE ms": mean_abs_ms(m["stance_err"]),
        "stance SI |err| pp": float(np.mean(np.abs(m["stance_si_err"]))) if m["stance_si_err"] else None,
        "step SI |err| pp": float(np.mean(np.abs(m["step_si_err"]))) if m["step_si_err"] else None,
    }


def fmt(v: float | None, key: str) -> str:
    if v is None:
        return "n/a"
    if "recall" in key or key.startswith("@") or "precision" in key or "L/R" in key:
        return f"{v:.3f}"
    return f"{v:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--no-mobgap", action="store_true", help="run only gaitsym's detector")
    args = parser.parse_args()
    methods = {"ours": run_ours}
    if not args.no_mobgap:
        methods["mobgap"] = run_mobgap
    warnings.filterwarnings("ignore")

    pooled: dict[tuple[str, str], dict[str, list]] = {}
    seconds = {k: 0.0 for k in methods}
    minutes = 0.0
    rows = []
    for trial in TRIALS:
        rec = read_recording(args.data / trial)
        s = rec.sensors["pelvis"]
        minutes += rec.duration_s / 60.0
        for name, func in methods.items():
            func(s.acc_mps2, s.gyr_dps, rec.sampling_rate_hz)  # warm-up (imports, numba compilation)
            det = timed(func, s.acc_mps2, s.gyr_dps, rec.sampling_rate_hz)
            seconds[name] += det.seconds
            for ref_name in REFERENCES:
                ref = json.loads((args.data / trial / f"reference_{ref_name}.json").read_text())
                m = evaluate(det, ref)
                rows.append((trial, ref_name, name, summarise(m)))
                acc = pooled.setdefault((ref_name, name), {k: [] for k in m})
                for k, v in m.items():
                    acc[k] += v
    keys = list(rows[0][3].keys())
    header = "| trial | reference | method | " + " | ".join(keys) + " |"
    rule = "|" + "---|" * (3 + len(keys))
    print(header)
    print(rule)
    for trial, ref_name, name, summ in rows:
        print(f"| {trial} | {ref_name} | {name} | " + " | ".join(fmt(summ[k], k) for k in keys) + " |")
    for (ref_name, name), m in pooled.items():
        summ = summarise(m)
        print(f"| **pooled** | {ref_name} | {name} | " + " | ".join(fmt(summ[k], k) for k in keys) + " |")
    print()
    print(f"Data: {minutes:.2f} min over {len(TRIALS)} recordings (best of 5 runs each).")
    for name, sec in seconds.items():
        print(f"- {name}: {sec:.3f} s total, {sec / minutes:.4f} s per minute of data")
    if "mobgap" in seconds:
        print(f"- mobgap / ours time ratio: {seconds['mobgap'] / seconds['ours']:.1f}x")

    # A 30-minute signal made by tiling Test11 (about 40% of it walking), best of 3 after a warm-up run.
    s = read_recording(args.data / TRIALS[0]).sensors["pelvis"]
    n = round(30 * 60 * 100.0)
    reps = -(-n // s.acc_mps2.shape[0])
    acc30, gyr30 = np.tile(s.acc_mps2, (reps, 1))[:n], np.tile(s.gyr_dps, (reps, 1))[:n]
    print()
    print("30-minute tiled Test11 (180,000 samples at 100 Hz):")
    long_seconds = {}
    for name, func in methods.items():
        func(acc30, gyr30, 100.0)
        det = timed(func, acc30, gyr30, 100.0, repeats=3)
        long_seconds[name] = det.seconds
        print(f"- {name}: {det.seconds:.3f} s ({det.seconds / 30:.4f} s per minute), {len(det.ic_t)} ICs")
    if "mobgap" in long_seconds:
        print(f"- mobgap / ours time ratio: {long_seconds['mobgap'] / long_seconds['ours']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
