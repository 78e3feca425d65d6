"""Pelvis-only gait events against simulated ground truth, many seeds; and (``--evidence``) the event-locked
signal patterns of real and simulated lower-back recordings that the simulator's walking is checked against.

Run:  .venv/bin/python bench/gait_events_sim.py [--seeds 20] [--minutes 3] [--evidence]

Detector: ``analytics.algorithms.gait_events.detect_gait_events`` on the simulated pelvis sensor only (random
mounting, default noise and biases), per seed a random stance SI in [-10, 10] % and pelvic drops in [0, 8] deg
(as ``bench/analysis_accuracy.py``). Against the simulator's truth (``truth.json`` gait block):
- IC and FC: greedy one-to-one nearest matching within 200 ms (``analytics.validation.matching``); recall,
  MAE (ms), left/right accuracy of matched ICs;
- stance time MAE (ms) over detected strides whose start matches a truth stride of the same side (100 ms);
- stance SI |error| (percentage points): SI of the detected strides (first and last stride of each side in
  each detected bout dropped, the summary rule) minus the truth summary SI.

``--evidence``: per reference event (real: both references of tests/data/mobgap-lab, sides known;
simulated: truth of seeds 1-3, aligned mounting, 3 min), the mean of body-frame signals from 300 ms before to
600 ms after the event, each signed so that + points to the side of the event's foot (ML acceleration, yaw and
roll rates) -- the signals and sign conventions the detector's cues use. The real sensor frame is x up,
y right, z forward (recording.json); the simulated aligned sensor frame is the pelvis frame x forward, y left,
z up. Signals: 8 Hz low-passed (4th order Butterworth, zero phase); the yaw rate also 0.5 Hz high-passed (as the
detector does, removing turns). Also the stride-frequency fundamental (amplitude, phase of its maximum as a
fraction of the stride after the IC) of the side-signed ML acceleration and yaw rate around ICs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import signal

from analytics.algorithms.gait_events import GaitEvents, detect_gait_events
from analytics.validation.matching import match_events
from simulator.session import simulate_session

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "mobgap-lab"  # vendored (Apache-2.0)
TOL_S = 0.2
FS = 100.0
LAGS = np.arange(-30, 61)  # samples at 100 Hz: -300 .. +600 ms


def _si(left: list[float], right: list[float]) -> float | None:
    if not left or not right:
        return None
    a, b = float(np.mean(left)), float(np.mean(right))
    return 100.0 * (a - b) / (0.5 * (a + b))


def detected_stance_si(ev: GaitEvents) -> float | None:
    """Stance SI of the detected strides, first and last stride of each side in each bout dropped."""
    per: dict[tuple[int, str], list[tuple[float, float | None]]] = {}
    for s in ev.strides:
        bout = next((i for i, b in enumerate(ev.walking_bouts) if b.start_s - 1e-6 <= s.start_s <= b.end_s), -1)
        per.setdefault((bout, s.side), []).append((s.start_s, s.stance_time_s))
    vals: dict[str, list[float]] = {"left": [], "right": []}
    for (_, side), rows in per.items():
        rows.sort()
        vals[side] += [st for _, st in rows[1:-1] if st is not None]
    return _si(vals["left"], vals["right"])


def evaluate_seed(seed: int, si_pct: float, drop_l: float, drop_r: float, minutes: float) -> dict[str, list[float]]:
    s = simulate_session(
        seed=seed,
        script="walk",
        minutes=minutes,
        stance_asymmetry_pct=si_pct,
        pelvic_drop_left_deg=drop_l,
        pelvic_drop_right_deg=drop_r,
    )
    truth = s.truth["gait"]
    pel = s.recording.sensors["pelvis"]
    ev = detect_gait_events(pel.acc_mps2, pel.gyr_dps, s.recording.sampling_rate_hz)
    out: dict[str, list[float]] = {k: [] for k in ("ic", "fc", "side", "stance", "recall_ic", "recall_fc", "si")}
    for kind, key, det in (
        ("initial_contacts", "ic", ev.initial_contacts),
        ("final_contacts", "fc", ev.final_contacts),
    ):
        ref = truth[kind]
        pairs = match_events([c["t_s"] for c in ref], [e.t_s for e in det], TOL_S)
        out[key] += [abs(det[j].t_s - ref[i]["t_s"]) * 1e3 for i, j in pairs]
        out["recall_" + key].append(len(pairs) / max(len(ref), 1))
        if key == "ic":
            out["side"] += [float(det[j].side == ref[i]["side"]) for i, j in pairs]
    for st in ev.strides:
        if st.stance_time_s is None:
            continue
        best = min(truth["strides"], key=lambda x: abs(x["start_s"] - st.start_s))
        if abs(best["start_s"] - st.start_s) <= 0.1 and best["side"] == st.side:
            out["stance"].append(abs(st.stance_time_s - best["stance_time_s"]) * 1e3)
    si = detected_stance_si(ev)
    out["si"].append(abs(si - truth["summary"]["stance_si_pct"]) if si is not None else float("nan"))
    return out


def run_bench(seeds: int, minutes: float) -> None:
    rng = np.random.default_rng(0)
    pooled: dict[str, list[float]] = {}
    print("| seed | SI truth % | IC MAE ms | FC MAE ms | L/R acc | stance MAE ms | stance SI err pp |")
    print("|---|---|---|---|---|---|---|")
    for seed in range(1, seeds + 1):
        si = float(rng.uniform(-10, 10))
        dl, dr = (float(x) for x in rng.uniform(0, 8, 2))
        r = evaluate_seed(seed, si, dl, dr, minutes)
        for k, v in r.items():
            pooled.setdefault(k, []).extend(v)
        print(
            f"| {seed} | {si:+.1f} | {np.mean(r['ic']):.1f} | {np.mean(r['fc']):.1f} | {np.mean(r['side']):.3f} | "
            f"{np.mean(r['stance']):.1f} | {r['si'][0]:.2f} |"
        )
    q = {k: np.asarray(v, dtype=float) for k, v in pooled.items()}
    print(
        f"\npooled over {seeds} seeds x {minutes:g} min (walk script, random mounting, noise, bias): "
        f"IC recall {q['recall_ic'].mean():.3f}, IC MAE {q['ic'].mean():.1f} ms, "
        f"FC recall {q['recall_fc'].mean():.3f}, "
        f"FC MAE {q['fc'].mean():.1f} ms, L/R accuracy {q['side'].mean():.3f}, stance MAE {q['stance'].mean():.1f} ms "
        f"(n {q['stance'].size}), stance SI |error| mean {np.nanmean(q['si']):.2f} pp, max {np.nanmax(q['si']):.2f} pp"
    )


# ---------------------------------------------------------------------------------------------- evidence


def _lp(x: np.ndarray, f: float = 8.0) -> np.ndarray:
    return signal.sosfiltfilt(signal.butter(4, f, "lowpass", fs=FS, output="sos"), x, axis=0)


def _hp(x: np.ndarray, f: float = 0.5) -> np.ndarray:
    return signal.sosfiltfilt(signal.butter(2, f, "highpass", fs=FS, output="sos"), x, axis=0)


SIDED = ("a_ml", "yaw", "roll")


def body_signals(acc: np.ndarray, gyr: np.ndarray) -> dict[str, np.ndarray]:
    """acc (m/s^2), gyr (deg/s) as body columns forward, left, up -> named event-locking signals."""
    a = _lp(acc - acc.mean(0))
    g = _lp(gyr)
    return {"a_v": a[:, 2], "a_ap": a[:, 0], "a_ml": a[:, 1], "yaw": _hp(g[:, 2]), "roll": g[:, 0]}


def _locked(x: np.ndarray, events: list[dict], sided: bool) -> np.ndarray:
    rows = []
    for e in events:
        i = round(e["t_s"] * FS)
        if i + LAGS[0] < 0 or i + LAGS[-1] >= x.size:
            continue
        rows.append((1.0 if e["side"] == "left" or not sided else -1.0) * x[i + LAGS])
    return np.asarray(rows)


def _collect(into: dict, sig: dict[str, np.ndarray], ref: dict) -> None:
    for kind in ("initial_contacts", "final_contacts"):
        for name, x in sig.items():
            into.setdefault((kind, name), []).append(_locked(x, ref[kind], name in SIDED))


def real_locked(reference: str) -> dict:
    import pandas as pd

    res: dict = {}
    for trial in sorted(DATA.iterdir()):
        f = pd.read_csv(trial / "pelvis.csv")
        a = f[["acc_x", "acc_y", "acc_z"]].to_numpy()  # x up, y right, z forward
        g = f[["gyr_x", "gyr_y", "gyr_z"]].to_numpy()
        acc = np.column_stack([a[:, 2], -a[:, 1], a[:, 0]])
        gyr = np.column_stack([g[:, 2], -g[:, 1], g[:, 0]])
        _collect(res, body_signals(acc, gyr), json.loads((trial / f"reference_{reference}.json").read_text()))
    return {k: np.concatenate(v) for k, v in res.items()}


def sim_locked(seeds: tuple[int, ...] = (1, 2, 3)) -> tuple[dict, float]:
    res: dict = {}
    strides = []
    for seed in seeds:
        s = simulate_session(seed=seed, script="walk", minutes=3, mounting="aligned")
        d = s.recording.sensors["pelvis"]  # aligned: x forward, y left, z up
        _collect(res, body_signals(d.acc_mps2, d.gyr_dps), s.truth["gait"])
        strides += [x["end_s"] - x["start_s"] for x in s.truth["gait"]["strides"]]
    return {k: np.concatenate(v) for k, v in res.items()}, float(np.median(strides))


def _fundamental(curve: np.ndarray, stride_s: float) -> tuple[float, float]:
    t = LAGS / FS
    w = 2 * np.pi / stride_s
    x = np.column_stack([np.cos(w * t), np.sin(w * t), np.ones_like(t)])
    a, b, _ = np.linalg.lstsq(x, curve, rcond=None)[0]
    return float(np.hypot(a, b)), float((np.arctan2(b, a) / (2 * np.pi)) % 1.0)


def real_stride_s() -> float:
    vals = []
    for trial in sorted(DATA.iterdir()):
        ref = json.loads((trial / "reference_stereophoto.json").read_text())
        vals += [s["stride_time_s"] for s in ref["strides"] if s["stride_time_s"]]
    return float(np.median(vals))


def run_evidence() -> None:
    sources = {"real/optical": (real_locked("stereophoto"), real_stride_s()), "real/INDIP": (real_locked("indip"), 0)}
    sources["real/INDIP"] = (sources["real/INDIP"][0], sources["real/optical"][1])
    sources["simulator"] = sim_locked()
    picks = (-200, -100, -50, 0, 50, 100, 150, 200, 300, 400)
    idx = [int(np.flatnonzero(p // 10 == LAGS)[0]) for p in picks]
    print("Mean event-locked body-frame signals (+ toward the event foot's side for a_ml, yaw, roll); m/s^2, deg/s\n")
    print("| event | signal | source | n | " + " | ".join(f"{p:+d} ms" for p in picks) + " | P(>0) at 0 ms |")
    print("|---|---|---|---|" + "---|" * (len(picks) + 1))
    for kind in ("initial_contacts", "final_contacts"):
        for name in ("a_v", "a_ml", "yaw", "roll", "a_ap"):
            for label, (res, _) in sources.items():
                m = res[(kind, name)]
                mean = m.mean(0)
                p0 = float(np.mean(m[:, int(np.flatnonzero(LAGS == 0)[0])] > 0))
                vals = " | ".join(f"{mean[i]:+.2f}" for i in idx)
                print(f"| {kind[:7]} | {name} | {label} | {len(m)} | {vals} | {p0:.2f} |")
    print("\nStride-frequency fundamental around ICs (amplitude; phase of its maximum, fraction of a stride after IC)")
    for label, (res, stride) in sources.items():
        parts = []
        for name in ("a_ml", "yaw"):
            amp, ph = _fundamental(res[("initial_contacts", name)].mean(0), stride)
            parts.append(f"{name} {amp:.2f} max at {ph:.2f} (min at {(ph + 0.5) % 1:.2f})")
        print(f"- {label} (median stride {stride:.2f} s): " + "; ".join(parts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--evidence", action="store_true", help="print the real vs simulated event-locked signals")
    args = ap.parse_args()
    if args.evidence:
        run_evidence()
    else:
        run_bench(args.seeds, args.minutes)


if __name__ == "__main__":
    main()
