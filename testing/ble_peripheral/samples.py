"""Pluggable sample sources for the emulated BLE sensor: what the IMU "measures".

A source returns physical samples: (acc_x, acc_y, acc_z) in m/s² (specific force, so a still sensor reads
+9.81 m/s² on its up axis) and (gyr_x, gyr_y, gyr_z) in deg/s, in the sensor frame. The sensor quantises them
to int16 counts at its measurement ranges (`to_counts`) and sets the saturation flags, as firmware does.

Built in: `StillSource` (a sensor lying still, white noise), `SineSource` (a sinusoidal swing about one axis),
and `ArraySource`, which replays per-sensor arrays such as the simulator's (n x 3 acc m/s², n x 3 gyr deg/s at
the sensor's sample rate); feed it from `simulator`'s per-sensor sample arrays.
No numpy needed (ArraySource accepts any sequence of rows, numpy arrays included).

Sessions on the wall clock: an `ArraySource` with a `SessionClockStart` (shared by a kit's sensors) picks its rows
by *when* the samples are taken (`read_at`, host ns): row k is the one due k / rate seconds after the session clock
start, which is set by the first sample any sensor of the kit takes. So the three sensors replay one simulated
session in step with each other, in real time, and a sensor that was disconnected for a while resumes where the
patient is by then (the rows it did not sample are simply not measured, as on a real body).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Protocol

from firmware_protocol.packet import Sample
from firmware_protocol.wire import STANDARD_GRAVITY_MPS2

__all__ = [
    "ArraySource",
    "PhysicalSample",
    "SampleSource",
    "SessionClockStart",
    "SineSource",
    "StillSource",
    "to_counts",
]

PhysicalSample = tuple[float, float, float, float, float, float]
"""(acc_x, acc_y, acc_z m/s², gyr_x, gyr_y, gyr_z deg/s)."""

_INT16_MIN, _INT16_MAX = -32768, 32767


class SampleSource(Protocol):
    """Gives the next `count` samples taken at `sample_rate_hz` (called in order, never skipping)."""

    def read(self, count: int, sample_rate_hz: int) -> list[PhysicalSample]: ...

    def restart(self) -> None:
        """The sensor rebooted: start again from the source's beginning (or carry on; source's choice)."""
        ...


def to_counts(sample: PhysicalSample, acc_range_g: int, gyr_range_dps: int) -> tuple[Sample, bool, bool]:
    """Physical sample -> (int16 counts, acc saturated, gyr saturated); counts = value / full scale * 32768."""
    acc_per_count = acc_range_g * STANDARD_GRAVITY_MPS2 / 32768.0
    gyr_per_count = gyr_range_dps / 32768.0
    out: list[int] = []
    acc_sat = gyr_sat = False
    for axis, value in enumerate(sample):
        raw = round(value / (acc_per_count if axis < 3 else gyr_per_count))
        if raw < _INT16_MIN or raw > _INT16_MAX:
            raw = max(_INT16_MIN, min(_INT16_MAX, raw))
            if axis < 3:
                acc_sat = True
            else:
                gyr_sat = True
        out.append(raw)
    return (out[0], out[1], out[2], out[3], out[4], out[5]), acc_sat, gyr_sat


class StillSource:
    """A sensor lying still with its z axis up: acc (0, 0, +g) m/s², gyr 0 deg/s, plus white noise.

    acc_noise_mps2 / gyr_noise_dps: standard deviation per sample (BMI270 class at 100 Hz: ~0.016 m/s²,
    ~0.08 deg/s).
    """

    def __init__(self, seed: int = 0, acc_noise_mps2: float = 0.016, gyr_noise_dps: float = 0.08) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self.acc_noise_mps2 = acc_noise_mps2
        self.gyr_noise_dps = gyr_noise_dps

    def read(self, count: int, sample_rate_hz: int) -> list[PhysicalSample]:
        g, a, w = self._rng.gauss, self.acc_noise_mps2, self.gyr_noise_dps
        return [
            (g(0.0, a), g(0.0, a), STANDARD_GRAVITY_MPS2 + g(0.0, a), g(0.0, w), g(0.0, w), g(0.0, w))
            for _ in range(count)
        ]

    def restart(self) -> None:
        self._rng = random.Random(self._seed)


class SineSource:
    """A swing about the sensor's x axis: angle = amplitude_deg · sin(2π f t); gyr_x its derivative, deg/s;
    gravity rotates in the y-z plane (m/s²). f = frequency_hz (walking cadence ~0.9 Hz per leg)."""

    def __init__(self, frequency_hz: float = 0.9, amplitude_deg: float = 25.0, phase_rad: float = 0.0) -> None:
        self.frequency_hz = frequency_hz
        self.amplitude_deg = amplitude_deg
        self.phase_rad = phase_rad
        self._index = 0

    def read(self, count: int, sample_rate_hz: int) -> list[PhysicalSample]:
        out: list[PhysicalSample] = []
        omega = 2.0 * math.pi * self.frequency_hz
        for i in range(self._index, self._index + count):
            t = i / sample_rate_hz
            angle_rad = math.radians(self.amplitude_deg) * math.sin(omega * t + self.phase_rad)
            rate_dps = self.amplitude_deg * omega * math.cos(omega * t + self.phase_rad)
            acc_y = STANDARD_GRAVITY_MPS2 * math.sin(angle_rad)
            acc_z = STANDARD_GRAVITY_MPS2 * math.cos(angle_rad)
            out.append((0.0, acc_y, acc_z, rate_dps, 0.0, 0.0))
        self._index += count
        return out

    def restart(self) -> None:
        self._index = 0


class SessionClockStart:
    """Host time (ns) of row 0 of a kit's session: set by the first `ArraySource.read_at` of any sensor."""

    def __init__(self, start_ns: int | None = None) -> None:
        self.start_ns = start_ns


class ArraySource:
    """Replays rows of acc (n x 3, m/s²) and gyr (n x 3, deg/s) recorded at the sensor's sample rate;
    loops when `loop` (else holds the last row). The rate the rows were made at is the caller's business.

    With a ``clock_start`` the rows follow the host clock (`read_at`, see the module docstring); without one,
    `read_at` is `read` (rows in order, whatever the time)."""

    def __init__(
        self,
        acc_mps2: Sequence[Sequence[float]],
        gyr_dps: Sequence[Sequence[float]],
        loop: bool = True,
        clock_start: SessionClockStart | None = None,
    ):
        if len(acc_mps2) != len(gyr_dps) or len(acc_mps2) == 0:
            raise ValueError(f"acc_mps2 has {len(acc_mps2)} rows and gyr_dps {len(gyr_dps)}; need equal and > 0")
        self._acc = acc_mps2
        self._gyr = gyr_dps
        self.loop = loop
        self.clock_start = clock_start
        self._index = 0

    def read(self, count: int, sample_rate_hz: int) -> list[PhysicalSample]:
        n = len(self._acc)
        out: list[PhysicalSample] = []
        for _ in range(count):
            i = self._index % n if self.loop else min(self._index, n - 1)
            a, w = self._acc[i], self._gyr[i]
            out.append((float(a[0]), float(a[1]), float(a[2]), float(w[0]), float(w[1]), float(w[2])))
            self._index += 1
        return out

    def read_at(self, first_ns: int, count: int, sample_rate_hz: int) -> list[PhysicalSample]:
        """The `count` samples of which the first is taken at host time ``first_ns`` (ns)."""
        if self.clock_start is not None:
            if self.clock_start.start_ns is None:
                self.clock_start.start_ns = first_ns
            self._index = max(0, round((first_ns - self.clock_start.start_ns) * sample_rate_hz / 1e9))
        return self.read(count, sample_rate_hz)

    def restart(self) -> None:
        """A reboot: rows start again from the beginning, unless they follow the session's clock (the
        patient goes on moving while the sensor reboots)."""
        if self.clock_start is None:
            self._index = 0
