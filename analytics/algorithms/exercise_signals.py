"""Mounting-free signals every exercise analysis needs, computed once per recording (vectorised).

Sensors are strapped on at any rotation, so nothing here reads a sensor axis as a body axis:

- the pelvis chain (pelvic_obliquity.pelvis_signals: gait events and walking bouts, gyro bias, vertical,
  body axes for obliquity, quiet standing, raw obliquity asin(left . up)): taken from the gait pipeline when
  it passes its ``PelvisSignals`` (the same definitions, computed once), else computed here.
- ``up`` of each thigh: the earth vertical in that sensor's frame (analytics.algorithms.tilt, 0.1 Hz gravity
  filter), computed only over the sample windows asked for (``windows``: the marked sets whose prime mover
  it is) plus ``TILT_MARGIN_S`` either side and the quiet-standing reference; NaN elsewhere. The window's
  edges lie that margin away from any sample used: the gravity low-pass (2nd order, 0.1 Hz, run twice)
  forgets the edge with a time constant of ~2.3 s, so within the window the vertical agrees with the
  whole-recording one to < 0.01 deg (tests/exercises/test_exercise_signals.py). ``windows=None``: the whole
  recording.
- set detection (which looks everywhere) runs on ``coarse_signals``: the same signals at ``COARSE_RATE_HZ``
  (block means of the full-rate ones; the thighs' verticals from block means of their raw samples), ~4x
  cheaper in time and memory and enough to find movements of several degrees lasting seconds (thigh
  verticals within ~0.2 deg of the full-rate ones' block means at median, p99 ~0.8 deg outside walking and
  ~2.2 deg in its fast swing, where the block-mean rates cost some coning accuracy). Never used
  for a reported number: ``refine_thighs`` then computes the full-rate verticals over the found sets'
  windows, so that a detected set is measured exactly as a marked one.
- gyroscope bias per sensor (deg/s, ``gyro_bias``, computed when first asked for): the median rate over
  still samples (smoothed angular speed below ``STILL_DPS``; every ``BIAS_STRIDE``-th), None when fewer than
  ``MIN_STILL_S`` of still samples exist; subtracted before any integration (``corrected_gyr``).
- quiet-standing reference: the first quiet upright standing period of the pelvis (pelvis_signals) during
  which both thighs are still too, at least ``REFERENCE_MIN_S`` long (the calibration stand at the start of a
  session; README "What gaitsym cannot measure"): median raw obliquity and the median vertical of each
  segment (the thighs' standing orientation for the standing exercises).

Units: deg, deg/s, s, Hz. Movement angles: ``angle_from_deg`` is the angle (deg) between a segment's vertical
at each sample and a reference vertical, i.e. how far the segment has tilted from a rest posture; it is exact
for rotations about horizontal axes (hip flexion, abduction in side-lying, bridging) and blind to rotations
about the vertical. Validated on simulation only until real exercise recordings exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from analytics.algorithms.exercise_reps import runs
from analytics.algorithms.gait_events import GaitEvents
from analytics.algorithms.pelvic_obliquity import PelvisSignals, pelvis_signals
from analytics.algorithms.pelvis_alignment import BodyAxes
from analytics.algorithms.tilt import block_means, estimate_tilt, prefix_product, smoothed_angular_speed_dps
from analytics.errors import InsufficientData
from firmware_protocol.sensor_info import PLACEMENTS

THIGHS = ("left_thigh", "right_thigh")
STILL_DPS = 4.0
"""Smoothed angular speed (deg/s) below which a segment counts as still (sway is ~1-3 deg/s)."""
MIN_STILL_S = 5.0
"""Still time (s) needed to trust a gyroscope bias estimate."""
REFERENCE_MIN_S = 3.0
"""Shortest quiet standing (s, after pelvic_obliquity's trimming) accepted as the session's reference."""
SPEED_LOWPASS_HZ = 1.0
BIAS_STRIDE = 4
"""The gyroscope bias is the median over every 4th still sample (see ExerciseSignals.gyro_bias)."""
COARSE_RATE_HZ = 25.0
"""Rate (Hz) of the thighs' verticals for set detection (coarse=True): movements last seconds."""
TILT_MARGIN_S = 20.0
"""A thigh's vertical is computed this far (s) beyond each window it is needed in (see the module docstring:
the edge effect of the 0.1 Hz gravity filter decays as exp(-t / 2.3 s), below 1e-3 of itself after 16 s)."""


class WindowedVertical:
    """A segment's vertical (n, 3) known over some sample windows only (compute_signals' ``windows``).

    Slicing ``[i0:i1]`` inside one window returns that part (a view); a slice reaching outside every window
    raises InsufficientData (a caller asked for samples nobody computed: a bug, never silently NaN)."""

    def __init__(self, n: int, parts: list[tuple[int, np.ndarray]]) -> None:
        self.shape = (n, 3)
        self.parts = parts
        """(first sample, (m, 3) vertical) per window, in time order."""

    def __getitem__(self, key: slice) -> np.ndarray:
        i0, i1, step = key.indices(self.shape[0])
        for start, up in self.parts:
            if start <= i0 and i1 <= start + up.shape[0]:
                return up[i0 - start : i1 - start : step]
        raise InsufficientData(f"the vertical of samples {i0}-{i1} was not computed (windows: {self.windows})")

    @property
    def windows(self) -> list[tuple[int, int]]:
        return [(start, start + up.shape[0]) for start, up in self.parts]


@dataclass(frozen=True)
class StandingPosture:
    """The session's quiet-standing reference: raw obliquity (deg), each segment's vertical, and where."""

    obliquity_deg: float
    up: dict[str, np.ndarray]
    start_s: float
    end_s: float


@dataclass(frozen=True)
class ExerciseSignals:
    """Per-recording signals (see the module docstring); arrays have one row per sample."""

    rate_hz: float
    up: dict[str, np.ndarray | WindowedVertical]
    """Vertical per placement (n, 3); a thigh's may be known over some windows only (WindowedVertical)."""
    gyr_raw_dps: dict[str, np.ndarray]
    """Gyroscope rates as recorded (deg/s, sensor frame, bias included)."""
    speed_dps: dict[str, np.ndarray]
    """1 Hz low-passed angular speed (deg/s) per placement."""
    axes: BodyAxes | None
    obliquity_raw_deg: np.ndarray | None
    standing: StandingPosture | None
    walking: np.ndarray
    """Bool mask of samples inside walking bouts (with a 1.5 s margin)."""
    _bias: dict[str, np.ndarray | None] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_samples(self) -> int:
        return int(self.pelvis_up.shape[0])

    @property
    def pelvis_up(self) -> np.ndarray:
        """The pelvis's vertical (n, 3) at every sample."""
        up = self.up["pelvis"]
        assert isinstance(up, np.ndarray)
        return up

    def gyro_bias(self, placement: str) -> np.ndarray | None:
        """Gyroscope bias (3,), deg/s: median rate over still samples; None below MIN_STILL_S of them."""
        if placement not in self._bias:
            raw = self.gyr_raw_dps[placement]
            still = np.flatnonzero(self.speed_dps[placement] < STILL_DPS)
            bias = None
            if still.size >= MIN_STILL_S * self.rate_hz:
                # every BIAS_STRIDE-th still sample: minutes of still samples, strongly correlated at the
                # full rate (1 Hz low-passed speed); the median's standard error stays ~1e-3 deg/s
                pick = still[::BIAS_STRIDE]
                bias = np.array([float(np.median(raw[pick, i])) for i in range(3)])
            self._bias[placement] = bias
        return self._bias[placement]

    def corrected_gyr(self, placement: str, i0: int, i1: int) -> np.ndarray:
        """Bias-corrected rates (deg/s) of samples [i0, i1) (uncorrected when the bias is unknown)."""
        bias = self.gyro_bias(placement)
        raw = np.asarray(self.gyr_raw_dps[placement][i0:i1], dtype=np.float64)
        return raw - bias if bias is not None else raw.copy()

    def forward_elevation_deg(self, i0: int, i1: int) -> np.ndarray | None:
        """Elevation (deg) of the pelvis's anterior axis asin(forward . up) over [i0, i1); None without axes."""
        if self.axes is None:
            return None
        up = self.pelvis_up[i0:i1]
        return np.degrees(np.arcsin(np.clip(up @ np.asarray(self.axes.forward), -1.0, 1.0)))


def angle_from_deg(up: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Angle (deg) between unit vectors ``up`` (n, 3) and one reference unit vector (3,): atan2(|u x r|, u . r)."""
    ref = np.asarray(reference, dtype=np.float64)
    ref = ref / np.linalg.norm(ref)
    # |u x r| component by component (1-D columns: 3x faster than np.cross and a norm along axis 1 of (n, 3)
    # arrays, the same arithmetic)
    x, y, z = up[:, 0], up[:, 1], up[:, 2]
    cx = y * ref[2] - z * ref[1]
    cy = z * ref[0] - x * ref[2]
    cz = x * ref[1] - y * ref[0]
    cross2 = cx * cx
    cross2 += cy * cy
    cross2 += cz * cz
    return np.degrees(np.arctan2(np.sqrt(cross2), up @ ref))


def mean_direction(up: np.ndarray) -> np.ndarray:
    """Normalised median of unit vectors (n, 3): a robust mean direction."""
    m = np.median(up, axis=0)
    return m / np.linalg.norm(m)


def twist_deg(gyr_dps: np.ndarray, rate_hz: float, axis: np.ndarray) -> float:
    """Rotation (deg) about ``axis`` (sensor frame at the first sample) accumulated over the samples, from
    bias-corrected rates: swing-twist decomposition of the integrated rotation, 2 atan2(v . axis, w)."""
    if gyr_dps.shape[0] < 2:
        return 0.0
    omega = np.radians(gyr_dps[:-1])
    angle = np.linalg.norm(omega, axis=1) / rate_hz
    unit = omega / np.maximum(np.linalg.norm(omega, axis=1, keepdims=True), 1e-12)
    dq = np.column_stack([np.cos(angle / 2.0), unit * np.sin(angle / 2.0)[:, None]])
    q = prefix_product(dq)[-1]
    u = np.asarray(axis, dtype=np.float64)
    u = u / np.linalg.norm(u)
    return float(np.degrees(2.0 * np.arctan2(float(q[1:] @ u), float(q[0]))))


def merge_windows(windows: Sequence[tuple[int, int]], margin: int, n: int) -> list[tuple[int, int]]:
    """Sample windows [i0, i1) widened by ``margin`` each side, clipped to [0, n), overlaps merged, sorted."""
    out: list[tuple[int, int]] = []
    for i0, i1 in sorted((max(0, a - margin), min(n, b + margin)) for a, b in windows):
        if i1 <= i0:
            continue
        if out and i0 <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], i1))
        else:
            out.append((i0, i1))
    return out


def compute_signals(
    acc_mps2: Mapping[str, np.ndarray],
    gyr_dps: Mapping[str, np.ndarray],
    rate_hz: float,
    *,
    gait_events: GaitEvents | None = None,
    pelvis: PelvisSignals | None = None,
    windows: Mapping[str, Sequence[tuple[int, int]]] | None = None,
) -> ExerciseSignals:
    """All per-recording exercise signals from the three sensors' raw arrays (see the module docstring).

    ``pelvis``: the pipeline's pelvis_signals of the same recording (else computed here, with
    ``gait_events`` if given). ``windows``: per thigh placement, the sample windows [i0, i1) where its
    vertical is needed (a placement not listed: nowhere, besides the standing reference); None = everywhere.
    Raises InsufficientData when a placement is missing; bad arrays raise InvalidSignal (from tilt).
    """
    missing = [p for p in PLACEMENTS if p not in acc_mps2 or p not in gyr_dps]
    if missing:
        raise InsufficientData(f"exercise analysis needs the pelvis and both thigh sensors; missing: {missing}")
    rate = float(rate_hz)
    if pelvis is None:
        pelvis = pelvis_signals(acc_mps2["pelvis"], gyr_dps["pelvis"], rate, events=gait_events)
    n = pelvis.up.shape[0]
    speed = {"pelvis": pelvis.speed_dps}
    for p in THIGHS:
        if acc_mps2[p].shape[0] != n or gyr_dps[p].shape[0] != n:
            raise InsufficientData(f"{p} has {acc_mps2[p].shape[0]} samples, the pelvis {n}: not one timeline")
        speed[p] = smoothed_angular_speed_dps(gyr_dps[p], rate, SPEED_LOWPASS_HZ)
    reference = None
    if pelvis.axes is not None:
        quiet = pelvis.standing & (speed["left_thigh"] < STILL_DPS) & (speed["right_thigh"] < STILL_DPS)
        starts, ends = runs(quiet)
        long_enough = np.flatnonzero(ends - starts >= REFERENCE_MIN_S * rate)
        if long_enough.size:
            reference = (int(starts[long_enough[0]]), int(ends[long_enough[0]]))
    up: dict[str, np.ndarray | WindowedVertical] = {"pelvis": pelvis.up}
    for p in THIGHS:
        up[p] = _thigh_vertical(acc_mps2[p], gyr_dps[p], rate, n, windows, reference, p)
    gyr = {p: gyr_dps[p] for p in PLACEMENTS}
    return ExerciseSignals(
        rate,
        up,
        gyr,
        speed,
        pelvis.axes,
        pelvis.obliquity_raw_deg,
        _standing(pelvis.obliquity_raw_deg, up, reference, rate),
        pelvis.walking,
    )


def coarse_signals(
    sig: ExerciseSignals, acc_mps2: Mapping[str, np.ndarray], gyr_dps: Mapping[str, np.ndarray]
) -> ExerciseSignals:
    """``sig`` at about COARSE_RATE_HZ (rate / q, q = rate // COARSE_RATE_HZ; ``sig`` itself when q < 2): every
    array as means of blocks of q samples (sample i of ``sig`` is in block i // q; verticals renormalised,
    masks sampled at each block's first sample), the thighs' verticals computed from block means of their raw
    samples over the whole recording; no raw gyroscope rates (set detection does not read them). For set
    detection only (see the module docstring); its ``standing`` reference is ``sig``'s (seconds and
    directions, rate-free)."""
    q = int(sig.rate_hz // COARSE_RATE_HZ)
    if q < 2 or sig.n_samples // q < 2 * COARSE_RATE_HZ:
        return sig
    rate = sig.rate_hz / q

    def mean_1d(x: np.ndarray) -> np.ndarray:
        return block_means(np.asarray(x, dtype=np.float64)[:, None], q)[:, 0]

    def unit(xyz: np.ndarray) -> np.ndarray:
        out = block_means(xyz, q)
        out /= np.sqrt(np.einsum("ij,ij->i", out, out))[:, None]
        return out

    up: dict[str, np.ndarray | WindowedVertical] = {"pelvis": unit(sig.pelvis_up)}
    for p in THIGHS:
        up[p] = estimate_tilt(block_means(acc_mps2[p], q), block_means(gyr_dps[p], q), rate, keep_frame=False).up
    return ExerciseSignals(
        rate,
        up,
        {},  # set detection never reads the raw gyroscope (corrected_gyr would raise KeyError)
        {p: mean_1d(v) for p, v in sig.speed_dps.items()},
        sig.axes,
        None if sig.obliquity_raw_deg is None else mean_1d(sig.obliquity_raw_deg),
        sig.standing,
        np.asarray(sig.walking[::q]),
    )


def refine_thighs(
    sig: ExerciseSignals,
    acc_mps2: Mapping[str, np.ndarray],
    gyr_dps: Mapping[str, np.ndarray],
    windows: Mapping[str, Sequence[tuple[int, int]]],
) -> ExerciseSignals:
    """``sig`` with the thighs' full-rate verticals over ``windows`` (as compute_signals(windows=...)) and the
    standing reference measured on them: what a coarse signal set (set detection) becomes for measuring the
    sets it found. Everything else (pelvis chain, speeds, gyro biases) is shared, not recomputed."""
    rate = sig.rate_hz
    n = sig.n_samples
    reference = None
    if sig.standing is not None:
        reference = (round(sig.standing.start_s * rate), round(sig.standing.end_s * rate))
    up = dict(sig.up)
    for p in THIGHS:
        up[p] = _thigh_vertical(acc_mps2[p], gyr_dps[p], rate, n, windows, reference, p)
    standing = _standing(sig.obliquity_raw_deg, up, reference, rate)
    return replace(sig, up=up, standing=standing)


def _thigh_vertical(
    acc: np.ndarray,
    gyr: np.ndarray,
    rate: float,
    n: int,
    windows: Mapping[str, Sequence[tuple[int, int]]] | None,
    reference: tuple[int, int] | None,
    placement: str,
) -> np.ndarray | WindowedVertical:
    if windows is None:
        return estimate_tilt(acc, gyr, rate, keep_frame=False).up
    wanted = list(windows.get(placement, ()))
    if reference is not None:
        wanted.append(reference)
    parts = [
        (i0, estimate_tilt(acc[i0:i1], gyr[i0:i1], rate, keep_frame=False).up)
        for i0, i1 in merge_windows(wanted, round(TILT_MARGIN_S * rate), n)
    ]
    return WindowedVertical(n, parts)


def _standing(
    obliquity_raw_deg: np.ndarray | None,
    up: Mapping[str, np.ndarray | WindowedVertical],
    reference: tuple[int, int] | None,
    rate: float,
) -> StandingPosture | None:
    if reference is None:
        return None
    assert obliquity_raw_deg is not None
    s, e = reference
    return StandingPosture(
        obliquity_deg=float(np.median(obliquity_raw_deg[s:e])),
        up={p: mean_direction(up[p][s:e]) for p in PLACEMENTS},
        start_s=s / rate,
        end_s=e / rate,
    )
