"""One simulated home session (unseen seed), analysed with and without markers, shared by the tests."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from analytics.algorithms.exercise_sets import analyze_exercise_sets
from simulator import simulate_session
from simulator.session import SimulatedSession

SEED = 31
SKIP = ("stand", "walk")


@pytest.fixture(scope="session")
def session() -> SimulatedSession:
    return simulate_session(seed=SEED)


@pytest.fixture(scope="session")
def with_markers(session: SimulatedSession) -> list[dict[str, Any]]:
    return analyze_exercise_sets(session.recording)


@pytest.fixture(scope="session")
def detected(session: SimulatedSession) -> list[dict[str, Any]]:
    return analyze_exercise_sets(dataclasses.replace(session.recording, markers=()))


@pytest.fixture(scope="session")
def truth_sets(session: SimulatedSession) -> list[dict[str, Any]]:
    return [e for e in session.truth["exercises"] if e["exercise"] not in SKIP]
