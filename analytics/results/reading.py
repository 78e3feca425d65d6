"""How a session's left/right asymmetry reads against a band: one rule for the dashboards and the report.

The band is a clinic's choice, not a physiological constant. The default, a symmetry index within ±10 %, is the
cut-off most often used for gait asymmetry (Robinson et al. 1987, J Manipulative Physiol Ther 10:172-176, who
introduced the SI; Patterson et al. 2010, Gait Posture 31:241-246, who show that such thresholds are arbitrary
and differ between studies and that healthy walkers' spread should set them). The docs say so wherever the band
is shown, and every surface lets a clinic change it.

A value is called "within" only when its whole 95 % interval lies inside the band: a withheld value, a value
without an interval, or one whose interval crosses the band's edge is never called normal.

Units: SI in % (positive when the left value is larger, `analytics.results.summary`), band in %.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_SI_BAND_PCT = 10.0

Verdict = Literal["within", "outside", "uncertain", "withheld"]


@dataclass(frozen=True)
class SiReading:
    """One asymmetry read against the band.

    ``verdict``: "within" (the whole interval inside ±band), "outside" (the whole interval beyond one edge),
    "uncertain" (the value is there but its interval crosses an edge, or it has no interval), "withheld" (no value).
    ``longer_side``: the side with the larger value ("left", "right") or None when withheld or exactly equal.
    """

    verdict: Verdict
    si_pct: float | None
    ci95_pct: tuple[float, float] | None
    band_pct: float
    longer_side: Literal["left", "right"] | None
    withheld_reason: str | None


def read_si(
    si_pct: float | None,
    ci95_pct: tuple[float, float] | None,
    *,
    band_pct: float = DEFAULT_SI_BAND_PCT,
    withheld_reason: str | None = None,
) -> SiReading:
    """Read one symmetry index (%) and its 95 % interval (%) against ±``band_pct`` (%)."""
    if not band_pct > 0:
        raise ValueError(f"band_pct must be a positive percentage, got {band_pct!r}")
    if si_pct is None or withheld_reason is not None:
        return SiReading("withheld", None, None, band_pct, None, withheld_reason or "no_value")
    longer: Literal["left", "right"] | None = "left" if si_pct > 0 else "right" if si_pct < 0 else None
    if ci95_pct is None:
        return SiReading("uncertain", si_pct, None, band_pct, longer, None)
    low, high = sorted(ci95_pct)
    if -band_pct <= low and high <= band_pct:
        verdict: Verdict = "within"
    elif low > band_pct or high < -band_pct:
        verdict = "outside"
    else:
        verdict = "uncertain"
    return SiReading(verdict, si_pct, (low, high), band_pct, longer, None)
