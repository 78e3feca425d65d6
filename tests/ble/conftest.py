"""Fixtures for the BLE layer tests: the real bleak against emulated sensors on bluezoo (private D-Bus).

- `ble_stack_session` (session): one `BleStack` (dbus-daemon + bluezoo + kit), ~0.5 s to start.
- `ble_stack` (function): the same stack, reset before the test (cached devices removed, links dropped,
  sensors back to their initial state). Tests run their async body with `asyncio.run` (one event loop per test,
  so bleak's BlueZ manager connects to the private bus fresh).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `tests.ble_harness` (namespace package `tests`) needs the repo root
    sys.path.insert(0, str(REPO))

from tests.ble_harness import BleStack  # noqa: E402


def _missing() -> str | None:
    if shutil.which("dbus-daemon") is None:
        return "dbus-daemon not installed (Debian package 'dbus')"
    if importlib.util.find_spec("bluezoo") is None:
        return "bluezoo (test tool, pip install bluezoo==1.0.2) not installed"
    return None


@pytest.fixture(scope="session")
def ble_stack_session() -> Iterator[BleStack]:
    reason = _missing()
    if reason:  # `make test` installs both; a missing one is a broken setup, never a skipped test
        raise RuntimeError(f"the BLE test stack cannot start: {reason}; run `make test` to install it")
    with BleStack() as stack:
        yield stack


@pytest.fixture
def ble_stack(ble_stack_session: BleStack) -> BleStack:
    ble_stack_session.reset()
    return ble_stack_session
