"""A sensor's raw samples put on the session's grid as they arrive (`analytics.pipeline.live_grid.RawOnGrid`), against
the grid `load_segment` builds from all of them at once (`np.interp` of each channel): the same bits, however the
samples came, each raw sample read about once (counted, never timed)."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.pipeline.live_grid import RawOnGrid

PERIOD_US = 10_000.0


def load_segment_grid(t: np.ndarray, vals: np.ndarray, t0: int, k_end: int) -> np.ndarray:
    """The grid `analytics.worker.segments.load_segment` makes of these samples."""
    rel = (t - t0).astype(np.float64)
    grid = np.arange(k_end, dtype=np.float64) * PERIOD_US
    return np.column_stack([np.interp(grid, rel, vals[:, c]) for c in range(6)])


@pytest.mark.parametrize("on_grid", [False, True])
def test_samples_fed_in_pieces_make_the_grid_of_all_of_them_read_about_once(on_grid: bool) -> None:
    """Fed in pieces of any size (a sensor's batches, another sensor ahead of it), every grid instant is what
    `np.interp` over all the samples gives, to the bit, including instants that fall exactly on a sample (simulated
    clocks: ``on_grid``); each call reads its instants' samples plus the two around them, not what was kept."""
    rng = np.random.default_rng(7 + on_grid)
    for _ in range(20):
        n = 2000
        steps = np.full(n, 10_000) if on_grid else rng.integers(9_900, 10_100, n)
        t = 1_700_000_000_000_000 + np.cumsum(steps) + (0 if on_grid else int(rng.integers(0, 10_000)))
        vals = rng.normal(size=(n, 6)) * 40.0
        t0 = int(np.ceil(t[0] / PERIOD_US) * PERIOD_US)
        feed = RawOnGrid(t0, PERIOD_US, capacity=16)
        got, i, k, calls = [], 0, 0, 0
        while i < n:
            m = int(rng.integers(1, 120))
            feed.append(t[i : i + m], vals[i : i + m, :3], vals[i : i + m, 3:])
            i += m
            if rng.random() < 0.3:
                continue  # the grid waits for another sensor: this one's samples wait unread
            k_end = int(feed.reach_us // PERIOD_US) + 1
            if k_end > k:
                got.append(feed.grid(k, k_end))
                k, calls = k_end, calls + 1
        want = load_segment_grid(t, vals, t0, k)
        assert np.array_equal(np.concatenate(got), want)
        assert feed.interpolated <= n + 2 * calls
