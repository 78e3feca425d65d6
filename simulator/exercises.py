"""The study's exercises and quiet standing as segment motions (Huang et al., Sci Rep 2024,
doi:10.1038/s41598-024-74348-x: the gluteal control programme).

Each generator returns an `ExerciseBlock` in a local frame (origin, facing +X): the pose over the block, the
repetition windows (s from the block start) and per-repetition model values that truth.py needs. A block rests
1.5 s in the exercise's posture before the first and after the last repetition; the markers span the block.

Postures (segment frames as in kinematics.py):

- standing: pelvis level (plus the standing obliquity), sacrum at 0.95 m, thighs vertical; postural sway
  +-3 mm and +-0.15 deg at 0.1-0.6 Hz (Winter 1995 order of magnitude).
- supine hook-lying (pelvic_tilt, single_leg_bridge): pelvis pitched 90 deg back (anterior axis up), sacrum
  0.10 m above the floor, hips flexed 50 deg.
- side-lying (clam): on the side opposite the working leg, hips flexed 45 deg.
- four-point kneeling (quadruped_leg_raise): pelvis pitched 90 deg forward, sacrum 0.70 m up, thighs vertical.

Movements per repetition (deg, m, s): ramps in and out are C2-smooth (kinematics.smootherstep).

- single_leg_stance (side = stance leg): pelvis shifts 6 cm over the stance foot, the other thigh flexes
  45 deg; during the hold the rocker board sways the pelvis +-1.2 deg in the frontal plane (0.3-0.8 Hz) about a
  mean contralateral drop of 0.35 x the walking drop knob of the stance side (weak abductors show in both).
- single_leg_bridge (side = supporting leg): pelvis lifts 0.15 m and extends 25 deg, hips from 50 to 10 deg
  flexion, the free thigh stays raised at 20 deg; the free side's hemipelvis drops by 0.5 x the drop knob of
  the supporting side, with +-0.8 deg sway.
- clam (side = top, working leg): the top knee opens 35 deg (hip abduction / external rotation, +-4 deg rep
  to rep); the pelvis rolls back by 15 % of the opening.
- lunge (side = front leg): step 0.35 m forward, descend 0.30 m (front thigh to 80 deg flexion, back thigh
  to -20 deg), rise, step back; front thigh internal rotation peaking at 5 +- 2 deg at the bottom; the
  opposite hemipelvis drops 0.3 x the walking knob of the front leg at the bottom.
- pelvic_tilt (side none): 10 deg posterior tilt held; obliquity off level by a per-hold offset (SD 0.6 deg)
  plus +-0.3 deg sway.
- quadruped_leg_raise (side = raised leg): the raised thigh extends 80 deg back to near horizontal; the
  hemipelvis opposite the raised leg drops 1.5 +- 0.5 deg.

Variety within a set (drawn per set from the exercises random stream, `schedule`), like a real patient:

- tempo: each repetition's move in and move out take the nominal time (REP_TIMING_S) x a factor drawn in
  TEMPO_FACTOR (0.75-1.4);
- holds: each hold lasts the prescribed time x (1 +- HOLD_VARIATION) (uniform, +-10 %);
- rests between repetitions: the nominal rest x a factor in REST_FACTOR (0.6-2.0), and with probability
  LONG_REST_P (0.15) a longer pause of LONG_REST_S (3-8 s) more;
- amplitude: a complete repetition moves COMPLETE_AMPLITUDE (0.9-1.1) x the exercise's full movement;
- partial repetitions: 0, 1 or 2 a set (probabilities PARTIALS_P), inserted at random places among the
  complete ones: the movement starts and is abandoned at PARTIAL_AMPLITUDE (0.15-0.35) x the full movement,
  with no hold. **Definition (shared with truth.py and analytics.algorithms.exercise_reps): a repetition is
  partial, and a therapist would not count it, when its movement amplitude is below 50 % of the set's typical
  amplitude (the median amplitude of the set's repetitions that reach at least half of its largest one).**
  The drawn ranges keep every repetition far from that 50 % boundary (partial <= 0.35 / 0.9 = 39 %,
  complete >= 0.9 / 1.1 = 82 % of typical), so the count is unambiguous by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from .config import SessionConfig
from .kinematics import SIDE_SIGN, Pose, ramp, standing_pose, sway, with_obliquity

LEAD_S = 1.5
STEP_SHARE = 0.45
"""Lunge: share of the move in (and out) spent stepping forward (back); the rest is the descent (rise)."""


def about(axis: str, angles_rad: np.ndarray) -> Rotation:
    """Rotations about one segment axis ("X", "Y" or "Z") by an array of angles (rad)."""
    return Rotation.from_euler(axis, np.asarray(angles_rad, dtype=float).reshape(-1, 1))


@dataclass(frozen=True)
class Repetition:
    start_s: float
    end_s: float
    hold: tuple[float, float] | None
    """Hold window (s from block start), None for exercises without a hold and for partial repetitions."""
    move_in_s: float = 0.0
    move_out_s: float = 0.0
    amplitude: float = 1.0
    """Share of the exercise's full movement reached (1 = the nominal movement)."""
    complete: bool = True
    """False for a partial repetition (see the module docstring): not counted, no hold."""


@dataclass
class ExerciseBlock:
    exercise: str
    side: str
    pose: Pose
    duration_s: float
    reps: list[Repetition]
    model: dict[str, list[float]] = field(default_factory=dict)
    """Per-repetition model values truth reports as they are (e.g. lunge thigh internal rotation, deg)."""


@dataclass(frozen=True)
class RepTiming:
    move_in_s: float
    hold_s: float
    move_out_s: float
    rest_s: float


REP_TIMING_S = {
    "pelvic_tilt": (2.0, 2.0, 1.0),
    "single_leg_bridge": (1.5, 1.5, 2.0),
    "clam": (1.5, 1.5, 1.0),
    "quadruped_leg_raise": (1.5, 1.5, 1.0),
    "single_leg_stance": (1.2, 1.2, 2.0),
    "lunge": (2.2, 2.2, 1.1),
}
"""Per exercise: move in, move out, rest between repetitions (s); the hold comes from the script."""


def timing_of(exercise: str, hold_s: float) -> RepTiming:
    move_in, move_out, rest = REP_TIMING_S[exercise]
    return RepTiming(move_in, hold_s, move_out, rest)


TEMPO_FACTOR = (0.75, 1.4)
"""Range of the factor on each repetition's move-in and move-out times."""
HOLD_VARIATION = 0.1
"""Holds last the prescribed time x (1 +- this), uniform."""
REST_FACTOR = (0.6, 2.0)
"""Range of the factor on the nominal rest between repetitions."""
LONG_REST_P = 0.15
LONG_REST_S = (3.0, 8.0)
"""Probability of a longer pause between repetitions, and how much longer (s)."""
COMPLETE_AMPLITUDE = (0.9, 1.1)
PARTIAL_AMPLITUDE = (0.15, 0.35)
"""Movement amplitude (share of the full movement) of complete and partial repetitions."""
PARTIALS_P = (0.4, 0.4, 0.2)
"""Probabilities of 0, 1 and 2 partial repetitions in a set."""


def block_duration_s(exercise: str, reps: int, hold_s: float) -> float:
    """Nominal block duration (s): nominal tempo and rests, no partial repetitions (for session planning)."""
    return schedule(timing_of(exercise, hold_s), reps)[0]


def schedule(timing: RepTiming, reps: int, rng: np.random.Generator | None = None) -> tuple[float, list[Repetition]]:
    """Repetition windows of a block (s from its start) and its duration (s).

    Without ``rng``: the nominal schedule (every repetition complete, nominal tempo and rests). With it:
    the set's variety (module docstring): tempo, hold and rest variation, amplitudes and partial repetitions.
    """
    kinds = [True] * reps
    if rng is not None:
        for _ in range(int(rng.choice(len(PARTIALS_P), p=PARTIALS_P))):
            kinds.insert(int(rng.integers(0, len(kinds) + 1)), False)
    out, t = [], LEAD_S
    for complete in kinds:
        move_in, move_out, rest, hold_s = timing.move_in_s, timing.move_out_s, timing.rest_s, timing.hold_s
        amplitude = 1.0
        if rng is not None:
            tempo = float(rng.uniform(*TEMPO_FACTOR))
            move_in, move_out = move_in * tempo, move_out * tempo
            rest = rest * float(rng.uniform(*REST_FACTOR))
            if rng.random() < LONG_REST_P:
                rest += float(rng.uniform(*LONG_REST_S))
            hold_s = hold_s * float(rng.uniform(1.0 - HOLD_VARIATION, 1.0 + HOLD_VARIATION))
            amplitude = float(rng.uniform(*(COMPLETE_AMPLITUDE if complete else PARTIAL_AMPLITUDE)))
        if not complete:
            hold_s = 0.0
        hold = (t + move_in, t + move_in + hold_s) if hold_s > 0 else None
        end = t + move_in + hold_s + move_out
        out.append(Repetition(t, end, hold, move_in, move_out, amplitude, complete))
        t = end + rest
    last_rest = t - out[-1].end_s if out else 0.0
    return t - last_rest + LEAD_S, out


def _activation(t: np.ndarray, reps: list[Repetition]) -> np.ndarray:
    """0 at rest, the repetition's amplitude in the held position, C2 ramps in between (one bump per rep)."""
    a = np.zeros_like(t)
    for rep in reps:
        bump = ramp(t, rep.start_s, rep.start_s + rep.move_in_s) - ramp(t, rep.end_s - rep.move_out_s, rep.end_s)
        a += rep.amplitude * bump
    return a


def _per_rep(t: np.ndarray, reps: list[Repetition], values: np.ndarray) -> np.ndarray:
    """A per-repetition value spread over each repetition's span (and the rest after it)."""
    idx = np.searchsorted([r.start_s for r in reps], t, side="right") - 1
    return values[np.clip(idx, 0, len(reps) - 1)]


def _time(duration_s: float, rate_hz: float) -> np.ndarray:
    return np.arange(round(duration_s * rate_hz)) / rate_hz


@dataclass(frozen=True)
class _Set:
    """One drawn set of an exercise: its repetition windows, the block's duration and sample times (s)."""

    duration_s: float
    windows: list[Repetition]
    t: np.ndarray

    def activation(self) -> np.ndarray:
        return _activation(self.t, self.windows)

    def per_rep(self, values: np.ndarray) -> np.ndarray:
        return _per_rep(self.t, self.windows, values)

    def drop(self, cfg: SessionConfig, side: str, share: float, rng: np.random.Generator) -> np.ndarray:
        """Per-repetition contralateral drop: ``share`` x the walking drop knob of ``side``, +-15 % rep to rep."""
        knob = cfg.pelvic_drop_left_deg if side == "left" else cfg.pelvic_drop_right_deg
        return self.per_rep(share * knob * (1.0 + 0.15 * rng.standard_normal(len(self.windows))))


def _draw_set(exercise: str, reps: int, hold_s: float, rng: np.random.Generator, rate_hz: float) -> _Set:
    """The set's variety drawn from ``rng`` (``schedule``), sampled at ``rate_hz``."""
    duration, windows = schedule(timing_of(exercise, hold_s), reps, rng)
    return _Set(duration, windows, _time(duration, rate_hz))


def _other(side: str) -> str:
    return "right" if side == "left" else "left"


def stand(cfg: SessionConfig, rng: np.random.Generator, rate_hz: float, duration_s: float) -> ExerciseBlock:
    t = _time(duration_s, rate_hz)
    pose = standing_pose(t.size, 0.0)
    _upright(pose, cfg, rng, t, np.zeros_like(t), np.zeros_like(t))
    return ExerciseBlock("stand", "none", pose, duration_s, [])


def _upright(
    pose: Pose, cfg: SessionConfig, rng: np.random.Generator, t: np.ndarray, obliquity: np.ndarray, lateral: np.ndarray
) -> None:
    """Standing pelvis with postural sway, the standing obliquity and an extra obliquity/lateral shift."""
    taper = _taper(t)
    yaw = np.radians(taper * sway(t, rng, 0.2, 0.1, 0.5))
    tilt = np.radians(taper * sway(t, rng, 0.15, 0.1, 0.5))
    base = Rotation.from_euler("ZY", np.column_stack([yaw, tilt]))
    total = cfg.standing_obliquity_deg + obliquity + taper * sway(t, rng, 0.15, 0.1, 0.6)
    pose.pelvis = with_obliquity(base, total)
    pose.pelvis_position_m = pose.pelvis_position_m.copy()
    pose.pelvis_position_m[:, 0] += taper * sway(t, rng, 0.003, 0.1, 0.6)
    pose.pelvis_position_m[:, 1] += taper * sway(t, rng, 0.002, 0.1, 0.6) + lateral


def _taper(t: np.ndarray) -> np.ndarray:
    """Fade sway in and out over 0.5 s so that blocks join at rest (C2)."""
    return ramp(t, 0.0, 0.5) * (1.0 - ramp(t, t[-1] - 0.5, t[-1]))


def single_leg_stance(
    cfg: SessionConfig, rng: np.random.Generator, rate_hz: float, side: str, reps: int, hold_s: float
) -> ExerciseBlock:
    block = _draw_set("single_leg_stance", reps, hold_s, rng, rate_hz)
    t, a = block.t, block.activation()
    s = SIDE_SIGN[side]
    drop = block.drop(cfg, side, 0.35, rng)
    board = sway(t, rng, 1.2, 0.3, 0.8)
    pose = standing_pose(t.size)
    _upright(pose, cfg, rng, t, s * a * (drop + board), s * 0.06 * a + a * sway(t, rng, 0.01, 0.3, 0.8))
    other = _other(side)
    pose.thigh[other] = about("Y", -np.radians(45.0 * a))
    return ExerciseBlock("single_leg_stance", side, pose, block.duration_s, block.windows)


def lunge(cfg: SessionConfig, rng: np.random.Generator, rate_hz: float, side: str, reps: int) -> ExerciseBlock:
    block = _draw_set("lunge", reps, 0.0, rng, rate_hz)
    t, windows = block.t, block.windows
    step = np.zeros_like(t)
    depth = np.zeros_like(t)
    for r in windows:  # the step takes the first 45 % of the move in and the last 45 % of the move out
        s_in, s_out = r.start_s + STEP_SHARE * r.move_in_s, r.end_s - STEP_SHARE * r.move_out_s
        step += r.amplitude * (ramp(t, r.start_s, s_in) - ramp(t, s_out, r.end_s))
        depth += r.amplitude * (ramp(t, s_in, r.start_s + r.move_in_s) - ramp(t, r.end_s - r.move_out_s, s_out))
    s = SIDE_SIGN[side]
    rot_peaks = 5.0 + 2.0 * rng.standard_normal(len(windows))
    rotation = depth * block.per_rep(rot_peaks)
    drop = depth * block.drop(cfg, side, 0.3, rng)
    pose = standing_pose(t.size)
    _upright(pose, cfg, rng, t, s * drop, np.zeros_like(t))
    pose.pelvis = about("Y", np.radians(5.0 * depth)) * pose.pelvis  # slight forward lean
    pose.pelvis_position_m[:, 0] += 0.35 * step
    pose.pelvis_position_m[:, 2] -= 0.30 * depth
    other = _other(side)
    pose.thigh[side] = Rotation.from_euler(
        "YZ", np.column_stack([-np.radians(20.0 * step + 60.0 * depth), -s * np.radians(rotation)])
    )
    pose.thigh[other] = about("Y", np.radians(10.0 * step + 10.0 * depth))
    complete_peaks = [float(p) for p, r in zip(rot_peaks, windows, strict=True) if r.complete]
    return ExerciseBlock(
        "lunge", side, pose, block.duration_s, windows, {"thigh_internal_rotation_deg": complete_peaks}
    )


def clam(
    cfg: SessionConfig, rng: np.random.Generator, rate_hz: float, side: str, reps: int, hold_s: float
) -> ExerciseBlock:
    block = _draw_set("clam", reps, hold_s, rng, rate_hz)
    t, a = block.t, block.activation()
    s = SIDE_SIGN[side]
    opening = a * block.per_rep(35.0 + 4.0 * rng.standard_normal(len(block.windows)))
    rollback = 0.15 * opening
    lying = Rotation.from_euler("X", s * 90.0, degrees=True)
    pelvis = lying * about("Z", s * np.radians(rollback + _taper(t) * sway(t, rng, 0.2, 0.1, 0.4)))
    flexed = Rotation.from_euler("Y", -45.0, degrees=True)
    other = _other(side)
    pose = Pose(
        pelvis=pelvis,
        pelvis_position_m=np.tile([0.0, 0.0, 0.15], (t.size, 1)),
        thigh={
            side: pelvis * about("X", s * np.radians(opening)) * flexed,
            other: (lying * flexed) * Rotation.identity(t.size),
        },
    )
    return ExerciseBlock("clam", side, pose, block.duration_s, block.windows)


def _supine(t: np.ndarray, extension_deg: np.ndarray, lift_m: np.ndarray) -> tuple[Rotation, np.ndarray]:
    pelvis = about("Y", -np.radians(90.0 + extension_deg))
    position = np.zeros((t.size, 3))
    position[:, 2] = 0.10 + lift_m
    return pelvis, position


def single_leg_bridge(
    cfg: SessionConfig, rng: np.random.Generator, rate_hz: float, side: str, reps: int, hold_s: float
) -> ExerciseBlock:
    block = _draw_set("single_leg_bridge", reps, hold_s, rng, rate_hz)
    t, a = block.t, block.activation()
    s = SIDE_SIGN[side]
    drop = block.drop(cfg, side, 0.5, rng)
    base, position = _supine(t, 25.0 * a, 0.15 * a)
    pelvis = with_obliquity(base, s * a * (drop + sway(t, rng, 0.8, 0.2, 0.7)))
    other = _other(side)
    pose = Pose(
        pelvis=pelvis,
        pelvis_position_m=position,
        thigh={
            side: pelvis * about("Y", -np.radians(50.0 - 40.0 * a)),
            other: pelvis * about("Y", -np.radians(50.0 - 30.0 * a)),
        },
    )
    return ExerciseBlock("single_leg_bridge", side, pose, block.duration_s, block.windows)


def pelvic_tilt(
    cfg: SessionConfig, rng: np.random.Generator, rate_hz: float, reps: int, hold_s: float
) -> ExerciseBlock:
    block = _draw_set("pelvic_tilt", reps, hold_s, rng, rate_hz)
    t, a = block.t, block.activation()
    base, position = _supine(t, -10.0 * a, np.zeros_like(t))
    offset = block.per_rep(0.6 * rng.standard_normal(len(block.windows)))
    pelvis = with_obliquity(base, a * (offset + sway(t, rng, 0.3, 0.2, 0.7)))
    knees_bent = Rotation.from_euler("Y", -140.0, degrees=True) * Rotation.identity(t.size)
    pose = Pose(pelvis=pelvis, pelvis_position_m=position, thigh={"left": knees_bent, "right": knees_bent})
    return ExerciseBlock("pelvic_tilt", "none", pose, block.duration_s, block.windows)


def quadruped_leg_raise(
    cfg: SessionConfig, rng: np.random.Generator, rate_hz: float, side: str, reps: int, hold_s: float
) -> ExerciseBlock:
    block = _draw_set("quadruped_leg_raise", reps, hold_s, rng, rate_hz)
    t, a = block.t, block.activation()
    s = SIDE_SIGN[side]
    drop = block.per_rep(1.5 + 0.5 * rng.standard_normal(len(block.windows)))
    base = Rotation.from_euler("Y", 90.0, degrees=True) * Rotation.identity(t.size)
    pelvis = with_obliquity(base, s * a * (drop + sway(t, rng, 0.4, 0.2, 0.7)))
    other = _other(side)
    pose = Pose(
        pelvis=pelvis,
        pelvis_position_m=np.tile([0.0, 0.0, 0.70], (t.size, 1)),
        thigh={side: about("Y", np.radians(80.0 * a)), other: Rotation.identity(t.size)},
    )
    return ExerciseBlock("quadruped_leg_raise", side, pose, block.duration_s, block.windows)
