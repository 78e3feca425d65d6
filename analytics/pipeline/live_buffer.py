"""A bounded buffer of the latest samples of a session's sensors, for the live analysis (`analytics.pipeline.live`).

Rows are acc x y z (m/s^2) and gyr x y z (deg/s) on the session's common grid; indices count samples from the
first one the live analysis was given.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


class SampleBuffer:
    """The latest ``keep`` samples of every placement (acc x y z, gyr x y z per row: ``width`` columns) in arrays
    with room to append: the kept rows move to the front only when the room is used up, so each sample is copied a
    bounded number of times whatever the session's length. ``first`` is the absolute index of the oldest sample kept."""

    def __init__(self, placements: tuple[str, ...], keep: int, width: int = 6) -> None:
        self.keep = max(1, keep)
        self.data = {p: np.zeros((2 * self.keep, width)) for p in placements}
        self.off = 0
        """Row of the oldest sample kept."""
        self.n = 0
        """Rows written."""
        self.first = 0

    @property
    def end(self) -> int:
        return self.first + self.n - self.off

    def append(self, rows: Mapping[str, np.ndarray]) -> None:
        m = next(iter(rows.values())).shape[0]
        if m >= self.keep:  # more than is kept: only the newest
            self.first = self.end + m - self.keep
            rows = {p: r[-self.keep :] for p, r in rows.items()}
            self.off, self.n, m = 0, 0, self.keep
        elif self.n + m > 2 * self.keep:
            kept = self.n - self.off
            for a in self.data.values():
                a[:kept] = a[self.off : self.n]
            self.off, self.n = 0, kept
        for p, r in rows.items():
            self.data[p][self.n : self.n + m] = r
        self.n += m
        if self.n - self.off > self.keep:
            drop = self.n - self.off - self.keep
            self.off += drop
            self.first += drop

    def rows(self, placement: str, start: int, end: int) -> np.ndarray:
        """Rows of absolute indices ``start..end`` (a view)."""
        return self.data[placement][self.off + start - self.first : self.off + end - self.first]

    def clear(self, first: int) -> None:
        self.off = self.n = 0
        self.first = first


__all__ = ["SampleBuffer"]
