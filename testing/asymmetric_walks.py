"""Simulated walks with a drawn asymmetry, for the accuracy benches: the same draws in every bench, so that their
figures compare.

Per seed tried, the stance asymmetry is drawn uniformly in [-10, 10] % and each side's pelvic drop in [0, 8] deg
from one generator (``rng_seed``); a drawn asymmetry the gait model cannot make (`SimulationError`) is skipped,
its draws spent, and the next seed tried, until ``count`` walks are made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from sensor_gateway.errors import SimulationError
from simulator.session import SimulatedSession, simulate_session


@dataclass(frozen=True)
class AsymmetricWalk:
    seed: int
    stance_asymmetry_pct: float
    pelvic_drop_left_deg: float
    pelvic_drop_right_deg: float
    session: SimulatedSession


def asymmetric_walks(
    count: int,
    minutes: float,
    *,
    first_seed: int = 1,
    rng_seed: int = 0,
    on_refused: Callable[[int, SimulationError], None] | None = None,
    **settings: Any,
) -> Iterator[AsymmetricWalk]:
    """``count`` walks (the walk script, ``minutes`` long, ``settings`` passed to `simulate_session`), seeds from
    ``first_seed`` on; ``on_refused(seed, error)`` hears of each seed skipped."""
    rng = np.random.default_rng(rng_seed)
    done, seed = 0, first_seed - 1
    while done < count:
        seed += 1
        si = float(rng.uniform(-10, 10))
        dl, dr = (float(x) for x in rng.uniform(0, 8, 2))
        try:
            session = simulate_session(
                seed=seed,
                script="walk",
                minutes=minutes,
                stance_asymmetry_pct=si,
                pelvic_drop_left_deg=dl,
                pelvic_drop_right_deg=dr,
                **settings,
            )
        except SimulationError as exc:
            if on_refused is not None:
                on_refused(seed, exc)
            continue
        done += 1
        yield AsymmetricWalk(seed, si, dl, dr, session)
