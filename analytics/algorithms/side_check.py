"""Are the thigh sensors on the sides (and segments) their names say? Checks from walking kinematics.

1. **Left/right** (each thigh's own initial contacts against the pelvis yaw rate). Each thigh sensor gives its
   own leg's initial contacts (ICs: ``thigh_events``, from the thigh's flexion velocity alone, so a thigh's
   ICs belong to the leg it is strapped to, whatever its name). Around IC the pelvis yaw RATE (about the
   vertical, counter-clockwise positive) turns away from the contacting foot's side and is fastest exactly
   at IC: clockwise (negative) at left IC, counter-clockwise at right IC (McCamley et al. 2012, Gait Posture
   36:316; Pham et al. 2017, Front Neurol 8:457). Measured on the real lower-back recordings of
   tests/data/mobgap-lab (docs/gait-physiology-real-vs-simulator.md): side-signed yaw rate at IC -14.0 / -15.6 deg/s
   (optical / INDIP reference ICs), negative at 83-88 % of ICs, stride-frequency fundamental most negative at
   IC (phase 0.00 / 0.01 stride). The yaw rate is band-passed around the stride frequency f (``STRIDE_BAND``
   x f, f = 1 / the median interval between one leg's thigh ICs; ``STRIDE_BAND_HZ`` when too few ICs): this
   removes turning and the step-frequency content and keeps that fundamental, zero phase. It is read at each
   thigh IC; each IC's vote e = -yaw (left-named thigh) or +yaw (right-named thigh) is positive when the name fits.
   Because the fundamental is extreme at IC, a thigh IC timing error of even +-100 ms keeps the vote's sign
   (measured on the real recordings: bench/RESULTS.md, "Thigh side check").

   NOT the textbook premise "the pelvis yaw ANGLE is extreme at IC" (Saunders, Inman & Eberhart 1953; Perry
   & Burnfield 2010): on the real lower-back data the angle crosses zero at IC, a quarter stride away, and a
   check built on it cannot tell the sides apart (its score is ~0). A walker whose pelvis does follow the
   textbook gives yaw rates near zero at IC here: the check then answers "cannot tell" (withholds), it does
   not call a correctly worn kit swapped.

   Votes are divided by the amplitude of the band-passed yaw rate over the walking samples used (sqrt(2) x
   its RMS), so a vote is ~cos of the phase between the yaw-rate extreme and the IC (1: extreme at IC, as
   measured; 0: a quarter stride off, the textbook pelvis; -1: opposite side). Score = the mean vote, clipped
   to -1..1. Decision: at least ``MIN_CONTACTS`` usable ICs, |score| >= ``MIN_SCORE`` (the yaw-rate extreme
   within ~1/6 stride of the ICs: a consistent but small vote, e.g. a textbook pelvis seen through a thigh IC
   detector 20 ms late, must not decide) and the count of agreeing votes significant under a one-sided sign
   test (binomial, p = 0.5) at ``MAX_P_VALUE``; otherwise ``swapped`` is None (cannot tell). ICs inside turns
   (|turning rate| above ``MAX_TURN_DPS``) are not used.
2. **Segment plausibility**: a thigh sweeps ~40 deg in each stride (hip flexion-extension), the pelvis rotates
   by less than ~10 deg about any horizontal axis (tilt and obliquity a few degrees each; Perry & Burnfield
   2010). The check measures the typical angular EXCURSION per stride about the sensor's main horizontal
   rotation axis while walking (band-passed, integrated, median peak-to-peak over stride-long windows:
   ``rotation_excursion_deg``) and compares it with ``SEGMENT_EXCURSION_DEG``. Measured: real lower-back
   recordings 4.1-7.0 deg (including daily living with turns), simulated pelvis ~4 deg, simulated thighs
   ~37 deg. An angular-VELOCITY span does not separate them on real data: the real pelvis reaches 186 deg/s
   p99-p1 in daily living, which a velocity threshold calibrated on simulation took for a thigh. (Pelvic yaw
   is about the vertical and removed, so its timing does not enter this check.)

Units: deg/s, Hz, s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analytics.algorithms._checks import check_rate
from analytics.algorithms.filters import butter_sos, zero_phase
from analytics.algorithms.thigh_events import detect_thigh_events
from analytics.algorithms.tilt import block_means
from analytics.errors import InsufficientData, InvalidSignal

STRIDE_BAND = (0.7, 1.4)
"""Band around the stride frequency, as multiples of it (the step frequency, 2x, is outside)."""
STRIDE_BAND_HZ = (0.4, 1.6)
"""Band (Hz) around the stride frequency of walking (~0.7-1.2 Hz) when the ICs do not give the stride time."""
STRIDE_S = (0.6, 2.5)
"""Same-leg IC intervals (s) taken as strides when estimating the stride frequency."""
TURN_LOWPASS_HZ = 0.3
"""Low-pass (Hz) of the yaw rate that leaves the turning rate (below the stride band)."""
MAX_TURN_DPS = 30.0
"""ICs where the turning rate exceeds this (deg/s) are not used (a 180 deg turn over 2 s averages 90)."""
SEGMENT_EXCURSION_DEG = 20.0
"""Typical angular excursion per stride (deg) separating a thigh (~35-45) from a pelvis (~4-10): about the
geometric mean of the two, a margin of ~2-3x on either side."""
EXCURSION_BAND_HZ = (0.3, 3.0)
"""Band (Hz) holding the stride and step rhythms; below it, posture changes and integration drift."""
EXCURSION_WINDOW_S = 1.2
"""Window (s) for one peak-to-peak excursion: about one stride (0.9-1.3 s in adult walking)."""
EXCURSION_RATE_HZ = 25.0
"""Rate (Hz) the excursion is computed at (block means; 8x the band's top, peaks within ~1 %)."""
MIN_CONTACTS = 10
"""Fewest usable thigh ICs (both sides together) for a decision (~10 s of walking with one thigh)."""
MIN_SCORE = 0.5
"""|score| (mean vote, ~cos of the IC-to-yaw-rate-extreme phase) below this: the check cannot tell (real walking:
0.7-0.9 with reference ICs, bench/RESULTS.md, "Thigh side check"; cos 60 deg = 0.5)."""
MAX_P_VALUE = 1e-3
"""One-sided sign-test p-value a decision needs (e.g. 18 of 20 votes, or 30 of 40, agreeing)."""


@dataclass(frozen=True)
class SideCheck:
    """Result of the left/right check.

    ``score`` in -1..1 (+1: sides as labelled, -1: swapped; ~cos of the phase between the thigh ICs and the
    pelvis yaw-rate extreme of the named side); ``swapped`` None when the check cannot tell.
    ``n_contacts``: thigh ICs that voted; ``agreement``: fraction of them agreeing with the names (0..1);
    ``confidence`` (0..1): 1 - the one-sided sign-test p-value of the majority direction.
    """

    score: float
    swapped: bool | None
    n_contacts: int = 0
    agreement: float = 0.5
    confidence: float = 0.0


def _stride_band_hz(initial_contacts_s: Mapping[str, np.ndarray]) -> tuple[float, float]:
    """Band (Hz) around the stride frequency given by the median same-leg IC interval (see STRIDE_BAND)."""
    intervals = np.concatenate(
        [np.diff(np.sort(np.asarray(t, dtype=np.float64).ravel())) for t in initial_contacts_s.values()]
    )
    strides = intervals[(intervals >= STRIDE_S[0]) & (intervals <= STRIDE_S[1])]
    if strides.size < 3:
        return STRIDE_BAND_HZ
    f = 1.0 / float(np.median(strides))
    return STRIDE_BAND[0] * f, STRIDE_BAND[1] * f


def ic_yaw_votes(
    pelvis_yaw_rate_dps: np.ndarray,
    sampling_rate_hz: float,
    initial_contacts_s: Mapping[str, np.ndarray],
    walking_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Per-IC votes (dimensionless, see the module docstring): band-passed pelvis yaw rate at each IC over the
    band-passed yaw-rate amplitude, signed + when the IC's side label fits.

    ``pelvis_yaw_rate_dps`` (n,) deg/s about the vertical, counter-clockwise (seen from above) positive;
    ``initial_contacts_s`` maps "left"/"right" to IC times (s from the first sample). ICs outside
    ``walking_mask``, outside the signal or inside turns are dropped. Returns the votes, left ICs first.
    """
    fs = check_rate(sampling_rate_hz)
    yaw = np.asarray(pelvis_yaw_rate_dps, dtype=np.float64)
    if yaw.ndim != 1 or yaw.size < 4 or not np.isfinite(yaw).all():
        raise InvalidSignal(f"pelvis_yaw_rate_dps must be a finite 1-D array of >= 4 samples, got {yaw.shape}")
    if set(initial_contacts_s) - {"left", "right"}:
        raise InvalidSignal("initial_contacts_s must map 'left' and/or 'right' to IC times")
    sos = butter_sos(2, _stride_band_hz(initial_contacts_s), "bandpass", fs)
    band = zero_phase(sos, yaw)
    sos_turn = butter_sos(2, TURN_LOWPASS_HZ, "lowpass", fs)
    turning = np.abs(zero_phase(sos_turn, yaw))
    n = yaw.size
    usable = turning <= MAX_TURN_DPS
    if walking_mask is not None:
        if walking_mask.shape != yaw.shape or walking_mask.dtype != np.bool_:
            raise InvalidSignal(f"walking_mask must be a bool array of shape {yaw.shape}")
        usable &= walking_mask
    if not usable.any():
        return np.zeros(0)
    amplitude = float(np.sqrt(2.0 * np.mean(band[usable] ** 2)))
    if amplitude <= 0.0:
        return np.zeros(0)
    votes = []
    for side in ("left", "right"):
        if side not in initial_contacts_s:
            continue
        t = np.asarray(initial_contacts_s[side], dtype=np.float64).ravel()
        pos = t * fs
        t = t[(pos >= 0) & (pos <= n - 1)]
        idx = np.rint(t * fs).astype(np.int64)
        ok = usable[idx]
        v = np.interp(t[ok] * fs, np.arange(n), band) / amplitude
        votes.append(-v if side == "left" else v)
    return np.concatenate(votes) if votes else np.zeros(0)


def decide(votes: np.ndarray) -> SideCheck:
    """Score, sign test and decision from per-IC votes (see the module docstring)."""
    votes = np.asarray(votes, dtype=np.float64)
    votes = votes[votes != 0.0]
    n = int(votes.size)
    if n == 0:
        return SideCheck(0.0, None, 0, 0.5, 0.0)
    score = float(np.clip(votes.mean(), -1.0, 1.0))
    k = int((votes > 0).sum())
    majority_agrees = 2 * k >= n
    p = float(stats.binomtest(k if majority_agrees else n - k, n, 0.5, alternative="greater").pvalue)
    sure = n >= MIN_CONTACTS and abs(score) >= MIN_SCORE and p <= MAX_P_VALUE and (score > 0) == majority_agrees
    swapped = (score < 0) if sure else None
    return SideCheck(score, swapped, n, k / n, 1.0 - p)


def check_thigh_sides(
    pelvis_yaw_rate_dps: np.ndarray,
    flexion_velocity_dps: dict[str, np.ndarray],
    sampling_rate_hz: float,
    walking_mask: np.ndarray,
) -> SideCheck:
    """Left/right check of thigh sensors against the pelvis (see the module docstring).

    ``pelvis_yaw_rate_dps`` (n,) deg/s about the vertical, counter-clockwise positive (turning included: it is
    filtered out here); ``flexion_velocity_dps`` maps "left" and/or "right" (the sensors' NAMES) to (n,)
    flexion velocities, deg/s, flexion positive; ``walking_mask`` (n,) bool. Raises InvalidSignal for bad
    arrays and InsufficientData for less than 4 s of walking.
    """
    fs = check_rate(sampling_rate_hz)
    yaw = np.asarray(pelvis_yaw_rate_dps, dtype=np.float64)
    if not flexion_velocity_dps or set(flexion_velocity_dps) - {"left", "right"}:
        raise InvalidSignal("flexion_velocity_dps must map 'left' and/or 'right' to arrays")
    for side, w in flexion_velocity_dps.items():
        if np.shape(w) != yaw.shape:
            raise InvalidSignal(f"{side} flexion velocity {np.shape(w)} and pelvis yaw rate {yaw.shape} differ")
    mask = np.asarray(walking_mask)
    if mask.shape != yaw.shape or mask.dtype != np.bool_ or mask.sum() < 4 * fs:
        raise InsufficientData("side check needs at least 4 s of walking (a bool mask shaped like the yaw rate)")
    ics = {
        side: detect_thigh_events(np.asarray(w, dtype=np.float64), fs, mask).initial_contact_s
        for side, w in flexion_velocity_dps.items()
    }
    return decide(ic_yaw_votes(yaw, fs, ics, mask))


def rotation_excursion_deg(
    acc_mps2: np.ndarray, gyr_dps: np.ndarray, sampling_rate_hz: float, walking_mask: np.ndarray
) -> float:
    """Typical angular excursion per stride (deg) about the sensor's main horizontal rotation axis while walking.

    The vertical is the mean specific force over walking; the main horizontal axis is the principal axis of
    the horizontal part of the angular velocity; its rate is band-passed (``EXCURSION_BAND_HZ``), integrated
    and band-passed again (integration drift), and the median peak-to-peak over ``EXCURSION_WINDOW_S``
    windows of the walking samples is returned.
    """
    fs = float(sampling_rate_hz)
    mask = np.asarray(walking_mask, dtype=bool)
    if int(mask.sum()) < 2 * EXCURSION_WINDOW_S * fs:
        raise InsufficientData("segment check needs at least two strides of walking")
    # Block means of q samples (q = fs / EXCURSION_RATE_HZ): a low-pass with its first null at
    # EXCURSION_RATE_HZ, far above the 3 Hz band; a block is walking when all its samples are.
    q = max(1, int(fs // EXCURSION_RATE_HZ))
    usable_n = (mask.size // q) * q
    g = block_means(np.asarray(gyr_dps, dtype=np.float64)[:usable_n], q)
    a = block_means(np.asarray(acc_mps2, dtype=np.float64)[:usable_n], q)
    walking = np.asarray(mask[:usable_n].reshape(-1, q).all(axis=1))
    fs = fs / q
    m = int(walking.sum())
    if m < 2 * EXCURSION_WINDOW_S * fs:
        raise InsufficientData("segment check needs at least two strides of walking")
    vertical = a[walking].mean(axis=0)
    vertical = vertical / np.linalg.norm(vertical)
    horizontal = np.eye(3) - np.outer(vertical, vertical)
    walking_gyr = g[walking]
    mean = walking_gyr.mean(axis=0)
    cov = horizontal @ (walking_gyr.T @ walking_gyr / m - np.outer(mean, mean)) @ horizontal
    axis = horizontal @ np.linalg.eigh(cov)[1][:, -1]
    sos = butter_sos(2, EXCURSION_BAND_HZ, "bandpass", fs)
    angle = zero_phase(sos, np.cumsum(zero_phase(sos, g @ axis)) / fs)[walking]
    n = round(EXCURSION_WINDOW_S * fs)
    usable = (angle.size // n) * n
    windows = angle[:usable].reshape(-1, n)
    return float(np.median(windows.max(axis=1) - windows.min(axis=1)))
