"""Pelvis-only gait events against the simulator's ground truth (random mounting, noise, biases), with stance
asymmetry both ways: the targets that real data also meets (bench/gait_events_sim.py runs 20 seeds)."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.algorithms.gait_events import detect_gait_events
from analytics.validation.matching import match_events
from simulator import simulate_session


@pytest.mark.parametrize(("seed", "si_pct", "drop_left", "drop_right"), [(4, 5.0, 1.0, 6.0), (17, -5.0, 7.0, 2.0)])
def test_pelvis_only_events_match_simulated_truth(seed: int, si_pct: float, drop_left: float, drop_right: float):
    s = simulate_session(
        seed=seed,
        script="walk",
        minutes=2.0,
        stance_asymmetry_pct=si_pct,
        pelvic_drop_left_deg=drop_left,
        pelvic_drop_right_deg=drop_right,
    )
    truth = s.truth["gait"]
    p = s.recording.sensors["pelvis"]
    ev = detect_gait_events(p.acc_mps2, p.gyr_dps, s.recording.sampling_rate_hz)
    ref = truth["initial_contacts"]
    pairs = match_events([c["t_s"] for c in ref], [e.t_s for e in ev.initial_contacts], 0.2)
    assert len(pairs) >= 0.9 * len(ref)
    assert np.mean([abs(ev.initial_contacts[j].t_s - ref[i]["t_s"]) for i, j in pairs]) <= 0.040
    assert np.mean([ev.initial_contacts[j].side == ref[i]["side"] for i, j in pairs]) >= 0.95
    stance_err = []
    for st in ev.strides:
        best = min(truth["strides"], key=lambda x: abs(x["start_s"] - st.start_s))
        if st.stance_time_s is not None and abs(best["start_s"] - st.start_s) <= 0.1 and best["side"] == st.side:
            stance_err.append(abs(st.stance_time_s - best["stance_time_s"]))
    assert len(stance_err) >= 0.8 * len(truth["strides"])
    assert np.mean(stance_err) <= 0.070
    # summary rule: without the first and last stride of each side in each bout
    by_side: dict[str, list[float]] = {"left": [], "right": []}
    for bout in ev.walking_bouts:
        for side in ("left", "right"):
            mine = [x for x in ev.strides if x.side == side and bout.start_s <= x.start_s <= bout.end_s]
            by_side[side] += [x.stance_time_s for x in mine[1:-1] if x.stance_time_s is not None]
    left, right = np.mean(by_side["left"]), np.mean(by_side["right"])
    si = 100.0 * (left - right) / (0.5 * (left + right))
    assert si == pytest.approx(truth["summary"]["stance_si_pct"], abs=4.0)
