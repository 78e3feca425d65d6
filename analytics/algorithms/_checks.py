"""Input checks shared by the algorithms: shape, finiteness, sampling rate, minimum duration.

Every check raises `analytics.errors.InvalidSignal` (or `InsufficientData` for a signal that is valid but
too short) with a message naming the argument and what was wrong. Units: acc m/s^2, gyr deg/s, rate Hz.
"""

from __future__ import annotations

import math

import numpy as np

from analytics.errors import InsufficientData, InvalidSignal


def check_rate(sampling_rate_hz: float) -> float:
    """Return the rate as float; it must be a finite positive number of samples per second."""
    if isinstance(sampling_rate_hz, bool) or not isinstance(sampling_rate_hz, int | float | np.number):
        raise InvalidSignal(f"sampling_rate_hz must be a number (Hz), got {type(sampling_rate_hz).__name__}")
    rate = float(sampling_rate_hz)
    if not math.isfinite(rate) or rate <= 0:
        raise InvalidSignal(f"sampling_rate_hz must be finite and positive (Hz), got {sampling_rate_hz!r}")
    return rate


def check_xyz(name: str, values: object) -> np.ndarray:
    """An (n, 3) float array without NaN or infinity (sensor-frame x, y, z columns)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidSignal(f"{name} must be a numeric (n, 3) array ({exc})") from exc
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InvalidSignal(f"{name} must have shape (n, 3) (x, y, z columns), got {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InvalidSignal(f"{name} has a NaN or infinite value at sample {row}, axis {'xyz'[col]}")
    return arr


def check_imu(
    acc_mps2: object, gyr_dps: object, sampling_rate_hz: float, min_duration_s: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Validate one IMU's accelerometer and gyroscope arrays together; returns (acc, gyr, rate)."""
    rate = check_rate(sampling_rate_hz)
    acc = check_xyz("acc_mps2", acc_mps2)
    gyr = check_xyz("gyr_dps", gyr_dps)
    if acc.shape[0] != gyr.shape[0]:
        raise InvalidSignal(
            f"acc_mps2 and gyr_dps must have the same number of samples, got {acc.shape[0]} and {gyr.shape[0]}"
        )
    n_min = math.ceil(min_duration_s * rate)
    if acc.shape[0] < n_min:
        raise InsufficientData(
            f"signal too short: {acc.shape[0]} samples ({acc.shape[0] / rate:.2f} s at {rate:g} Hz); "
            f"need at least {min_duration_s:g} s"
        )
    return acc, gyr, rate
