"""Thigh axes, thigh events, segment span and stream quality on synthetic signals with analytic answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from analytics.algorithms.side_check import rotation_excursion_deg
from analytics.algorithms.signal_quality import stream_quality
from analytics.algorithms.thigh_alignment import estimate_thigh_axes
from analytics.algorithms.thigh_events import (
    PHASE_PEAK_FLEXION,
    PHASE_SWING_PEAK,
    PHASE_TOE_OFF,
    SWING_ONSET_FRACTION,
    TOE_OFF_EXCURSION_FRACTION,
    detect_thigh_events,
)
from analytics.errors import InsufficientData, InvalidSignal

FS = 100.0
STRIDE_S = 1.1
N_STRIDES = 12


def _phase_walk(stance_frac: float = 0.6):
    """Flexion velocity from a phase that is linear within stance and within swing (events known exactly).

    The waveform has its swing peak at PHASE_SWING_PEAK and its + to - zero crossing at PHASE_PEAK_FLEXION:
    w(p) = A sin(pi (p - p_a) / (p_z - p_a) ...) built piecewise so both landmarks are exact.
    """
    t = np.arange(round((N_STRIDES + 2) * STRIDE_S * FS)) / FS
    k, frac = np.divmod(t / STRIDE_S, 1.0)
    phase = np.where(
        frac < stance_frac,
        frac / stance_frac * PHASE_TOE_OFF,
        PHASE_TOE_OFF + (frac - stance_frac) / (1 - stance_frac) * (1 - PHASE_TOE_OFF),
    )
    # a quarter cosine from the swing peak (phase p_a, value 160) to zero at p_z, and negative elsewhere
    pa, pz = PHASE_SWING_PEAK, PHASE_PEAK_FLEXION
    w = np.where(
        (phase >= pa - (pz - pa)) & (phase <= pz),
        160.0 * np.cos(0.5 * np.pi * (phase - pa) / (pz - pa)),
        -60.0 * np.sin(np.pi * np.mod(phase - pz, 1.0) / (1.0 - 2 * (pz - pa))).clip(0),
    )
    ic = (k[np.r_[True, np.diff(k) > 0]] * STRIDE_S)[1:]
    # toe off as the detector defines it: where the thigh has covered TOE_OFF_EXCURSION_FRACTION of its rotation
    # from the swing's onset (the rise through SWING_ONSET_FRACTION of the peak) to the zero crossing at p_z;
    # integrated in phase, d(angle)/d(phase) = w / (phase rate), on a fine grid (this quarter cosine is not the
    # normative curve: there toe off lies before the phase's 0.6)
    onset = pa - (pz - pa) * np.arccos(SWING_ONSET_FRACTION) / (0.5 * np.pi)
    p = np.linspace(onset, pz, 200001)
    rate = np.where(p < PHASE_TOE_OFF, PHASE_TOE_OFF / stance_frac, (1 - PHASE_TOE_OFF) / (1 - stance_frac))
    angle = np.concatenate(
        [[0.0], np.cumsum(np.diff(p) * 160.0 * np.cos(0.5 * np.pi * (p[1:] - pa) / (pz - pa)) / rate[1:])]
    )
    crossing = float(np.interp(TOE_OFF_EXCURSION_FRACTION * angle[-1], angle, p))
    assert crossing < PHASE_TOE_OFF
    to = ic - STRIDE_S + crossing / PHASE_TOE_OFF * stance_frac * STRIDE_S
    return t, w, ic, to


@pytest.mark.parametrize("stance_frac", [0.58, 0.6, 0.64])
def test_thigh_events_recover_known_events(stance_frac):
    _, w, ic, to = _phase_walk(stance_frac)
    ev = detect_thigh_events(w, FS)
    assert ev.initial_contact_s.size >= N_STRIDES - 1
    for detected, truth in ((ev.initial_contact_s, ic), (ev.toe_off_s, to)):
        err = np.array([np.min(np.abs(truth - d)) for d in detected])
        err = err[err < 0.5]  # an event beyond the last simulated stride has no truth to compare with
        assert err.size >= N_STRIDES - 1
        assert np.all(err < 0.010)  # the waveform has a kink at the zero crossing that the low-pass smears


def test_thigh_events_reject_bad_input():
    with pytest.raises(InvalidSignal, match="NaN"):
        detect_thigh_events(np.array([0.0, np.nan, 1.0, 2.0]), FS)
    with pytest.raises(InvalidSignal, match="region_mask"):
        detect_thigh_events(np.zeros(100), FS, np.zeros(10, dtype=bool))
    assert detect_thigh_events(np.zeros(500), FS).initial_contact_s.size == 0


def _thigh_imu(rotation: Rotation, flip: bool = False):
    """A thigh flexing about the body's -y (right-pointing) axis, seen by a sensor turned by ``rotation``."""
    _, w, _, _ = _phase_walk()
    n = w.size
    angle = np.cumsum(w) / FS
    angle -= angle.mean()
    gyr_body = np.zeros((n, 3))
    gyr_body[:, 1] = -w  # flexion (knee forward) is a rotation about -y (left axis) in x-forward, z-up
    acc_body = np.column_stack([np.zeros(n), np.zeros(n), np.full(n, 9.81)])
    rad = np.radians(angle)
    acc_body[:, 0] = -9.81 * np.sin(rad)  # gravity seen by the tilted thigh (sagittal plane)
    acc_body[:, 2] = 9.81 * np.cos(rad)
    sign = -1.0 if flip else 1.0
    return rotation.apply(acc_body, inverse=True), sign * rotation.apply(gyr_body, inverse=True), w


def test_thigh_axes_any_mounting():
    for seed in range(4):
        rot = Rotation.random(random_state=seed)
        acc, gyr, w = _thigh_imu(rot)
        walking = np.ones(acc.shape[0], dtype=bool)
        axes = estimate_thigh_axes(acc, gyr, FS, walking)
        np.testing.assert_allclose(axes.flexion_velocity_dps(gyr), w, atol=1e-6)
        np.testing.assert_allclose(rot.apply(axes.flexion_axis), [0.0, -1.0, 0.0], atol=1e-6)
        np.testing.assert_allclose(rot.apply(axes.forward), [1.0, 0.0, 0.0], atol=0.05)
        assert axes.axis_confidence > 0.99 and axes.long_axis_source == "walking"


def test_thigh_axes_need_walking():
    acc, gyr, _ = _thigh_imu(Rotation.identity())
    with pytest.raises(InsufficientData, match="walking"):
        estimate_thigh_axes(acc, gyr, FS, np.zeros(acc.shape[0], dtype=bool))
    with pytest.raises(InvalidSignal, match="standing_mask"):
        estimate_thigh_axes(acc, gyr, FS, np.ones(acc.shape[0], dtype=bool), np.ones(3, dtype=bool))


def test_rotation_excursion_is_the_angle_swept_per_stride_and_ignores_turning():
    n = 3000
    t = np.arange(n) / FS
    acc = np.tile([0.0, 0.0, 9.81], (n, 1))
    gyr = np.zeros((n, 3))
    gyr[:, 2] = 90.0  # turning about the vertical: not an excursion
    # a +-20 deg sinusoidal swing at 0.9 Hz about a horizontal axis: 40 deg peak to peak
    gyr[:, 1] = np.degrees(np.radians(20.0) * 2 * np.pi * 0.9 * np.cos(2 * np.pi * 0.9 * t))
    assert rotation_excursion_deg(acc, gyr, FS, np.ones(n, dtype=bool)) == pytest.approx(40.0, rel=0.05)


def test_stream_quality_finds_saturation_and_dropout():
    rng = np.random.default_rng(0)
    acc = rng.normal(0, 1, (1000, 3)) + [0, 0, 9.81]
    gyr = rng.normal(0, 50, (1000, 3))
    gyr[200:210, 1] = 2000.0
    acc[500:600] = acc[500]
    gyr[500:600] = gyr[500]
    q = stream_quality(acc, gyr, FS)
    assert np.flatnonzero(q.saturated).tolist() == list(range(200, 210))
    assert np.flatnonzero(q.stuck).tolist() == list(range(500, 600))
