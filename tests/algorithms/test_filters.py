"""zero_phase is scipy.signal.sosfiltfilt with cached initial conditions: the same numbers, the same errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from analytics.algorithms.filters import butter_sos, zero_phase

DESIGNS = [
    (2, 1.0, "lowpass", 100.0),
    (4, 3.0, "lowpass", 100.0),
    (2, (0.5, 3.0), "bandpass", 100.0),
    (2, 0.3, "highpass", 25.0),
]


@pytest.mark.parametrize("design", DESIGNS)
@pytest.mark.parametrize("padtype", ["odd", "even"])
@pytest.mark.parametrize("padlen", [None, 0, 7, 300])
def test_zero_phase_equals_scipy_sosfiltfilt(design, padtype, padlen):
    rng = np.random.default_rng(3)
    sos = butter_sos(*design)
    x = np.cumsum(rng.normal(size=(1000, 3)), axis=0)
    for axis, data in ((0, x), (1, x.T.copy()), (-1, x[:, 1])):
        expected = signal.sosfiltfilt(sos, data, axis=axis, padtype=padtype, padlen=padlen)
        np.testing.assert_allclose(
            zero_phase(sos, data, axis=axis, padtype=padtype, padlen=padlen),
            expected,
            rtol=0,
            atol=1e-12 * float(np.abs(expected).max()),
        )


def test_zero_phase_of_a_constant_is_the_constant_and_it_keeps_no_state_between_designs():
    x = np.full(500, 4.2)
    for design in DESIGNS[:2]:
        np.testing.assert_allclose(zero_phase(butter_sos(*design), x), x, atol=1e-12)


def test_zero_phase_rejects_what_scipy_rejects():
    sos = butter_sos(2, 1.0, "lowpass", 100.0)
    with pytest.raises(ValueError, match="padlen"):
        zero_phase(sos, np.zeros(9))
    with pytest.raises(ValueError, match="padlen"):
        signal.sosfiltfilt(sos, np.zeros(9))
    with pytest.raises(ValueError, match="padtype"):
        zero_phase(sos, np.zeros(100), padtype="constant")
    with pytest.raises(ValueError, match="shape"):
        zero_phase(np.zeros((2, 5)), np.zeros(100))
    # a design without initial conditions (an integrator: a singular system) on a signal too short for it: the
    # length is checked first, as scipy checks it
    integrator = np.array([[1.0, 0.0, 0.0, 1.0, -1.0, 0.0]])
    with pytest.raises(ValueError, match="padlen"):
        signal.sosfiltfilt(integrator, np.arange(3.0))
    with pytest.raises(ValueError, match="padlen"):
        zero_phase(integrator, np.arange(3.0))


def test_butter_sos_returns_a_copy_callers_may_change():
    a = butter_sos(2, 1.0, "lowpass", 100.0)
    a[:] = 0.0
    b = butter_sos(2, 1.0, "lowpass", 100.0)
    np.testing.assert_array_equal(b, signal.butter(2, 1.0, "lowpass", fs=100.0, output="sos"))


@pytest.mark.parametrize("design", DESIGNS)
def test_the_kernel_path_gives_the_public_sosfilt_path_bit_for_bit(design):
    from analytics.algorithms import filters

    assert filters._sosfilt_kernel is not None  # the scipy the project pins has it; else the public path runs
    rng = np.random.default_rng(4)
    sos = butter_sos(*design)
    x = np.cumsum(rng.normal(size=(700, 3)), axis=0)
    zi = filters._zi_cached(np.ascontiguousarray(sos).tobytes(), sos.shape[0])
    for axis, data in ((0, x), (1, x.T.copy()), (0, x[:, 2])):
        ext = filters._extend(data, 15, axis, "odd")
        np.testing.assert_array_equal(
            zero_phase(sos, data, axis=axis, padlen=15), filters._zero_phase_public(sos, ext, zi, axis, 15)
        )
