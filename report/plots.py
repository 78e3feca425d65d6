"""The report's plots as inline SVG: pure functions from report records to markup (no I/O, no scripts, no fonts
or images fetched). Colours are backed by shapes (left circles, right squares; withheld values a cross in a
strip of their own, never on the band) so a black-and-white print reads the same.

Units: SI in %, angles in degrees, time on the x axis as session dates (UTC).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from report.markup import Markup, el, join
from report.model import TrendPoint
from report.wording import MINUS, band_text

WIDTH = 680
HEIGHT = 250
LEFT_COLOUR = "#1f5fa8"
RIGHT_COLOUR = "#c0530f"
VERDICT_COLOURS = {"within": "#2e7d32", "outside": "#b3261e", "uncertain": "#8d6e00", "withheld": "#6b6b6b"}
BAND_FILL = "#e3f1e4"
INK = "#222222"
GRID = "#d9d9d9"
FONT = "font-family:system-ui,'DejaVu Sans',Arial,sans-serif;font-size:11px"

_LEFT, _RIGHT, _TOP = 64.0, 16.0, 24.0
_BOTTOM = 72.0
"""Space under the value area: the withheld strip, date labels and the x title."""


def nice_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """Round tick values covering [lo, hi] (steps of 1, 2, 2.5 or 5 x 10^k), at most about ``max_ticks``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"axis range must be finite, got {lo!r}..{hi!r}")
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, max_ticks - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 10))
    return ticks


def _tick_text(value: float) -> str:
    if value == 0:
        return "0"
    text = f"{value:g}" if abs(value) < 10 else f"{value:.0f}"
    return text.replace("-", MINUS)


def _date(time_us: int, with_year: bool) -> str:
    if time_us < 0:
        return "clock?"
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=time_us)
    return when.strftime("%d %b %Y" if with_year else "%d %b")


class _Frame:
    """Maps session times and values to the drawing; draws the axes."""

    def __init__(self, points: Sequence[TrendPoint], y_lo: float, y_hi: float, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.x0, self.x1 = _LEFT, width - _RIGHT
        self.y0, self.y1 = _TOP, height - _BOTTOM
        self.ticks = nice_ticks(y_lo, y_hi)
        self.lo, self.hi = self.ticks[0], self.ticks[-1]
        times = [p.time_us for p in points]
        # sensor-time sessions (before 1970) cannot sit on a calendar: then sessions are spaced evenly
        self.by_index = any(t < 0 for t in times)
        span = (max(times) - min(times)) if times and not self.by_index else 0
        self.t_lo = min(times) if times else 0
        self.t_span = span
        self.n = len(points)
        self.withheld_y = self.y1 + 16.0

    def x(self, index: int, time_us: int) -> float:
        pad = 0.05 * (self.x1 - self.x0)
        inner = self.x1 - self.x0 - 2 * pad
        if self.by_index or self.t_span == 0:
            if self.n <= 1:
                return (self.x0 + self.x1) / 2
            return self.x0 + pad + inner * index / (self.n - 1)
        return self.x0 + pad + inner * (time_us - self.t_lo) / self.t_span

    def y(self, value: float) -> float:
        value = min(max(value, self.lo), self.hi)
        return self.y1 - (value - self.lo) / (self.hi - self.lo) * (self.y1 - self.y0)

    def axes(self, points: Sequence[TrendPoint], y_title: str, x_title: str) -> list[Markup]:
        out: list[Markup] = []
        for tick in self.ticks:
            y = self.y(tick)
            out.append(el("line", x1=self.x0, x2=self.x1, y1=y, y2=y, stroke=GRID, stroke_width=1))
            out.append(el("text", _tick_text(tick), x=self.x0 - 6, y=y + 4, text_anchor="end", fill=INK))
        out.append(el("line", x1=self.x0, x2=self.x0, y1=self.y0, y2=self.y1, stroke=INK, stroke_width=1))
        out.append(el("line", x1=self.x0, x2=self.x1, y1=self.y1, y2=self.y1, stroke=INK, stroke_width=1))
        mid_y = (self.y0 + self.y1) / 2
        out.append(
            el(
                "text",
                y_title,
                x=14,
                y=mid_y,
                transform=f"rotate(-90 14 {mid_y:.1f})",
                text_anchor="middle",
                fill=INK,
            )
        )
        out.append(el("text", "withheld", x=self.x0 - 6, y=self.withheld_y + 4, text_anchor="end", fill=INK))
        with_year = len({_date(p.time_us, True)[-4:] for p in points}) > 1
        label_y = self.y1 + 40.0
        last_x = -1e9
        for i, p in enumerate(points):
            x = self.x(i, p.time_us)
            out.append(el("line", x1=x, x2=x, y1=self.y1, y2=self.y1 + 4, stroke=INK, stroke_width=1))
            if x - last_x >= (62 if with_year else 44):  # labels never overlap; every session keeps its tick
                out.append(el("text", _date(p.time_us, with_year), x=x, y=label_y, text_anchor="middle", fill=INK))
                last_x = x
        out.append(el("text", x_title, x=(self.x0 + self.x1) / 2, y=self.height - 6, text_anchor="middle", fill=INK))
        return out


def _svg(title: str, width: int, height: int, body: Sequence[Markup], css_class: str) -> Markup:
    return el(
        "svg",
        el("title", title),
        body,
        xmlns="http://www.w3.org/2000/svg",
        width=width,
        height=height,
        viewBox=f"0 0 {width} {height}",
        role="img",
        class_=css_class,
        style=FONT,
    )


def _cross(x: float, y: float, colour: str, tip: str) -> Markup:
    d = 4.0
    return el(
        "g",
        el("title", tip),
        el("line", x1=x - d, x2=x + d, y1=y - d, y2=y + d, stroke=colour, stroke_width=2),
        el("line", x1=x - d, x2=x + d, y1=y + d, y2=y - d, stroke=colour, stroke_width=2),
    )


def si_trend_svg(
    points: Sequence[TrendPoint],
    band_pct: float,
    current_session: str,
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Markup:
    """Stance-time SI (%) per session with its 95 % interval and the band; withheld sessions in their own strip."""
    values = [v for p in points for v in (p.stance.si_pct, *(p.stance.ci95_pct or ())) if v is not None]
    y_lo = min([-1.5 * band_pct, *values])
    y_hi = max([1.5 * band_pct, *values])
    frame = _Frame(points, y_lo, y_hi, width, height)
    body: list[Markup] = []
    band_top, band_bottom = frame.y(band_pct), frame.y(-band_pct)
    body.append(
        el(
            "rect",
            x=frame.x0,
            y=band_top,
            width=frame.x1 - frame.x0,
            height=band_bottom - band_top,
            fill=BAND_FILL,
            class_="band",
        )
    )
    body.extend(frame.axes(points, "stance-time SI (%)", "session date (UTC)"))
    body.append(el("text", "\u2191 left longer", x=frame.x0 + 6, y=frame.y0 + 10, fill=INK))
    body.append(el("text", "\u2193 right longer", x=frame.x0 + 6, y=frame.y1 - 5, fill=INK))
    # the band's key sits above the plot: inside, it would cover the sessions drawn on the band
    key_x = frame.x1 - 120
    body.append(el("rect", x=key_x - 16, y=6, width=12, height=10, fill=BAND_FILL, stroke=GRID))
    body.append(el("text", f"normal range {band_text(band_pct)}", x=key_x, y=15, fill=VERDICT_COLOURS["within"]))
    zero = frame.y(0.0)
    body.append(
        el("line", x1=frame.x0, x2=frame.x1, y1=zero, y2=zero, stroke=INK, stroke_width=0.8, stroke_dasharray="3 3")
    )
    for i, p in enumerate(points):
        x = frame.x(i, p.time_us)
        reading = p.stance
        colour = VERDICT_COLOURS[reading.verdict]
        current = p.session == current_session
        if reading.si_pct is None:
            tip = f"{_date(p.time_us, True)} (session {p.session}): stance-time asymmetry withheld"
            body.append(_cross(x, frame.withheld_y, colour, tip))
            continue
        ci = reading.ci95_pct
        tip = f"{_date(p.time_us, True)} (session {p.session}): SI {reading.si_pct:+.1f} %" + (
            f", 95 % interval {ci[0]:+.1f} to {ci[1]:+.1f} %" if ci else ", no interval stored"
        )
        parts: list[Markup] = [el("title", tip)]
        if ci is not None:
            parts.append(el("line", x1=x, x2=x, y1=frame.y(ci[0]), y2=frame.y(ci[1]), stroke=colour, stroke_width=2))
            for end in ci:
                parts.append(el("line", x1=x - 4, x2=x + 4, y1=frame.y(end), y2=frame.y(end), stroke=colour))
        y = frame.y(reading.si_pct)
        hollow = ci is None  # a value without an interval is drawn hollow: it is never read as within
        parts.append(
            el(
                "circle",
                cx=x,
                cy=y,
                r=4.5,
                fill="#ffffff" if hollow else colour,
                stroke=colour,
                stroke_width=2,
                class_=f"pt pt-{reading.verdict}",
            )
        )
        if current:
            parts.append(el("circle", cx=x, cy=y, r=8.0, fill="none", stroke=INK, stroke_width=1.2))
        body.append(el("g", parts))
    title = (
        f"Stance-time symmetry index per session, % (positive: left stance longer), with 95 % intervals and the "
        f"normal range {band_text(band_pct)}"
    )
    return _svg(title, width, height, body, "plot plot-si")


def _series(
    frame: _Frame,
    points: Sequence[TrendPoint],
    value: Callable[[TrendPoint], float | None],
    colour: str,
    marker: str,
    name: str,
) -> list[Markup]:
    out: list[Markup] = []
    run: list[tuple[float, float]] = []
    runs: list[list[tuple[float, float]]] = [run]
    for i, p in enumerate(points):
        v = value(p)
        if v is None:
            run = []
            runs.append(run)
            continue
        run.append((frame.x(i, p.time_us), frame.y(v)))
    for segment in runs:
        if len(segment) > 1:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in segment)
            out.append(el("polyline", points=coords, fill="none", stroke=colour, stroke_width=1.5))
    for i, p in enumerate(points):
        v = value(p)
        if v is None:
            continue
        x, y = frame.x(i, p.time_us), frame.y(v)
        tip = f"{_date(p.time_us, True)} (session {p.session}): {name} {v:.2f} deg"
        if marker == "circle":
            shape = el("circle", cx=x, cy=y, r=4.0, fill=colour, class_="pt")
        else:
            shape = el("rect", x=x - 4, y=y - 4, width=8, height=8, fill=colour, class_="pt")
        out.append(el("g", el("title", tip), shape))
    return out


def drop_trend_svg(
    points: Sequence[TrendPoint], current_session: str, *, width: int = WIDTH, height: int = HEIGHT
) -> Markup:
    """Pelvic drop (deg) in left and right stance per session; sessions without it in the withheld strip."""
    values = [v for p in points for v in (p.drop_left_deg, p.drop_right_deg) if v is not None]
    frame = _Frame(points, min([0.0, *values]), max([4.0, *values]), width, height)
    body: list[Markup] = list(frame.axes(points, "pelvic drop (deg)", "session date (UTC)"))
    body += _series(frame, points, lambda p: p.drop_left_deg, LEFT_COLOUR, "circle", "left stance")
    body += _series(frame, points, lambda p: p.drop_right_deg, RIGHT_COLOUR, "square", "right stance")
    for i, p in enumerate(points):
        x = frame.x(i, p.time_us)
        if p.drop_left_deg is None and p.drop_right_deg is None:
            tip = f"{_date(p.time_us, True)} (session {p.session}): pelvic drop withheld"
            body.append(_cross(x, frame.withheld_y, VERDICT_COLOURS["withheld"], tip))
        if p.session == current_session:
            body.append(
                el("line", x1=x, x2=x, y1=frame.y0, y2=frame.y1, stroke=INK, stroke_width=0.8, stroke_dasharray="2 3")
            )
    legend_x = frame.x0 + 10
    body.append(
        join(
            [
                el("circle", cx=legend_x, cy=frame.y0 + 6, r=4, fill=LEFT_COLOUR),
                el("text", "left stance (right hip drops)", x=legend_x + 9, y=frame.y0 + 10, fill=INK),
                el("rect", x=legend_x + 186, y=frame.y0 + 2, width=8, height=8, fill=RIGHT_COLOUR),
                el("text", "right stance (left hip drops)", x=legend_x + 199, y=frame.y0 + 10, fill=INK),
            ]
        )
    )
    title = "Pelvic drop during left and right stance per session, degrees, relative to quiet standing"
    return _svg(title, width, height, body, "plot plot-drop")
