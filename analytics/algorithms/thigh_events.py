"""Initial contact (IC) and toe off (final contact, FC) of one leg from its thigh's sagittal angular
velocity, by interpolating the gait phase between kinematic landmarks of the swing.

Naive thigh detectors put IC at the peak thigh flexion and TO at the peak extension; on real data they are
biased (Strick et al. 2024, J Biomech Eng: heel strike -41 +- 20 ms, toe off -1.4 +- 21 ms), because
neither event coincides with a velocity zero. Here the events are placed by the normative phase of the
thigh's swing landmarks (normative sagittal thigh kinematics, Perry & Burnfield 2010; Winter 2009):

- the thigh's flexion velocity peaks in mid-swing at ``PHASE_SWING_PEAK`` = 68.4 % of the gait cycle,
- the thigh reaches its peak flexion (velocity crosses zero, + to -) at ``PHASE_PEAK_FLEXION`` = 89.3 %,
- toe off is at 60 % (``PHASE_TOE_OFF``) and the next initial contact at 100 %.

Between the two measured landmarks the swing's phase rate r = (89.3 - 68.4) % / (t_flex - t_peak) is
known; assuming it holds over the whole swing (the swing is a nearly free pendulum, its duration barely
varies with asymmetry or speed: Perry & Burnfield 2010), TO = t_peak - (68.4 - 60) % / r and
IC = t_flex + (100 - 89.3) % / r. Both events are extrapolated over ~0.1 s only, so a 2 % error in r
moves them by ~2 ms.

CAVEAT: the landmark phases are those of the normative curve that the gaitsym simulator also uses, so the
accuracy on simulated data (bench/RESULTS.md (analysis section)) is an optimistic bound. Real thigh recordings with
reference events are needed to validate them (none exist in ../shared/validation yet).

Swing peaks are found as peaks of the 15 Hz low-passed flexion velocity above ``MIN_SWING_PEAK_DPS`` at
least ``MIN_STRIDE_S`` apart. Units: deg/s, s, Hz; phases are fractions of the gait cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from analytics.algorithms._checks import check_rate
from analytics.algorithms.filters import butter_sos, zero_phase
from analytics.errors import InvalidSignal

PHASE_TOE_OFF = 0.60
PHASE_SWING_PEAK = 0.684
PHASE_PEAK_FLEXION = 0.893
MIN_SWING_PEAK_DPS = 50.0
"""Smallest mid-swing flexion velocity (deg/s) counted as a swing: a ~35 deg swing over ~0.45 s averages
~80 deg/s and peaks at about twice that; very slow walkers still exceed 50."""
MIN_STRIDE_S = 0.6
"""Two swings of one leg are at least this far apart (s): ~200 steps/min."""
MAX_SWING_S = 1.0
"""The peak flexion must follow the swing peak within this time (s), else the swing is not used."""
LOWPASS_HZ = 15.0
"""Low-pass (Hz) of the flexion velocity: removes sensor noise only (thigh kinematics of walking lie below
~10 Hz; a stronger low-pass smears the swing landmarks and biased events by up to 15 ms on simulated data)."""


@dataclass(frozen=True)
class ThighEvents:
    """Per swing of one leg: toe off before it and initial contact after it (s from the first sample).

    ``swing_peak_s`` is the mid-swing landmark of each swing; arrays are aligned and sorted.
    """

    toe_off_s: np.ndarray
    initial_contact_s: np.ndarray
    swing_peak_s: np.ndarray


def _parabolic(x: np.ndarray, i: np.ndarray) -> np.ndarray:
    """Sub-sample position of extrema at indices i by a parabola through three samples."""
    i = np.clip(i, 1, x.size - 2)
    a, b, c = x[i - 1], x[i], x[i + 1]
    den = a - 2 * b + c
    off = np.where(np.abs(den) > 1e-12, 0.5 * (a - c) / np.where(np.abs(den) > 1e-12, den, 1.0), 0.0)
    return i + np.clip(off, -0.5, 0.5)


def detect_thigh_events(
    flexion_velocity_dps: np.ndarray, sampling_rate_hz: float, region_mask: np.ndarray | None = None
) -> ThighEvents:
    """Toe offs and initial contacts of one leg (see the module docstring).

    ``flexion_velocity_dps`` (n,) deg/s, flexion positive (ThighAxes.flexion_velocity_dps);
    ``region_mask`` (bool, n) restricts swing peaks to walking. Raises InvalidSignal for bad input.
    """
    fs = check_rate(sampling_rate_hz)
    w = np.asarray(flexion_velocity_dps, dtype=np.float64)
    if w.ndim != 1 or w.size < 4:
        raise InvalidSignal(f"flexion_velocity_dps must be a 1-D array of at least 4 samples, got {w.shape}")
    if not np.isfinite(w).all():
        raise InvalidSignal("flexion_velocity_dps contains NaN or infinite values")
    if region_mask is not None and (region_mask.shape != w.shape or region_mask.dtype != np.bool_):
        raise InvalidSignal(f"region_mask must be a bool array of shape {w.shape}")
    sos = butter_sos(4, min(LOWPASS_HZ, 0.45 * fs), "lowpass", float(fs))
    ws = zero_phase(sos, w)
    peaks, _ = signal.find_peaks(ws, height=MIN_SWING_PEAK_DPS, distance=max(1, round(MIN_STRIDE_S * fs)))
    if region_mask is not None:
        peaks = peaks[region_mask[peaks]]
    empty = np.zeros(0)
    if peaks.size == 0:
        return ThighEvents(empty, empty, empty)
    # first + to - zero crossing after each peak (peak flexion)
    neg = ws < 0
    next_neg = np.full(ws.size + 1, ws.size, dtype=np.int64)
    idx = np.flatnonzero(neg)
    next_neg[idx] = idx
    next_neg = np.minimum.accumulate(next_neg[::-1])[::-1]
    z = next_neg[peaks]
    ok = (z < ws.size) & (z - peaks <= MAX_SWING_S * fs)
    peaks, z = peaks[ok], z[ok]
    if peaks.size == 0:
        return ThighEvents(empty, empty, empty)
    t_peak = _parabolic(ws, peaks) / fs
    # linear interpolation of the zero crossing between samples z-1 (>= 0) and z (< 0)
    a, b = ws[z - 1], ws[z]
    t_flex = (z - 1 + a / (a - b)) / fs
    rate = (PHASE_PEAK_FLEXION - PHASE_SWING_PEAK) / (t_flex - t_peak)
    toe_off = t_peak - (PHASE_SWING_PEAK - PHASE_TOE_OFF) / rate
    ic = t_flex + (1.0 - PHASE_PEAK_FLEXION) / rate
    return ThighEvents(toe_off, ic, t_peak)
