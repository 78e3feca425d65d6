"""A thigh sensor strapped laterally on soft tissue: the wobble that each heel strike sets off under it.

The sensor rides on the soft tissue of the lateral thigh (vastus lateralis, iliotibial band, fat), which
behaves as a wobbling mass on the bone: the impact and loading at heel strike set it resonating (Wakeling,
Liphardt & Nigg 2003, J Biomech 36:1761, 40 walkers; natural frequencies of the quadriceps' soft tissue ~10-20 Hz
at low activation, higher and more damped when the muscle works: Wakeling & Nigg 2001, J Appl Physiol 90:412).
Skin-mounted markers on the thigh move against the femur by up to 10-30 mm and several degrees over a stride
(reviews: Leardini et al. 2005, Gait Posture 21:212; Peters et al. 2010, Gait Posture 31:1); the ringing after
heel strike is a small, fast part of that, and is all this model adds.

Per walker and leg (drawn once): a natural frequency of 10-18 Hz; a rotation of the sensor on the tissue
(0.3-1.2 deg peak, mostly about the thigh's flexion axis, partly about its long and antero-posterior axes) and
a displacement (0.5-1.5 mm peak, mostly normal to the skin, i.e. medio-lateral, partly along the thigh). Each
heel strike of that leg rings them as an oscillation whose envelope, (t / T)^2 exp(2 (1 - t / T)), grows over
the loading response and peaks at T = ``PEAK_S`` (the first vertical force peak of walking comes ~100 ms after
contact: Perry & Burnfield 2010; Winter 2009), then decays as exp(-2 t / T) (a damping ratio of ~0.2-0.4 at
these frequencies: gone within three to four cycles); amplitudes vary +-20 % step to step. What the sensor then
measures, to first order in the small wobble (segment frame, then the mounting): angular velocity
+ d(rotation)/dt; specific force + d2(displacement)/dt2 - rotation x (the segment's specific
force), the last term being gravity and acceleration seen through the tilted sensor.

Check against the real lateral thighs (NeuRA S02, docs/thigh_events.md): ~11 Hz, 8-30 Hz envelope ~50 deg/s
(gyroscope) and ~5.6 m/s^2 (accelerometer), peaking ~100 ms after contact. The model's mid-range (1 mm and
0.75 deg at 12 Hz) gives ~5.7 m/s^2 and ~55 deg/s.

Units: Hz, s, deg, mm in the parameters; rad, m, m/s^2, deg/s in the signals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

FREQUENCY_HZ = (10.0, 18.0)
ROTATION_DEG = (0.3, 1.2)
DISPLACEMENT_MM = (0.5, 1.5)
PEAK_S = (0.08, 0.12)
STEP_VARIATION = 0.2
"""Step-to-step amplitude variation (uniform +-, fraction)."""


@dataclass(frozen=True)
class Wobble:
    """One leg's soft tissue under the sensor: frequency (Hz), envelope peak time (s), and the peak rotation (rad)
    and displacement (m) vectors in the thigh segment frame (x anterior, y left, z along the femur)."""

    frequency_hz: float
    peak_s: float
    rotation_rad: np.ndarray
    displacement_m: np.ndarray


def draw_wobble(rng: np.random.Generator, side: str) -> Wobble:
    """One leg's soft-tissue parameters (see the module docstring)."""
    lateral = 1.0 if side == "left" else -1.0  # the lateral side is +y for the left thigh
    rotation = np.radians(rng.uniform(*ROTATION_DEG)) * _unit(
        [
            rng.uniform(0.2, 0.5) * rng.choice([-1, 1]),
            rng.uniform(0.6, 1.0),
            rng.uniform(0.3, 0.8) * rng.choice([-1, 1]),
        ]
    )
    displacement = (
        1e-3
        * rng.uniform(*DISPLACEMENT_MM)
        * _unit([rng.uniform(0.1, 0.3) * rng.choice([-1, 1]), lateral * rng.uniform(0.7, 1.0), rng.uniform(0.2, 0.5)])
    )
    return Wobble(float(rng.uniform(*FREQUENCY_HZ)), float(rng.uniform(*PEAK_S)), rotation, displacement)


def _unit(v: Sequence[float]) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float64)
    return arr / np.linalg.norm(arr)


def wobble_motion(
    wobble: Wobble, heel_strikes_s: Sequence[float], n: int, rate_hz: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The wobble after each heel strike, segment frame: rotation (n, 3) rad, its rate (n, 3) rad/s and the
    displacement's second derivative (n, 3) m/s^2 (exact derivatives of the damped oscillation)."""
    rot = np.zeros((n, 3))
    rate = np.zeros((n, 3))
    acc = np.zeros((n, 3))
    omega = 2.0 * np.pi * wobble.frequency_hz
    td = wobble.peak_s
    length = round(6.0 * td * rate_hz)  # the envelope is below 0.2 % of its peak by then
    for t_hs in heel_strikes_s:
        gain = 1.0 + STEP_VARIATION * rng.uniform(-1.0, 1.0)
        i0 = max(int(np.ceil(t_hs * rate_hz)), 0)
        i1 = min(i0 + length, n)
        if i1 <= i0:
            continue
        tau = np.arange(i0, i1) / rate_hz - t_hs
        x = tau / td
        e = np.exp(2.0 * (1.0 - x))
        u, du, ddu = x * x * e, 2.0 * x * (1.0 - x) * e / td, (2.0 - 8.0 * x + 4.0 * x * x) * e / td**2
        s, c = np.sin(omega * tau), np.cos(omega * tau)
        g = gain * u * s
        dg = gain * (du * s + u * omega * c)
        ddg = gain * (ddu * s + 2.0 * du * omega * c - u * omega**2 * s)
        rot[i0:i1] += g[:, None] * wobble.rotation_rad
        rate[i0:i1] += dg[:, None] * wobble.rotation_rad
        acc[i0:i1] += ddg[:, None] * wobble.displacement_m
    return rot, rate, acc


def add_wobble(
    acc_mps2: np.ndarray,
    gyr_dps: np.ndarray,
    mounting: Rotation,
    motion: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """A rigid sensor's signals (sensor frame) as the sensor on the wobbling tissue measures them."""
    rot, rate, acc = motion
    force_segment = mounting.apply(acc_mps2)
    extra_force = acc - np.cross(rot, force_segment)
    return (
        acc_mps2 + mounting.apply(extra_force, inverse=True),
        gyr_dps + np.degrees(mounting.apply(rate, inverse=True)),
    )
