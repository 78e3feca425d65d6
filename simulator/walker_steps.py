"""The steps a walker beyond the default adult changes in a bout (simulator.walkers has the sources): a shuffling
start, a stepwise turn, and the walker's lag of toe off behind the thigh curve. gait_model.plan_bout applies them.

Units: fractions of a step's duration or of the gait cycle, ranges of the thigh swing relative to a full one, s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensor_gateway.errors import SimulationError

from .config import SessionConfig
from .walkers import WalkerProfile, walker_profile


@dataclass
class WalkerSteps:
    """What a walker changes in a bout's steps (gait_model.plan_bout); the defaults change nothing."""

    first_swing_factor: float = 1.0
    stance_add: np.ndarray | None = None
    thigh_scale: np.ndarray | None = None
    turn_steps: tuple[int, int] | None = None


SHUFFLE_STEPS = (2, 3)
"""How many steps a shuffling start takes to reach a full step (simulator.walkers)."""
SHUFFLE_FIRST_RANGE = (0.35, 0.60)
"""The first step's thigh swing relative to a full one."""
SHUFFLE_FIRST_TIME = (1.2, 1.4)
"""The first step's duration relative to a steady one."""
SHUFFLE_STANCE_ADD = 0.05
"""Extra stance share of the first step (fraction of the cycle), fading to 0 over the shuffling steps."""
TURN_DURATION_S = (1.8, 2.8)
"""Duration of a stepwise 180-degree turn (s)."""
TURN_STEP_TIME = (1.1, 1.3)
TURN_STANCE_ADD = (0.02, 0.05)
TURN_PIVOT_RANGE = (0.25, 0.50)
TURN_STEP_RANGE = (0.60, 0.90)


def walker_steps(
    profile: WalkerProfile, rng: np.random.Generator | None, n_steps: int, steps: np.ndarray, step_s: float
) -> WalkerSteps:
    """Shuffling start and stepwise turn of one bout (simulator.walkers); modifies ``steps`` (s) in place."""
    out = WalkerSteps()
    if not (profile.shuffling_start or profile.turn == "stepwise"):
        return out
    if rng is None:
        raise SimulationError(f"walker {profile.name!r} needs its random stream (walker_rng)")
    stance_add = np.zeros(n_steps)
    scale = np.ones(n_steps)
    if profile.shuffling_start:
        # step i lands at initial contact i; steps[i - 1] is the time from contact i - 1 to contact i
        count = int(rng.integers(SHUFFLE_STEPS[0], SHUFFLE_STEPS[1] + 1))
        first_range = rng.uniform(*SHUFFLE_FIRST_RANGE)
        first_time = rng.uniform(*SHUFFLE_FIRST_TIME)
        for i in range(count):
            grown = i / count
            scale[i] = first_range + (1.0 - first_range) * grown
            stance_add[i] = SHUFFLE_STANCE_ADD * (1.0 - grown)
            if i == 0:
                out.first_swing_factor = first_time
            else:
                steps[i - 1] *= first_time + (1.0 - first_time) * grown
    if profile.turn == "stepwise" and n_steps >= 16:
        duration = rng.uniform(*TURN_DURATION_S)
        slower = rng.uniform(*TURN_STEP_TIME)
        count = max(3, round(duration / (step_s * slower)))  # turning steps
        first = n_steps // 2 - count // 2  # the contact the turn starts from
        landing = np.arange(first + 1, first + count + 1)  # the turning steps land at these contacts
        steps[landing - 1] *= slower
        stance_add[first : first + count + 1] += rng.uniform(*TURN_STANCE_ADD)
        scale[landing] = rng.uniform(*TURN_STEP_RANGE, landing.size)
        scale[landing[landing.size // 2]] = rng.uniform(*TURN_PIVOT_RANGE)
        out.turn_steps = (int(first), int(first + count))
    out.stance_add = stance_add
    out.thigh_scale = scale
    return out


def toe_off_lag_fraction(cfg: SessionConfig) -> float:
    """This walker's lag of toe off behind the thigh curve's toe-off landmark (fraction of the cycle; 0 for the
    default model): drawn once per walker from the seed alone, uniform in toe_off_lag_min..toe_off_lag_max
    (simulator.walkers)."""
    profile = walker_profile(cfg.walker)
    top, low = profile.toe_off_lag_max, profile.toe_off_lag_min
    if top == 0.0:
        return 0.0
    drawn = np.random.default_rng(np.random.SeedSequence([cfg.seed, TOE_OFF_LAG_STREAM])).uniform()
    return float(top * drawn) if low == 0.0 else float(low + (top - low) * drawn)


TOE_OFF_LAG_STREAM = 0x70E0FF
"""Entropy added to the seed for the walker's toe-off lag (its own stream: nothing else moves with it)."""
