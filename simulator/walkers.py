"""Walkers: who wears the kit and how, beyond the healthy adult of the default model.

A walker is a named profile (``SessionConfig.walker``, ``gaitsym simulate --walker``). ``adult`` is the model the
simulator always had (gait_model: normative thigh curve tied to each foot's events, sensors rigid on the
segment, quick turns, an initiation that reaches full steps at the first step); every other walker adds parts
that real recordings show and that model lacks. Each part follows published measurements, cited below; what
each reproduces of the shared real trials (``../shared/validation``) is in
docs/gait-physiology-real-vs-simulator.md ("Walkers"). They are checked against those trials, never against
what the gait event detectors assume.

Parts (each a field of ``WalkerProfile``):

- **Pace by age** (``cadence_steps_per_min``, ``walking_speed_mps``, ``stance_pct``). Comfortable walking speed
  by decade, meta-analysis of 41 studies (Bohannon & Andrews 2011, Physiotherapy 97:182): 70-79 years
  1.26 m/s men / 1.13 women, 80-99 years 0.97 / 0.94. Older adults walk slower mostly through shorter steps,
  cadence changing little (Winter, Patla, Frank & Walt 1990, Phys Ther 70:340; Hollman, McDade & Petersen 2011,
  Gait Posture 34:111). Stance share from speed, stance % = 64.2 - 3.5 x speed in m/s (Kirtley, Whittle &
  Jefferson 1985, J Biomed Eng 7:282), plus the longer double support of older walkers at the same speed
  (Winter et al. 1990): +1.5 points in the seventies, +2.5 in the eighties, +3 for frail walkers.
  ``frail``: 0.6 m/s, below the 0.8 m/s under which walking speed marks limited community ambulation and
  poorer survival (Studenski et al. 2011, JAMA 305:50).
- **Stride-to-stride variability** (``stride_cv``, ``stance_cv``): stride-time CV 1-3 % in healthy adults, higher
  in older and frail walkers (Hausdorff 2005, J NeuroEng Rehabil 2:19; Beauchet et al. 2009, J NeuroEng Rehabil
  6:32): 2 % (adult), 2.5 % (seventies), 3 % (eighties), 4 % (frail).
- **Thigh range** (``thigh_range_scale``): the hip's sagittal range falls with walking speed (Lelas, Merriman,
  Riley & Kerrigan 2003, Gait Posture 17:106; Stoquart, Detrembleur & Lejeune 2008, Neurophysiol Clin 38:105),
  less than step length does (knee and pelvic rotation take part of a shorter step). Modelled: a quarter of the
  range scales with speed (``range_scale_for_speed``): 0.94 at 0.95 m/s, 0.87 at 0.6 m/s. Check: the real slow
  walker (NeuRA S02, ~0.8 m/s) sweeps 32-48 deg per swing, the model 35 deg.
- **Toe off against the thigh** (``toe_off_lag_max``): normative descriptions disagree on where the thigh is
  when the foot leaves the ground. Winter's normative thigh curve (Winter 2009, the simulator's template,
  gait_model.THIGH_FLEXION_DEG) has the thigh's peak extension at ~54 % of the cycle and toe off at 60 %;
  Perry & Burnfield (2010, Gait Analysis 2nd ed., ch. 5 and 9) put the thigh's peak extension at the end of
  terminal stance (50 %, the other foot's contact) and have the thigh already advanced by ~10 deg at toe off
  (62 %). Modelled: per walker, the foot leaves the ground later than the thigh curve's toe-off landmark by a
  lag drawn uniformly between 0 (Winter) and 5 % of the cycle (Perry & Burnfield's timing), the same on both
  legs; the thigh curve's stance part is compressed and its swing part stretched accordingly
  (gait_model.leg_phase). Check: on the real slow walker the thigh's swing velocity peaks ~55 ms after optical
  toe off where the template has ~110 ms: a lag of ~4 % of its 1.43 s cycle, inside the range.
- **Lateral thigh strapping with soft-tissue motion** (``soft_tissue``): a sensor strapped on the lateral thigh
  sits on soft tissue that the heel strike sets ringing (a wobbling mass: Wakeling, Liphardt & Nigg 2003,
  J Biomech 36:1761, in walking; quadriceps soft-tissue natural frequencies ~10-20 Hz at low activation, rising
  with muscle force: Wakeling & Nigg 2001, J Appl Physiol 90:412). Modelled in simulator/soft_tissue.py. Check:
  the real lateral thighs ring at ~11 Hz with an 8-30 Hz gyroscope envelope of ~50 deg/s and accelerometer
  envelope ~5.6 m/s^2 peaking ~100 ms after contact (docs/thigh_events.md).
- **Turns** (``turn``): ``quick`` is the default model (heading over four full steps). ``stepwise``: a 180-degree
  turn of 1.8-2.8 s (instrumented timed-up-and-go turns of healthy older adults last ~2-2.5 s: Salarian et al.
  2010, IEEE Trans Neural Syst Rehabil Eng 18:303), made of shorter, slower steps with longer double support
  (step and spin turns: Hase & Stein 1999, J Neurophysiol 81:2914): the steps inside the turn last 10-30 %
  longer, their stance share is 2-5 points higher, the pivot step sweeps the thigh through 25-50 % of a full
  swing and the other turning steps 60-90 %, forward speed falls to 40 %. Check: the real NeuRA turn has one
  pivot step sweeping 12 deg (27 % of its 45-deg swings) and a pelvis yaw rate peaking at 201 deg/s (the model:
  120-190 deg/s; the real turn is quicker than the drawn range).
- **Shuffling starts** (``shuffling_start``): the first steps of a bout are short and slow before steady walking
  is reached (gait initiation reaches steady state within 1-3 steps: Breniere & Do 1986, J Biomech 19:1035;
  older adults and fallers start with shorter, more variable first steps: Mbourou, Lajoie & Teasdale 2003,
  Gerontology 49:21). Modelled: the first 2-3 steps of each bout start at 35-60 % of a full thigh swing, 20-40 %
  longer step time and stance share +5 points, growing linearly to a full step. Check: the real NeuRA walker's
  first swing sweeps 32 deg against 43-48 deg later (~70 %: an easy start, inside the drawn range's upper end).

Stresses (``STRESSES``): fault models for robustness tests, accepted by ``--walker`` but not walkers: each has
parts no published source puts in the normative range, said below part by part; the benches' every-walker figures
(``WALKERS``) leave them out.

- ``stress_loose_thigh_straps``: what made the thigh detector list a second contact per step on the real
  three-sensor trial (docs/thigh_events.md, "Duplicate contacts"), from a different mechanism than that trial's,
  since no source supports that one (below). Parts:
  - cited: a slow walker (0.8 m/s, the limited-community-ambulation mark: Studenski et al. 2011) with the thigh
    range of that speed, lateral thigh straps with soft-tissue wobble (above), and the toe-off lag at the top of
    its cited range (5 %: Perry & Burnfield's timing; ``toe_off_lag_min`` fixes it there);
  - stress: a loose strap (``loose_strap``, simulator/soft_tissue.py "Loose strap"): each heel strike knocks the
    sensor back about the thigh's flexion axis by 3-5 deg, and it springs forward again within ~0.1 s, crossing the
    thigh detector's 50 deg/s swing threshold over the stance's extension;
  - stress: a healthy adult's stance share (60 %) at 80 steps/min, so that the swing peak lies far enough before
    contact (median ~0.55 s) that the spring-back, ~70 ms after contact, lands more than the detector's 0.6 s after
    it. Normative figures put the stance share higher at a slow pace (61.4 % at 0.8 m/s by Kirtley et al. 1985, and
    more for older walkers: Winter et al. 1990), and the swing leg still retracts before contact at every walking
    speed (Poggensee, Sharbafi & Seyfarth 2014, CLAWAR), so a walker whose thigh flexes into contact with a stance
    share in the mid-50s, as the real trial's, has no source here.
  The stress's stance share leaves little double support at the bout's closing step: an imposed asymmetry beyond
  ~5 % is refused for some seeds (SimulationError naming ``--stance-asymmetry``).

Units: steps/min, m/s, % of the gait cycle, fractions of the cycle, s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sensor_gateway.errors import SimulationError

ADULT_SPEED_MPS = 1.25
"""The default walker's speed (m/s), where ``range_scale_for_speed`` is 1."""


def range_scale_for_speed(speed_mps: float) -> float:
    """Thigh sagittal range relative to the default walker's: a quarter of it scales with speed (see above)."""
    return 0.75 + 0.25 * speed_mps / ADULT_SPEED_MPS


def stance_pct_for_speed(speed_mps: float, older_points: float) -> float:
    """Stance share (%) from speed (Kirtley et al. 1985) plus the older walker's longer double support."""
    return round(64.2 - 3.5 * speed_mps + older_points, 1)


@dataclass(frozen=True)
class WalkerProfile:
    """One walker (see the module docstring for each field's source)."""

    name: str
    description: str
    cadence_steps_per_min: float = 105.0
    walking_speed_mps: float = 1.25
    stance_pct: float = 61.0
    stride_cv: float = 0.02
    stance_cv: float = 0.015
    thigh_range_scale: float = 1.0
    toe_off_lag_max: float = 0.0
    toe_off_lag_min: float = 0.0
    soft_tissue: bool = False
    turn: str = "quick"
    shuffling_start: bool = False
    loose_strap: bool = False

    def pace(self) -> dict[str, Any]:
        """The SessionConfig pace settings of this walker."""
        return {
            "cadence_steps_per_min": self.cadence_steps_per_min,
            "walking_speed_mps": self.walking_speed_mps,
            "stance_pct": self.stance_pct,
        }

    @property
    def is_default_model(self) -> bool:
        """True when nothing beyond the default model is switched on (the simulator's original output)."""
        return (
            self.stride_cv == 0.02
            and self.stance_cv == 0.015
            and self.thigh_range_scale == 1.0
            and self.toe_off_lag_max == 0.0
            and not self.soft_tissue
            and self.turn == "quick"
            and not self.shuffling_start
            and not self.loose_strap
        )


def _older(name: str, description: str, speed: float, cadence: float, older_points: float, cv: float, **parts: Any):
    return WalkerProfile(
        name=name,
        description=description,
        cadence_steps_per_min=cadence,
        walking_speed_mps=speed,
        stance_pct=stance_pct_for_speed(speed, older_points),
        stride_cv=cv,
        stance_cv=0.75 * cv,
        thigh_range_scale=round(range_scale_for_speed(speed), 3),
        toe_off_lag_max=0.05,
        **parts,
    )


WALKERS: dict[str, WalkerProfile] = {
    w.name: w
    for w in (
        WalkerProfile("adult", "healthy adult, sensors rigid on the segments (the default model)"),
        WalkerProfile(
            "adult_lateral_thighs", "healthy adult, thigh sensors strapped laterally on soft tissue", soft_tissue=True
        ),
        WalkerProfile("adult_stepwise_turns", "healthy adult turning in short, slow steps", turn="stepwise"),
        WalkerProfile(
            "adult_shuffling_starts", "healthy adult starting each bout with short steps", shuffling_start=True
        ),
        _older(
            "older_70s",
            "walker in their seventies (pace, variability, thigh range, toe-off lag)",
            1.2,
            105.0,
            1.5,
            0.025,
        ),
        _older(
            "older_80s",
            "walker in their eighties (pace, variability, thigh range, toe-off lag)",
            0.95,
            100.0,
            2.5,
            0.03,
        ),
        _older("frail", "frail walker at 0.6 m/s", 0.6, 84.0, 3.0, 0.04),
        _older(
            "older_80s_at_home",
            "walker in their eighties at home: lateral thigh straps, stepwise turns, shuffling starts",
            0.95,
            100.0,
            2.5,
            0.03,
            soft_tissue=True,
            turn="stepwise",
            shuffling_start=True,
        ),
        _older(
            "frail_at_home",
            "frail walker at home: lateral thigh straps, stepwise turns, shuffling starts",
            0.6,
            84.0,
            3.0,
            0.04,
            soft_tissue=True,
            turn="stepwise",
            shuffling_start=True,
        ),
    )
}
"""Every walker by name; ``adult`` is the default."""

STRESS_LOOSE_STRAP_STANCE_PCT = 60.0
"""Stance share (%) of the loose-strap stress: a healthy adult's at a comfortable pace (Perry & Burnfield 2010:
60-62 %) kept at a slow one, where the stance share formula gives 61.4 % and older walkers more (module docstring,
"Stresses")."""

STRESSES: dict[str, WalkerProfile] = {
    w.name: w
    for w in (
        WalkerProfile(
            "stress_loose_thigh_straps",
            "STRESS, not a walker: slow walker (80 steps/min) whose lateral thigh straps have come loose: each heel "
            "strike knocks the sensor back and it springs forward; short stance, toe off late against the thigh",
            cadence_steps_per_min=80.0,
            walking_speed_mps=0.8,
            stance_pct=STRESS_LOOSE_STRAP_STANCE_PCT,
            thigh_range_scale=round(range_scale_for_speed(0.8), 3),
            toe_off_lag_max=0.05,
            toe_off_lag_min=0.05,
            soft_tissue=True,
            loose_strap=True,
        ),
    )
}
"""Fault models for robustness tests, by name (module docstring, "Stresses"): accepted wherever a walker is, but
not walkers: no published source puts them in the normative range, and the benches' every-walker figures
(``WALKERS``) leave them out."""

PROFILES: dict[str, WalkerProfile] = {**WALKERS, **STRESSES}
"""Every walker and every stress by name: what ``--walker`` accepts."""


def walker_profile(name: str) -> WalkerProfile:
    """The named walker (or stress); SimulationError naming the setting for an unknown one."""
    try:
        return PROFILES[name]
    except KeyError:
        raise SimulationError(f"walker (--walker): must be one of {', '.join(PROFILES)}, got {name!r}") from None
