"""Demo-like results for the session report's tests and its README screenshot: one simulated home session
analysed for real (walking and the study's exercises per side), plus earlier weekly walking sessions, also
simulated and analysed for real, written through the store at earlier dates, with an exercise plan.

The earlier sessions tell a story a clinician would recognise: a stance-time asymmetry that starts outside the
band, crosses its edge, is withheld once (the thigh sensors put on the wrong legs: the analysis's own side check
withholds every left/right number), then settles inside it; pelvic drop in left stance falls week by week.
Every number comes from `analytics.pipeline.analyze`, none is written by hand.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from analytics.pipeline.analyze import analyze_recording
from analytics.stores import Store
from analytics.stores.model import Provenance, results_from_document
from analytics.stores.plans import make_plan
from simulator import simulate_session

WEEK_US = 7 * 86400 * 1_000_000
DAY_US = 86400 * 1_000_000

EARLIER = (
    # (weeks before the current session, stance asymmetry %, pelvic drop in left stance deg, thighs swapped)
    (6, 13.0, 6.0, False),
    (5, 11.0, 5.5, False),
    (4, 9.0, 5.0, True),
    (3, 8.0, 4.5, False),
    (2, 6.0, 4.0, False),
    (1, 4.0, 3.5, False),
)
PLAN = (("single_leg_bridge", "left", 5, 10), ("single_leg_bridge", "right", 5, 10), ("clam", "left", 3, None))


@dataclass(frozen=True)
class SeededSession:
    session: str
    t0_us: int
    doc: dict[str, Any]


def analysed_walk(asymmetry_pct: float, drop_left_deg: float, *, swap_thighs: bool, seed: int) -> dict[str, Any]:
    """A one-minute simulated walk analysed for real (a gaitsym.result/1 document)."""
    sim = simulate_session(
        script="walk", seed=seed, minutes=1.0, stance_asymmetry_pct=asymmetry_pct, pelvic_drop_left_deg=drop_left_deg
    )
    recording = sim.recording
    if swap_thighs:
        sensors = recording.sensors
        swapped = {
            "pelvis": sensors["pelvis"],
            "left_thigh": sensors["right_thigh"],
            "right_thigh": sensors["left_thigh"],
        }
        recording = dataclasses.replace(recording, sensors=swapped)
    return analyze_recording(recording, exercise_analyzer=False)


def analysed_home(seed: int = 1, minutes: float = 12.0) -> dict[str, Any]:
    """A simulated home session (walking and every exercise per side) analysed for real."""
    return analyze_recording(simulate_session(seed=seed, minutes=minutes).recording)


def write_session(store: Store, subject: str, session: str, doc: dict[str, Any], t0_us: int) -> SeededSession:
    provenance = Provenance(analysis_id=uuid.uuid4().hex, result_version=1, algorithm="gaitsym.analysis 0.1.0")
    store.replace_results(
        results_from_document(doc, subject=subject, session=session, t0_us=t0_us, provenance=provenance)
    )
    return SeededSession(session, t0_us, doc)


def demo_like_documents() -> list[tuple[float, dict[str, Any]]]:
    """(weeks before the current session, analysed document) of every session, oldest first; the last is the
    current home session. Analyse once, write to as many stores as needed."""
    docs: list[tuple[float, dict[str, Any]]] = []
    for i, (weeks, asym, drop, swapped) in enumerate(EARLIER):
        docs.append((weeks, analysed_walk(asym, drop, swap_thighs=swapped, seed=11 + i)))
    docs.append((0.0, analysed_home()))
    return docs


def seed_subject(
    store: Store, subject: str, *, current_t0_us: int, documents: list[tuple[float, dict[str, Any]]]
) -> list[SeededSession]:
    """Write the exercise plan and the sessions (``demo_like_documents``); returns them oldest first, sessions
    named S01, S02, ... in that order. Earlier sessions start an hour later in the day each week."""
    for exercise, side, sets, reps in PLAN:
        store.write_plan(make_plan(subject, exercise, side, sets, reps, current_t0_us - 8 * WEEK_US))
    sessions = []
    for i, (weeks, doc) in enumerate(documents):
        t0 = current_t0_us - round(weeks * WEEK_US) + (i * 3600 * 1_000_000 if weeks else 0)
        sessions.append(write_session(store, subject, f"S{i + 1:02d}", doc, t0))
    return sessions
