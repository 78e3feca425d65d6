"""Repetitions and holds of one exercise set, from one movement-angle signal of the set's prime mover.

Method (threshold segmentation with a set-relative amplitude, in the spirit of repetition counters built on
a single joint-angle channel): the input is the angle (deg) by which the exercise's prime-mover segment has
turned away from its rest posture (e.g. the lifted thigh in single-leg stance, the pelvis in a bridge),
low-passed at ``SMOOTH_HZ``.

1. **Excursions**: maximal runs where the angle exceeds ``EXCURSION_SHARE`` (20 %) of the set's largest angle
   and at least ``MIN_EXCURSION_DEG``; each is widened to its onset and offset, the last/first samples below
   ``REST_SHARE`` (3 %) of the largest angle (where the movement leaves and regains the rest posture).
2. **Typical amplitude**: the median peak of the excursions that reach at least half of the largest peak.
3. **Partial repetitions** (definition shared with the simulator, simulator/exercises.py,
   and its truth): an excursion whose peak is below ``PARTIAL_SHARE`` (50 %) of the typical amplitude is a
   partial repetition, which a therapist would not count; it is reported (``n_partial``), not counted.
4. **Holds** (exercises with a hold): the held position of a complete repetition is the median angle over
   its samples at >= 90 % of its peak; the hold is the span from the first to the last sample within
   ``HOLD_BAND_SHARE`` (3 %) of that held position. The slow C2 ends of a movement make this span
   slightly longer than a hold measured by eye (bench/RESULTS.md, "Exercise analysis", gives the measured bias).
   A hold whose angle falls below ``INTERRUPT_SHARE`` (75 %) of the held position for at least
   ``INTERRUPT_MIN_S`` inside that span is flagged ``hold_interrupted``.

Units: angles deg, times s, rates Hz. Validated on simulation only until real exercise recordings exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.algorithms._checks import check_rate
from analytics.algorithms.filters import butter_sos, zero_phase
from analytics.errors import InvalidSignal

SMOOTH_HZ = 2.0
"""Low-pass (Hz) of the movement angle: exercise movements take >= 1 s, tremor and noise are faster."""
EXCURSION_SHARE = 0.2
"""An excursion rises above this share of the set's largest angle."""
MIN_EXCURSION_DEG = 3.0
"""Smallest angle (deg) that counts as a movement at all (below: sway and sensor noise)."""
REST_SHARE = 0.03
"""Onset/offset of a movement: the angle is below this share of the largest angle (at rest)."""
PARTIAL_SHARE = 0.5
"""A repetition below this share of the set's typical amplitude is partial (not counted)."""
HOLD_LEVEL_SHARE = 0.9
HOLD_BAND_SHARE = 0.03
"""The hold: within this share of the held position (the median angle above 90 % of the repetition's peak)."""
INTERRUPT_SHARE = 0.75
INTERRUPT_MIN_S = 0.3
"""A hold is interrupted when the angle stays below 75 % of the held position for >= 0.3 s within it."""


@dataclass(frozen=True)
class Repetition:
    """One excursion: onset/offset and peak (sample indices into the set's signal), peak angle (deg),
    whether it is complete, and its hold span (sample indices, inclusive start, exclusive end) if any."""

    onset: int
    offset: int
    peak_index: int
    peak_deg: float
    complete: bool
    hold: tuple[int, int] | None
    hold_interrupted: bool


@dataclass(frozen=True)
class RepetitionSegmentation:
    """Repetitions of one set; ``typical_amplitude_deg`` is the set's typical peak angle (deg)."""

    repetitions: tuple[Repetition, ...]
    typical_amplitude_deg: float
    rate_hz: float

    @property
    def complete(self) -> tuple[Repetition, ...]:
        return tuple(r for r in self.repetitions if r.complete)

    @property
    def n_partial(self) -> int:
        return sum(1 for r in self.repetitions if not r.complete)

    @property
    def holds_s(self) -> list[float]:
        return [(r.hold[1] - r.hold[0]) / self.rate_hz for r in self.complete if r.hold is not None]


def smooth_angle(angle_deg: np.ndarray, rate_hz: float) -> np.ndarray:
    """Zero-phase 2nd-order low-pass at SMOOTH_HZ (deg in, deg out)."""
    x = np.asarray(angle_deg, dtype=np.float64)
    if x.size < 16:
        return x.copy()
    sos = butter_sos(2, min(SMOOTH_HZ, 0.45 * rate_hz), "low", float(rate_hz))
    return zero_phase(sos, x, padlen=min(x.size - 1, 3 * int(rate_hz)))


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in a boolean array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def segment_repetitions(angle_deg: np.ndarray, sampling_rate_hz: float, *, has_hold: bool) -> RepetitionSegmentation:
    """Repetitions (and holds) in a set's movement angle (deg, already smoothed; see the module docstring)."""
    rate = check_rate(sampling_rate_hz)
    x = np.asarray(angle_deg, dtype=np.float64)
    if x.ndim != 1 or not np.isfinite(x).all():
        raise InvalidSignal("angle_deg must be a finite 1-D array of movement angles (deg)")
    if x.size == 0:
        return RepetitionSegmentation((), 0.0, rate)
    largest = float(x.max())
    if largest < MIN_EXCURSION_DEG:
        return RepetitionSegmentation((), 0.0, rate)
    starts, ends = runs(x > max(EXCURSION_SHARE * largest, MIN_EXCURSION_DEG))
    peaks_idx = np.array([s + int(np.argmax(x[s:e])) for s, e in zip(starts, ends, strict=True)])
    peaks = x[peaks_idx]
    typical = float(np.median(peaks[peaks >= 0.5 * largest]))
    rest = x <= REST_SHARE * largest
    rest_idx = np.flatnonzero(rest)
    reps = []
    for s, e, p, peak in zip(starts, ends, peaks_idx, peaks, strict=True):
        before = rest_idx[rest_idx < s]
        after = rest_idx[rest_idx >= e]
        onset = int(before[-1]) if before.size else 0
        offset = int(after[0]) if after.size else x.size - 1
        complete = bool(peak >= PARTIAL_SHARE * typical)
        hold, interrupted = None, False
        if has_hold and complete:
            seg = x[s:e]
            level = float(np.median(seg[seg >= HOLD_LEVEL_SHARE * peak]))
            inside = np.flatnonzero(seg >= level * (1.0 - HOLD_BAND_SHARE))
            h0, h1 = s + int(inside[0]), s + int(inside[-1]) + 1
            hold = (h0, h1)
            d0, d1 = runs(x[h0:h1] < INTERRUPT_SHARE * level)
            interrupted = bool(((d1 - d0) >= INTERRUPT_MIN_S * rate).any())
        reps.append(Repetition(onset, offset, int(p), float(peak), complete, hold, interrupted))
    return RepetitionSegmentation(tuple(reps), typical, rate)
