"""Fixtures for the BLE layer tests: the real bleak against emulated sensors on bluezoo (private D-Bus).

- `ble_stack_session` (session): one `BleStack` (dbus-daemon + bluezoo + kit), ~0.5 s to start.
- `ble_stack` (function): the same stack, reset before the test (cached devices removed, links dropped,
  sensors back to their initial state). Tests run their async body with `asyncio.run` (one event loop per test,
  so bleak's BlueZ manager connects to the private bus fresh).
- `ble_config`, `paired`, `gateway`: the BLE transport's settings, the kit paired (pinned in a temp state dir),
  and a started `BleTransport` under a `GatewayStandIn` (closed after the test).
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `testing.ble_harness` (namespace package `tests`) needs the repo root
    sys.path.insert(0, str(REPO))

from gaitsym_common.uplink.vocabulary import PLACEMENTS  # noqa: E402
from sensor_gateway.ble import BleConfig, Pairing, make_ble_transport, pair  # noqa: E402
from testing.ble_harness import BleStack  # noqa: E402
from testing.ble_harness.standin import GatewayStandIn  # noqa: E402


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


@pytest.fixture
def ble_config(tmp_path: Path) -> BleConfig:
    """Transport settings for the bluezoo stack: the central adapter, a 1 s watchdog, short scans."""
    return BleConfig(state_dir=tmp_path / "state", adapter="hci0", scan_timeout_s=3.0, silence_timeout_s=1.0)


@pytest.fixture
def paired(ble_stack: BleStack, ble_config: BleConfig) -> Pairing:
    """The kit's three sensors paired and pinned (the neighbour is off, as after every reset)."""
    return asyncio.run(pair(ble_config, scan_s=1.0))


@pytest.fixture
def gateway(ble_stack: BleStack, ble_config: BleConfig, paired: Pairing) -> Iterator[GatewayStandIn]:
    """A started BLE transport (all three placements connecting) under a gateway stand-in; closed after."""
    standin = GatewayStandIn(make_ble_transport(ble_config))
    standin.open(PLACEMENTS)
    try:
        yield standin
    finally:
        standin.transport.close()
