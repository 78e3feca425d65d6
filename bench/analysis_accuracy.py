"""Accuracy of `analyze_recording` against simulated truth (random mounting, noise, bias), many seeds.

Run: .venv/bin/python bench/analysis_accuracy.py [--seeds 20] [--minutes 3] [--first-seed 1]
``--first-seed N`` other than 1 gives fresh sessions: seeds N.. and the asymmetries drawn from generator N
(seed 1 keeps the historical draws from generator 0).
Prints per-seed and pooled IC/FC MAE (thigh path, and pelvis-only path with no thigh sensors), stance SI error
and pelvic drop error (per side summary, and per stride matched to truth by start time).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `testing`, the repository's unshipped harnesses

from analytics.pipeline import analyze_recording  # noqa: E402
from testing.asymmetric_walks import asymmetric_walks  # noqa: E402


def match(det, ref, tol=0.2):
    ref_t = np.array([c["t_s"] for c in ref])
    out = []
    for c in det:
        i = int(np.argmin(np.abs(ref_t - c["t_s"])))
        if abs(ref_t[i] - c["t_s"]) <= tol:
            out.append((c["t_s"] - ref_t[i], c["side"] == ref[i]["side"], i))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--first-seed", type=int, default=1)
    args = ap.parse_args()
    pooled: dict[str, list[float]] = {
        k: [] for k in ("ic", "fc", "ic_mid", "fc_mid", "si", "drop", "drop_stride", "p_ic", "p_fc", "p_side", "p_si")
    }
    walks = asymmetric_walks(
        args.seeds,
        args.minutes,
        first_seed=args.first_seed,
        rng_seed=0 if args.first_seed == 1 else args.first_seed,
        on_refused=lambda seed, exc: print(f"seed {seed:2d} skipped: the simulator refused it ({exc})"),
    )
    for drawn in walks:
        s, seed = drawn.session, drawn.seed
        truth = s.truth["gait"]
        doc = analyze_recording(s.recording, exercise_analyzer=None)
        g = doc["gait"]
        row = {}
        for kind, key in (("initial_contacts", "ic"), ("final_contacts", "fc")):
            m = match(g[kind], truth[kind])
            err = np.abs([e for e, _, _ in m]) * 1e3
            pooled[key] += list(err)
            # steady state: not the bout's initiation toe offs nor the last contact of each leg
            edge = set()
            for b in truth["bouts"]:
                inside = [i for i, c in enumerate(truth[kind]) if b["start_s"] - 1.0 <= c["t_s"] <= b["end_s"] + 0.01]
                for side in ("left", "right"):
                    mine = [i for i in inside if truth[kind][i]["side"] == side]
                    if mine:
                        edge.add(mine[0] if key == "fc" else mine[-1])
            mid = [abs(e) * 1e3 for e, _, i in m if i not in edge]
            pooled[key + "_mid"] += mid
            row[key] = (float(np.mean(err)), len(m), len(truth[kind]), all(ok for _, ok, _ in m))
        a, t = g["summary"], truth["summary"]
        si_err = a["stance_si_pct"] - t["stance_si_pct"]
        drop_err = [a["pelvic_drop_deg"][k] - t["pelvic_drop_deg"][k] for k in ("left", "right")]
        pooled["si"].append(abs(si_err))
        pooled["drop"] += [abs(x) for x in drop_err]
        tstr = {(x["side"], round(x["start_s"], 2)): x for x in truth["strides"]}
        for st in g["strides"]:
            best = min(truth["strides"], key=lambda x: abs(x["start_s"] - st["start_s"]) + (x["side"] != st["side"]))
            if abs(best["start_s"] - st["start_s"]) < 0.1 and st["pelvic_drop_deg"] is not None:
                pooled["drop_stride"].append(abs(st["pelvic_drop_deg"] - best["pelvic_drop_deg"]))
        del tstr
        # pelvis-only path: no thigh sensors
        rec = replace(s.recording, sensors={"pelvis": s.recording.sensors["pelvis"]})
        p = analyze_recording(rec, exercise_analyzer=None)
        pic = match(p["gait"]["initial_contacts"], truth["initial_contacts"])
        pfc = match(p["gait"]["final_contacts"], truth["final_contacts"])
        pooled["p_ic"] += [abs(e) * 1e3 for e, _, _ in pic]
        pooled["p_fc"] += [abs(e) * 1e3 for e, _, _ in pfc]
        pooled["p_side"].append(float(np.mean([ok for _, ok, _ in pic])) if pic else 0.0)
        psi = p["gait"]["summary"]["stance_si_pct"]
        pooled["p_si"].append(abs(psi - t["stance_si_pct"]) if psi is not None else float("nan"))
        print(
            f"seed {seed:2d} SI {t['stance_si_pct']:+6.2f} ours {a['stance_si_pct']:+6.2f} | drop L/R truth "
            f"{t['pelvic_drop_deg']['left']:.2f}/{t['pelvic_drop_deg']['right']:.2f} err {drop_err[0]:+.2f}/"
            f"{drop_err[1]:+.2f} | IC MAE {row['ic'][0]:.1f} ms ({row['ic'][1]}/{row['ic'][2]}, sides ok "
            f"{row['ic'][3]}) FC MAE {row['fc'][0]:.1f} ms ({row['fc'][1]}/{row['fc'][2]}) | pelvis-only IC MAE "
            f"{np.mean([abs(e) for e, _, _ in pic]) * 1e3:.1f} ms, L/R {pooled['p_side'][-1]:.2f}"
        )
    q = {k: np.asarray(v, dtype=float) for k, v in pooled.items()}
    print(f"\npooled over {args.seeds} seeds x {args.minutes:g} min (walk script, random mounting, noise, bias):")
    print(
        f"thigh path: IC MAE {q['ic'].mean():.1f} ms (p95 {np.percentile(q['ic'], 95):.1f}), FC MAE "
        f"{q['fc'].mean():.1f} ms (p95 {np.percentile(q['fc'], 95):.1f}); without bout-edge events (initiation toe "
        f"off, last contact of each leg): IC {q['ic_mid'].mean():.1f} ms, FC {q['fc_mid'].mean():.1f} ms"
    )
    print(f"stance SI |error|: mean {q['si'].mean():.2f} pp, max {q['si'].max():.2f} pp")
    print(
        f"pelvic drop |error| of the side means: mean {q['drop'].mean():.2f} deg, max {q['drop'].max():.2f} deg; "
        f"per stride: mean {q['drop_stride'].mean():.2f} deg, p95 {np.percentile(q['drop_stride'], 95):.2f} deg"
    )
    print(
        f"pelvis-only path: IC MAE {q['p_ic'].mean():.1f} ms, FC MAE {q['p_fc'].mean():.1f} ms, L/R accuracy "
        f"mean {q['p_side'].mean():.2f}, stance SI |error| mean {np.nanmean(q['p_si']):.1f} pp"
    )


if __name__ == "__main__":
    main()
