"""Pairing: find the subject's three sensors by placement and pin their addresses (the ONLY place where
sensors are discovered by what they say they are; afterwards the transport connects pinned addresses only).

Scan on the adapter for the gaitsym service UUID for ``scan_s`` seconds, connect each sensor seen (one after
another, holding the adapter's lock), read its sensor info (placement, serial), disconnect. Exactly one sensor
per placement must be found: a missing placement or two sensors claiming one (a neighbour's kit switched on)
is a `PairingError` naming them, and nothing is written. On success the pairing is written atomically to
``config.state_dir / ble_pairing.json``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from firmware_protocol.gatt import SERVICE_UUID
from sensor_gateway.ble.config import BleConfig, PairedSensor, Pairing, save_pairing
from sensor_gateway.ble.errors import PairingError, classify
from sensor_gateway.ble.link import read_sensor_info, scan_by_service
from sensor_gateway.ble.transport import adapter_lock

__all__ = ["pair", "pair_kit"]


async def pair(config: BleConfig, scan_s: float = 5.0, report: Callable[[str], None] | None = None) -> Pairing:
    """Find one sensor per placement in ``config.placements`` and pin it; returns the saved `Pairing`."""
    say = report or (lambda _msg: None)
    lock = adapter_lock(config.adapter)
    async with lock:
        devices = await scan_by_service(config.adapter, SERVICE_UUID, scan_s)
    say(f"{len(devices)} gaitsym sensor(s) advertising on {config.adapter}")
    claims: dict[str, list[PairedSensor]] = {}
    problems: list[str] = []
    for address, device in sorted(devices.items()):
        try:
            async with lock:
                info = await read_sensor_info(config, device)
        except Exception as exc:
            problems.append(f"{address}: {classify(exc)}")
            continue
        placement = str(info.placement)
        say(f"{address}: {info.serial} worn at {placement}")
        claims.setdefault(placement, []).append(PairedSensor(placement, address, info.serial))
    missing = [p for p in config.placements if not claims.get(p)]
    ambiguous = {p: c for p, c in claims.items() if p in config.placements and len(c) > 1}
    if missing or ambiguous:
        parts = []
        if missing:
            parts.append(f"no sensor found for {', '.join(missing)}")
        for p, c in ambiguous.items():
            names = ", ".join(f"{s.serial} ({s.address})" for s in c)
            parts.append(f"{len(c)} sensors claim {p}: {names}; switch the other kit off and pair again")
        unassigned = [s.serial for s in claims.get("unassigned", [])]
        if unassigned:
            parts.append(f"sensors without a placement: {', '.join(unassigned)}")
        if problems:
            parts.append(f"unreadable: {'; '.join(problems)}")
        raise PairingError("pairing: " + "; ".join(parts))
    pairing = Pairing(config.adapter, {p: claims[p][0] for p in config.placements}, time.time())
    save_pairing(config.pairing_path, pairing)
    say(f"pinned {', '.join(f'{p}={s.serial}' for p, s in pairing.sensors.items())} in {config.pairing_path}")
    return pairing


def pair_kit(config: BleConfig, scan_s: float = 5.0, report: Callable[[str], None] | None = print) -> Pairing:
    """Blocking `pair` for the CLI (`gaitsym gateway pair`)."""
    return asyncio.run(pair(config, scan_s, report))
