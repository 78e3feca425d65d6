"""One sensor's raw samples put on a session's common grid as they arrive, for the live analysis: each grid instant
interpolated once, from the two raw samples around it, exactly as `np.interp` over all the samples gives it (what
`analytics.worker.segments.load_segment` builds a segment's grid with), at the cost of the new samples.

Units: times µs (the grid's instants from its first, ``t0_us``), values as given (acc m/s^2, gyr deg/s).
"""

from __future__ import annotations

import numpy as np

from analytics.errors import InvalidSignal


class RawOnGrid:
    """The raw samples of one placement not yet behind the grid (the last one at or before the newest grid instant
    made, and those after it), in arrays with room to append: appending copies only the new samples, and each
    `grid` call reads only the raw samples around the instants it makes (``interpolated`` counts them: the new
    instants' samples plus the two at their ends), never interpolates past the newest raw sample appended (a sample
    not stored yet could lie between: the caller waits for it), and keeps the one before the next instant."""

    def __init__(self, t0_us: int, period_us: float, capacity: int = 256) -> None:
        self.t0_us = int(t0_us)
        self.period_us = float(period_us)
        self._rel = np.empty(max(2, capacity))
        """Sample times from ``t0_us``, µs (float64, as `load_segment` interpolates in)."""
        self._vals = np.empty((max(2, capacity), 6))
        self._lo = 0
        """Row of the oldest sample kept."""
        self._n = 0
        """Rows written."""
        self.interpolated = 0
        """Raw samples the interpolations read (each call: its instants' samples and the two around them)."""

    def __len__(self) -> int:
        return self._n - self._lo

    @property
    def reach_us(self) -> float:
        """Time of the newest raw sample from ``t0_us`` (µs; -inf: none)."""
        return float(self._rel[self._n - 1]) if self._n > self._lo else -np.inf

    def append(self, time_us: np.ndarray, acc: np.ndarray, gyr: np.ndarray) -> None:
        """Samples after the last one appended (``time_us`` µs since 1970, in sequence order; ``acc``, ``gyr``
        (m, 3)). Their times are taken as they are, as `load_segment` takes them."""
        m = int(time_us.shape[0])
        if not m:
            return
        if acc.shape != (m, 3) or gyr.shape != (m, 3):
            raise InvalidSignal(f"raw samples must be (m, 3) acc and gyr for {m} times, got {acc.shape} {gyr.shape}")
        kept = self._n - self._lo
        # room runs out, or is far more than needed (a cold start's samples are on the grid): move or shrink
        if self._n + m > self._rel.shape[0] or self._rel.shape[0] > 8 * max(64, kept + m):
            size = 2 * max(64, kept + m)
            rel, vals = (np.empty(size), np.empty((size, 6))) if size != self._rel.shape[0] else (self._rel, self._vals)
            rel[:kept] = self._rel[self._lo : self._n]
            vals[:kept] = self._vals[self._lo : self._n]
            self._rel, self._vals, self._lo, self._n = rel, vals, 0, kept
        rel = self._rel[self._n : self._n + m]
        np.subtract(time_us, self.t0_us, out=rel, casting="unsafe")
        self._vals[self._n : self._n + m, :3] = acc
        self._vals[self._n : self._n + m, 3:] = gyr
        self._n += m

    def grid(self, k0: int, k1: int) -> np.ndarray:
        """Rows (k1 - k0, 6) of grid instants ``k0..k1`` (indices from ``t0_us``; every one within the raw samples'
        span), as `np.interp` of each channel over every raw sample gives them; then forgets the raw samples before
        the last one at or before instant ``k1 - 1``."""
        g = np.arange(k0, k1, dtype=np.float64) * self.period_us
        rel = self._rel[self._lo : self._n]
        # the samples around the new instants only: from the last one at or before the first instant to the first
        # one after the last instant
        a = max(0, int(rel.searchsorted(g[0], side="right")) - 1)
        keep = max(0, int(rel.searchsorted(g[-1], side="right")) - 1)
        b = min(rel.size, keep + 2)
        r, fp = rel[a:b], self._vals[self._lo + a : self._lo + b]
        self.interpolated += b - a
        self._lo += keep
        if r.size < 2 or g[0] < r[0]:  # outside the samples: np.interp's end values (no caller asks for these)
            return np.stack([np.interp(g, r, fp[:, c]) for c in range(6)], axis=1)
        # np.interp's arithmetic, all six channels at once: the slope of each interval (as np.interp computes it
        # for more instants than samples), then slope * (x - xp[j]) + fp[j]
        slope = fp[1:] - fp[:-1]
        slope /= (r[1:] - r[:-1])[:, None]
        j = r.searchsorted(g, side="right") - 1
        tail = g[-1] >= r[-1]
        if tail:  # an instant on the newest sample: np.interp gives that sample's values
            np.minimum(j, r.size - 2, out=j)
        out = slope[j]
        out *= (g - r[j])[:, None]
        out += fp[j]
        if tail:
            out[g >= r[-1]] = fp[-1]
        return out


__all__ = ["RawOnGrid"]
