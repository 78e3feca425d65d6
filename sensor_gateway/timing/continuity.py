"""Continuity of the clock mappings a sensor's consecutive batches are published with (pure: no IO, no clocks).

Why. Every raw batch carries its own mapping (the fit when the batch closed) and the worker stores each
sample at the time *its own batch's* mapping gives it, in a store keyed by (subject, placement, time). The fit
is not monotonic from batch to batch: early in a stream it changes mode (rate 1 with the middle of the
arrival / round-trip band, then an arrival-only envelope slope, then the round trips' midpoint line) and its
value at a given sensor time moves by up to 20-30 ms, backwards as well as forwards; later it moves by tenths
of a ms, and the host's wall clock can be stepped back. A step back between two batches gives the first
samples of a batch times at or before the last samples of the previous one: out of time order, or, when the
times coincide, overwriting them in the store.

Rule (`MappingContinuity.apply`, per placement). The batch's mapping keeps the fit's rate (so ``rate`` and
``drift_ppm`` stay the fit's, consistent with each other) and only its offset may be *raised*, just enough that
the batch's first sample is mapped at least ``min_step`` sample periods (default 0.5) after the previous
batch's last mapped sample. The raise is recomputed from the fit at every batch, never carried, so while the
fit stays put each following batch takes back up to ``1 - min_step`` of a period at its first sample (5 ms
per batch at 100 Hz: a 20 ms step back is absorbed in 4 batches) and the mapping is the fit again as soon as
the fit no longer maps the first sample before the floor. A fit that moves forward is followed at once (a
longer interval at the boundary; nothing is reordered). The published mapping is exactly what was used: the
worker recomputes every sample time from it, and the times it gets are the ones checked here.

Units: sensor time in unwrapped µs; mapped times in seconds of the caller's domain (the published UTC when the
gateway clock is synchronised: the domain the store keys on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sensor_gateway.timing.errors import TimingError


@dataclass(frozen=True)
class ContinuityStep:
    """What `MappingContinuity.apply` did for one batch."""

    ref_s: float
    """The mapping's offset to publish (the fit's ``ref_s`` plus ``raised_s``)."""
    raised_s: float
    """How much the fit's offset was raised (0: the fit is published as it is)."""
    first_s: float
    """Mapped time of the batch's first sample."""
    last_s: float
    """Mapped time of the batch's last sample (the floor of the next batch is this + ``min_step`` periods)."""


class MappingContinuity:
    """Per-placement memory of the last mapped sample; see the module docstring."""

    def __init__(self, min_step: float = 0.5) -> None:
        if not 0.0 < min_step < 1.0:
            raise TimingError(f"min_step: {min_step!r} must be a fraction of a sample period in (0, 1)")
        self.min_step = min_step
        self.last_s: float | None = None
        """Mapped time of the last sample of the last batch (None: no earlier batch, no floor)."""
        self.raised = 0
        """Batches whose offset had to be raised."""
        self.max_raised_s = 0.0

    def seed(self, last_s: float | None) -> None:
        """Continue after an earlier gateway process (its last mapped sample, persisted with the batch)."""
        if last_s is not None and math.isfinite(last_s) and (self.last_s is None or last_s > self.last_s):
            self.last_s = last_s

    def apply(
        self, ref_sensor_us: int, ref_s: float, rate: float, t_first_us: int, t_last_us: int, period_s: float
    ) -> ContinuityStep:
        """The offset to publish for a batch of samples ``t_first_us``..``t_last_us`` mapped by the line
        ``ref_s + rate * (t - ref_sensor_us) * 1e-6``; remembers the batch's last mapped sample."""
        if not (math.isfinite(ref_s) and rate > 0 and period_s > 0) or t_last_us < t_first_us:
            raise TimingError(f"mapping ref_s={ref_s!r} rate={rate!r} period_s={period_s!r} or batch span is invalid")
        first = ref_s + rate * (t_first_us - ref_sensor_us) * 1e-6
        raised = 0.0
        if self.last_s is not None:
            floor = self.last_s + self.min_step * period_s
            if first < floor:
                raised = floor - first
                self.raised += 1
                self.max_raised_s = max(self.max_raised_s, raised)
        ref_s += raised
        first += raised
        last = ref_s + rate * (t_last_us - ref_sensor_us) * 1e-6
        self.last_s = last
        return ContinuityStep(ref_s, raised, first, last)
