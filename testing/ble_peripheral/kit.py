"""The emulated gaitsym sensor kit as BlueZ peripherals: one `EmulatedSensor` per adapter, served over D-Bus.

Each sensor registers the `firmware_protocol.gatt.PROFILE` GATT application and an advertisement
(``gaitsym-<serial>``, gaitsym service UUID) on its own adapter: bluezoo shows every GATT application and only
the first advertisement of an adapter as ONE remote device, so three sensors need three peripheral adapters
besides the central's.

Test controls (also exported on D-Bus as org.gaitsym.VirtualKit1 at /org/gaitsym/kitctl/<placement>, see
`control.py`): drop the link (Device1.Disconnect on the central's device object for this sensor), go silent
while connected, reboot (boot_epoch + 1, sequence restarts, link dropped), send malformed notifications,
power off/on (GATT app and advertisement vanish/return), set the ATT MTU of the next links, reset to the
initial state. Sensors are keyed by placement name, or by `SensorIdentity.key` for a second sensor of the
same placement (`NEIGHBOUR_IDENTITY`, key "neighbour", starts powered off).

Times: host clock `time.monotonic_ns` (ns); the kit keeps the last `SEND_LOG_LENGTH` (sequence, host ns at the
notification) per sensor for latency measurements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dbus_fast.aio import MessageBus

from firmware_protocol.gatt import PROFILE, advertised_name
from firmware_protocol.sensor_info import Placement

from .bluez_gatt import DEFAULT_ATT_MTU, Advertisement, CharacteristicHandler, GattApplication, call_bluez
from .samples import SampleSource, StillSource
from .sensor import EmulatedSensor, Malformation, SensorIdentity
from .streaming import due_packets, stop_tasks

__all__ = [
    "ADVERTISEMENT_BUMP_S",
    "DEFAULT_IDENTITIES",
    "NEIGHBOUR_IDENTITY",
    "SEND_LOG_LENGTH",
    "EmulatedBleSensor",
    "VirtualBleKit",
]

log = logging.getLogger(__name__)

ADVERTISEMENT_BUMP_S = 0.3
"""Period of the ServiceData counter change, s (bluezoo announces only new/changed advertisements)."""
SEND_LOG_LENGTH = 20_000
"""(sequence, send time) pairs kept per sensor: 200 s at 100 notifications/s."""

DEFAULT_IDENTITIES: tuple[SensorIdentity, ...] = (
    SensorIdentity(serial="GS1-PLV-0001", placement=Placement.PELVIS, boot_epoch=17),
    SensorIdentity(serial="GS1-LTH-0002", placement=Placement.LEFT_THIGH, boot_epoch=5),
    SensorIdentity(serial="GS1-RTH-0003", placement=Placement.RIGHT_THIGH, boot_epoch=42),
)
"""Three sensors with distinct serials and boot epochs, in PLACEMENTS order (pelvis, left_thigh, right_thigh)."""

NEIGHBOUR_IDENTITY = SensorIdentity(serial="GS1-PLV-0904", placement=Placement.PELVIS, boot_epoch=3, key="neighbour")
"""A pelvis sensor of another subject's kit (a neighbour, a second patient in the clinic): same placement,
other serial. The kit serves it powered off until a test powers it on."""


class _SensorHandler(CharacteristicHandler):
    """A characteristic of one sensor; what it does goes to the sensor's current firmware model."""

    def __init__(self, owner: EmulatedBleSensor) -> None:
        self.owner = owner


class _ImuHandler(_SensorHandler):
    def notifying_changed(self, notifying: bool) -> None:
        if not notifying:
            self.owner.sensor.stop_streaming()  # link loss / unsubscribe stops streaming, as on the firmware
        self.owner.wake()


class _InfoHandler(_SensorHandler):
    def read(self, options: dict[str, Any]) -> bytes:
        return self.owner.sensor.sensor_info()


class _ControlHandler(_SensorHandler):
    def write(self, value: bytes, options: dict[str, Any]) -> None:
        reply = self.owner.sensor.handle_control(value)
        self.owner.control_replies += 1
        # Reply after the write's response has gone out (the order a real stack gives).
        asyncio.get_running_loop().call_soon(self.owner.notify_control, reply)
        self.owner.wake()


class _BatteryHandler(_SensorHandler):
    def read(self, options: dict[str, Any]) -> bytes:
        return self.owner.sensor.battery_level()


@dataclass
class EmulatedBleSensor:
    """One sensor: the firmware model, its GATT application, advertisement and streaming task."""

    sensor: EmulatedSensor
    adapter_path: str
    adapter_address: str = ""
    initially_powered: bool = True
    control_replies: int = 0
    malformed_sent: int = 0
    send_log: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=SEND_LOG_LENGTH))
    app: GattApplication = field(init=False)
    advertisement: Advertisement = field(init=False)
    powered: bool = field(default=False, init=False)
    _wake_event: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def __post_init__(self) -> None:
        key = self.sensor.identity.kit_key
        self.app = GattApplication(
            PROFILE,
            f"/org/gaitsym/kit/{key}",
            {
                "imu_data": _ImuHandler(self),
                "sensor_info": _InfoHandler(self),
                "control": _ControlHandler(self),
                "battery_level": _BatteryHandler(self),
            },
        )
        self.advertisement = Advertisement(
            f"/org/gaitsym/adv/{key}",
            advertised_name(self.sensor.identity.serial),
            PROFILE.advertised_service_uuids,
        )

    @property
    def placement(self) -> str:
        return str(self.sensor.identity.placement)

    @property
    def key(self) -> str:
        return self.sensor.identity.kit_key

    @property
    def att_mtu(self) -> int:
        return self.app.characteristics["imu_data"].mtu

    def set_mtu(self, mtu: int) -> None:
        """ATT MTU (bytes) of this sensor's next links; notifications longer than MTU - 3 are cut."""
        if not 23 <= mtu <= 517:
            raise ValueError(f"mtu: {mtu} bytes is outside the ATT range 23..517")
        for obj in self.app.characteristics.values():
            obj.set_mtu(mtu)

    def wake(self) -> None:
        self._wake_event.set()

    def notify_control(self, reply: bytes) -> None:
        self.app.characteristics["control"].notify(reply)

    async def power_on(self, bus: MessageBus) -> None:
        if self.powered:
            return
        await self.app.register(bus, self.adapter_path)
        await self.advertisement.register(bus, self.adapter_path)
        self.powered = True

    async def power_off(self) -> None:
        if not self.powered:
            return
        self.powered = False
        self.sensor.stop_streaming()
        await self.advertisement.unregister()
        await self.app.unregister()

    async def stream(self) -> None:
        """Send due IMU packets while streaming and subscribed; sleeps until the next one is due."""
        imu = self.app.characteristics["imu_data"]
        while True:
            for packet in await due_packets(self.sensor, self._wake_event, link_ready=imu.notifying):
                if imu.notify(packet.data):
                    self.send_log.append((packet.sequence, time.monotonic_ns()))
                    if packet.malformed:
                        self.malformed_sent += 1


class VirtualBleKit:
    """Three (or more) emulated sensors on a BlueZ-compatible bus; `async with` or `start`/`stop`.

    `adapters`: adapter object paths, one per identity (e.g. /org/bluez/hci1..3). `source_factory` makes each
    sensor's SampleSource (default: `StillSource` seeded by the boot epoch).
    """

    def __init__(
        self,
        adapters: Sequence[str],
        identities: Sequence[SensorIdentity] = DEFAULT_IDENTITIES,
        source_factory: Callable[[SensorIdentity], SampleSource] | None = None,
        bus: MessageBus | None = None,
        sensor_options: Mapping[str, Any] | None = None,
        powered_off: Sequence[str] = (),
    ) -> None:
        if len(adapters) != len(identities):
            raise ValueError(f"{len(identities)} sensors need {len(identities)} adapters, got {len(adapters)}")
        self._identities = tuple(identities)
        self._adapters = tuple(adapters)
        self._source_factory = source_factory or (lambda ident: StillSource(seed=ident.boot_epoch))
        self._sensor_options = dict(sensor_options or {})
        self._powered_off = frozenset(powered_off)
        """Keys of sensors that start (and reset to) powered off, e.g. the neighbour."""
        self._bus = bus
        self._own_bus = bus is None
        self.sensors: dict[str, EmulatedBleSensor] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def bus(self) -> MessageBus:
        assert self._bus is not None, "kit not started"
        return self._bus

    def _make_sensor(self, identity: SensorIdentity) -> EmulatedSensor:
        return EmulatedSensor(identity, self._source_factory(identity), **self._sensor_options)

    async def start(self) -> None:
        if self._bus is None:
            from .bluez_gatt import connect_system_bus

            self._bus = await connect_system_bus()
        addresses = await self._adapter_addresses()
        for identity, adapter in zip(self._identities, self._adapters, strict=True):
            ble = EmulatedBleSensor(
                self._make_sensor(identity),
                adapter,
                addresses.get(adapter, ""),
                initially_powered=identity.kit_key not in self._powered_off,
            )
            self.sensors[ble.key] = ble
            if ble.initially_powered:
                await ble.power_on(self.bus)
            self._tasks.append(asyncio.create_task(ble.stream(), name=f"stream-{ble.placement}"))
        self._tasks.append(asyncio.create_task(self._bump_advertisements(), name="advertisement-bump"))

    async def stop(self) -> None:
        await stop_tasks(self._tasks)
        for ble in self.sensors.values():
            with contextlib.suppress(Exception):
                await ble.power_off()
        if self._own_bus and self._bus is not None:
            self._bus.disconnect()
            self._bus = None

    async def __aenter__(self) -> VirtualBleKit:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _adapter_addresses(self) -> dict[str, str]:
        (objects,) = await call_bluez(self.bus, "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        return {
            path: ifaces["org.bluez.Adapter1"]["Address"].value
            for path, ifaces in objects.items()
            if "org.bluez.Adapter1" in ifaces
        }

    async def _bump_advertisements(self) -> None:
        while True:
            await asyncio.sleep(ADVERTISEMENT_BUMP_S)
            for ble in self.sensors.values():
                if ble.powered:
                    ble.advertisement.bump()

    # -- test controls ---------------------------------------------------------------------------------------
    def sensor(self, placement: str) -> EmulatedBleSensor:
        try:
            return self.sensors[placement]
        except KeyError:
            raise KeyError(f"no sensor {placement!r}; have {sorted(self.sensors)}") from None

    async def drop_link(self, placement: str) -> int:
        """Disconnect every central linked to this sensor (Device1.Disconnect on the central's device object,
        which bluezoo propagates). Returns the number of links dropped."""
        ble = self.sensor(placement)
        (objects,) = await call_bluez(self.bus, "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        dropped = 0
        for path, ifaces in objects.items():
            device = ifaces.get("org.bluez.Device1")
            if device is None or not path.startswith("/org/bluez/") or path.startswith(ble.adapter_path + "/"):
                continue
            if device["Address"].value == ble.adapter_address and device["Connected"].value:
                await call_bluez(self.bus, path, "org.bluez.Device1", "Disconnect")
                dropped += 1
        return dropped

    def set_silent(self, placement: str, silent: bool) -> None:
        """Silent: connected and subscribed, but no notification leaves (samples are lost, sequence advances)."""
        self.sensor(placement).sensor.silent = silent

    async def reboot(self, placement: str) -> None:
        """Reboot: the link drops, boot_epoch + 1, sequence and clock restart at 0, streaming stopped."""
        ble = self.sensor(placement)
        ble.sensor.reboot()
        await self.drop_link(placement)
        ble.wake()

    def send_malformed(self, placement: str, kind: Malformation | str, count: int = 1) -> None:
        """The next `count` IMU packets go out corrupted as `kind` (see `Malformation`)."""
        for _ in range(count):
            self.sensor(placement).sensor.inject_malformed(kind)

    def set_mtu(self, placement: str, mtu: int) -> None:
        """ATT MTU (bytes) the sensor's next links negotiate (bluezoo does not model the exchange; the kit
        reports it and cuts longer notifications, as a real stack does)."""
        self.sensor(placement).set_mtu(mtu)

    async def power_off(self, placement: str) -> None:
        await self.sensor(placement).power_off()

    async def power_on(self, placement: str) -> None:
        await self.sensor(placement).power_on(self.bus)

    async def reset(self, placement: str | None = None) -> None:
        """Back to the initial state: powered (or off, as at start), not streaming, no faults, initial boot
        epoch, settings and ATT MTU."""
        for ble in self.sensors.values() if placement is None else [self.sensor(placement)]:
            if ble.initially_powered:
                await ble.power_on(self.bus)
            else:
                await ble.power_off()
            ble.set_mtu(DEFAULT_ATT_MTU)
            ble.sensor = self._make_sensor(ble.sensor.identity)
            ble.send_log.clear()
            ble.control_replies = ble.malformed_sent = 0
            ble.wake()

    def state(self, placement: str) -> dict[str, Any]:
        """The sensor's state; ``boot_ns`` is host monotonic ns at its boot: its clock reads
        (host_ns - boot_ns) / 1000 + clock_offset_us µs (mod 2**32), the truth a time-sync test compares with."""
        ble = self.sensor(placement)
        s = ble.sensor
        imu = ble.app.characteristics["imu_data"]
        return {
            "serial": s.identity.serial,
            "placement": str(s.placement),
            "boot_epoch": s.boot_epoch,
            "streaming": s.streaming,
            "silent": s.silent,
            "sequence": s.sequence,
            "sample_rate_hz": s.sample_rate_hz,
            "samples_per_packet": s.samples_per_packet,
            "adapter": ble.adapter_path,
            "address": ble.adapter_address,
            "powered": ble.powered,
            "imu_notifying": imu.notifying,
            "notifications_sent": imu.notifications_sent,
            "malformed_sent": ble.malformed_sent,
            "att_mtu": ble.att_mtu,
            "truncated": imu.truncated,
            "control_replies": ble.control_replies,
            "boot_ns": s.boot_ns,
            "clock_offset_us": s.clock_offset_us,
        }
