"""The versioned activity vocabulary: exercise ids, sides and placements (gaitsym.exercises/1).

These ids travel in markers, become result fields and storage tags, and are dashboard variables, so they
are frozen per version in `exercises-v1.json` beside this module. `side` follows one rule everywhere: the
leg that does the work (the stance leg in gait; see each exercise's `side_means`); "none" for bilateral.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from firmware_protocol.sensor_info import PLACEMENTS
from gaitsym_common.errors import VocabularyError

__all__ = [
    "EXERCISES",
    "EXERCISE_IDS",
    "GAIT_SIDES",
    "MAX_SET",
    "PLACEMENTS",
    "SIDES",
    "VOCABULARY_VERSION",
    "Exercise",
    "Placement",
    "Side",
    "check_activity",
]

VOCABULARY_VERSION = "gaitsym.exercises/1"

Side = Literal["left", "right", "none"]
Placement = Literal["pelvis", "left_thigh", "right_thigh"]
"""For type checkers: the values of `PLACEMENTS` (firmware_protocol's, re-exported here)."""

SIDES: tuple[str, ...] = ("left", "right", "none")
GAIT_SIDES: tuple[str, ...] = ("left", "right")


@dataclass(frozen=True)
class Exercise:
    id: str
    label: str
    sided: bool
    side_means: str | None
    kind: Literal["hold", "repetitions", "gait"]
    study: str


def _load() -> dict[str, Exercise]:
    raw = json.loads(resources.files(__package__).joinpath("exercises-v1.json").read_text("utf-8"))
    if raw["vocabulary"] != VOCABULARY_VERSION:
        raise RuntimeError(f"exercises-v1.json declares {raw['vocabulary']!r}, expected {VOCABULARY_VERSION!r}")
    return {e["id"]: Exercise(**e) for e in raw["exercises"]}


EXERCISES: dict[str, Exercise] = _load()
EXERCISE_IDS: tuple[str, ...] = tuple(EXERCISES)
MAX_SET = 1000
"""Highest set number of one exercise and side in a session (20 sets of 20 repetitions is a long session)."""


def check_activity(exercise: str, side: str, set_number: int | None = None) -> None:
    """Raise VocabularyError naming the field when (exercise, side, set) is not in the vocabulary."""
    if exercise not in EXERCISES:
        raise VocabularyError("exercise", f"{exercise!r} is not one of {', '.join(EXERCISE_IDS)}")
    if side not in SIDES:
        raise VocabularyError("side", f"{side!r} is not one of {', '.join(SIDES)}")
    if EXERCISES[exercise].sided and side == "none":
        raise VocabularyError("side", f"exercise {exercise!r} is done per side: side must be 'left' or 'right'")
    if not EXERCISES[exercise].sided and side != "none":
        raise VocabularyError("side", f"exercise {exercise!r} is bilateral: side must be 'none', not {side!r}")
    if set_number is not None and (isinstance(set_number, bool) or not 1 <= set_number <= MAX_SET):
        shown = set_number if len(str(set_number)) <= 20 else f"{str(set_number)[:20]}..."
        raise VocabularyError("set", f"{shown} must be a whole number from 1 to {MAX_SET}")
