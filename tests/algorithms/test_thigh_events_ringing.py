"""The thigh event detector on the failure a real slow walker showed: heel-strike ringing of the thigh's soft
tissue must never become a swing (an extra toe off and contact, a stance of a few hundredths of a second)."""

from __future__ import annotations

import numpy as np

from analytics.algorithms.filters import butter_sos, zero_phase
from analytics.algorithms.thigh_events import (
    LOWPASS_HZ,
    MIN_SWING_PEAK_DPS,
    PHASE_PEAK_FLEXION,
    PHASE_SWING_PEAK,
    PHASE_TOE_OFF,
    detect_thigh_events,
)

FS = 100.0
STRIDE_S = 1.45  # the real trial's pace (84 steps/min)
N_STRIDES = 12


def _slow_walk():
    """Flexion velocity of a slow walk with the normative swing landmarks; times and the true contacts."""
    t = np.arange(round((N_STRIDES + 2) * STRIDE_S * FS)) / FS
    frac = np.mod(t / STRIDE_S, 1.0)
    phase = np.where(frac < 0.6, frac / 0.6 * PHASE_TOE_OFF, PHASE_TOE_OFF + (frac - 0.6) / 0.4 * (1 - PHASE_TOE_OFF))
    pa, pz = PHASE_SWING_PEAK, PHASE_PEAK_FLEXION
    w = np.where(
        (phase >= pa - (pz - pa)) & (phase <= pz),
        160.0 * np.cos(0.5 * np.pi * (phase - pa) / (pz - pa)),
        -60.0 * np.sin(np.pi * np.mod(phase - pz, 1.0) / (1.0 - 2 * (pz - pa))).clip(0),
    )
    return t, w, np.arange(1, N_STRIDES + 2) * STRIDE_S


def _ringing(t: np.ndarray, contacts: np.ndarray, delay_s: float, amplitude_dps: float) -> np.ndarray:
    """An ~11 Hz damped oscillation after each contact (the period measured on the real trial's thighs)."""
    out = np.zeros_like(t)
    for c in contacts:
        dt = t - c - delay_s
        inside = (dt >= 0) & (dt < 0.4)
        out[inside] += amplitude_dps * np.exp(-dt[inside] / 0.06) * np.sin(2 * np.pi * 11.0 * dt[inside])
    return out


def test_heel_strike_ringing_makes_no_extra_contacts():
    t, w, contacts = _slow_walk()
    rung = w + _ringing(t, contacts, delay_s=0.12, amplitude_dps=250.0)
    # the ringing's first lobe passes the swing-peak height after the detector's low-pass, as on the real trial
    # (lobes of 57-95 deg/s there); before the excursion rule each lobe became a swing: 27 contacts, not 13
    lobes = zero_phase(butter_sos(4, LOWPASS_HZ, "lowpass", FS), rung)
    near = np.concatenate([np.flatnonzero((t > c + 0.1) & (t < c + 0.25)) for c in contacts[:-1]])
    assert lobes[near].max() > MIN_SWING_PEAK_DPS
    clean = detect_thigh_events(w, FS)
    ev = detect_thigh_events(rung, FS)
    assert ev.initial_contact_s.size == clean.initial_contact_s.size
    assert np.abs(ev.initial_contact_s - clean.initial_contact_s).max() < 0.02
    assert np.abs(ev.toe_off_s - clean.toe_off_s).max() < 0.02


def test_a_rejected_lobe_never_hides_the_real_swing():
    # a lobe taller than the swing peak but sweeping only a few degrees, 0.54 s before the next swing peak
    # (closer than MIN_STRIDE_S): ranked by height first, it suppressed the real swing and its contact
    t, w, contacts = _slow_walk()
    spike = np.zeros_like(t)
    for c in contacts:
        dt = t - c - 0.45
        inside = (dt >= 0) & (dt <= 0.04)
        spike[inside] = 400.0 * np.sin(np.pi * dt[inside] / 0.04)
    clean = detect_thigh_events(w, FS)
    ev = detect_thigh_events(w + spike, FS)
    assert ev.initial_contact_s.size == clean.initial_contact_s.size
    assert np.abs(ev.initial_contact_s - clean.initial_contact_s).max() < 0.02
