"""Body axes of a pelvis (lower-back) IMU worn in any orientation, found from the walking itself.

The sensor frame is never trusted: patients strap the sensor on any way round. The three body axes are
estimated as unit vectors in the sensor frame, each from a property of walking that does not depend on how
the sensor sits:

1. **Up** is the mean specific force while walking (gravity; the dynamic part averages out over strides).
   Confidence: mean resultant length of the low-passed unit acceleration vectors (1 = the tilt of the
   sensor did not change; it drops when the trunk orientation varies during the analysed samples).
2. **Antero-posterior (AP) line**: in the horizontal plane, the direction whose acceleration is coupled with
   the vertical acceleration. Walking is left-right symmetric, so the vertical and AP accelerations repeat
   every step (even harmonics of the stride frequency) while the medio-lateral (ML) acceleration changes sign
   from one step to the next (odd harmonics; Moe-Nilssen & Helbostad 2004, J Biomech 37:121, who found
   positive step autocorrelation for V and AP and negative for ML). Odd and even harmonics are uncorrelated at
   every lag, so the horizontal direction with the most cross-covariance with the vertical acceleration,
   over lags of +-0.5 s, is AP. Confidence: 1 - lambda2/lambda1 of that 2 x 2 cross-covariance matrix.
3. **Forward** along that line: the trunk moves as an inverted pendulum (Cavagna et al. 1977, Am J Physiol
   233:R243): it slows down while rising over the stance foot and speeds up while falling, so the forward
   acceleration is anti-correlated with the vertical velocity (braking in the first half of stance).
   Confidence: |correlation| of the forward acceleration with minus the vertical velocity.
4. **Left** = up x forward. Every IMU frame is right-handed, so this needs no data; a physically mirrored
   movement (a mirror image of the walker) therefore swaps left and right, as it must.

Units: accelerations m/s^2 (gravity included in the input), angular rates deg/s, rates Hz, times s.
Constants: band 0.5-3 Hz holds the step frequency of walking (about 1.4-2.3 steps/s, i.e. 85-140
steps/min; Hollman 2011 slow-to-fast walking) and the first stride harmonic; lags +-0.5 s cover about one
step; 0.5 Hz low-pass for the tilt confidence keeps posture, not steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft

from analytics.algorithms._checks import check_imu
from analytics.algorithms.filters import butter_sos, zero_phase
from analytics.algorithms.tilt import block_means
from analytics.errors import InsufficientData, InvalidSignal

GAIT_BAND_HZ = (0.5, 3.0)
"""Band (Hz) holding the step fundamental and the stride fundamental of walking."""
COUPLING_LAG_S = 0.5
"""Largest lag (s) of the vertical/horizontal cross-covariance: about one step."""
POSTURE_LOWPASS_HZ = 0.5
"""Low-pass (Hz) separating posture (gravity direction) from step-to-step accelerations."""
AXES_RATE_HZ = 25.0
"""The axes are computed at about this rate (block means; see estimate_body_axes)."""
MIN_DURATION_S = 2.0
"""At least one stride of each foot (s) is needed to find AP and forward."""


@dataclass(frozen=True)
class BodyAxes:
    """Body axes as unit vectors in the sensor frame, with how sure each estimate is (0..1).

    ``to_body`` maps sensor-frame vectors to body-frame columns (forward, left, up).
    """

    up: tuple[float, float, float]
    forward: tuple[float, float, float]
    left: tuple[float, float, float]
    up_confidence: float
    ap_line_confidence: float
    forward_confidence: float

    @property
    def confidence(self) -> float:
        """The weakest of the three confidences."""
        return min(self.up_confidence, self.ap_line_confidence, self.forward_confidence)

    @property
    def rotation(self) -> np.ndarray:
        """3 x 3 matrix whose rows are forward, left, up (sensor frame -> body frame)."""
        return np.array([self.forward, self.left, self.up], dtype=np.float64)

    def to_body(self, vectors: np.ndarray) -> np.ndarray:
        """(n, 3) sensor-frame vectors -> (n, 3) body-frame columns forward, left, up (same units)."""
        return np.asarray(vectors, dtype=np.float64) @ self.rotation.T


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def estimate_body_axes(
    acc_mps2: np.ndarray,
    gyr_dps: np.ndarray,
    sampling_rate_hz: float,
    walking_mask: np.ndarray | None = None,
) -> BodyAxes:
    """Find up, forward and left of a pelvis IMU from walking (see the module docstring).

    ``walking_mask`` (bool, n) selects the samples that are walking; without it every sample is used,
    which is right when the signal is one walk. Raises InvalidSignal for bad arrays or rate,
    InsufficientData when fewer than MIN_DURATION_S of samples are selected or there is no movement.
    """
    acc, _gyr, fs = check_imu(acc_mps2, gyr_dps, sampling_rate_hz, MIN_DURATION_S)
    n = acc.shape[0]
    if walking_mask is not None:
        mask = np.asarray(walking_mask)
        if mask.shape != (n,) or mask.dtype != np.bool_:
            raise InvalidSignal(f"walking_mask must be a bool array of shape ({n},), got {mask.dtype} {mask.shape}")
        if mask.sum() < MIN_DURATION_S * fs:
            raise InsufficientData(
                f"walking_mask selects {int(mask.sum())} samples; need at least {MIN_DURATION_S:g} s of walking"
            )
        # Walking samples only (concatenated; the few joins between bouts do not bias means or covariances).
        acc = acc[mask]
        n = acc.shape[0]
    # 1. up: mean specific force over the walking samples.
    mean_acc = acc.mean(axis=0)
    if np.linalg.norm(mean_acc) < 1e-6:
        raise InsufficientData("mean acceleration is zero: gravity is missing, cannot find the vertical")
    up = _unit(mean_acc)
    # The rest at about AXES_RATE_HZ (block means of q samples): the 0.5-3 Hz gait band is kept (a q-sample
    # mean has its first zero at fs / q, >= 8x the band's top) at 1/q of the cost; the axes average the walk.
    q = int(fs // AXES_RATE_HZ)
    if q >= 2 and fs / q >= 8 * GAIT_BAND_HZ[1] and n // q >= MIN_DURATION_S * fs / q:
        acc = block_means(acc[: n // q * q], q)
        fs = fs / q
        n = acc.shape[0]

    sos_post = butter_sos(2, POSTURE_LOWPASS_HZ, "lowpass", float(fs))
    # (column by column: the filter's padded temporaries are then a third of the size; same arithmetic)
    px, py, pz = (zero_phase(sos_post, acc[:, i]) for i in range(3))
    norm = np.maximum(np.sqrt(px * px + py * py + pz * pz), 1e-9)
    up_conf = float(np.linalg.norm([np.mean(px / norm), np.mean(py / norm), np.mean(pz / norm)]))
    del px, py, pz, norm

    # 2. AP line: horizontal direction coupled with the vertical acceleration.
    e1 = _unit(np.cross(up, np.eye(3)[int(np.argmin(np.abs(up)))]))
    e2 = np.cross(up, e1)
    sos_band = butter_sos(2, GAIT_BAND_HZ, "bandpass", float(fs))
    band = np.column_stack([zero_phase(sos_band, acc[:, i]) for i in range(3)])  # (as posture)
    a_v = band @ up
    h = np.column_stack([band @ e1, band @ e2])
    max_lag = min(round(COUPLING_LAG_S * fs), n - 1)
    # cov[lag] = sum_t a_v(t + lag) h(t) for |lag| <= max_lag, by FFT cross-correlation.
    n_fft = sp_fft.next_fast_len(n + max_lag)
    spec = sp_fft.rfft(a_v, n_fft)[:, None] * np.conj(sp_fft.rfft(h, n_fft, axis=0))
    full = sp_fft.irfft(spec, n_fft, axis=0)
    cov = np.concatenate([full[n_fft - max_lag :], full[: max_lag + 1]])
    coupling = cov.T @ cov
    eigval, eigvec = np.linalg.eigh(coupling)
    if eigval[1] <= 0:
        raise InsufficientData("no vertical acceleration in the walking band: cannot find forward")
    ap_line_conf = float(1.0 - eigval[0] / eigval[1])
    ap_axis = eigvec[0, 1] * e1 + eigvec[1, 1] * e2

    # 3. forward: AP acceleration anti-correlated with vertical velocity (inverted pendulum).
    a_ap = h @ eigvec[:, 1]
    v_vert = zero_phase(sos_band, np.cumsum(a_v) / fs)
    denom = float(np.sqrt(np.dot(a_ap, a_ap) * np.dot(v_vert, v_vert)))
    corr = float(-np.dot(a_ap, v_vert) / denom) if denom > 0 else 0.0
    forward = _unit(ap_axis if corr >= 0 else -ap_axis)
    left = _unit(np.cross(up, forward))
    return BodyAxes(
        up=tuple(float(x) for x in up),  # type: ignore[arg-type]
        forward=tuple(float(x) for x in forward),  # type: ignore[arg-type]
        left=tuple(float(x) for x in left),  # type: ignore[arg-type]
        up_confidence=up_conf,
        ap_line_confidence=ap_line_conf,
        forward_confidence=abs(corr),
    )
