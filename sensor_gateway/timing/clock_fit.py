"""Running sensor-clock -> host-clock fit that is robust to bursty BLE arrival (pure: no IO, no clock reads).

Model. A sample stamped ``t`` µs by the sensor's crystal reaches the gateway at host time (s)

    arrival = offset + rate * t * 1e-6 + delay,      delay >= 0

where ``rate`` is host seconds per sensor second (1 + drift; crystals are off by 10-50 ppm) and ``delay`` is
the BLE stack's queueing: 0-2 ms inside a burst, then 60+ ms gaps (several notifications leave per connection
event, BlueZ's default interval is 30-50 ms: `main.conf` MinConnectionInterval/MaxConnectionInterval; bench/RESULTS.md
"Gateway: clock mapping" measures the fit on such arrivals). Least squares on raw
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

Round trips (TIME_SYNC_REQUEST, firmware_protocol SPEC §8). Arrivals only bound the true line from *above*
(a sample is never received before it was taken), so an arrival-only fit is as good as the least-delayed
arrivals; when the packet period and the BLE connection interval are near a simple ratio, arrivals sit on a
lattice whose floor moves with the drift and the envelope wanders (±3 ppm, 2-4 ms). A round trip gives the
missing *lower* bound: the sensor read its clock after the gateway sent the request (host ``sent_s``) and
before the reply came back (``received_s``). `add_sync` keeps, per bin, the round trip with the largest
``sent - t`` (the tightest lower bound: min-RTT filtering on the send side; the gateway randomises when it
asks, so the send times cannot alias with the connection interval). With both kinds, by default
("midpoint") the line is a least-squares fit through the midpoints of the short round trips (RTT within
``rtt_keep_factor`` of the window's shortest; the gateway sends each request right after a packet, i.e. just
after a connection event, so both legs last one interval and the midpoint is the reading time), clipped into
the interval described next. The bounds-only alternative ("interval") is the
**middle of the feasible interval at the newest point**: of all lines lying below every upper bound and above
every lower bound, the highest and the lowest value they can take at the newest sensor time bound the truth
there; the mapping goes through the middle of that interval (its width is `ClockFit.band_ms`), with the
middle of the feasible drifts as its rate. The feasible drifts come from the two convex hulls (the maximum-
margin line's breakpoints, then bisection to the edges). When no line fits every bound (the clock's drift
changed within the window, or a bound is wrong) the maximum-margin line -- the one violating them least --
is used.

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
    rtt_keep_factor: float = 1.25
    """Round trips whose RTT exceeds this times the window's shortest are not used as midpoints."""
    combine: str = "midpoint"
    """How round trips and arrivals combine: "midpoint" (least squares through the short round trips'
    midpoints, clipped into the bounds' interval), "interval" (the middle of the values every line consistent
    with both bound sets can take at the newest point) or "margin" (the maximum-margin line between them)."""


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
    n_sync: int = 0
    """Round-trip lower bounds in the fit (0: arrival-only lower-envelope fit)."""
    band_ms: float | None = None
    """Width of the feasible band at the fitted line (upper minus lower bound), ms; None without round trips.
    The mapping error is within ± band/2 plus the bounds' own biases (< 1-3 ms of link latency)."""

    def host_s(self, t_sensor_us: int) -> float:
        return self.host_ref_s + self.rate * (t_sensor_us - self.sensor_ref_us) * 1e-6


class ClockEstimator:
    """Running lower-envelope fit for one sensor boot epoch. Feed `add`, read `fit` (cached until new data)."""

    def __init__(self, settings: EnvelopeFitSettings | None = None) -> None:
        self.settings = settings or EnvelopeFitSettings()
        self._origin: tuple[int, float] | None = None  # (sensor µs, host s) of the first pair
        self._bins: deque[tuple[int, float, float]] = deque(maxlen=self.settings.max_bins)  # (bin, x s, y s)
        self._recent_delays: deque[float] = deque(maxlen=512)  # y - x - line offset proxy, s
        self._lower: deque[tuple[int, float, float]] = deque(maxlen=self.settings.max_bins)  # round trips
        self._mid: deque[tuple[float, float, float]] = deque(maxlen=4 * self.settings.max_bins)  # x, mid, rtt
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

    def add_sync(self, t_sensor_us: int, sent_s: float, received_s: float) -> None:
        """One round trip: the sensor read ``t_sensor_us`` (unwrapped µs) between host ``sent_s`` and
        ``received_s``. Sent time is a lower bound on the line; round trips must come in sensor-time order."""
        if not (math.isfinite(sent_s) and math.isfinite(received_s)) or received_s < sent_s:
            raise TimingError(f"round trip: sent {sent_s!r} .. received {received_s!r} is not a time interval")
        if self._origin is None:
            self._origin = (t_sensor_us, sent_s)
        x = (t_sensor_us - self._origin[0]) * 1e-6
        y = sent_s - self._origin[1]
        b = math.floor(x / self.settings.bin_s)
        self._cached = None
        self._mid.append((x, 0.5 * (sent_s + received_s) - self._origin[1], received_s - sent_s))
        if self._lower and self._lower[-1][0] == b:
            _, bx, by = self._lower[-1]
            if y - x > by - bx:
                self._lower[-1] = (b, x, y)
        elif self._lower and b < self._lower[-1][0]:
            raise TimingError(f"t_sensor_us: {t_sensor_us} goes back into an earlier round-trip bin")
        else:
            self._lower.append((b, x, y))

    @property
    def ready(self) -> bool:
        return self._origin is not None

    def fit(self) -> ClockFit:
        if self._cached is not None:
            return self._cached
        if self._origin is None:
            raise TimingError("no (sensor time, arrival) pair yet")
        pts = [(x, y) for _, x, y in self._bins]
        low = [(x, y) for _, x, y in self._lower]
        if not pts:  # round trips only so far: the bounds we have are the round trips' receive times
            return self._sync_only_fit(low)
        span = pts[-1][0] - pts[0][0]
        slope, intercept, fitted = 1.0, min(y - x for x, y in pts), False
        band: float | None = None
        if low:
            intercept = 0.5 * (intercept + max(y - x for x, y in low))
            band = min(y - x for x, y in pts) - max(y - x for x, y in low)
        low_span = low[-1][0] - low[0][0] if low else 0.0
        if span >= self.settings.min_span_s and len(pts) >= 2:
            if low and low_span >= self.settings.min_span_s:
                mode = self.settings.combine
                if mode == "margin":
                    s, i, w = _max_margin_line(pts, low, self.settings.max_abs_drift_ppm * 1e-6)
                else:
                    s, i, w = _interval_line(pts, low, self.settings.max_abs_drift_ppm * 1e-6)
                    mid = _midpoint_line(list(self._mid), self.settings.rtt_keep_factor)
                    if (
                        mode == "midpoint"
                        and mid is not None
                        and abs(mid[0] - 1.0) <= self.settings.max_abs_drift_ppm * 1e-6
                    ):
                        s, i = _clip_to_band(mid, (s, i, w), pts, low)
                slope, intercept, fitted, band = s, i, True, w
            else:
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
            n_sync=len(low),
            band_ms=None if band is None else band * 1e3,
        )
        return self._cached

    def _sync_only_fit(self, low: list[tuple[float, float]]) -> ClockFit:
        assert self._origin is not None
        x_last = low[-1][0]
        x0_us, y0 = self._origin
        ref_us = x0_us + round(x_last * 1e6)
        intercept = max(y - x for x, y in low)
        return ClockFit(ref_us, y0 + intercept + x_last, 1.0, 0.0, 0.0, 0.0, 0, 0.0, False, len(low), None)


def _lower_envelope_line(pts: list[tuple[float, float]]) -> tuple[float, float]:
    """(slope, intercept) of the line under all points that is highest at their mean x. Points sorted by x."""
    hull = _lower_hull(pts)
    if len(hull) == 1:
        return 1.0, hull[0][1] - hull[0][0]
    x_mean = sum(x for x, _ in pts) / len(pts)
    for (x1, y1), (x2, y2) in itertools.pairwise(hull):
        if x2 >= x_mean or (x2, y2) == hull[-1]:
            slope = (y2 - y1) / (x2 - x1)
            return slope, y1 - slope * x1
    raise AssertionError("unreachable: the hull spans x_mean")


def _lower_hull(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Lower convex hull of points sorted by x (Andrew's monotone chain, lower half)."""
    hull: list[tuple[float, float]] = []
    for p in pts:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) <= 0.0:
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def _max_margin_line(
    upper: list[tuple[float, float]], lower: list[tuple[float, float]], max_abs_drift: float
) -> tuple[float, float, float]:
    """(slope, intercept, band) of the line y = intercept + slope x that maximises its clearance
    min(upper_i - line) = min(line - lower_j) (both sorted by x). Works in r = y - x (drift term c = slope - 1):
    W(c) = min_i(r_i - c x_i) - max_j(r_j - c x_j) is concave and piecewise linear, so its maximum is at a
    breakpoint: an edge slope of the upper points' lower hull or of the lower points' upper hull."""
    ru = _lower_hull([(x, y - x) for x, y in upper])
    rl = [(x, -r) for x, r in _lower_hull([(x, -(y - x)) for x, y in lower])]  # upper hull of the lower set

    def bounds(c: float) -> tuple[float, float]:
        return min(r - c * x for x, r in ru), max(r - c * x for x, r in rl)

    candidates = {0.0}
    for hull in (ru, rl):
        for (x1, r1), (x2, r2) in itertools.pairwise(hull):
            if x2 > x1:
                candidates.add((r2 - r1) / (x2 - x1))
    cs = sorted(c for c in candidates if abs(c) <= max_abs_drift)
    if not cs:
        cs = [0.0]
    widths = [(lambda b: b[0] - b[1])(bounds(c)) for c in cs]
    best = max(widths)
    # a flat top (several breakpoints equally good): take the middle of it
    flat = [c for c, w in zip(cs, widths, strict=True) if w >= best - 1e-12]
    c = 0.5 * (flat[0] + flat[-1])
    hi, lo = bounds(c)
    return 1.0 + c, 0.5 * (hi + lo), hi - lo


def _interval_line(
    upper: list[tuple[float, float]], lower: list[tuple[float, float]], max_abs_drift: float
) -> tuple[float, float, float]:
    """(slope, intercept, width) of the line through the middle of the interval of values that the lines
    lying below every upper bound and above every lower bound can take at the newest point (x_ref, the
    largest x): the interval is [L(c_lo), U(c_hi)] where [c_lo, c_hi] are the feasible drift terms, because
    with every x <= x_ref both bound functions grow with c. Width = U(c_hi) - L(c_lo) (the guaranteed
    uncertainty at x_ref). When no line satisfies every bound (the clock's drift changed within the window,
    or a bound is wrong) the maximum-margin line is returned, width negative."""
    x_ref = max(upper[-1][0], lower[-1][0])
    ru = _lower_hull([(x - x_ref, y - x) for x, y in upper])
    rl = [(x, -r) for x, r in _lower_hull([(x - x_ref, -(y - x)) for x, y in lower])]

    def u_of(c: float) -> float:
        return min(r - c * x for x, r in ru)

    def l_of(c: float) -> float:
        return max(r - c * x for x, r in rl)

    slope, intercept, band = _max_margin_line(upper, lower, max_abs_drift)
    c_star = slope - 1.0
    if band < 0:
        return slope, intercept, band

    def root(inside: float, outside: float) -> float:
        if u_of(outside) - l_of(outside) >= 0:
            return outside
        for _ in range(60):
            mid = 0.5 * (inside + outside)
            if u_of(mid) - l_of(mid) >= 0:
                inside = mid
            else:
                outside = mid
        return inside

    c_lo, c_hi = root(c_star, -max_abs_drift), root(c_star, max_abs_drift)
    top, bottom = u_of(c_hi), l_of(c_lo)
    c = 0.5 * (c_lo + c_hi)
    a_ref = 0.5 * (top + bottom)  # r at x_ref, in r = y - x space
    # back to y = intercept + (1 + c) x in the caller's coordinates: r(x_ref) = a_ref
    return 1.0 + c, a_ref - c * x_ref, top - bottom


def _midpoint_line(mid: list[tuple[float, float, float]], keep: float) -> tuple[float, float] | None:
    """Least-squares line through the midpoints of the short round trips (NTP's min-RTT filter)."""
    if len(mid) < 5:
        return None
    shortest = min(r for _, _, r in mid)
    pts = [(x, y) for x, y, r in mid if r <= keep * shortest]
    if len(pts) < 5 or pts[-1][0] - pts[0][0] <= 0:
        return None
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    mr = sum(y - x for x, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx <= 0:
        return None
    c = sum((x - mx) * (y - x - mr) for x, y in pts) / sxx
    return 1.0 + c, mr - c * mx


def _clip_to_band(
    line: tuple[float, float],
    interval: tuple[float, float, float],
    upper: list[tuple[float, float]],
    lower: list[tuple[float, float]],
) -> tuple[float, float]:
    """Keep ``line``'s value at the newest point inside the interval every bound-respecting line allows there
    (when that interval exists): a point estimate never contradicts the bounds."""
    slope, intercept = line
    s_i, i_i, width = interval
    if width < 0:
        return slope, intercept
    x_ref = max(upper[-1][0], lower[-1][0])
    centre = i_i + s_i * x_ref
    value = intercept + slope * x_ref
    value = min(max(value, centre - width / 2), centre + width / 2)
    return slope, value - slope * x_ref
