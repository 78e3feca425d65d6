"""Walking: step timing (gait events) and pelvis/thigh kinematics of a walking bout.

Timing. A bout starts from quiet standing: the leading leg lifts off 0.15 s in (gait initiation), then steps
alternate. Step times have a few % coefficient of variation (CV, autocorrelated, Hausdorff 2005: stride-time
CV ~2-3 % in healthy adults); the stance time of each step is stance_pct of its stride (normal 60-62 %,
Perry & Burnfield 2010), then each side's stance times are rescaled so that the stance symmetry index over the
strides the summary includes is exactly the requested one (`impose_stance_asymmetry`); contacts stay where they
were, so a leg with a longer stance has a shorter swing, and its thigh curve runs its stance part slower and its
swing part faster (the curve's landmarks stay tied to the foot's events: registration at the events, the usual
way gait curves are compared). No real asymmetric three-sensor trial here checks that; the thigh detector reads
the thigh's posture, which does not depend on it (analytics.algorithms.thigh_events). The last contact of
each leg closes the bout (termination, no toe off). Home bouts have a 180 deg turn in the middle: heading
turns over four steps while the forward speed drops to 60 %.

Kinematics (deg, m), from each leg's gait phase p (0 at its initial contact, 0.6 at its toe off, 1 at its next
initial contact; piecewise linear between events, smoothed over 20 ms), scaled by an envelope that ramps up
over the first step and down over the last:

- pelvic obliquity: in each leg's early stance the opposite hemipelvis drops, peaking at p = 0.17 (loading
  response, just after the opposite toe off; Perry & Burnfield 2010, pelvic obliquity +-4-5 deg), amplitude =
  the pelvic drop knob of that side with 5 % stride-to-stride CV. Truth drops are measured afterwards from
  the resulting trajectory (truth.py), so they are true by construction.
- pelvic tilt +-2 deg at twice the stride frequency, anterior-most in terminal stance (Perry & Burnfield).
- pelvic rotation (yaw) +-4 deg at the stride frequency. Measured on real lower-back walking
  (docs/gait-physiology-real-vs-simulator.md), the yaw rate is fastest at each initial contact, turning towards the
  contacting side's opposite (clockwise at left IC; the sign rule of McCamley et al. 2012, Gait Posture 36:316),
  while the textbook pelvis has its yaw extreme at IC (Perry & Burnfield 2010). The simulated yaw follows the
  measurement: PELVIC_ROTATION_LEAD = 0, the yaw rate fastest (clockwise) at left IC, the yaw angle crossing
  zero there (the thigh side check, side_check.py, rests on this measured cue: docs/thigh-side-check.md).
- vertical displacement from each leg's share of the vertical acceleration (`_VERTICAL_ACC_KEYS`, two legs add
  up): a loading peak ~45 ms after IC (collision of the leading leg; Donelan, Kram & Kuo 2002, J Exp Biol
  205:3717), a local minimum at the contralateral toe off (end of double support) followed by a small rebound,
  and below-gravity single support (vaulting over the stance leg, Cavagna 1977); measured shapes and timing as
  in the real data (peak +45 ms, FC at the first dip after it); excursion ~2 cm peak to peak (below the
  3-5 cm often quoted for the COM: matching the measured accelerations at this cadence gives no more).
- medio-lateral sway +-4.5 cm at the stride frequency, towards the stance leg, so that the sensor's ML
  acceleration (sway plus gravity seen through pelvic obliquity) points away from the stance leg through
  single support with the measured amplitude (~1 m/s^2 RMS, fundamental ~1.1 m/s^2, most medial ~0.28 stride
  after IC); this is more than whole-body COM sway (several cm, decreasing with speed; Orendurff et al. 2004,
  JRRD 41:829): the sacrum sways more than the COM and the measured ML acceleration asks for it.
  Forward speed fluctuating +-8 % (slowest at midstance, inverted pendulum).
  Left-right differences (amplitude modulation at the stride frequency, 35 % vertical, 80 % forward) give
  harmonic ratios of trunk acceleration like real walking (Menz 2003: HR vertical ~3-4, AP ~2-3).
- heel strike (`heel_strikes`): damped transients of the pelvis's acceleration (18 Hz, 2.5 m/s^2 vertical
  impact; ~1 m/s^2 backwards; a 0.8 m/s^2 push AWAY from the new stance leg, as measured: no real recording
  shows the body pushed towards the contacting side) and a small rotational ring at 5-6 Hz.
- thigh sagittal angle from a normative curve (Perry & Burnfield; Winter 2009): ~+24 deg flexion at initial
  contact, -11 deg extension just before toe off, ~+27 deg in late swing; thigh adduction +-3 deg.

Walkers beyond the default adult (simulator.walkers, sources there) change, from their own random stream: the
step and stance variability, the thigh's range (the curve scaled about its mean, per swing for shuffling starts
and turning steps: ``BoutPlan.thigh_scale``), the thigh curve's toe-off landmark leading the foot's toe off
(``BoutPlan.thigh_lead_s``, via ``leg_phase``), the pelvis's bounce with the step's length, and the turn (more,
slower, shorter steps with longer stance, forward speed down to 40 %). The default adult draws exactly what it
always drew.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

from analytics.results.summary import mark_included
from sensor_gateway.errors import SimulationError

from .config import SessionConfig
from .kinematics import PELVIS_STANDING_HEIGHT_M, SIDE_SIGN, Pose, ramp, with_obliquity
from .walker_steps import toe_off_lag_fraction, walker_steps
from .walkers import walker_profile

TOE_OFF_PHASE = 0.6
"""Gait phase of toe off in the templates (fraction of the stride)."""

_THIGH_KEYS = np.array(
    [
        (0.00, 24.0),
        (0.10, 21.0),
        (0.20, 13.0),
        (0.30, 5.0),
        (0.40, -3.0),
        (0.50, -10.0),
        (0.55, -11.0),
        (0.60, -7.0),
        (0.70, 8.0),
        (0.80, 22.0),
        (0.87, 27.0),
        (0.95, 26.0),
        (1.00, 24.0),
    ]
)
THIGH_FLEXION_DEG = CubicSpline(_THIGH_KEYS[:, 0], _THIGH_KEYS[:, 1], bc_type="periodic")
"""Thigh sagittal angle (deg, + flexion: knee forward) against gait phase (Perry & Burnfield; Winter 2009)."""
THIGH_MEAN_DEG = float(np.mean(THIGH_FLEXION_DEG(np.arange(1000) / 1000)))
"""Mean of the normative thigh curve over a stride (deg): a shorter swing is the curve scaled about it."""

_DROP_A, _DROP_B = 2.0, 5.0
_DROP_PEAK = (_DROP_A / (_DROP_A + _DROP_B)) ** _DROP_A * (_DROP_B / (_DROP_A + _DROP_B)) ** _DROP_B


def drop_shape(phase: np.ndarray) -> np.ndarray:
    """0..1 bump of the opposite hemipelvis's drop over a leg's stance (phase 0..0.6), peak at phase 0.17."""
    p = np.mod(phase, 1.0) / TOE_OFF_PHASE
    inside = p < 1.0
    pc = np.where(inside, p, 0.0)
    return np.where(inside, pc**_DROP_A * (1.0 - pc) ** _DROP_B / _DROP_PEAK, 0.0)


PELVIC_ROTATION_DEG = 4.0
"""Amplitude (deg) of the pelvis (lower-back sensor) yaw at the stride frequency; see the module docstring."""
PELVIC_ROTATION_LEAD = 0.0
"""Phase lead (fraction of a stride) of the pelvis yaw over the lower-back sensor measured on real walking
(0: yaw rate fastest at IC, as measured; 0.25: yaw extreme at IC, the textbook pelvis); see the module docstring."""
LATERAL_SWAY_M = 0.045
"""Amplitude (m) of the pelvis's medio-lateral sway at the stride frequency; see the module docstring."""

_VERTICAL_ACC_KEYS = (
    # (gait phase of the leg, amplitude m/s^2, width sd in phase units): see the module docstring
    (0.04, 3.2, 0.035),  # own initial contact: collision of the leading leg, peak ~45 ms after IC
    (0.60, -1.6, 0.02),  # own toe off: the trailing leg stops pushing (end of double support)
    (0.66, 1.4, 0.025),  # the other leg's first vertical force peak, just after this toe off
    (0.30, -0.6, 0.08),  # midstance: vaulting over the stance leg (inverted pendulum)
)


def _vertical_template(n: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """One leg's share of the vertical acceleration over a stride (m/s^2 at a 1 s stride, zero mean) and the
    displacement whose second time derivative it is (m, for a 1 s stride; scales with stride time squared)."""
    p = np.arange(n) / n
    acc = np.zeros(n)
    for centre, amp, sd in _VERTICAL_ACC_KEYS:
        d = (p - centre + 0.5) % 1.0 - 0.5
        acc += amp * np.exp(-0.5 * (d / sd) ** 2)
    acc -= acc.mean()
    spec = np.fft.rfft(acc)
    k = np.arange(spec.size)
    spec[1:] /= -((2.0 * np.pi * k[1:]) ** 2)
    spec[0] = 0.0
    return acc, np.fft.irfft(spec, n)


_VERTICAL_ACC, _VERTICAL_POS = _vertical_template()


def vertical_excursion_m(phase: np.ndarray, stride_s: float) -> np.ndarray:
    """One leg's share of the pelvis's vertical displacement (m) at gait phase ``phase`` for a stride of
    ``stride_s`` seconds (the two legs' shares add up to the step-periodic excursion)."""
    grid = np.arange(_VERTICAL_POS.size + 1) / _VERTICAL_POS.size
    return stride_s**2 * np.interp(np.mod(phase, 1.0), grid, np.append(_VERTICAL_POS, _VERTICAL_POS[0]))


@dataclass
class BoutPlan:
    """Gait events of one bout, in s from the bout's start (quiet standing)."""

    ic_s: np.ndarray
    """Initial contacts in order, alternating legs."""
    ic_side: list[str]
    stance_s: np.ndarray
    """Stance time after each initial contact (NaN for the last contact of each leg: the bout ends)."""
    initiation_toe_off_s: dict[str, float]
    duration_s: float
    turn_s: tuple[float, float]
    turn_direction: float
    """+1 turns left (counter-clockwise seen from above), -1 right, 0 no turn."""
    start_s: float = 0.0
    """Where the bout starts in the session (set by the session script)."""
    drop_amplitude_deg: dict[str, np.ndarray] = field(default_factory=dict)
    thigh_scale: np.ndarray | None = None
    """Per initial contact, the sagittal range of the thigh swing that lands there relative to the walker's full
    swing (shuffling starts, turning steps; simulator.walkers); None: every swing is full."""
    thigh_lead_s: float = 0.0
    """How long (s) before the foot's toe off the thigh curve passes its toe-off landmark (simulator.walkers:
    toe off against the thigh); 0 in the default model."""
    turn_speed: float = 0.6
    """Forward speed in the middle of the turn relative to straight walking."""

    def strides(self) -> list[dict[str, Any]]:
        """Same-foot IC to IC strides (session time), without truth values that need the trajectory."""
        out: list[dict[str, Any]] = []
        for side in ("left", "right"):
            idx = [i for i, s in enumerate(self.ic_side) if s == side]
            for a, b in itertools.pairwise(idx):
                start = self.start_s + float(self.ic_s[a])
                end = self.start_s + float(self.ic_s[b])
                stance = float(self.stance_s[a])
                out.append({"side": side, "start_s": start, "end_s": end, "stance_time_s": stance, "ic_index": a})
        out.sort(key=lambda s: float(s["start_s"]))
        return out


def plan_bout(
    cfg: SessionConfig,
    rng: np.random.Generator,
    n_steps: int,
    leading: str,
    turn: bool,
    walker_rng: np.random.Generator | None = None,
) -> BoutPlan:
    """Step timing of one bout of ``n_steps`` initial contacts (>= 8), starting and ending in quiet standing.

    ``walker_rng`` draws what a walker beyond the default adult adds (simulator.walkers: stepwise turns,
    shuffling starts); ``rng`` draws exactly what the default model always drew, so the default adult's
    sessions do not change."""
    profile = walker_profile(cfg.walker)
    stride_s = 120.0 / cfg.cadence_steps_per_min
    step_s = stride_s / 2.0
    stance_frac = cfg.stance_pct / 100.0
    # autocorrelated step-time variation, CV ~2 % (the walker's)
    eps = rng.standard_normal(n_steps)
    eps = np.convolve(eps, [0.6, 0.8], mode="same") / 1.0
    steps = step_s * (1.0 + profile.stride_cv * eps[: n_steps - 1])
    steps[-1] *= 0.85  # closing step of the termination is shorter
    toe_off_lead = 0.15
    first_swing_s = (1.0 - stance_frac) * stride_s * 0.9
    extra = walker_steps(profile, walker_rng, n_steps, steps, step_s)
    first_swing_s *= extra.first_swing_factor
    first_ic = toe_off_lead + first_swing_s
    ic = first_ic + np.concatenate([[0.0], np.cumsum(steps)])
    sides = [leading if i % 2 == 0 else _other(leading) for i in range(n_steps)]
    stance = np.full(n_steps, np.nan)
    for i in range(n_steps - 2):
        share = stance_frac if extra.stance_add is None else stance_frac + extra.stance_add[i]
        stance[i] = share * (ic[i + 2] - ic[i]) * (1.0 + profile.stance_cv * rng.standard_normal())
    toe_off = {leading: toe_off_lead, _other(leading): float(ic[0] + (stance_frac - 0.5) * stride_s)}
    turn_window = (0.0, 0.0)
    if turn:
        mid = n_steps // 2
        a, b = extra.turn_steps if extra.turn_steps is not None else (mid - 2, mid + 2)
        turn_window = (float(ic[a]), float(ic[b]))
    return BoutPlan(
        ic_s=ic,
        ic_side=sides,
        stance_s=stance,
        initiation_toe_off_s=toe_off,
        duration_s=float(ic[-1] + 0.6),
        turn_s=turn_window,
        turn_direction=float(rng.choice([-1.0, 1.0])) if turn else 0.0,
        thigh_scale=extra.thigh_scale,
        thigh_lead_s=toe_off_lag_fraction(cfg) * stride_s,
        turn_speed=0.4 if extra.turn_steps is not None else 0.6,
    )


def _other(side: str) -> str:
    return "right" if side == "left" else "left"


def impose_stance_asymmetry(bouts: list[BoutPlan], si_pct: float) -> None:
    """Rescale each side's stance times so the SI of the included strides' mean stance is exactly si_pct."""
    strides = []
    for b, bout in enumerate(bouts):
        for s in bout.strides():
            strides.append({**s, "bout": b})
    included = mark_included(strides)
    means = {}
    for side in ("left", "right"):
        vals = [
            float(s["stance_time_s"]) for s, inc in zip(strides, included, strict=True) if inc and s["side"] == side
        ]
        if not vals:
            raise SimulationError("minutes (--minutes): too short for a walking bout with included strides")
        means[side] = float(np.mean(vals))
    ratio = (200.0 + si_pct) / (200.0 - si_pct)
    mean = 0.5 * (means["left"] + means["right"])
    target_right = 2.0 * mean / (1.0 + ratio)
    factor = {"left": ratio * target_right / means["left"], "right": target_right / means["right"]}
    for bout in bouts:
        sides = np.array(bout.ic_side)
        for side in ("left", "right"):
            bout.stance_s[sides == side] *= factor[side]
        _check_events(bout, si_pct)


def _check_events(bout: BoutPlan, si_pct: float) -> None:
    """Each toe off must fall after the opposite foot's contact and before this foot's next contact."""
    ic, stance = bout.ic_s, bout.stance_s
    for i in range(len(ic) - 2):
        fc = ic[i] + stance[i]
        if not (ic[i + 1] + 0.02 < fc < ic[i + 2] - 0.1):
            raise SimulationError(
                f"stance_asymmetry_pct (--stance-asymmetry): {si_pct:g} % with stance share "
                "gives a toe off outside its step (no double support or no swing)"
            )


def leg_phase(bout: BoutPlan, side: str, t: np.ndarray, rate_hz: float, toe_off_lead_s: float = 0.0) -> np.ndarray:
    """Unwrapped gait phase of one leg (0 at its first contact, +1 per stride, 0.6 at toe offs), smoothed.

    ``toe_off_lead_s`` puts the 0.6 knot that long before each toe off (the thigh curve's phase of a walker whose
    foot leaves the ground later than the curve's landmark)."""
    idx = [i for i, s in enumerate(bout.ic_side) if s == side]
    knots_t = [bout.initiation_toe_off_s[side] - toe_off_lead_s]
    knots_p = [TOE_OFF_PHASE - 1.0]
    for k, i in enumerate(idx):
        knots_t.append(float(bout.ic_s[i]))
        knots_p.append(float(k))
        if np.isfinite(bout.stance_s[i]):
            knots_t.append(float(bout.ic_s[i] + bout.stance_s[i] - toe_off_lead_s))
            knots_p.append(k + TOE_OFF_PHASE)
    phase = np.interp(t, knots_t, knots_p)
    return gaussian_filter1d(phase, sigma=0.02 * rate_hz, mode="nearest")


def walk_bout_pose(
    bout: BoutPlan, cfg: SessionConfig, rng: np.random.Generator, rate_hz: float
) -> tuple[Pose, np.ndarray, float, np.ndarray]:
    """The bout's motion in a local frame (start at origin facing +X).

    Returns the pose (n samples), the heel-strike acceleration transients (n, 3) m/s^2 in the local frame,
    the heading change (rad) and the end position (m) of the pelvis.
    """
    n = round(bout.duration_s * rate_hz)
    t = np.arange(n) / rate_hz
    phase = {side: leg_phase(bout, side, t, rate_hz) for side in ("left", "right")}
    thigh_phase = phase
    if bout.thigh_lead_s != 0.0:
        thigh_phase = {side: leg_phase(bout, side, t, rate_hz, bout.thigh_lead_s) for side in ("left", "right")}
    thigh_scale = _thigh_scale(bout, cfg, t)
    ic = bout.ic_s
    envelope = ramp(t, bout.initiation_toe_off_s[bout.ic_side[0]] - 0.1, float(ic[1])) * (
        1.0 - ramp(t, float(ic[-2]), float(ic[-1]) + 0.35)
    )
    pl = phase["left"]

    # pelvic obliquity: per-stride amplitudes of each side's contralateral drop
    knobs = {"left": cfg.pelvic_drop_left_deg, "right": cfg.pelvic_drop_right_deg}
    obliquity = np.full(n, cfg.standing_obliquity_deg)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        n_strides = sum(1 for s in bout.ic_side if s == side) + 2
        amps = knobs[side] * (1.0 + 0.05 * rng.standard_normal(n_strides))
        bout.drop_amplitude_deg[side] = amps
        k = np.clip(np.floor(phase[side]).astype(int) + 1, 0, n_strides - 1)
        obliquity += sign * envelope * amps[k] * drop_shape(phase[side])

    tilt = envelope * 2.0 * np.cos(4.0 * np.pi * (pl - 0.45))
    rotation = -envelope * PELVIC_ROTATION_DEG * np.sin(2.0 * np.pi * (pl + PELVIC_ROTATION_LEAD))
    t0, t1 = bout.turn_s
    heading = bout.turn_direction * np.pi * ramp(t, t0, t1)
    turning = 1.0 - (1.0 - bout.turn_speed) * (ramp(t, t0 - 0.3, t0 + 0.3) - ramp(t, t1 - 0.3, t1 + 0.3))

    m_v, th_v = 0.35 * rng.uniform(0.8, 1.2), rng.uniform(0, 2 * np.pi)
    m_ap, th_ap = 0.8 * rng.uniform(0.8, 1.2), rng.uniform(0, 2 * np.pi)
    stride_s = 120.0 / cfg.cadence_steps_per_min
    pr = phase["right"]
    vertical = (
        envelope
        * (1 + m_v * np.cos(2 * np.pi * pl + th_v))
        * (vertical_excursion_m(pl, stride_s) + vertical_excursion_m(pr, stride_s))
    )
    if bout.thigh_scale is not None:  # shorter steps vault less (inverted pendulum): the bounce scales with them
        vertical *= 0.5 * (thigh_scale["left"] + thigh_scale["right"]) / walker_profile(cfg.walker).thigh_range_scale
    vertical -= 0.01 * envelope  # slightly lower on average while walking (knee flexion)
    lateral = envelope * LATERAL_SWAY_M * np.sin(2.0 * np.pi * pl)
    speed = (
        cfg.walking_speed_mps
        * envelope
        * turning
        * (1.0 - 0.11 * (1 + m_ap * np.cos(2 * np.pi * pl + th_ap)) * np.cos(4.0 * np.pi * (pl - 0.3)))
    )
    step = 1.0 / rate_hz
    vx, vy = speed * np.cos(heading), speed * np.sin(heading)
    fwd = np.stack([np.cumsum(vx) * step, np.cumsum(vy) * step], axis=1)
    fwd -= fwd[0]
    position = np.zeros((n, 3))
    position[:, 0] = fwd[:, 0] - np.sin(heading) * lateral
    position[:, 1] = fwd[:, 1] + np.cos(heading) * lateral
    position[:, 2] = PELVIS_STANDING_HEIGHT_M + vertical

    base = Rotation.from_euler("ZY", np.column_stack([heading + np.radians(rotation), np.radians(tilt)]))
    pelvis = with_obliquity(base, obliquity)

    thighs = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        curve = THIGH_FLEXION_DEG(np.mod(thigh_phase[side], 1.0))
        if side in thigh_scale:  # a walker's shorter swings: the curve scaled about its mean
            curve = THIGH_MEAN_DEG + thigh_scale[side] * (curve - THIGH_MEAN_DEG)
        flex = envelope * curve
        adduction = envelope * (1.0 + 3.0 * np.cos(2.0 * np.pi * (phase[side] - 0.15)))
        yaw = heading + 0.5 * np.radians(rotation)
        thighs[side] = Rotation.from_euler(
            "ZYX", np.column_stack([yaw, -np.radians(flex), -sign * np.radians(adduction)])
        )

    impacts, wobble = heel_strikes(bout, t, envelope, heading)
    pelvis = pelvis * Rotation.from_rotvec(np.radians(wobble))
    pose = Pose(pelvis=pelvis, pelvis_position_m=position, thigh=thighs)
    return pose, impacts, float(heading[-1]), position[-1].copy()


def _thigh_scale(bout: BoutPlan, cfg: SessionConfig, t: np.ndarray) -> dict[str, np.ndarray]:
    """Per leg, the sagittal range of its thigh curve over time relative to the normative curve: the walker's
    range times each swing's own (shuffling starts, turning steps), interpolated between mid-swings. Empty in the
    default model (the curve is used as it is)."""
    full = walker_profile(cfg.walker).thigh_range_scale
    if bout.thigh_scale is None and full == 1.0:
        return {}
    per_contact = np.ones(bout.ic_s.size) if bout.thigh_scale is None else bout.thigh_scale
    swing_s = (1.0 - cfg.stance_pct / 100.0) * 120.0 / cfg.cadence_steps_per_min
    out = {}
    for side in ("left", "right"):
        mine = np.array([s == side for s in bout.ic_side])
        out[side] = full * np.interp(t, bout.ic_s[mine] - 0.5 * swing_s, per_contact[mine])
    return out


def _transient(tau: np.ndarray, freq_hz: float, decay_s: float) -> np.ndarray:
    """Damped oscillation starting smoothly at tau = 0 (value and slope 0), unit peak order, 0 before."""
    live = np.clip(tau, 0.0, None)
    return np.where(tau > 0, (live / decay_s) * np.exp(1.0 - live / decay_s) * np.sin(2 * np.pi * freq_hz * live), 0.0)


def heel_strikes(
    bout: BoutPlan, t: np.ndarray, envelope: np.ndarray, heading: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pelvis transients after each initial contact: world acceleration (n, 3) m/s^2 and a small rotation
    (n, 3) deg (pelvis frame) that rings at 5-6 Hz (soft tissue and trunk response). Left and right differ by
    +-15 % (healthy step-to-step asymmetry), which with the amplitude modulation sets the harmonic ratios."""
    n = t.size
    impacts = np.zeros((n, 3))
    wobble = np.zeros((n, 3))
    rate = 1.0 / (t[1] - t[0])
    for ic, side in zip(bout.ic_s, bout.ic_side, strict=True):
        i0 = max(int(ic * rate) - 1, 0)
        i1 = min(i0 + int(0.5 * rate), n)
        tau = t[i0:i1] - ic
        gain = envelope[min(int(ic * rate), n - 1)] * (1.15 if side == "left" else 0.85)
        sign = SIDE_SIGN[side]
        vertical = gain * 2.5 * _transient(tau, 18.0, 0.012)
        backward = -gain * (1.2 * _transient(tau, 12.0, 0.015) + 1.0 * _transient(tau, 5.0, 0.05))
        lateral = -sign * gain * 0.8 * _transient(tau, 5.0, 0.04)
        c, s = np.cos(heading[i0:i1]), np.sin(heading[i0:i1])
        impacts[i0:i1, 0] += backward * c - lateral * s
        impacts[i0:i1, 1] += backward * s + lateral * c
        impacts[i0:i1, 2] += vertical
        wobble[i0:i1, 0] += sign * gain * 0.35 * _transient(tau, 5.5, 0.06)
        wobble[i0:i1, 1] += gain * 0.3 * _transient(tau, 6.0, 0.06)
        wobble[i0:i1, 2] += sign * gain * 0.1 * _transient(tau, 5.0, 0.06)
    return impacts, wobble
