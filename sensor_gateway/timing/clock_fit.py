"""Running sensor-clock -> host-clock fit that is robust to bursty BLE arrival (pure: no IO, no clock reads).

Model. A sample stamped ``t`` µs by the sensor's crystal reaches the gateway at host time (s)

    arrival = offset + rate * t * 1e-6 + delay,      delay >= 0

where ``rate`` is host seconds per sensor second (1 + drift; crystals are off by 10-50 ppm) and ``delay`` is
the BLE stack's queueing: 0-2 ms inside a burst, then 60+ ms gaps (FIELD_NOTES §4). Least squares on raw
arrivals would put the line through the *average* delay, which differs per sensor and per link; the true
line is instead the one that every arrival lies *above*.

Estimator (lower envelope, as in Moon/Skelly/Towsley's network clock-skew estimation):

1. the pairs are grouped into bins of ``bin_s`` sensor seconds and only each bin's least-delayed pair is
   kept (its minimum of ``arrival - t``), in a ring of the last ``max_bins`` bins, so cost and memory are
   bounded and a slow change of drift (temperature) is followed;
2. the line is the one under every kept point that is highest at their mean sensor time: it is the lower
   convex hull's edge spanning that mean (the solution of the linear programme "maximise a + b * x_mean
   subject to y_i >= a + b * x_i");
3. until the kept points span ``min_span_s`` the rate is taken as exactly 1 and only the offset is fitted.

Outputs (`ClockFit`): ``rate``; ``drift_ppm`` = (1 / rate - 1) * 1e6 (positive when the sensor's clock runs
fast, as crystal tolerances are stated; the uplink contract's convention); ``jitter_ms``, the lower-quartile
height of the kept bin minima above the line (how closely the least-delayed arrivals pin the envelope: 0 would be a
perfect link); ``delay_ms_p50`` of all arrivals seen over the
line (how bursty the link is). Units: sensor time in integer µs (unwrapped, 64-bit), host time in seconds of
whatever monotonic clock the caller feeds (`host_clock.HostClock.monotonic`).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass

from sensor_gateway.timing.errors import TimingError


@dataclass(frozen=True)
class EnvelopeFitSettings:
    bin_s: float = 1.0
    """Sensor seconds per bin; only the least-delayed arrival of each bin is kept."""
    max_bins: int = 600
    """Bins kept (600 x 1 s = the last 10 min of the stream)."""
    min_span_s: float = 5.0
    """Sensor seconds the kept bins must span before the rate is fitted (before: rate = 1)."""
    max_abs_drift_ppm: float = 1000.0
    """A fitted drift beyond this is not a crystal: the fit falls back to rate 1 (and says so)."""


@dataclass(frozen=True)
class ClockFit:
    """host_s = host_ref_s + rate * (t_sensor_us - sensor_ref_us) * 1e-6 (see the module docstring)."""

    sensor_ref_us: int
    host_ref_s: float
    rate: float
    drift_ppm: float
    jitter_ms: float
    delay_ms_p50: float
    n_bins: int
    span_s: float
    rate_fitted: bool

    def host_s(self, t_sensor_us: int) -> float:
        return self.host_ref_s + self.rate * (t_sensor_us - self.sensor_ref_us) * 1e-6


class ClockEstimator:
    """Running lower-envelope fit for one sensor boot epoch. Feed `add`, read `fit` (cached until new data)."""

    def __init__(self, settings: EnvelopeFitSettings | None = None) -> None:
        self.settings = settings or EnvelopeFitSettings()
        self._origin: tuple[int, float] | None = None  # (sensor µs, host s) of the first pair
        self._bins: deque[tuple[int, float, float]] = deque(maxlen=self.settings.max_bins)  # (bin, x s, y s)
        self._recent_delays: deque[float] = deque(maxlen=512)  # y - x - line offset proxy, s
        self._cached: ClockFit | None = None
        self.pairs = 0

    def reset(self) -> None:
        """Forget everything (new boot epoch: the sensor clock restarted)."""
        self.__init__(self.settings)  # type: ignore[misc]

    def add(self, t_sensor_us: int, host_s: float) -> None:
        """One (unwrapped sensor µs, host arrival s) pair; pairs must come in non-decreasing sensor time."""
        if not math.isfinite(host_s):
            raise TimingError(f"host_s: {host_s!r} is not a finite time")
        if self._origin is None:
            self._origin = (t_sensor_us, host_s)
        x = (t_sensor_us - self._origin[0]) * 1e-6
        y = host_s - self._origin[1]
        b = math.floor(x / self.settings.bin_s)
        self.pairs += 1
        self._cached = None
        self._recent_delays.append(y - x)
        if self._bins and self._bins[-1][0] == b:
            _, bx, by = self._bins[-1]
            if y - x < by - bx:
                self._bins[-1] = (b, x, y)
        elif self._bins and b < self._bins[-1][0]:
            raise TimingError(f"t_sensor_us: {t_sensor_us} goes back into an earlier bin (reset on reboot)")
        else:
            self._bins.append((b, x, y))

    @property
    def ready(self) -> bool:
        return self._origin is not None

    def fit(self) -> ClockFit:
        if self._cached is not None:
            return self._cached
        if self._origin is None:
            raise TimingError("no (sensor time, arrival) pair yet")
        pts = [(x, y) for _, x, y in self._bins]
        span = pts[-1][0] - pts[0][0]
        slope, intercept, fitted = 1.0, min(y - x for x, y in pts), False
        if span >= self.settings.min_span_s and len(pts) >= 2:
            s, i = _lower_envelope_line(pts)
            if abs(s - 1.0) * 1e6 <= self.settings.max_abs_drift_ppm:
                slope, intercept, fitted = s, i, True
        residuals = sorted(y - (intercept + slope * x) for x, y in pts)
        jitter = residuals[len(residuals) // 4]
        # delays of recent arrivals relative to the line: (y - x) - (intercept + (slope - 1) x) ~ y - line(x)
        x_last = pts[-1][0]
        line_minus_x = intercept + (slope - 1.0) * x_last
        delays = sorted(d - line_minus_x for d in self._recent_delays)
        x0_us, y0 = self._origin
        ref_us = x0_us + round(x_last * 1e6)
        self._cached = ClockFit(
            sensor_ref_us=ref_us,
            host_ref_s=y0 + intercept + slope * (ref_us - x0_us) * 1e-6,
            rate=slope,
            drift_ppm=(1.0 / slope - 1.0) * 1e6,
            jitter_ms=jitter * 1e3,
            delay_ms_p50=max(0.0, delays[len(delays) // 2] * 1e3),
            n_bins=len(pts),
            span_s=span,
            rate_fitted=fitted,
        )
        return self._cached


def _lower_envelope_line(pts: list[tuple[float, float]]) -> tuple[float, float]:
    """(slope, intercept) of the line under all points that is highest at their mean x. Points sorted by x."""
    hull: list[tuple[float, float]] = []
    for p in pts:  # Andrew's monotone chain, lower half
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) <= 0.0:
                hull.pop()
            else:
                break
        hull.append(p)
    if len(hull) == 1:
        return 1.0, hull[0][1] - hull[0][0]
    x_mean = sum(x for x, _ in pts) / len(pts)
    for (x1, y1), (x2, y2) in itertools.pairwise(hull):
        if x2 >= x_mean or (x2, y2) == hull[-1]:
            slope = (y2 - y1) / (x2 - x1)
            return slope, y1 - slope * x1
    raise AssertionError("unreachable: the hull spans x_mean")
