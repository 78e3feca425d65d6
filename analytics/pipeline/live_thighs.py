"""One thigh's contacts for the live gait analysis, carried from window to window: its swings are filtered once
when new and kept once settled (`ThighTrack`), so a window's contact rule costs what is new, not the window's span.
Contacts as `analytics.algorithms.thigh_events.detect_thigh_events` gives them over the window.

Units: samples (absolute indices of the session's common grid), s, deg/s."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from analytics.algorithms.thigh_events import MAX_SWING_S, SwingCandidates, ThighEvents, select_swings, swing_candidates

THIGH_EDGE_S = 0.5
"""The thigh contact rule's 15 Hz zero-phase low-pass (4th order, odd padding) of a stretch differs from that of a
longer one by under 1e-7 deg/s further than this from the stretch's ends (measured on simulated walks: 0.06 deg/s at
5 samples, 3e-4 at 20, 8e-7 at 40, 3e-8 at 50): a swing whose lobe closed this far before the newest sample is
settled, the same for every later window."""
THIGH_BACK_S = 1.5
"""A thigh's new samples are filtered with this much before the first unsettled swing: the swing's positive lobe
before its peak (its toe off and excursion are measured from the lobe's start: the flexion velocity turns positive
near peak hip extension, ~50 % of the cycle, and peaks in mid-swing at 68 %, so ~0.4 s before the peak for a
2-s stride, slower than any walking bout allows) and `THIGH_EDGE_S` of settling before that."""


class ThighTrack:
    """One thigh's swing candidates (`swing_candidates`) over the samples seen so far, in absolute samples: those
    whose lobe closed `THIGH_EDGE_S` before the newest sample filtered are settled and kept; each update filters only
    from `THIGH_BACK_S` before the first unsettled one to the newest sample. A window's contacts are then
    `select_swings` of the candidates in its span with its walking mask: what `detect_thigh_events` over the window
    gives, except that a swing's lobe is never cut at the window's start (the track began earlier)."""

    def __init__(self, axis: np.ndarray, begin: int) -> None:
        self.axis = axis
        self.begin = begin
        """Absolute index the track's first stretch started at (candidates there may have their lobe cut)."""
        self.settled = begin
        """Candidates peaking before this absolute index are settled."""
        self.end = begin
        """Absolute index one past the newest sample filtered."""
        self.rows = np.zeros((0, 7))
        """Per candidate, sorted by peak: peak (absolute index), height, excursion_ok, swing (1.0/0.0), toe off,
        initial contact, swing peak (s from absolute index 0; NaN for no swing): one array, so that an update or
        a window's selection is a few calls whatever the number of candidates."""

    def update(self, gyr: Callable[[int, int], np.ndarray], first: int, end: int, fs: float) -> int:
        """Filter the samples from `THIGH_BACK_S` before the first unsettled candidate (not before ``first``, the
        oldest sample kept) to ``end`` (``gyr(a, b)``: the thigh's gyro rows of absolute indices a..b); the samples
        filtered (0: nothing to do, or too few)."""
        if end <= self.end:
            return 0
        a = max(self.begin, first, self.settled - round(THIGH_BACK_S * fs))
        if end - a < fs:  # shorter than the filter's padding allows and no swing fits: the next call
            return 0
        # the settled candidates' times are kept already: not worked out again
        c = swing_candidates(gyr(a, end) @ self.axis, fs, times_from=self.settled - a)
        peak = c.peak + a
        edge = end - round(THIGH_EDGE_S * fs)
        # a candidate waits while its lobe is open, up to MAX_SWING_S after its peak: then it is no swing whatever
        # follows (a peak flexion later than that is not used), so a thigh held flexed (sitting) does not keep
        # every later update filtering from it; only its lobe's excursion could still grow, and with it whether it
        # keeps a neighbour within MIN_STRIDE_S out (`select_swings`), which no walking swing has
        fresh = peak >= self.settled
        open_lobe = fresh & (c.lobe_end + a >= edge) & (peak + round(MAX_SWING_S * fs) >= edge)
        # one array built and shifted in place: a fraction of column_stack's per-column calls
        new = np.array(
            [peak, c.height, c.excursion_ok, c.swing, c.toe_off_s, c.initial_contact_s, c.swing_peak_s],
            dtype=np.float64,
        ).T[fresh]
        new[:, 4:] += a / fs
        kept = self.rows[: int(np.searchsorted(self.rows[:, 0], self.settled))]
        self.rows = np.concatenate([kept, new])
        self.settled = max(self.settled, min(edge, int(peak[open_lobe].min()) if open_lobe.any() else edge))
        self.end = end
        return end - a

    def forget_before(self, index: int) -> None:
        """Drop the candidates peaking before absolute ``index`` (older than any window looks)."""
        self.rows = self.rows[int(np.searchsorted(self.rows[:, 0], index)) :]

    def events(self, start: int, end: int, fs: float, region_mask: np.ndarray | None = None) -> ThighEvents:
        """The contacts of absolute samples ``start..end`` (s from ``start``), as `detect_thigh_events` over them
        with ``region_mask`` (bool, end - start) gives them (class docstring)."""
        lo, hi = np.searchsorted(self.rows[:, 0], [start, end])
        r = self.rows[lo:hi]
        rel = r[:, 0].astype(np.int64) - start
        t = r[:, 4:].T - start / fs
        # lobe bounds are not kept: `select_swings` does not use them
        c = SwingCandidates(rel, r[:, 1], rel, rel, r[:, 2] > 0, r[:, 3] > 0, t[0], t[1], t[2], end - start)
        return select_swings(c, fs, None if region_mask is None else region_mask[rel])
