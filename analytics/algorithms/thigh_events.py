"""Initial contact (IC) and toe off (final contact, FC) of one leg from its thigh's sagittal angular
velocity, by interpolating the gait phase between kinematic landmarks of the swing.

Naive thigh detectors put IC at the peak thigh flexion and TO at the peak extension; on real data they are
biased (Strick et al. 2024, J Biomech Eng: heel strike -41 +- 20 ms, toe off -1.4 +- 21 ms), because
neither event coincides with a velocity zero. Here the events are placed by the normative phase of the
thigh's swing landmarks (normative sagittal thigh kinematics, Perry & Burnfield 2010; Winter 2009):

- the thigh's flexion velocity peaks in mid-swing at ``PHASE_SWING_PEAK`` = 68.4 % of the gait cycle,
- the thigh reaches its peak flexion (velocity crosses zero, + to -) at ``PHASE_PEAK_FLEXION`` = 89.3 %,
- toe off is at 60 % (``PHASE_TOE_OFF``) and the next initial contact at 100 %.

Initial contact. Between the two measured landmarks the swing's phase rate r = (89.3 - 68.4) % / (t_flex - t_peak)
is known; assuming it holds to the end of the swing (the swing is a nearly free pendulum: Perry & Burnfield
2010), IC = t_flex + (100 - 89.3) % / r, an extrapolation over ~0.1 s only, so a 2 % error in r moves it by ~2 ms.
Compared with it on simulated truth (every walker) and the real three-sensor trial (docs/thigh_events.md, "Initial
contact"; bench/thigh_ic_rules.py): the thigh's posture past peak flexion (worse on both), the normative lag
scaled by the swing's duration (within 2 ms simulated, 15 ms worse real), and a thigh-accelerometer crossing of
1 g (18-38 ms early simulated); none was better on both, so this rule stays.

Toe off. The same extrapolation backwards from the swing peak (TO = t_peak - (68.4 - 60) % / r) assumes that the
early swing runs at the rate of the late swing; on the one real three-sensor trial (slow walker, stride ~1.43 s)
it put toe off 85 ms early (the real swing peak follows toe off by ~55 ms, the normative curve by ~110 ms), and
the issue's trials kept apart show -140 ms. Toe off is placed instead by the thigh's posture: the foot leaves the
ground while the thigh, past its peak extension, accelerates forward into swing (pre-swing and initial swing, the
hip flexors' pull-off: Winter 2009; Perry & Burnfield 2010), when it has covered ``TOE_OFF_EXCURSION_FRACTION`` =
10.7 % of its forward rotation from the swing's onset to its peak flexion (the normative curve's value). The
rotation is the flexion velocity integrated over the swing's positive lobe (segment rotation by integrating the
sagittal gyroscope: Tong & Granat 1999, Med Eng Phys 21:87; Aminian et al. 2002, J Biomech 35:689); the onset is
where the velocity last rises through ``SWING_ONSET_FRACTION`` of the swing peak, so that a thigh creeping forward
through a pivoting stance (turns) does not count as swing (on the normative curve the rotation below that level
is 0.15 % of the swing's).

Why a posture and not a velocity level: a walker's stance and swing times change independently (speed, age,
asymmetry), and the thigh's motion follows the same postures at a different pace. A fraction of the thigh's own
rotation is unchanged by any change of pace along the stride and by a smaller swing arc (the curve scaled about its
mean); a velocity level relative to the swing peak is not: it compares the velocity near toe off, set by the pace
of pre-swing, with the peak, set by the pace of the swing, so a leg with a longer stance and a shorter swing has
its toe off read late and the other leg's early (73 % of the peak, the normative curve's value at toe off: +-5-8 ms
per leg at |SI| 10 %, simulated SIs read ~15 % large). The thigh's angle is the phase variable that holds through
phase-shifting perturbations of walking (Villarreal, Poonawala & Gregg 2017, IEEE Trans Neural Syst Rehabil Eng
25:265: joint patterns parameterised by the hip's phase angle correlate >= 0.95 with nominal ones, better than by
time). Shank-mounted detectors time toe off by the shank velocity's minimum before swing (Aminian et al. 2002;
Salarian et al. 2004, IEEE Trans Biomed Eng 51:1434; Catalfamo et al. 2010, Sensors 10:5683); the thigh has no such
minimum there (its velocity is rising through toe off), so the feature does not carry over. Measured
(bench/validate_gait.py; docs/thigh_events.md): real trial, 13 toe offs, mean error +6 ms against optical capture
(the velocity level: +7 ms, the extrapolation: -85 ms); simulated, the toe-off error of either leg does not move
with an imposed asymmetry (+0..+3 ms at |SI| 10 %; the velocity level: -3 / +8 ms). The extrapolation above is the
fallback when the swing's lobe has no start in the signal. Rejected: the velocity's zero crossing (peak extension,
Strick et al. 2024's toe-off cue), a flat extremum, 40-110 ms before toe off on the real trial and moved by short
steps; the largest thigh angular acceleration, 27 ms before real toe off but 45-50 ms before it on the normative
curve.

CAVEAT: the landmark phases and the toe-off posture come from the normative curve that the simulator's default
walker also uses, so accuracy on that walker (bench/RESULTS.md) is an optimistic bound; its older walkers add a
per-walker lag of toe off against the thigh curve (simulator.walkers) that no thigh feature can see. On the real
trial, initial contacts of straight walking lie within ~50 ms of optical capture. One trial cannot tell a speed
effect from this walker's style; bench/validate_gait.py scores every real trial, and the pipeline checks each
contact against the pelvis (analytics.algorithms.stride_checks).

Swing peaks are found as peaks of the 15 Hz low-passed flexion velocity above ``MIN_SWING_PEAK_DPS`` whose
positive lobe (from the last - to + zero crossing before the peak to the first + to - after it) sweeps the thigh
through at least ``MIN_SWING_EXCURSION_DEG``, at least ``MIN_STRIDE_S`` apart (the larger peak kept).

Why the excursion rule: on a real slow walker (NeuRA three-sensor trial, Xsens on the lateral thigh, stride
~1.43 s) heel strike sets the thigh's soft tissue and the sensor on it ringing at ~11 Hz: lobes of 50-95 deg/s
60-130 ms after each contact that the 15 Hz low-pass keeps, further than MIN_STRIDE_S from the previous swing
peak at that pace, so each became a "swing" with its own toe off and contact (stances of 0.02-0.07 s). Each
such lobe moves the thigh by 1.6-4.6 deg; the real swings there sweep 32-43 deg, the turning steps 12 deg
(simulated swings 27-39 deg). Mechanically a swing carries the thigh through the hip's flexion arc (~40 deg at
normal speed: Perry & Burnfield 2010); 10 deg of arc is a step of ~16 cm for a 0.9 m leg (2 L sin(theta / 2)),
shuffling on the spot. The heel-strike impact sets the leg's soft tissue resonating in walking (Wakeling,
Liphardt & Nigg 2003, J Biomech 36:1761); a resonance is an oscillation, and half a period of it (~45 ms at the
~11 Hz measured here) moves the sensor a few degrees, never a step's arc.

Units: deg/s, s, Hz, deg; phases are fractions of the gait cycle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

from analytics.algorithms._checks import check_rate
from analytics.algorithms.filters import butter_sos, zero_phase
from analytics.errors import InvalidSignal

try:  # the compiled first step of scipy.signal.find_peaks; the public call otherwise
    from scipy.signal._peak_finding_utils import _local_maxima_1d
except ImportError:  # pragma: no cover
    _local_maxima_1d = None

PHASE_TOE_OFF = 0.60
PHASE_SWING_PEAK = 0.684
PHASE_PEAK_FLEXION = 0.893
TOE_OFF_EXCURSION_FRACTION = 0.107
"""Share of the thigh's forward rotation, from the swing's onset (``SWING_ONSET_FRACTION``) to its peak flexion,
covered at toe off on the normative curve the phases above come from (0.107: Perry & Burnfield 2010; Winter
2009; tests/algorithms/test_thigh_toe_off.py checks it against the simulator's copy of that curve). Toe off is
placed where the thigh reaches it (module docstring)."""
SWING_ONSET_FRACTION = 0.10
"""The swing's rotation is counted from where the flexion velocity last rises through this fraction of the swing
peak: below it the thigh is barely moving (0.15 % of the swing's rotation on the normative curve), and a thigh
creeping forward through a pivoting stance is not swinging."""
MIN_SWING_PEAK_DPS = 50.0
"""Smallest mid-swing flexion velocity (deg/s) counted as a swing: a ~35 deg swing over ~0.45 s averages
~80 deg/s and peaks at about twice that; very slow walkers still exceed 50."""
MIN_SWING_EXCURSION_DEG = 10.0
"""Smallest thigh rotation (deg) over a swing's positive flexion lobe: a ~16 cm step; heel-strike ringing of
the thigh's soft tissue moves the sensor by 2-5 deg (see the module docstring)."""
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
    # plain Python per extremum: a window holds one or two, and numpy's per-call cost exceeds the arithmetic
    out = []
    last = x.size - 2
    for j in i.tolist():
        j = min(max(j, 1), last)
        a, b, c = x[j - 1 : j + 2].tolist()
        den = a - 2 * b + c
        off = 0.5 * (a - c) / den if abs(den) > 1e-12 else 0.0
        out.append(j + min(max(off, -0.5), 0.5))
    return np.array(out, dtype=np.float64)


def _keep_apart(peaks: np.ndarray, x: np.ndarray, distance: int) -> np.ndarray:
    """The peaks left when, among peaks closer than ``distance`` samples, only the highest is kept: the rule of
    scipy.signal.find_peaks' ``distance``, applied after the excursion rule (on a signal holding only these
    peaks) so that a rejected lobe can never suppress a real swing."""
    if peaks.size < 2:
        return peaks
    only = np.full(x.size, float(np.min(x[peaks])) - 1.0)
    only[peaks] = x[peaks]
    kept, _ = signal.find_peaks(only, distance=distance)
    return kept


@dataclass(frozen=True)
class SwingCandidates:
    """Every peak of the low-passed flexion velocity above ``MIN_SWING_PEAK_DPS`` of one signal, before a walking
    mask and the "keep apart" rule choose among them (`select_swings`): what each would give as a swing depends only
    on the signal around it (its positive lobe and the peak flexion after it), so a caller analysing a stream in
    pieces can keep the candidates of the part it has seen whole and filter only what is new.

    Per candidate (arrays aligned, sorted by ``peak``): ``peak`` sample index, ``height`` deg/s (the filtered
    velocity there), ``lobe_start`` the last sample before it where the filtered velocity is negative (-1: none in
    the signal), ``lobe_end`` the first one after it (the signal's length: none), ``swing`` whether its lobe sweeps
    ``MIN_SWING_EXCURSION_DEG`` and its peak flexion follows within ``MAX_SWING_S``; ``toe_off_s``,
    ``initial_contact_s``, ``swing_peak_s`` (s from the first sample; NaN where ``swing`` is False, or where the
    candidate peaks before `swing_candidates`'s ``times_from``)."""

    peak: np.ndarray
    height: np.ndarray
    lobe_start: np.ndarray
    lobe_end: np.ndarray
    excursion_ok: np.ndarray
    swing: np.ndarray
    toe_off_s: np.ndarray
    initial_contact_s: np.ndarray
    swing_peak_s: np.ndarray
    n: int
    """Samples of the signal the candidates come from."""


def detect_thigh_events(
    flexion_velocity_dps: np.ndarray, sampling_rate_hz: float, region_mask: np.ndarray | None = None
) -> ThighEvents:
    """Toe offs and initial contacts of one leg (see the module docstring).

    ``flexion_velocity_dps`` (n,) deg/s, flexion positive (ThighAxes.flexion_velocity_dps);
    ``region_mask`` (bool, n) restricts swing peaks to walking. Raises InvalidSignal for bad input.
    """
    candidates = swing_candidates(flexion_velocity_dps, sampling_rate_hz)
    if region_mask is not None and (region_mask.shape != (candidates.n,) or region_mask.dtype != np.bool_):
        raise InvalidSignal(f"region_mask must be a bool array of shape {(candidates.n,)}")
    keep = None if region_mask is None else region_mask[candidates.peak]
    return select_swings(candidates, sampling_rate_hz, keep)


def swing_candidates(flexion_velocity_dps: np.ndarray, sampling_rate_hz: float, times_from: int = 0) -> SwingCandidates:
    """The swing candidates of one leg's flexion velocity (`SwingCandidates`; `detect_thigh_events` is
    `select_swings` of them). Candidates peaking before sample ``times_from`` get no times (NaN toe off, initial
    contact and swing peak), for a caller that holds them already (each swing's times depend only on the signal,
    not on the other swings). Raises InvalidSignal for bad input."""
    fs = check_rate(sampling_rate_hz)
    w = np.asarray(flexion_velocity_dps, dtype=np.float64)
    if w.ndim != 1 or w.size < 4:
        raise InvalidSignal(f"flexion_velocity_dps must be a 1-D array of at least 4 samples, got {w.shape}")
    if not np.isfinite(w).all():
        raise InvalidSignal("flexion_velocity_dps contains NaN or infinite values")
    sos = butter_sos(4, min(LOWPASS_HZ, 0.45 * fs), "lowpass", float(fs))
    ws = zero_phase(sos, w)
    peaks = _peaks_above(ws, MIN_SWING_PEAK_DPS)
    # the positive lobe of each peak: last negative sample before it, first negative sample after it
    # by binary search among the negative samples, bounded by -1 and the signal's length (no negative sample)
    neg = np.concatenate([[-1], np.flatnonzero(ws < 0), [ws.size]])
    lobe_start = neg[np.searchsorted(neg, peaks, side="right") - 1]
    lobe_end = neg[np.searchsorted(neg, peaks, side="left")]
    summed = np.zeros(ws.size + 1)  # the running sum from 0 at sample 0 on
    np.cumsum(ws, out=summed[1:])
    excursion_ok = summed[lobe_end] / fs - summed[lobe_start + 1] / fs >= MIN_SWING_EXCURSION_DEG  # deg
    # first + to - zero crossing after each peak (peak flexion) within MAX_SWING_S
    swing = excursion_ok & (lobe_end < ws.size) & (lobe_end - peaks <= MAX_SWING_S * fs)
    toe_off, ic, t_peak_all = np.full((3, peaks.size), np.nan)
    timed = swing if times_from <= 0 else swing & (peaks >= times_from)
    if timed.any():
        p, z = peaks[timed], lobe_end[timed]
        t_peak = _parabolic(ws, p) / fs
        # linear interpolation of the zero crossing between samples z-1 (>= 0) and z (< 0)
        a, b = ws[z - 1], ws[z]
        t_flex = (z - 1 + a / (a - b)) / fs
        rate = (PHASE_PEAK_FLEXION - PHASE_SWING_PEAK) / (t_flex - t_peak)
        posture = _toe_off_posture_s(ws, p, lobe_start[timed], t_flex, fs)
        extrapolated = t_peak - (PHASE_SWING_PEAK - PHASE_TOE_OFF) / rate
        posture = np.where(np.isfinite(posture), posture, extrapolated)
        toe_off[timed] = posture
        ic[timed] = _initial_contact_s(ws, p, t_peak, t_flex, posture, fs)
        t_peak_all[timed] = t_peak
    return SwingCandidates(
        peaks, ws[peaks], lobe_start, lobe_end, excursion_ok, swing, toe_off, ic, t_peak_all, int(ws.size)
    )


def _peaks_above(x: np.ndarray, height: float) -> np.ndarray:
    """``find_peaks(x, height=height)[0]``: the signal's local maxima whose value reaches ``height``, found by its
    compiled step without its argument checks and property dicts, which cost more than finding the peaks of a live
    window's few hundred samples."""
    if _local_maxima_1d is None:  # pragma: no cover - a scipy without it
        return signal.find_peaks(x, height=height)[0]
    x = np.ascontiguousarray(x, dtype=np.float64)  # the compiled step takes C-ordered float64 only
    peaks, _, _ = _local_maxima_1d(x)
    return peaks[x[peaks] >= height]


def _fast_peaks_agree() -> bool:
    """Whether scipy's private step, called as `_peaks_above` calls it, gives what the public `find_peaks` gives on
    a signal with plateaus and peaks on both sides of the height: checked once at import, so that a scipy whose
    private function changed falls back to the public call instead of failing or differing in every window."""
    if _local_maxima_1d is None:  # pragma: no cover
        return False
    t = np.arange(400) / 100.0
    x = 80 * np.sin(2 * np.pi * 1.9 * t) + 40 * np.sin(2 * np.pi * 5.3 * t)
    x = np.ascontiguousarray(np.round(x, 0))  # rounding makes plateaus
    try:
        peaks, _, _ = _local_maxima_1d(x)
        fast = peaks[x[peaks] >= 50.0]
    except Exception:  # pragma: no cover - any failure of a private call: the public path
        return False
    return bool(np.array_equal(fast, signal.find_peaks(x, height=50.0)[0]))


if not _fast_peaks_agree():  # pragma: no cover
    _local_maxima_1d = None


def select_swings(candidates: SwingCandidates, sampling_rate_hz: float, keep: np.ndarray | None = None) -> ThighEvents:
    """The swings of `detect_thigh_events` among ``candidates``: those ``keep`` (bool per candidate: e.g. the
    region mask at its peak; None: all) leaves whose lobe sweeps ``MIN_SWING_EXCURSION_DEG``, the highest of any
    closer than ``MIN_STRIDE_S`` (the rule of `_keep_apart`), then those whose peak flexion follows in time."""
    fs = check_rate(sampling_rate_hz)
    c = candidates
    chosen = c.excursion_ok if keep is None else (keep & c.excursion_ok)
    at = np.flatnonzero(chosen)
    distance = max(1, round(MIN_STRIDE_S * fs))
    peaks = c.peak[at]
    # `_keep_apart` keeps every peak when all lie ``distance`` apart, none on the signal's first or last sample
    # (find_peaks never gives those): then it is not run (a live window's usual case)
    if at.size >= 2 and not (np.diff(peaks).min() >= distance and peaks[0] > 0 and peaks[-1] < c.n - 1):
        heights = np.full(c.n, float(np.min(c.height[at])) - 1.0)
        heights[c.peak[at]] = c.height[at]
        kept = _keep_apart(peaks, heights, distance)
        at = at[np.isin(peaks, kept)]
    at = at[c.swing[at]]
    return ThighEvents(c.toe_off_s[at], c.initial_contact_s[at], c.swing_peak_s[at])


def _initial_contact_s(
    ws: np.ndarray, peaks: np.ndarray, t_peak: np.ndarray, t_flex: np.ndarray, toe_off: np.ndarray, fs: float
) -> np.ndarray:
    """Initial contact (s) after each swing: extrapolated from the peak flexion at the late swing's phase rate
    (module docstring)."""
    rate = (PHASE_PEAK_FLEXION - PHASE_SWING_PEAK) / (t_flex - t_peak)
    return t_flex + (1.0 - PHASE_PEAK_FLEXION) / rate


def _toe_off_posture_s(
    ws: np.ndarray, peaks: np.ndarray, lobe_start: np.ndarray, t_flex: np.ndarray, fs: float
) -> np.ndarray:
    """Time (s) at which the thigh, rotating forward from each swing's onset (the velocity's last rise through
    ``SWING_ONSET_FRACTION`` of the swing peak) to its peak flexion (``t_flex``), has covered
    ``TOE_OFF_EXCURSION_FRACTION`` of that rotation: trapezoidal integration of the flexion velocity, linear
    interpolation in between samples. NaN when the swing's positive lobe has no start in the signal."""
    out = np.full(peaks.size, np.nan)
    angle = np.concatenate([[0.0], np.cumsum(0.5 * (ws[1:] + ws[:-1]))]) / fs  # deg, at each sample
    times = np.arange(ws.size) / fs
    # scalars as Python floats: the same IEEE arithmetic as numpy's, without its per-call cost
    for k, (p, start, flex_s) in enumerate(zip(peaks.tolist(), lobe_start.tolist(), t_flex.tolist(), strict=True)):
        if start < 0:
            continue
        level = SWING_ONSET_FRACTION * ws.item(p)
        below = ws[start:p] < level  # ws[start] < 0 < level: never all False
        i = start + below.size - 1 - int(below[::-1].argmax())  # the last sample below the level
        w_i, w_next = ws[i : i + 2].tolist()
        onset_s = (i + (level - w_i) / (w_next - w_i)) / fs
        onset, flexed = np.interp([onset_s, flex_s], times, angle).tolist()
        target = onset + TOE_OFF_EXCURSION_FRACTION * (flexed - onset)
        # the thigh's angle rises monotonically from the onset to the last sample before the peak flexion
        end = math.floor(flex_s * fs)
        # i < end (the onset precedes the peak, the peak flexion follows it): the slices start at sample i
        seg_t = times[i : end + 1].copy()
        seg_t[0] = onset_s
        seg_a = angle[i : end + 1].copy()
        seg_a[0] = onset
        out[k] = float(np.interp(target, seg_a, seg_t))
    return out
