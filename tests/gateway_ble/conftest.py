"""Fixtures for the gateway over BLE: the production gateway core on the real bleak transport, against the
emulated kit on bluezoo (private D-Bus) serving a simulated walking session in real time, and a real Mosquitto.

- `session_stack` (one per folder): `BleStack` whose kit serves the simulator's session (``--motion session``),
  with the neighbour's pelvis sensor (powered off until a test powers it on).
- `ble_stack` (per test): the same stack, reset, with DBUS_SYSTEM_BUS_ADDRESS pointing at it for the test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `testing.ble_harness` (namespace package `tests`) needs the repo root
    sys.path.insert(0, str(REPO))

from testing.ble_harness import BleStack  # noqa: E402

SESSION_KIT = ("--motion", "session", "--seed", "3", "--minutes", "0.7", "--script", "walk")


@pytest.fixture(scope="package")
def session_stack() -> Iterator[BleStack]:
    with BleStack(kit_args=SESSION_KIT) as stack:
        yield stack


@pytest.fixture
def ble_stack(session_stack: BleStack, monkeypatch: pytest.MonkeyPatch) -> BleStack:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", session_stack.bus_address)
    session_stack.reset()
    return session_stack
