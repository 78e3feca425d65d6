"""Session scripts: which activities a simulated session strings together, in what order, for how long.

`home` (default, 15 min): like a real home session of the study's programme (Huang et al. 2024): stand 10 s
(the calibration every angle is relative to), walk, supine posterior pelvic tilt (5 x 5 s holds), single-leg
bridge per side (5 x 10 s), clam per side (5 x 10 s), four-point kneeling leg raise per side (5 x 5 s),
single-leg stance on the rocker board per side (3 x 10 s), lunges per side (5), walk again, stand. The study
prescribes 20 holds a set; the script does 3-5 so that a default session stays short. Whatever time the
exercises and transitions leave of `minutes` goes to the two walks (half each, at least 1 min in all).

`walk` (default 1.5 min): stand 10 s, walk, stand 5 s.

A walk is several bouts of 24-40 steps with a 180 deg turn in the middle (a home corridor is short), separated
by 3-5 s of standing. Transitions between postures take 5 s (1 s within one posture).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from sensor_gateway.errors import SimulationError

from .config import SessionConfig
from .exercises import block_duration_s

TRANSITION_S = {True: 1.0, False: 5.0}
"""Transition time between two activities, s, by whether they share a posture."""
CALIBRATION_STAND_S = 10.0
FINAL_STAND_S = 5.0
MIN_WALK_S = 60.0

POSTURE = {
    "stand": "upright",
    "walk": "upright",
    "single_leg_stance": "upright",
    "lunge": "upright",
    "pelvic_tilt": "supine",
    "single_leg_bridge": "supine",
    "clam": "side",
    "quadruped_leg_raise": "kneeling",
}


@dataclass(frozen=True)
class Activity:
    exercise: str
    side: str = "none"
    reps: int = 0
    hold_s: float = 0.0
    duration_s: float = 0.0
    """For stand and walk: how long (s)."""
    marked: bool = True
    """Whether the activity gets start/end markers (and a truth exercise entry)."""


HOME_EXERCISES: tuple[Activity, ...] = (
    Activity("pelvic_tilt", "none", 5, 5.0),
    Activity("single_leg_bridge", "left", 5, 10.0),
    Activity("single_leg_bridge", "right", 5, 10.0),
    Activity("clam", "left", 5, 10.0),
    Activity("clam", "right", 5, 10.0),
    Activity("quadruped_leg_raise", "left", 5, 5.0),
    Activity("quadruped_leg_raise", "right", 5, 5.0),
    Activity("single_leg_stance", "left", 3, 10.0),
    Activity("single_leg_stance", "right", 3, 10.0),
    Activity("lunge", "left", 5, 0.0),
    Activity("lunge", "right", 5, 0.0),
)


def exercise_duration_s(activity: Activity) -> float:
    return block_duration_s(activity.exercise, activity.reps, activity.hold_s)


def transition_s(a: Activity, b: Activity) -> float:
    return TRANSITION_S[POSTURE[a.exercise] == POSTURE[b.exercise] and a.exercise != "clam"]


def build_script(cfg: SessionConfig) -> list[Activity]:
    """The activities of the session, with the walking time chosen so the session lasts about `minutes`."""
    total_s = cfg.session_minutes * 60.0
    if cfg.script == "walk":
        fixed = [
            Activity("stand", duration_s=CALIBRATION_STAND_S),
            Activity("stand", duration_s=FINAL_STAND_S, marked=False),
        ]
        walk_s = total_s - CALIBRATION_STAND_S - FINAL_STAND_S - 2 * TRANSITION_S[True]
        if walk_s < 20.0:
            raise SimulationError(
                f"minutes (--minutes): the walk script needs at least {(total_s - walk_s + 20.0) / 60.0:.2f} min"
            )
        return [fixed[0], Activity("walk", duration_s=walk_s), fixed[1]]
    items = [
        Activity("stand", duration_s=CALIBRATION_STAND_S),
        Activity("walk", duration_s=0.0),
        *HOME_EXERCISES,
        Activity("walk", duration_s=0.0),
        Activity("stand", duration_s=FINAL_STAND_S, marked=False),
    ]
    fixed_s = sum(exercise_duration_s(a) for a in HOME_EXERCISES) + CALIBRATION_STAND_S + FINAL_STAND_S
    fixed_s += sum(transition_s(a, b) for a, b in itertools.pairwise(items))
    walk_s = total_s - fixed_s
    if walk_s < MIN_WALK_S:
        raise SimulationError(
            f"minutes (--minutes): the home script needs at least {(fixed_s + MIN_WALK_S) / 60.0:.1f} min "
            f"(exercises take {fixed_s / 60.0:.1f} min and walking at least 1 min); "
            "use --script walk for a shorter recording"
        )
    return [
        Activity(a.exercise, a.side, a.reps, a.hold_s, walk_s / 2.0, a.marked) if a.exercise == "walk" else a
        for a in items
    ]


def plan_walk(walk_s: float, cadence_steps_per_min: float, rng: np.random.Generator) -> list[tuple[int, float]]:
    """Bouts of a walk as (steps, standing pause before the next bout in s), filling about walk_s."""
    step_s = 60.0 / cadence_steps_per_min
    bouts: list[tuple[int, float]] = []
    left = walk_s
    while True:
        n = int(rng.integers(24, 41))
        estimate = n * step_s + 1.0
        pause = float(rng.uniform(3.0, 5.0))
        if left - estimate - pause < 15.0:
            n = int((left - 1.0) / step_s)
            if n >= 10:
                bouts.append((n, 0.0))
            elif bouts:
                bouts[-1] = (bouts[-1][0], 0.0)
            break
        bouts.append((n, pause))
        left -= estimate + pause
    if not bouts:
        raise SimulationError("minutes (--minutes): too short for one walking bout of 10 steps")
    return bouts
