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

Loose strap (a STRESS, walkers with ``loose_strap``: simulator.walkers "Stresses"). A sensor held by a strap that
has come loose is knocked backwards about the thigh's flexion axis by the heel-strike impact and springs forward
again: a rotation of the sensor against the thigh that grows and returns as one Gaussian pulse, by ``KNOCK_DEG``
(3-5 deg, +-20 % step to step), furthest back ``KNOCK_CENTRE_S`` (35-50 ms) after contact, over ``KNOCK_SD_S``
(20-30 ms, sd). What is cited: the impact, a force transient within the first tens of ms of contact that travels up
the leg (Whittle 1999, Gait Posture 10:264); that soft tissue's response to it is heavily damped (Boyer & Nigg 2006,
J Biomech Eng 128:815): one pulse, no ring; that how a sensor is attached changes its artefacts (Forner-Cordero et
al. 2008, Physiol Meas 29:N21); the size stays within the several degrees skin moves on the femur over a stride
(Leardini et al. 2005; Peters et al. 2010, above). What is a stress: that a strap lets the sensor rock that far that
fast. The sizes were set against the thigh detector's thresholds (a spring-forward above its 50 deg/s swing
threshold over the stance's extension, sweeping less than its 10 deg excursion rule), not fitted to a recording:
a test that the excursion rule removes the stress's duplicates is therefore a regression pin of that rule, not
evidence that it generalises (the real trial's test, tests/algorithms/test_thigh_duplicates_real.py, is).
Check against the real left thigh of the NeuRA trial (docs/thigh_events.md, "Duplicate contacts": flexion velocity on
the detector's 15 Hz low-pass): a dip to -15..-93 deg/s within 50 ms of contact, then +57..+76 deg/s 60-90 ms after
it, 1.6-4.6 deg per lobe; the stress gives about -95..-120 and +55..+95 deg/s at ~70 ms. The real thigh also flexes
into its contacts (+25..+56 deg/s 20-40 ms before three of them); the stress's does not (-20..-35 deg/s).

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
KNOCK_DEG = (3.0, 5.0)
"""Peak backward rotation (deg) of a loose strap's sensor knocked back by a heel strike (stress)."""
KNOCK_CENTRE_S = (0.035, 0.05)
"""When (s after contact) the knocked-back sensor is furthest back (stress)."""
KNOCK_SD_S = (0.02, 0.03)
"""Width (s, Gaussian sd) of the knock back and return (stress)."""


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


@dataclass(frozen=True)
class LooseStrap:
    """One leg's loose strap (stress; see the module docstring): how far back (rad) a heel strike knocks the
    sensor about the thigh's flexion axis, when (s after contact) it is furthest back, and how long (s, Gaussian sd)
    the knock and the return take."""

    knock_rad: float
    centre_s: float
    sd_s: float


def draw_loose_strap(rng: np.random.Generator) -> LooseStrap:
    """One leg's loose strap (see the module docstring)."""
    return LooseStrap(
        float(np.radians(rng.uniform(*KNOCK_DEG))), float(rng.uniform(*KNOCK_CENTRE_S)), float(rng.uniform(*KNOCK_SD_S))
    )


def loose_strap_motion(
    strap: LooseStrap, heel_strikes_s: Sequence[float], n: int, rate_hz: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The loose strap after each heel strike, segment frame, in ``wobble_motion``'s form: a Gaussian pulse of
    rotation about +y (extension: the flexion axis is -y on both thighs) and its exact rate; no displacement."""
    rot = np.zeros((n, 3))
    rate = np.zeros((n, 3))
    half = round(4.0 * strap.sd_s * rate_hz)
    for t_hs in heel_strikes_s:
        gain = 1.0 + STEP_VARIATION * rng.uniform(-1.0, 1.0)
        centre = t_hs + strap.centre_s
        i0 = max(int(np.ceil(centre * rate_hz)) - half, 0)
        i1 = min(int(np.ceil(centre * rate_hz)) + half + 1, n)
        if i1 <= i0:
            continue
        tau = np.arange(i0, i1) / rate_hz - centre
        pulse = gain * strap.knock_rad * np.exp(-0.5 * (tau / strap.sd_s) ** 2)
        rot[i0:i1, 1] += pulse
        rate[i0:i1, 1] += -tau / strap.sd_s**2 * pulse
    return rot, rate, np.zeros((n, 3))


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
