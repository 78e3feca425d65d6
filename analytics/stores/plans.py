"""A subject's exercise plan: how many sets of an exercise, per side, the clinic asks for each week.

Stored as the additive measurement ``exercise_plan`` (results retention, kept), tags ``subject``, ``exercise``,
``side``, fields ``sets_per_week`` (int), ``reps_per_set`` (int, optional), ``cleared`` (bool), timestamp = when the
plan was set. Setting a plan writes a new point, so the history of plans stays; clearing writes a point with
``sets_per_week`` 0 and ``cleared`` true. The plan in force for an (exercise, side) is its latest point: dashboards
read it with ``ORDER BY time DESC LIMIT 1`` per series (never ``LAST()`` per field, which would pair this plan's sets
with an older plan's repetitions). Without a plan, adherence shows counts only (SCHEMA.md).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from analytics.stores.errors import StoreError
from analytics.stores.points import FieldValue, Point
from analytics.stores.results_model import NOT_EXERCISE_SETS
from gaitsym_common.errors import VocabularyError
from gaitsym_common.uplink.vocabulary import EXERCISES, check_activity

EXERCISE_PLAN = "exercise_plan"
PLAN_TAGS = ("exercise", "side", "subject")
NOT_PLANNED = NOT_EXERCISE_SETS
"""Calibration and walking are measured in every session, not prescribed as sets."""
PLANNED_EXERCISES = tuple(e for e in EXERCISES if e not in NOT_PLANNED)
MAX_SETS_PER_WEEK = 100
MAX_REPS_PER_SET = 1000
_ID_FORBIDDEN = " ,=\"'\\\n"


class InvalidPlan(StoreError):
    """A plan's subject, exercise, side or numbers are not acceptable (names the field)."""


@dataclass(frozen=True)
class ExercisePlan:
    """One plan point. ``sets_per_week`` 0 with ``cleared``: no plan in force from ``time_us`` on."""

    subject: str
    exercise: str
    side: str
    sets_per_week: int
    reps_per_set: int | None
    time_us: int
    cleared: bool = False

    def point(self) -> Point:
        fields: dict[str, FieldValue] = {"sets_per_week": int(self.sets_per_week), "cleared": bool(self.cleared)}
        if self.reps_per_set is not None:
            fields["reps_per_set"] = int(self.reps_per_set)
        tags = (("exercise", self.exercise), ("side", self.side), ("subject", self.subject))
        return Point(EXERCISE_PLAN, tags, fields, int(self.time_us))


def _whole(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidPlan(f"{name}: {value!r} must be a whole number from {low} to {high}")
    return value


def check_subject(subject: str) -> str:
    if not subject or len(subject) > 128 or any(c in subject for c in _ID_FORBIDDEN):
        raise InvalidPlan(f"subject: {subject!r} is empty, longer than 128 characters or holds a space, comma or quote")
    return subject


def make_plan(
    subject: str, exercise: str, side: str, sets_per_week: int, reps_per_set: int | None, time_us: int
) -> ExercisePlan:
    """A plan to set, checked (raises InvalidPlan naming the field)."""
    check_subject(subject)
    try:
        check_activity(exercise, side)
    except VocabularyError as exc:
        raise InvalidPlan(str(exc)) from None
    if exercise in NOT_PLANNED:
        raise InvalidPlan(
            f"exercise: {exercise!r} is measured in every session; plan one of {', '.join(PLANNED_EXERCISES)}"
        )
    sets = _whole("sets_per_week", sets_per_week, 1, MAX_SETS_PER_WEEK)
    reps = None if reps_per_set is None else _whole("reps_per_set", reps_per_set, 1, MAX_REPS_PER_SET)
    return ExercisePlan(subject, exercise, side, sets, reps, time_us)


def cleared_plan(subject: str, exercise: str, side: str, time_us: int) -> ExercisePlan:
    """The point that ends a plan (checked like a plan)."""
    check_subject(subject)
    try:
        check_activity(exercise, side)
    except VocabularyError as exc:
        raise InvalidPlan(str(exc)) from None
    return ExercisePlan(subject, exercise, side, 0, None, time_us, cleared=True)


def plan_from_row(time_us: int, tags: Mapping[str, str], fields: Mapping[str, Any]) -> ExercisePlan:
    reps = fields.get("reps_per_set")
    return ExercisePlan(
        subject=str(tags["subject"]),
        exercise=str(tags["exercise"]),
        side=str(tags["side"]),
        sets_per_week=int(fields.get("sets_per_week", 0)),
        reps_per_set=None if reps is None else int(reps),
        time_us=int(time_us),
        cleared=bool(fields.get("cleared", False)),
    )


def in_force(history: list[ExercisePlan]) -> list[ExercisePlan]:
    """The plan in force per (exercise, side): the latest point of each, cleared ones left out."""
    latest: dict[tuple[str, str, str], ExercisePlan] = {}
    for plan in sorted(history, key=lambda p: p.time_us):
        latest[(plan.subject, plan.exercise, plan.side)] = plan
    return [p for _, p in sorted(latest.items()) if not p.cleared]


def read_embedded(db: sqlite3.Connection, lock: threading.Lock, subject: str) -> list[ExercisePlan]:
    """Every plan point of a subject in the embedded store, oldest first."""
    with lock:
        rows = db.execute(
            "SELECT time_us, tags, fields FROM points WHERE measurement = ? AND subject = ? ORDER BY time_us",
            (EXERCISE_PLAN, subject),
        ).fetchall()
    return [plan_from_row(int(t), json.loads(tags), json.loads(fields)) for t, tags, fields in rows]
