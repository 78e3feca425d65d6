"""Event matching for validation: one-to-one, nearest first, within tolerance; equal to the brute-force rule."""

from __future__ import annotations

import numpy as np

from analytics.validation.matching import match_events


def _brute_force(ref, det, tol):
    cand = sorted((abs(r - d), i, j) for i, r in enumerate(ref) for j, d in enumerate(det) if abs(r - d) <= tol)
    used_r, used_d, pairs = set(), set(), []
    for _, i, j in cand:
        if i not in used_r and j not in used_d:
            used_r.add(i)
            used_d.add(j)
            pairs.append((i, j))
    return pairs


def test_nearest_pairs_win_and_each_event_is_used_once():
    ref = [1.0, 2.0, 3.0]
    det = [1.05, 1.1, 2.5, 3.19, 9.0]
    assert sorted(match_events(ref, det, 0.2)) == [(0, 0), (2, 3)]


def test_equals_the_brute_force_rule_on_random_events():
    rng = np.random.default_rng(7)
    for _ in range(200):
        # times on a 100 Hz grid, as real events are: equal distances (ties) are common
        ref = np.sort(np.round(rng.uniform(0, 30, rng.integers(0, 60)), 2)).tolist()
        det = np.round(rng.uniform(0, 30, rng.integers(0, 60)), 2).tolist()
        for tol in (0.05, 0.2):  # exactly-tol distances are common on a 10 ms grid
            assert sorted(match_events(ref, det, tol)) == sorted(_brute_force(ref, det, tol))


def test_empty_inputs_match_nothing():
    assert match_events([], [1.0], 0.2) == [] and match_events([1.0], [], 0.2) == []
