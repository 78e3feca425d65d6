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
import logging
import time
from collections.abc import Callable

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak_retry_connector import establish_connection

from firmware_protocol.gatt import SENSOR_INFO_UUID, SERVICE_UUID
from firmware_protocol.sensor_info import decode_sensor_info
from sensor_gateway.ble.config import BleConfig, PairedSensor, Pairing, save_pairing
from sensor_gateway.ble.errors import PairingError, classify
from sensor_gateway.ble.transport import adapter_lock

__all__ = ["pair", "pair_kit"]

log = logging.getLogger(__name__)


async def _scan(config: BleConfig, scan_s: float) -> dict[str, BLEDevice]:
    seen: dict[str, BLEDevice] = {}

    def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
        if SERVICE_UUID in adv.service_uuids:
            seen[device.address.upper()] = device

    async with BleakScanner(on_advertisement, service_uuids=[SERVICE_UUID], bluez={"adapter": config.adapter}):
        await asyncio.sleep(scan_s)
    return seen


async def _identify(config: BleConfig, device: BLEDevice) -> tuple[str, str]:
    """(placement, serial) read from the sensor info."""
    async with asyncio.timeout(config.connect_timeout_s):
        client = await establish_connection(
            BleakClient, device, device.address, max_attempts=2, use_services_cache=False,
            bluez={"adapter": config.adapter},
        )  # fmt: skip
    try:
        async with asyncio.timeout(config.gatt_timeout_s):
            info = decode_sensor_info(bytes(await client.read_gatt_char(SENSOR_INFO_UUID)))
        return str(info.placement), info.serial
    finally:
        try:
            async with asyncio.timeout(config.gatt_timeout_s):
                await client.disconnect()
        except Exception as exc:
            log.debug("pairing: disconnect %s: %s", device.address, exc)


async def pair(config: BleConfig, scan_s: float = 5.0, report: Callable[[str], None] | None = None) -> Pairing:
    """Find one sensor per placement in ``config.placements`` and pin it; returns the saved `Pairing`."""
    say = report or (lambda _msg: None)
    lock = adapter_lock(config.adapter)
    async with lock:
        devices = await _scan(config, scan_s)
    say(f"{len(devices)} gaitsym sensor(s) advertising on {config.adapter}")
    claims: dict[str, list[PairedSensor]] = {}
    problems: list[str] = []
    for address, device in sorted(devices.items()):
        try:
            async with lock:
                placement, serial = await _identify(config, device)
        except Exception as exc:
            problems.append(f"{address}: {classify(exc)}")
            continue
        say(f"{address}: {serial} worn at {placement}")
        claims.setdefault(placement, []).append(PairedSensor(placement, address, serial))
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
