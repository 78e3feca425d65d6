"""The emulated gaitsym sensor kit served with Bumble: each sensor a Bumble peripheral on a Bumble virtual link.

The GATT server of every sensor is built from `firmware_protocol.gatt.PROFILE` (the same description the BlueZ
kit in `bluez_gatt.py` serves); its behaviour is `sensor.EmulatedSensor` (control protocol, sensor info, packet
timing). The sensors share one `KitLink` with a further Bumble controller that the host's kernel sees as its
Bluetooth controller through ``/dev/vhci`` (`open_vhci_transport`), so the real kernel + bluetoothd + bleak are
the central. Run as a process:

    python -m testing.ble_peripheral.bumble_kit --vhci /dev/vhci --control /run/kit.sock

It prints READY when the three sensors advertise, and answers JSON-line commands on the Unix socket `--control`
(`{"cmd": "drop", "sensor": "pelvis"}` (a placement or a serial) drops that sensor's link from the sensor's
side and returns the CLOCK_MONOTONIC ns just before the disconnect; `{"cmd": "stats"}` returns per-sensor
counters; `{"cmd": "power", "sensor": S, "on": true}` switches a sensor on (advertising) or off (link dropped,
not advertising); `{"cmd": "set_max_mtu", "sensor": S, "mtu": N}` sets the ATT MTU its GATT server accepts from
the next connection on).
``--small-mtu-sensor MTU`` adds a fourth sensor (serial GS1-MTU-0004, worn at the pelvis: a second kit's
sensor) whose GATT server negotiates at most MTU bytes and streams 10 samples per packet until told otherwise:
its notifications are truncated to MTU - 3 bytes, as real stacks do. It starts switched OFF (so pairing the
kit finds one sensor per placement) until a `power` command switches it on.

The Bumble link and controllers that carry it, with the Bumble limitations they work around, are in
`bumble_link.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bumble import hci
from bumble.controller import Controller
from bumble.core import UUID as BumbleUUID
from bumble.core import AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic as BumbleCharacteristic
from bumble.gatt import CharacteristicValue
from bumble.gatt import Service as BumbleService
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from firmware_protocol.gatt import PROFILE, GattProfile, Property, advertised_name
from firmware_protocol.sensor_info import Placement

from .bumble_link import KitLink, legacy_controller
from .kit import DEFAULT_IDENTITIES
from .samples import SampleSource, SineSource, StillSource
from .sensor import EmulatedSensor, SensorIdentity
from .streaming import due_packets, stop_tasks

__all__ = ["MTU_TEST_IDENTITY", "BumbleKit", "BumbleSensor", "build_gatt_services", "main"]

log = logging.getLogger(__name__)

MTU_TEST_IDENTITY = SensorIdentity(serial="GS1-MTU-0004", placement=Placement.PELVIS, boot_epoch=99)
"""The fourth sensor of ``--small-mtu-sensor``."""

_SENSOR_ADDRESSES = ("C0:5A:17:00:00:01", "C0:5A:17:00:00:02", "C0:5A:17:00:00:03", "C0:5A:17:00:00:04")
"""Random static addresses (two top bits set) of the emulated sensors, in identity order."""
VHCI_PUBLIC_ADDRESS = "F0:5A:17:00:00:AA"


def _permissions(properties: Sequence[Property]) -> BumbleCharacteristic.Permissions:
    permissions = BumbleCharacteristic.Permissions(0)
    if Property.READ in properties:
        permissions |= BumbleCharacteristic.Permissions.READABLE
    if Property.WRITE in properties or Property.WRITE_WITHOUT_RESPONSE in properties:
        permissions |= BumbleCharacteristic.Permissions.WRITEABLE
    return permissions


def build_gatt_services(
    profile: GattProfile, values: dict[str, CharacteristicValue]
) -> tuple[list[BumbleService], dict[str, BumbleCharacteristic[Any]]]:
    """Bumble services for `profile`; `values` gives each characteristic's read/write behaviour by name
    (a characteristic without one gets an empty value). Returns the services and the characteristics by name."""
    services: list[BumbleService] = []
    by_name: dict[str, BumbleCharacteristic[Any]] = {}
    for service in profile.services:
        characteristics: list[BumbleCharacteristic[Any]] = []
        for c in service.characteristics:
            bumble_char: BumbleCharacteristic[Any] = BumbleCharacteristic(
                c.uuid,
                BumbleCharacteristic.Properties(c.property_bits),
                _permissions(c.properties),
                values.get(c.name, b""),
            )
            characteristics.append(bumble_char)
            by_name[c.name] = bumble_char
        services.append(BumbleService(service.uuid, characteristics, primary=service.primary))
    return services, by_name


@dataclass
class BumbleSensor:
    """One emulated sensor as a Bumble peripheral: its own controller on the link, a device and GATT server."""

    sensor: EmulatedSensor
    link: LocalLink
    address: str
    max_mtu: int | None = None
    notifications_sent: int = 0
    notify_failures: int = 0
    control_replies: int = 0
    links: int = 0
    switched_on: bool = True
    """Advertising when started (a switched-off sensor neither advertises nor accepts connections)."""
    connection: Connection | None = field(default=None, init=False)
    subscribed: bool = field(default=False, init=False)
    history: list[tuple[float, str]] = field(default_factory=list, init=False)
    """(CLOCK_MONOTONIC s, what): the last 40 link, subscription and streaming changes."""
    _wake_event: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def __post_init__(self) -> None:
        name = advertised_name(self.sensor.identity.serial)
        self.controller = legacy_controller(name, self.link)
        self.device = Device(
            name=name,
            address=hci.Address(self.address),
            host=Host(self.controller, AsyncPipeSink(self.controller)),
        )
        if self.max_mtu is not None:
            self.device.gatt_server.max_mtu = self.max_mtu
        services, self.characteristics = build_gatt_services(
            PROFILE,
            {
                "sensor_info": CharacteristicValue(read=lambda _conn: self.sensor.sensor_info()),
                "control": CharacteristicValue(write=self._on_control_write),
                "battery_level": CharacteristicValue(read=lambda _conn: self.sensor.battery_level()),
            },
        )
        self.device.add_services(services)
        self.characteristics["imu_data"].on("subscription", self._on_imu_subscription)
        self.device.on("connection", self._on_connection)
        self.device.advertising_data = bytes(
            AdvertisingData(
                [
                    (
                        AdvertisingData.FLAGS,
                        bytes(
                            (
                                AdvertisingData.LE_GENERAL_DISCOVERABLE_MODE_FLAG
                                | AdvertisingData.BR_EDR_NOT_SUPPORTED_FLAG,
                            )
                        ),
                    ),
                    (
                        AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                        b"".join(BumbleUUID(u).to_bytes(force_128=True) for u in PROFILE.advertised_service_uuids),
                    ),
                ]
            )
        )
        # 31 bytes do not hold flags + 128-bit UUID + "gaitsym-<serial>": the name goes in the scan response.
        self.device.scan_response_data = bytes(AdvertisingData([(AdvertisingData.COMPLETE_LOCAL_NAME, name.encode())]))

    @property
    def placement(self) -> str:
        return str(self.sensor.identity.placement)

    @property
    def serial(self) -> str:
        return self.sensor.identity.serial

    async def start(self) -> None:
        await self.device.power_on()
        if self.switched_on:
            await self.device.start_advertising(auto_restart=True)

    async def power(self, on: bool) -> None:
        """Switch on (advertise) or off (drop the link, stop advertising)."""
        if on and not self.switched_on:
            self.switched_on = True
            await self.device.start_advertising(auto_restart=True)
        elif not on and self.switched_on:
            self.switched_on = False
            await self.device.stop_advertising()
            await self.drop_link()

    def set_max_mtu(self, mtu: int) -> None:
        """The largest ATT MTU the GATT server accepts, from the next MTU exchange on."""
        self.max_mtu = mtu
        self.device.gatt_server.max_mtu = mtu

    def wake(self) -> None:
        self._wake_event.set()

    # -- GATT callbacks --------------------------------------------------------------------------------------
    def _note(self, what: str, connection: Connection | None = None) -> None:
        """Keep a short history of link, subscription and streaming changes (in `stats`, for diagnosis)."""
        handle = getattr(connection, "handle", None)
        self.history.append((round(time.monotonic(), 3), what if handle is None else f"{what} (handle {handle})"))
        del self.history[:-40]

    def _on_connection(self, connection: Connection) -> None:
        self.connection = connection
        self.links += 1
        self._note("connected", connection)
        connection.on("disconnection", lambda _reason: self._on_disconnection(connection))

    def _on_disconnection(self, connection: Connection) -> None:
        self._note("disconnected" + ("" if self.connection is connection else ", not the current link"), connection)
        if self.connection is connection:
            self.connection = None
            self.subscribed = False
            self.sensor.stop_streaming()  # link loss stops streaming, as on the firmware
            self.wake()

    def _on_imu_subscription(self, connection: Connection, notify_enabled: bool, indicate_enabled: bool) -> None:
        self._note(f"imu notify {'on' if notify_enabled else 'off'}", connection)
        self.subscribed = bool(notify_enabled)
        if not self.subscribed:
            self.sensor.stop_streaming()
        self.wake()

    def _on_control_write(self, connection: Connection, value: bytes) -> None:
        was_streaming = self.sensor.streaming
        reply = self.sensor.handle_control(bytes(value))
        if was_streaming != self.sensor.streaming:
            self._note(f"streaming {'on' if self.sensor.streaming else 'off'} by command", connection)
        self.control_replies += 1
        # Reply after the write response has gone out (the order a real stack gives).
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._notify_control(connection, reply)))
        self.wake()

    async def _notify_control(self, connection: Connection, reply: bytes) -> None:
        with contextlib.suppress(Exception):
            await self.device.notify_subscriber(connection, self.characteristics["control"], reply)

    # -- streaming -------------------------------------------------------------------------------------------
    async def stream(self) -> None:
        """Notify due IMU packets while streaming and subscribed; sleep until the next one is due."""
        imu = self.characteristics["imu_data"]
        while True:
            connection = self.connection if self.subscribed else None
            packets = await due_packets(self.sensor, self._wake_event, link_ready=connection is not None)
            if connection is None:  # nothing was taken: packets are due only to a subscribed link
                continue
            for packet in packets:
                try:
                    await self.device.notify_subscriber(connection, imu, packet.data)
                    self.notifications_sent += 1
                except Exception:  # the link went away under us: the packet is lost, as over the air
                    self.notify_failures += 1

    async def drop_link(self) -> tuple[int, int]:
        """Disconnect from the sensor's side. Returns (links dropped, CLOCK_MONOTONIC ns just before)."""
        t_ns = time.monotonic_ns()
        connection = self.connection
        if connection is None:
            return 0, t_ns
        await connection.disconnect()
        return 1, t_ns

    def stats(self) -> dict[str, Any]:
        s = self.sensor
        return {
            "serial": self.serial,
            "placement": self.placement,
            "address": self.address,
            "connected": self.connection is not None,
            "subscribed": self.subscribed,
            "streaming": s.streaming,
            "sequence": s.sequence,
            "boot_epoch": s.identity.boot_epoch,
            "samples_per_packet": s.samples_per_packet,
            "sample_rate_hz": s.sample_rate_hz,
            "notifications_sent": self.notifications_sent,
            "notify_failures": self.notify_failures,
            "control_replies": self.control_replies,
            "links": self.links,
            "history": list(self.history),
            "switched_on": self.switched_on,
            "max_mtu": self.max_mtu,
            "att_mtu": self.connection.att_mtu if self.connection is not None else None,
        }


class BumbleKit:
    """The three sensors (and optionally the small-MTU one) on one `KitLink`, with the vhci controller."""

    def __init__(
        self,
        identities: Sequence[SensorIdentity] = DEFAULT_IDENTITIES,
        source: str = "still",
        small_mtu: int | None = None,
        samples_per_packet: int = 1,
    ) -> None:
        self.link = KitLink()
        self.sensors: dict[str, BumbleSensor] = {}
        entries: list[tuple[SensorIdentity, int | None, int]] = [(i, None, samples_per_packet) for i in identities]
        if small_mtu is not None:
            entries.append((MTU_TEST_IDENTITY, small_mtu, 10))
        for index, (identity, mtu, samples_per_packet) in enumerate(entries):
            sensor = EmulatedSensor(identity, _source(source, identity), samples_per_packet=samples_per_packet)
            self.sensors[identity.serial] = BumbleSensor(
                sensor, self.link, _SENSOR_ADDRESSES[index], max_mtu=mtu, switched_on=identity != MTU_TEST_IDENTITY
            )
        self._tasks: list[asyncio.Task[None]] = []
        self.vhci_controller: Controller | None = None

    def by_placement_or_serial(self, key: str) -> BumbleSensor:
        if key in self.sensors:
            return self.sensors[key]
        for s in self.sensors.values():
            if s.placement == key and s.serial != MTU_TEST_IDENTITY.serial:
                return s
        raise KeyError(f"no sensor {key!r}; have {sorted(self.sensors)}")

    async def attach_vhci(self, path: str = "/dev/vhci") -> None:
        """Give the kernel a Bluetooth controller on this link through the vhci device at `path`."""
        from bumble.transport.vhci import open_vhci_transport

        transport = await open_vhci_transport(path)
        self.vhci_controller = legacy_controller(
            "vhci",
            self.link,
            host_source=transport.source,
            host_sink=transport.sink,
            public_address=VHCI_PUBLIC_ADDRESS,
        )

    async def start(self) -> None:
        for s in self.sensors.values():
            await s.start()
            self._tasks.append(asyncio.create_task(s.stream(), name=f"stream-{s.serial}"))

    async def stop(self) -> None:
        await stop_tasks(self._tasks)

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request.get("cmd")
        if cmd == "drop":
            dropped, t_ns = await self.by_placement_or_serial(str(request["sensor"])).drop_link()
            return {"dropped": dropped, "t_ns": t_ns}
        if cmd == "stats":
            return {"sensors": {serial: s.stats() for serial, s in self.sensors.items()}}
        if cmd == "power":
            sensor = self.by_placement_or_serial(str(request["sensor"]))
            await sensor.power(bool(request["on"]))
            return {"serial": sensor.serial, "switched_on": sensor.switched_on}
        if cmd == "set_max_mtu":
            sensor = self.by_placement_or_serial(str(request["sensor"]))
            sensor.set_max_mtu(int(request["mtu"]))
            return {"serial": sensor.serial, "max_mtu": sensor.max_mtu}
        raise ValueError(f"unknown command {cmd!r}")

    async def serve_control(self, socket_path: str) -> asyncio.AbstractServer:
        """JSON-line control on a Unix socket: one request per line, one reply per line."""

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while line := await reader.readline():
                    try:
                        reply = await self.handle(json.loads(line))
                    except Exception as exc:
                        reply = {"error": f"{type(exc).__name__}: {exc}"}
                    writer.write(json.dumps(reply).encode() + b"\n")
                    await writer.drain()
            finally:
                writer.close()

        return await asyncio.start_unix_server(client, socket_path)


def _source(kind: str, identity: SensorIdentity) -> SampleSource:
    if kind == "sine":
        return SineSource(phase_rad=identity.boot_epoch % 7)
    return StillSource(seed=identity.boot_epoch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m testing.ble_peripheral.bumble_kit", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--vhci", default="/dev/vhci", help="vhci device the kernel's controller is made on")
    parser.add_argument("--control", required=True, help="Unix socket path for the JSON-line control")
    parser.add_argument("--motion", choices=("still", "sine"), default="still")
    parser.add_argument("--small-mtu-sensor", type=int, default=None, metavar="MTU")
    parser.add_argument("--samples-per-packet", type=int, default=1, help="initial samples per packet (1..19)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        kit = BumbleKit(source=args.motion, small_mtu=args.small_mtu_sensor, samples_per_packet=args.samples_per_packet)
        await kit.attach_vhci(args.vhci)
        await kit.start()
        server = await kit.serve_control(args.control)
        print("READY", flush=True)
        await stop.wait()
        server.close()
        await kit.stop()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
