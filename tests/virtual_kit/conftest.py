"""Shared simulated sessions (simulated once per test session: the whole folder stays well under 60 s)."""

from __future__ import annotations

import pytest

from simulator import SessionConfig, simulate_session
from simulator.session import SimulatedSession


@pytest.fixture(scope="session")
def home_session() -> SimulatedSession:
    return simulate_session(SessionConfig(seed=7))


@pytest.fixture(scope="session")
def clean_walk() -> SimulatedSession:
    """A walk without noise or bias, random mounting: for the physics checks."""
    return simulate_session(SessionConfig(seed=11, script="walk", noise=0.0, gyro_bias_dps=0.0, acc_bias_mps2=0.0))
