"""Central-side helpers for tests and benches: the real bleak on the harness's central adapter (hci0).

Callbacks only stamp and enqueue (host `time.monotonic_ns`, ns); decoding happens in the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.args.bluez import BlueZClientArgs, BlueZScannerArgs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from firmware_protocol.control import Command, Reply, decode_reply, encode_control
from firmware_protocol.gatt import CONTROL_UUID, IMU_DATA_UUID, SERVICE_UUID, serial_from_advertised_name

__all__ = [
    "CENTRAL",
    "CENTRAL_SCAN",
    "ControlChannel",
    "Notification",
    "NotificationQueue",
    "count_uuid",
    "scan_sensors",
    "start_imu",
]

CENTRAL: BlueZClientArgs = {"adapter": "hci0"}
"""BleakClient's `bluez=` argument for the harness's central adapter (bleak's default: the first powered one)."""
CENTRAL_SCAN: BlueZScannerArgs = {"adapter": "hci0"}
"""BleakScanner's `bluez=` argument, same adapter."""


async def scan_sensors(expected: int = 3, timeout_s: float = 5.0) -> dict[str, tuple[BLEDevice, AdvertisementData]]:
    """Scan on hci0 filtered by the gaitsym service UUID until `expected` sensors are seen; serial -> found."""
    found: dict[str, tuple[BLEDevice, AdvertisementData]] = {}
    done = asyncio.Event()

    def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
        serial = serial_from_advertised_name(adv.local_name or device.name)
        if serial is not None and SERVICE_UUID in adv.service_uuids:
            found[serial] = (device, adv)
            if len(found) >= expected:
                done.set()

    async with BleakScanner(on_advertisement, service_uuids=[SERVICE_UUID], bluez=CENTRAL_SCAN):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout_s)
    return found


@dataclass(frozen=True)
class Notification:
    data: bytes
    received_ns: int
    """Host time.monotonic_ns() when bleak delivered it, ns."""


@dataclass
class NotificationQueue:
    """Collects notifications of one characteristic: the callback stamps and enqueues only."""

    queue: asyncio.Queue[Notification] = field(default_factory=asyncio.Queue)

    def callback(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        self.queue.put_nowait(Notification(bytes(data), time.monotonic_ns()))

    def drain(self) -> list[Notification]:
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out

    async def collect_for(self, seconds: float) -> list[Notification]:
        await asyncio.sleep(seconds)
        return self.drain()


class ControlChannel:
    """Writes commands to the control characteristic and waits for the reply notification (one at a time)."""

    def __init__(self, client: BleakClient) -> None:
        self.client = client
        self.replies = NotificationQueue()

    async def start(self) -> None:
        await self.client.start_notify(CONTROL_UUID, self.replies.callback)

    async def command(self, cmd: Command, timeout_s: float = 2.0) -> Reply:
        self.replies.drain()
        await self.client.write_gatt_char(CONTROL_UUID, encode_control(cmd), response=True)
        note = await asyncio.wait_for(self.replies.queue.get(), timeout_s)
        return decode_reply(note.data)

    async def raw(self, data: bytes, timeout_s: float = 2.0) -> bytes:
        self.replies.drain()
        await self.client.write_gatt_char(CONTROL_UUID, data, response=True)
        return (await asyncio.wait_for(self.replies.queue.get(), timeout_s)).data


async def start_imu(client: BleakClient, queue: NotificationQueue) -> None:
    await client.start_notify(IMU_DATA_UUID, queue.callback)


def count_uuid(client: BleakClient, uuid: str) -> int:
    """How many services/characteristics with `uuid` bleak shows (2+ means duplicated GATT objects)."""
    n = 0
    for service in client.services:
        n += service.uuid == uuid
        n += sum(c.uuid == uuid for c in service.characteristics)
    return n


def describe(objs: Sequence[Any]) -> str:
    return ", ".join(map(str, objs))
