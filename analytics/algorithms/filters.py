"""Butterworth designs and zero-phase filtering, with what depends only on the design computed once.

The analysis of one recording asks for the same few filter designs dozens of times, and a worker analyses a
short live window every fraction of a second: per call, ``scipy.signal.butter`` costs ~0.2-0.3 ms and
``scipy.signal.sosfiltfilt`` spends ~0.3 ms computing the design's steady-state initial conditions
(``sosfilt_zi``: a linear solve per section) before it filters anything. Both depend on the design only, so
they are cached here, and ``zero_phase`` is scipy's sosfiltfilt with the cached initial conditions: the same
padding (odd or even extension, ``padlen`` default 3 x the filter's taps), the same forward-backward
``scipy.signal.sosfilt`` passes, the same result (tests/algorithms/test_filters.py compares them). The passes
call the compiled kernel behind ``sosfilt`` directly (its argument checks and axis moves cost more than the
filtering on a live window's ~1,000 samples: the analysis of a 9-s window 9.5 -> 7.0 ms CPU); without that kernel
(another scipy), the public ``sosfilt``.

Units: cutoffs and rates in Hz; the signals' own units pass through unchanged.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import signal

try:  # the compiled kernel behind scipy.signal.sosfilt (in place on C-ordered rows); the public call otherwise
    from scipy.signal._sosfilt import _sosfilt as _sosfilt_kernel
except ImportError:  # pragma: no cover
    _sosfilt_kernel = None


def butter_sos(order: int, cutoff_hz: float | tuple[float, float], btype: str, fs: float) -> np.ndarray:
    """Butterworth design in second-order sections (a copy of a cached design). Cutoffs in Hz, ``fs`` in Hz."""
    return _butter_cached(order, cutoff_hz, btype, float(fs)).copy()


@lru_cache(maxsize=64)
def _butter_cached(order: int, cutoff_hz: float | tuple[float, float], btype: str, fs: float) -> np.ndarray:
    sos: np.ndarray = signal.butter(order, cutoff_hz, btype, fs=fs, output="sos")
    sos.setflags(write=False)
    return sos


@lru_cache(maxsize=64)
def _zi_cached(sos_bytes: bytes, n_sections: int) -> np.ndarray:
    zi: np.ndarray = signal.sosfilt_zi(np.frombuffer(sos_bytes, dtype=np.float64).reshape(n_sections, 6))
    zi.setflags(write=False)
    return zi


@lru_cache(maxsize=64)
def _ntaps_cached(sos_bytes: bytes, n_sections: int) -> int:
    """The design's number of taps (scipy's default padding is 3 x taps)."""
    sos = np.frombuffer(sos_bytes, dtype=np.float64).reshape(n_sections, 6)
    return 2 * n_sections + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))


def zero_phase(
    sos: np.ndarray, x: np.ndarray, axis: int = -1, padtype: str = "odd", padlen: int | None = None
) -> np.ndarray:
    """``scipy.signal.sosfiltfilt(sos, x, axis, padtype, padlen)`` with the design's initial conditions cached.

    ``padtype`` "odd" or "even" (the two the analysis uses); ``padlen`` None = scipy's default. Raises
    ValueError, as scipy does, when the signal is not longer than the padding.
    """
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    if sos.ndim != 2 or sos.shape[1] != 6:
        raise ValueError(f"sos must have shape (n_sections, 6), got {sos.shape}")
    x = np.asarray(x, dtype=np.float64)
    axis = axis % x.ndim
    key = sos.tobytes()
    edge = 3 * _ntaps_cached(key, sos.shape[0]) if padlen is None else int(padlen)
    if x.shape[axis] <= edge:
        raise ValueError(f"the length of the input along axis {axis} must exceed padlen, which is {edge}")
    zi = _zi_cached(key, sos.shape[0])  # after the length check, in scipy's order: a design without one fails here
    if _sosfilt_kernel is not None and edge > 0 and padtype in ("odd", "even"):
        if x.ndim == 1:
            return _zero_phase_1d(sos, x, zi, edge, padtype == "odd")
        moved = x if axis == x.ndim - 1 else x.T if x.ndim == 2 else np.moveaxis(x, axis, -1)
        y = _zero_phase_rows(sos, moved.reshape(-1, moved.shape[-1]), zi, edge, padtype == "odd")
        return np.ascontiguousarray(np.moveaxis(y.reshape(*moved.shape[:-1], y.shape[-1]), -1, axis))
    ext = _extend(x, edge, axis, padtype)
    if _sosfilt_kernel is None:  # pragma: no cover - scipy without the kernel: the public path
        return _zero_phase_public(sos, ext, zi, axis, edge)
    # scipy's own compiled kernel on rows (what scipy.signal.sosfilt runs after its argument checks and axis
    # moves, which cost more than the filtering itself on a live window's ~1000 samples)
    moved = np.moveaxis(ext, axis, -1)
    rows = np.array(moved.reshape(-1, moved.shape[-1]), dtype=np.float64, order="C")
    state = np.ascontiguousarray(zi[None, :, :] * rows[:, :1, None])
    try:
        _sosfilt_kernel(sos, rows, state)
    except (TypeError, ValueError):  # pragma: no cover - a scipy whose kernel changed: the public path
        return _zero_phase_public(sos, ext, zi, axis, edge)
    rows = np.ascontiguousarray(rows[:, ::-1])
    state = np.ascontiguousarray(zi[None, :, :] * rows[:, :1, None])
    _sosfilt_kernel(sos, rows, state)
    y = rows[:, ::-1][:, edge : rows.shape[1] - edge] if edge > 0 else rows[:, ::-1]
    y = y.reshape(*moved.shape[:-1], y.shape[-1])
    return np.ascontiguousarray(np.moveaxis(y, -1, axis))


def _zero_phase_1d(sos: np.ndarray, x: np.ndarray, zi: np.ndarray, edge: int, odd: bool) -> np.ndarray:
    """`_zero_phase_rows` of one signal, with scalars in place of its columns (most calls of a live window filter
    one signal)."""
    assert _sosfilt_kernel is not None
    n = x.shape[0]
    rows = np.empty((1, n + 2 * edge))
    rows[0, edge : edge + n] = x
    if odd:
        rows[0, :edge] = 2 * x[0] - x[edge:0:-1]
        rows[0, edge + n :] = 2 * x[n - 1] - x[n - 2 : n - edge - 2 if n - edge - 2 >= 0 else None : -1]
    else:
        rows[0, :edge] = x[edge:0:-1]
        rows[0, edge + n :] = x[n - 2 : n - edge - 2 if n - edge - 2 >= 0 else None : -1]
    _sosfilt_kernel(sos, rows, (zi * rows[0, 0])[None])
    rows = rows[:, ::-1].copy()
    _sosfilt_kernel(sos, rows, (zi * rows[0, 0])[None])
    return rows[0, edge + n - 1 : edge - 1 : -1].copy()  # reversed back, padding cut


def _zero_phase_rows(sos: np.ndarray, x: np.ndarray, zi: np.ndarray, edge: int, odd: bool) -> np.ndarray:
    """`zero_phase` of the rows of ``x`` (k, n) (a view: the caller copies): the same extension, kernel passes and
    slicing as the general path, written into one array by slices in place of its index arrays, concatenation and
    copies (a live window's filters run on one to three signals of a few hundred samples, where those cost more
    than the filtering). ``edge`` > 0."""
    assert _sosfilt_kernel is not None
    k, n = x.shape
    rows = np.empty((k, n + 2 * edge))
    rows[:, edge : edge + n] = x
    tail = slice(n - 2, n - edge - 2 if n - edge - 2 >= 0 else None, -1)
    if odd:
        rows[:, :edge] = 2 * x[:, :1] - x[:, edge:0:-1]
        rows[:, edge + n :] = 2 * x[:, n - 1 :] - x[:, tail]
    else:
        rows[:, :edge] = x[:, edge:0:-1]
        rows[:, edge + n :] = x[:, tail]
    _sosfilt_kernel(sos, rows, zi[None, :, :] * rows[:, :1, None])
    rows = rows[:, ::-1].copy()
    _sosfilt_kernel(sos, rows, zi[None, :, :] * rows[:, :1, None])
    return rows[:, edge + n - 1 : edge - 1 : -1]  # reversed back, padding cut


def _zero_phase_public(sos: np.ndarray, ext: np.ndarray, zi: np.ndarray, axis: int, edge: int) -> np.ndarray:
    shape = [1] * ext.ndim
    shape[axis] = 2
    zi = zi.reshape([zi.shape[0], *shape])
    first = np.take(ext, [0], axis=axis)
    y, _ = signal.sosfilt(sos, ext, axis=axis, zi=zi * first)
    last = np.take(y, [-1], axis=axis)
    y, _ = signal.sosfilt(sos, np.flip(y, axis=axis), axis=axis, zi=zi * last)
    y = np.flip(y, axis=axis)
    if edge > 0:
        index = [slice(None)] * ext.ndim
        index[axis] = slice(edge, y.shape[axis] - edge)
        y = y[tuple(index)]
    return np.asarray(y)


def _extend(x: np.ndarray, edge: int, axis: int, padtype: str) -> np.ndarray:
    """x extended by ``edge`` samples at both ends along ``axis``: odd (point-symmetric about the end samples)
    or even (mirrored) extension, as scipy.signal.sosfiltfilt pads."""
    if edge < 1:
        return x
    n = x.shape[axis]
    head = np.take(x, np.arange(edge, 0, -1), axis=axis)
    tail = np.take(x, np.arange(n - 2, n - edge - 2, -1), axis=axis)
    if padtype == "odd":
        head = 2 * np.take(x, [0], axis=axis) - head
        tail = 2 * np.take(x, [n - 1], axis=axis) - tail
    elif padtype != "even":
        raise ValueError(f"padtype must be 'odd' or 'even', got {padtype!r}")
    return np.concatenate([head, x, tail], axis=axis)
