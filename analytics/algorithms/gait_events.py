"""Gait events from one pelvis (lower-back) IMU in any orientation: walking bouts, initial and final
contacts with left/right labels, and per-stride stride, stance and swing times.

Method (each step follows a published observation; the constants are physiological, not fitted):

1. **Orientation-free step candidates.** The norm of the specific force minus its median is, to first order,
   the vertical acceleration whatever the sensor orientation. Each step makes one peak of vertical
   acceleration in loading response (the vertical ground reaction force exceeds body weight just after heel
   strike; Zijlstra & Hof 2003, Gait Posture 18:1). Peaks of the 3 Hz low-passed signal (step frequency
   1.4-2.3 Hz, Hollman 2011) at least 0.25 s apart (fastest walking cadence ~ 240 steps/min) with a
   prominence of 0.5 m/s^2 (~0.05 g; quiet standing sway is far below) are step candidates.
2. **Walking bouts**: runs of at least 4 candidates (two strides, the smallest walking bout of the
   Mobilise-D consensus, Kluge et al. 2021, PLoS One 16:e0258460) whose step times are 0.25-1.5 s and
   within a factor 2 of the bout's median step time (a bout may not hide a missed step or a pause).
3. **Body axes** from the walking samples (``pelvis_alignment``): vertical, forward, left.
4. **Initial contact (IC)**: the heel strike starts the rise of vertical acceleration into the loading
   peak; IC is the instant of steepest rise (maximum vertical jerk of the 10 Hz low-passed vertical
   acceleration) in the 0.25 s before each loading peak. This is the McCamley 2012 (Gait Posture 36:316)
   idea -- IC at an extremum of the differentiated vertical signal -- evaluated on a less smoothed signal,
   so that the timing is not delayed by the wavelet's width.
5. **Final contact (FC)**: the trailing foot leaves the ground at the end of double support, when the
   vertical acceleration, having passed its loading peak, reaches its minimum (the trailing leg stops
   pushing and body weight rests on the single stance leg; cf. the trunk-acceleration event patterns of
   Auvinet et al. 2002, Gait Posture 16:124, and González et al. 2010, Gait Posture 31:322 -- citation of
   this exact feature still to be checked).
   FC of the contralateral foot = first local minimum of the 10 Hz low-passed vertical acceleration within
   0.35 s after the loading peak (double support lasts about 10% of a stride, Perry 1992). The search starts
   at the peak itself: the loading peak comes ~45 ms after IC and the trailing foot can leave 80-100 ms
   after IC (short double support of the shorter-stance leg in asymmetric gait), so a later start skipped
   that FC and took the single-support trough instead (measured: docs/gait-physiology-real-vs-simulator.md).
6. **Side**: two published cues, each a signed score, summed after scaling to unit median magnitude:
   (a) the medio-lateral acceleration reverses at heel strike: during left stance the trunk, an inverted
   pendulum over the left foot, accelerates to the right, and vice versa (Ullrich et al. 2022 use ML
   features; here the mean ML acceleration in the half step after IC minus the half step before);
   (b) the sign of the pelvis yaw rate at IC (McCamley 2012; Pham et al. 2017, Front Neurol 8:457),
   high-passed at 0.5 Hz to remove turning. Steps alternate left/right, so each bout is labelled by a
   Viterbi pass over {left, right} that charges ``NON_ALTERNATION_COST`` for two same-side steps in a row.
7. **Strides** (side = stance leg): stride = IC to the next same-side IC; stance = IC to that foot's FC;
   swing = stride - stance.

Units: accelerations m/s^2 (gravity included), angular rates deg/s, sampling rate Hz, all times s.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import numpy as np
from scipy import signal

from analytics.algorithms._checks import check_imu
from analytics.algorithms.filters import butter_sos, zero_phase
from analytics.algorithms.pelvis_alignment import BodyAxes, estimate_body_axes

try:  # the compiled steps of scipy.signal.find_peaks (distance, then prominence); the public call otherwise
    from scipy.signal._peak_finding_utils import _local_maxima_1d, _peak_prominences, _select_by_peak_distance
except ImportError:  # pragma: no cover
    _local_maxima_1d = None

Side = Literal["left", "right"]

STEP_LOWPASS_HZ = 3.0
"""Low-pass (Hz) leaving one vertical-acceleration peak per step."""
MIN_STEP_S = 0.25
"""Shortest step time (s): ~240 steps/min, beyond walking."""
MAX_STEP_S = 1.5
"""Longest step time (s) inside a walking bout: ~40 steps/min, very slow pathological walking."""
MIN_PEAK_PROMINENCE_MPS2 = 0.5
"""Smallest loading peak (m/s^2, ~0.05 g) counted as a step."""
MIN_BOUT_STEPS = 4
"""Fewest steps (ICs) in a walking bout: two strides."""
STEP_RATIO_LIMIT = 2.0
"""A step time more than this factor away from the bout median breaks the bout."""
EVENT_LOWPASS_HZ = 10.0
"""Low-pass (Hz) of the vertical acceleration used to time IC and FC (impact transients are above)."""
IC_SEARCH_S = 0.25
"""IC is searched for in this many seconds before the loading peak."""
FC_SEARCH_S = (0.0, 0.35)
"""FC of the trailing foot is searched for in this window (s) after the loading peak (0: from the peak on)."""
YAW_HIGHPASS_HZ = 0.5
"""High-pass (Hz) removing turning from the yaw rate, keeping the stride-frequency pelvis rotation."""
NON_ALTERNATION_COST = 3.0
"""Viterbi cost of two same-side steps in a row, in units of the median side score."""
BOUT_MARGIN_S = 1.0
"""Samples this close to a bout (s) are analysed with it (pass 2 sees only bouts + margins; 1 s lets the
filters settle: the 0.5 Hz high-pass has a time constant of ~0.3 s)."""
MIN_DURATION_S = 2.0
"""Shortest signal accepted (s)."""


@dataclass(frozen=True)
class GaitEvent:
    """An initial or final contact: time (s from the first sample) and the foot (left or right)."""

    t_s: float
    side: Side


@dataclass(frozen=True)
class WalkingBout:
    """A walking bout: first IC to last IC (s), and its number of steps (ICs)."""

    start_s: float
    end_s: float
    n_steps: int


@dataclass(frozen=True)
class Stride:
    """One stride of the stance leg ``side``: IC (start_s) to the next same-side IC (end_s), in s.

    ``stance_time_s`` and ``swing_time_s`` are None when that foot's FC was not found.
    """

    side: Side
    start_s: float
    end_s: float
    stride_time_s: float
    stance_time_s: float | None
    swing_time_s: float | None


@dataclass(frozen=True)
class GaitEvents:
    """Everything found in one pelvis recording. ``axes`` is None when no walking was found.

    ``side_confidence`` (0..1): how strongly the side cues agree with the chosen alternating labels
    (1 = every step's cues point to its label).
    """

    walking_bouts: tuple[WalkingBout, ...]
    initial_contacts: tuple[GaitEvent, ...]
    final_contacts: tuple[GaitEvent, ...]
    strides: tuple[Stride, ...]
    axes: BodyAxes | None
    side_confidence: float


def _lowpass(x: np.ndarray, cutoff_hz: float, fs: float, order: int = 4) -> np.ndarray:
    return zero_phase(butter_sos(order, min(cutoff_hz, 0.45 * fs), "lowpass", fs), x, axis=0)


def _step_peaks(a_v: np.ndarray, fs: float) -> np.ndarray:
    """Sample indices of the loading peaks (one per step) of a vertical acceleration."""
    smooth = _lowpass(a_v, STEP_LOWPASS_HZ, fs)
    distance = max(1, round(MIN_STEP_S * fs))
    if _local_maxima_1d is None:  # pragma: no cover - a scipy without them
        peaks, _ = signal.find_peaks(smooth, distance=distance, prominence=MIN_PEAK_PROMINENCE_MPS2)
        return peaks
    # find_peaks(smooth, distance=..., prominence=...) step by step: its argument checks and property dicts cost
    # more than finding the peaks of a window's few hundred samples. The compiled steps take C-ordered float64
    # only, which the filter's public path (a scipy without its kernel) does not hand back
    smooth = np.ascontiguousarray(smooth, dtype=np.float64)
    peaks, _, _ = _local_maxima_1d(smooth)
    # the distance rule drops nothing when consecutive peaks lie ``distance`` apart (as a window's steps mostly do)
    if peaks.size >= 2 and int((peaks[1:] - peaks[:-1]).min()) < distance:
        peaks = peaks[_select_by_peak_distance(peaks, smooth[peaks], distance)]
    prominences, _, _ = _peak_prominences(smooth, peaks, -1)  # -1: no window length (find_peaks's wlen=None)
    return peaks[prominences >= MIN_PEAK_PROMINENCE_MPS2]


def _fast_peaks_agree() -> bool:
    """Whether scipy's private steps, called as `_step_peaks` calls them, give what the public `find_peaks` gives
    on a signal with plateaus, close peaks and low ones: checked once at import, so that a scipy whose private
    functions changed falls back to the public call instead of failing or differing in every window."""
    if _local_maxima_1d is None:  # pragma: no cover
        return False
    t = np.arange(400) / 100.0
    x = np.sin(2 * np.pi * 1.9 * t) + 0.4 * np.sin(2 * np.pi * 5.3 * t) + np.where((t > 1.0) & (t < 1.1), 0.8, 0.0)
    x = np.ascontiguousarray(np.round(x, 2))  # rounding makes plateaus
    try:
        peaks, _, _ = _local_maxima_1d(x)
        peaks = peaks[_select_by_peak_distance(peaks, x[peaks], 20)]
        prominences, _, _ = _peak_prominences(x, peaks, -1)
        fast = peaks[prominences >= 0.5]
    except Exception:  # pragma: no cover - any failure of a private call: the public path
        return False
    public, _ = signal.find_peaks(x, distance=20, prominence=0.5)
    return bool(np.array_equal(fast, public))


if not _fast_peaks_agree():  # pragma: no cover
    _local_maxima_1d = None


def _bouts(peaks: np.ndarray, fs: float) -> list[np.ndarray]:
    """Split step peaks into walking bouts (arrays of peak indices), see the module docstring."""
    if peaks.size < MIN_BOUT_STEPS:
        return []
    # A window has a dozen peaks: Python numbers (the same IEEE arithmetic and comparisons) cost less than numpy's
    # per-call overhead. Runs and bouts are slices of consecutive peaks.
    at: list[int] = peaks.tolist()
    dt = [(b - a) / fs for a, b in pairwise(at)]
    bouts: list[np.ndarray] = []
    start = 0
    for end in [*(i + 1 for i, d in enumerate(dt) if d > MAX_STEP_S), len(at)]:
        if end - start >= MIN_BOUT_STEPS:
            steps = dt[start : end - 1]
            median = _median_of_steps(steps)
            first = start
            for i, step in enumerate(steps, start + 1):
                if not (step <= STEP_RATIO_LIMIT * median and step >= median / STEP_RATIO_LIMIT):
                    if i - first >= MIN_BOUT_STEPS:
                        bouts.append(peaks[first:i])
                    first = i
            if end - first >= MIN_BOUT_STEPS:
                bouts.append(peaks[first:end])
        start = end
    return bouts


def _median_of_steps(steps: list[float]) -> float:
    """np.median of step times (never NaN: sample counts over a positive rate), the same number (+ 0.0: np.median
    sums from +0.0, which turns a -0.0 into 0.0 and leaves every other value as it is)."""
    ordered = sorted(steps)
    k = len(ordered) // 2
    return (ordered[k] if len(ordered) % 2 else (ordered[k - 1] + ordered[k]) / 2) + 0.0


def _median(x: np.ndarray) -> float:
    """``np.median`` of a non-empty 1-D array, the same number: its middle order statistic, or the mean of its two
    middle ones, NaN if it holds one (+ 0.0: np.median sums from +0.0, which turns a -0.0 into 0.0 and leaves every
    other value as it is). np.median's axis and NaN handling cost several times its partition on a window's arrays
    of a few to a few hundred values."""
    n = x.shape[0]
    k = n // 2
    if n % 2:
        p = np.partition(x, (k, -1))
        return float("nan") if np.isnan(p[-1]) else float(p[k]) + 0.0
    p = np.partition(x, (k - 1, k, -1))
    return float("nan") if np.isnan(p[-1]) else float((p[k - 1] + p[k]) / 2) + 0.0


def _window_argext(x: np.ndarray, starts: np.ndarray, length: int, find_max: bool) -> np.ndarray:
    """Index of the max (or min) of x in [start, start + length) for each start (clipped to x)."""
    vals = x[_clip_index(starts[:, None] + np.arange(length)[None, :], x.size)]
    return _clip_index(starts + (np.argmax(vals, axis=1) if find_max else np.argmin(vals, axis=1)), x.size)


def _first_local_min(x: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """First local minimum of x in [start, start + length) per start; the window minimum if none."""
    vals = x[_clip_index(starts[:, None] + np.arange(length)[None, :], x.size)]
    is_min = np.zeros(vals.shape, dtype=bool)
    is_min[:, 1:-1] = (vals[:, 1:-1] < vals[:, :-2]) & (vals[:, 1:-1] <= vals[:, 2:])
    has = is_min.any(axis=1)
    first = np.where(has, np.argmax(is_min, axis=1), np.argmin(vals, axis=1))
    return _clip_index(starts + first, x.size)


def _clip_index(index: np.ndarray, n: int) -> np.ndarray:
    """Integer indices clipped to 0..n - 1 (np.clip's value, without its wrapper's cost on small arrays)."""
    return np.minimum(np.maximum(index, 0), n - 1)


def _alternating_labels(score: np.ndarray) -> list[bool]:
    """Viterbi labels (True = left) for one bout from per-step scores (positive = left)."""
    # Python floats: the same IEEE arithmetic as float64 array elements, without numpy's per-element overhead
    values = score.tolist()
    left, right = -values[0], values[0]  # costs of ending in state 0 = left, 1 = right
    back: list[tuple[int, int]] = [(0, 1)]
    for v in values[1:]:
        stay_left, swap_left = left + NON_ALTERNATION_COST, right
        stay_right, swap_right = right + NON_ALTERNATION_COST, left
        back.append((0 if stay_left < swap_left else 1, 1 if stay_right < swap_right else 0))
        left, right = min(stay_left, swap_left) + -v, min(stay_right, swap_right) + v
    state = 0 if left <= right or left != left else 1  # np.argmin: the first minimum, or the first NaN
    states = [False] * len(values)
    for i in range(len(values) - 1, -1, -1):
        states[i] = state == 0
        state = back[i][state]
    return states


def _robust_scale(x: np.ndarray) -> np.ndarray:
    scale = _median(np.abs(x))
    return x / scale if scale > 0 else x


def _candidate_walking(acc: np.ndarray, fs: float) -> tuple[np.ndarray, int]:
    """Pass 1 (module docstring): the samples within ``BOUT_MARGIN_S`` of a bout of orientation-free step
    candidates, and the number of such bouts."""
    # np.linalg.norm(acc, axis=1), the same sums in the same order, without its generic reduction's overhead
    x, y, z = acc[:, 0], acc[:, 1], acc[:, 2]
    norm = np.sqrt(x * x + y * y + z * z)
    bouts = _bouts(_step_peaks(norm - _median(norm), fs), fs)
    mask = np.zeros(acc.shape[0], dtype=bool)
    margin = round(BOUT_MARGIN_S * fs)
    for b in bouts:
        mask[max(0, b[0] - margin) : b[-1] + margin + 1] = True
    return mask, len(bouts)


def candidate_walking_s(acc_mps2: np.ndarray, sampling_rate_hz: float) -> tuple[float, int]:
    """How much of a pelvis recording pass 1 of `detect_gait_events` keeps for pass 2 (s: samples within
    ``BOUT_MARGIN_S`` of a bout of step candidates) and in how many bouts, at a fraction of the detector's cost
    (no body axes, no second pass): every initial contact the detector gives lies in those samples, so a caller
    that needs some amount of walking can rule a recording out first. Raises InvalidSignal for bad input and
    InsufficientData below ``MIN_DURATION_S``."""
    acc, _, fs = check_imu(acc_mps2, acc_mps2, sampling_rate_hz, MIN_DURATION_S)
    mask, count = _candidate_walking(acc, fs)
    return float(mask.sum()) / fs, count


def detect_gait_events(
    acc_mps2: np.ndarray, gyr_dps: np.ndarray, sampling_rate_hz: float, *, axes: BodyAxes | None = None
) -> GaitEvents:
    """Walking bouts, ICs, FCs and strides from a pelvis IMU (see the module docstring).

    ``acc_mps2`` (n, 3) m/s^2 including gravity and ``gyr_dps`` (n, 3) deg/s, in the sensor's own frame
    (any orientation); ``sampling_rate_hz`` in Hz. ``axes``: body axes already estimated for this sensor (e.g.
    from a longer stretch of the same walking); without them (the default) step 3 estimates them from the
    walking samples found here. Raises InvalidSignal for bad arrays or rate and InsufficientData for a signal
    shorter than MIN_DURATION_S.
    """
    acc, gyr, fs = check_imu(acc_mps2, gyr_dps, sampling_rate_hz, MIN_DURATION_S)
    empty = GaitEvents((), (), (), (), None, 0.0)

    # Pass 1: orientation-free step candidates -> samples that are walking.
    mask, _ = _candidate_walking(acc, fs)
    if mask.sum() < MIN_DURATION_S * fs:
        return empty
    # Pass 2 works on the walking samples only (concatenated): `where` maps back to sample numbers.
    where = np.flatnonzero(mask)
    acc_w, gyr_w = acc.take(where, axis=0), gyr.take(where, axis=0)  # acc[where], at half its cost on views
    if axes is None:
        axes = estimate_body_axes(acc_w, gyr_w, fs)
    body = axes.to_body(acc_w)
    a_v = body[:, 2] - body[:, 2].mean()
    a_ml = body[:, 1]
    yaw = gyr_w @ np.asarray(axes.up)
    peaks_w = _step_peaks(a_v, fs)
    bouts = _bouts(where[peaks_w], fs)  # bout rules judge true times, not concatenated ones
    if not bouts:
        return GaitEvents((), (), (), (), axes, 0.0)
    position = np.searchsorted(where, np.concatenate(bouts))  # peaks back to walking-sample positions

    a_ev = _lowpass(a_v, EVENT_LOWPASS_HZ, fs)
    jerk = np.empty_like(a_ev)  # np.gradient(a_ev): central differences, one-sided at the ends
    jerk[1:-1] = (a_ev[2:] - a_ev[:-2]) / 2.0
    jerk[0] = a_ev[1] - a_ev[0]
    jerk[-1] = a_ev[-1] - a_ev[-2]
    ic_len = round(IC_SEARCH_S * fs)
    fc_lo, fc_hi = round(FC_SEARCH_S[0] * fs), round(FC_SEARCH_S[1] * fs)
    sos_hp = butter_sos(2, YAW_HIGHPASS_HZ, "highpass", fs)
    yaw_hp = zero_phase(sos_hp, yaw)
    ml_hp = zero_phase(sos_hp, a_ml)
    ml_cum = np.concatenate([[0.0], np.cumsum(ml_hp)])
    n = where.size

    ic_idx = _window_argext(jerk, position - ic_len, ic_len + 1, find_max=True)
    fc_idx = _first_local_min(a_ev, position + fc_lo, fc_hi - fc_lo + 1)

    # Side scores per IC (positive = left), over half a (median) step either side of the IC.
    half = max(1, round(_median(np.concatenate([np.diff(b) for b in bouts])) / 2))
    lo = np.maximum(ic_idx - half, 0)  # ic_idx lies in 0..n - 1: one side of np.clip(.., 0, n) each
    hi = np.minimum(ic_idx + half, n)
    ml_before = (ml_cum[ic_idx] - ml_cum[lo]) / np.maximum(ic_idx - lo, 1)
    ml_after = (ml_cum[hi] - ml_cum[ic_idx]) / np.maximum(hi - ic_idx, 1)
    score = _robust_scale(ml_before - ml_after) + _robust_scale(-yaw_hp[ic_idx])

    ics: list[GaitEvent] = []
    fcs: list[GaitEvent] = []
    strides: list[Stride] = []
    out_bouts: list[WalkingBout] = []
    agree = 0.0
    total = 0.0
    pos = 0
    for b in bouts:
        sl = slice(pos, pos + b.size)
        pos += b.size
        left = _alternating_labels(score[sl])
        # A bout's first or last step labelled like its neighbour is not a step of alternating walking
        # (e.g. the weight shift before gait initiation): trim it.
        first, last = 0, b.size
        while last - first >= 2 and left[first] == left[first + 1]:
            first += 1
        while last - first >= 2 and left[last - 1] == left[last - 2]:
            last -= 1
        k = last - first
        if k < MIN_BOUT_STEPS:
            continue
        left = left[first:last]
        keep = slice(sl.start + first, sl.start + last)
        kept = score[keep]
        signed = np.where(left, kept, -kept)
        agree += float(signed.sum())
        total += float(np.abs(kept).sum())
        # Python floats from here: the same values as float() of each element, at a fraction of the cost
        t_ic: list[float] = (where[ic_idx[keep]] / fs).tolist()
        t_fc: list[float] = (where[fc_idx[keep]] / fs).tolist()
        sides: list[Side] = ["left" if x else "right" for x in left]
        out_bouts.append(WalkingBout(t_ic[0], t_ic[-1], k))
        for i in range(k):
            ics.append(GaitEvent(t_ic[i], sides[i]))
            # The FC after IC i belongs to the other (trailing) foot.
            fcs.append(GaitEvent(t_fc[i], "right" if left[i] else "left"))
        for i in range(k - 2):
            if sides[i + 2] != sides[i] or sides[i + 1] == sides[i]:
                continue
            stride = t_ic[i + 2] - t_ic[i]
            fc = t_fc[i + 1]  # FC of foot i happens after the contralateral IC i+1
            stance = fc - t_ic[i]
            ok = 0.0 < stance < stride
            strides.append(
                Stride(
                    side=sides[i],
                    start_s=t_ic[i],
                    end_s=t_ic[i + 2],
                    stride_time_s=stride,
                    stance_time_s=stance if ok else None,
                    swing_time_s=stride - stance if ok else None,
                )
            )
    side_conf = float(max(agree, 0.0) / total) if total > 0 else 0.0
    return GaitEvents(tuple(out_bouts), tuple(ics), tuple(fcs), tuple(strides), axes, side_conf)
