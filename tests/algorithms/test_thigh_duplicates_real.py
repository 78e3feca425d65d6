"""The real three-sensor trial's duplicate contacts, at the thigh detector: which signal feature made them, that
the detector without its excursion rule still finds them, and that the detector as it is does not.

The feature (docs/thigh_events.md, "Duplicate contacts"): after each left heel strike the thigh's flexion velocity
dips and then rebounds to more than the swing threshold 60-90 ms after contact, a positive lobe that moves the
thigh by a few degrees only; at this walker's pace (stance share ~56 %, its swing peak 0.53-0.62 s before the next
contact) that lobe lies more than ``MIN_STRIDE_S`` after the swing peak, so the stride-spacing rule keeps both."""

from __future__ import annotations

import numpy as np
import pytest

import analytics.algorithms.thigh_events as thigh_events
from analytics.algorithms.filters import butter_sos, zero_phase
from analytics.algorithms.pelvic_obliquity import pelvis_signals
from analytics.algorithms.thigh_alignment import estimate_thigh_axes
from analytics.recording import read_recording
from analytics.validation.gait_scores import load_reference
from tests.datasets import shared_validation


@pytest.fixture(scope="module")
def left_thigh():
    folder = shared_validation("neura-sample") / "S02-Trial-Walk-1"
    rec = read_recording(folder)
    ref = load_reference(folder / "reference_optical.json")
    fs = rec.sampling_rate_hz
    pelvis = rec.sensors["pelvis"]
    ps = pelvis_signals(pelvis.acc_mps2, pelvis.gyr_dps, fs, unusable=np.zeros(rec.n_samples, dtype=bool))
    data = rec.sensors["left_thigh"]
    axes = estimate_thigh_axes(data.acc_mps2, data.gyr_dps, fs, ps.walking, ps.standing)
    contacts = np.array([t for t, side in ref.initial_contacts if side == "left"])
    return axes.flexion_velocity_dps(data.gyr_dps), fs, ps.walking, contacts


def _close_pairs(contacts_s: np.ndarray) -> int:
    """Same-leg contacts closer than a quarter of this walker's ~1.43 s stride: a second contact per step."""
    return int(np.sum(np.diff(contacts_s) < 0.35))


def test_left_heel_strikes_rebound_above_the_swing_threshold(left_thigh):
    w, fs, _, contacts = left_thigh
    ws = zero_phase(butter_sos(4, thigh_events.LOWPASS_HZ, "lowpass", fs), w)
    rebounds = []
    for c in contacts[:-1]:  # the last contact is the stop
        i = round(c * fs)
        dip = ws[i : i + round(0.05 * fs)].min()
        lobe = ws[i + round(0.04 * fs) : i + round(0.12 * fs)]
        rebounds.append((dip, lobe.max(), (np.argmax(lobe) + round(0.04 * fs)) / fs))
    above = [r for r in rebounds if r[1] > thigh_events.MIN_SWING_PEAK_DPS]
    # measured: 6 of 6 contacts before the stop, +57..+76 deg/s, 60-90 ms after contact, after a dip below 0
    assert len(above) >= 4
    assert all(dip < 0 and 0.04 <= lag <= 0.10 for dip, _, lag in above)


def test_without_the_excursion_rule_the_rebounds_become_second_contacts(left_thigh, monkeypatch):
    w, fs, walking, contacts = left_thigh
    monkeypatch.setattr(thigh_events, "MIN_SWING_EXCURSION_DEG", 0.0)
    ev = thigh_events.detect_thigh_events(w, fs, walking)
    # measured: 13.44 / 13.57, 14.90 / 14.98, 16.37 / 16.44, 19.32 / 19.33 s (optical 13.46, 14.85, 16.34, 19.20)
    assert _close_pairs(ev.initial_contact_s) >= 3
    extra = ev.initial_contact_s[1:][np.diff(ev.initial_contact_s) < 0.35]
    assert all(np.min(np.abs(contacts - t)) < 0.2 for t in extra)  # each beside a real contact, 0-130 ms after


def test_the_detector_finds_one_contact_per_step_near_the_real_ones(left_thigh):
    w, fs, walking, contacts = left_thigh
    ev = thigh_events.detect_thigh_events(w, fs, walking)
    assert _close_pairs(ev.initial_contact_s) == 0
    stances = ev.toe_off_s[1:] - ev.initial_contact_s[:-1]
    assert stances.min() > 0.3  # never the 0.02-0.07 s stances of the duplicates
    straight = contacts[(contacts > 13.0) & (contacts < 20.0)]  # between the first step and the stop
    for c in straight:
        assert np.min(np.abs(ev.initial_contact_s - c)) <= 0.15
