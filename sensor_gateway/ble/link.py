"""One pinned sensor's BLE link, run as a task on the transport's event loop: find -> connect -> set up ->
(stream) -> supervise -> clean up -> back off -> again, until the gateway disconnects it.

The real libraries are wired here and only here: `bleak` (scan, client, notifications) and
`bleak_retry_connector.establish_connection` (bounded connect attempts, stale-connection cleanup). Pairing uses
them through the two small functions below, `scan_by_service` and `read_sensor_info`, so no other module of the
product imports bleak.

Set-up (SPEC section 9), every BLE operation holding the adapter's lock (one at a time per adapter): find the
pinned address by a short scan, connect, read the ATT MTU BlueZ negotiated, read the sensor info (serial and
placement must match the pin), subscribe to control then IMU data, adapt the batch size to the MTU
(SET_SAMPLES_PER_PACKET, or refuse with `MtuRefused`), read the battery. Then a LinkEvent "connected" with the
fresh info (a new boot epoch tells the gateway the sensor rebooted), and streaming resumes on its own if the
gateway had asked for it.

Callbacks only convert and enqueue: an IMU notification becomes a `PacketEvent` (bytes + host arrival time)
in the gateway's bounded `EventQueue` (full: counted and logged there); a control notification goes to this
link's bounded reply queue. The watchdog treats a streaming sensor with no notification for
`silence_limit_s` as lost. Times: host monotonic seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak_retry_connector import close_stale_connections_by_address, establish_connection

from firmware_protocol.control import (
    Command,
    Reply,
    SetSamplesPerPacket,
    StartStreaming,
    Status,
    StopStreaming,
    TimeSyncReply,
    TimeSyncRequest,
    decode_reply,
    encode_control,
)
from firmware_protocol.errors import CommandRejected, ProtocolError
from firmware_protocol.gatt import BATTERY_LEVEL_UUID, CONTROL_UUID, IMU_DATA_UUID, SENSOR_INFO_UUID
from firmware_protocol.packet import samples_per_packet_for_mtu
from firmware_protocol.sensor_info import SensorInfo, decode_sensor_info
from sensor_gateway.ble.config import BleConfig, PairedSensor
from sensor_gateway.ble.errors import (
    CommandFailed,
    LinkLost,
    SensorNotFound,
    SensorSilent,
    WrongSensor,
    classify,
    retry_delay_s,
)
from sensor_gateway.timing.host_clock import HostClock
from sensor_gateway.transport.base import EventQueue, LinkEvent, PacketEvent, TimeSyncEvent

__all__ = ["Advertisement", "LinkStats", "SensorLink", "read_sensor_info", "scan_by_service"]

log = logging.getLogger(__name__)

_REPLY_QUEUE = 16
_DEFAULT_MTU = 23


@dataclass
class LinkStats:
    """Counters of one link (read by status / benches; written on the loop thread only)."""

    connects: int = 0
    attempts: int = 0
    losses: int = 0
    silent_losses: int = 0
    notifications: int = 0
    control_dropped: int = 0
    """Control replies dropped: reply queue full, or for another command."""
    last_error: str = ""
    mtu: int = 0
    samples_per_packet: int = 0
    errors: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Advertisement:
    """One device heard during a scan: what it advertised (its latest advertisement), and the handle to connect
    to it as scanned."""

    address: str
    """Upper case."""
    local_name: str | None
    rssi: int
    service_uuids: tuple[str, ...]
    device: BLEDevice = field(repr=False, compare=False)
    """bleak's device as scanned: only `read_sensor_info` uses it (connecting to it needs no second scan)."""


async def scan_by_service(adapter: str, service_uuid: str, scan_s: float) -> dict[str, Advertisement]:
    """The devices advertising `service_uuid` on `adapter` during `scan_s` seconds, by upper-case address."""
    seen: dict[str, Advertisement] = {}

    # callback: convert and keep the latest per address, nothing else
    def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
        if service_uuid in adv.service_uuids:
            address = device.address.upper()
            seen[address] = Advertisement(address, adv.local_name, adv.rssi, tuple(adv.service_uuids), device)

    async with BleakScanner(on_advertisement, service_uuids=[service_uuid], bluez={"adapter": adapter}):
        await asyncio.sleep(scan_s)
    return seen


async def read_sensor_info(config: BleConfig, sensor: Advertisement) -> SensorInfo:
    """Connect to a scanned sensor, read its sensor info, disconnect (a failed disconnect is only logged).
    Raises bleak's / bleak-retry-connector's errors, TimeoutError, or `ProtocolError` for an undecodable info
    (`errors.classify` maps them)."""
    async with asyncio.timeout(config.connect_timeout_s):
        client = await establish_connection(
            BleakClient, sensor.device, sensor.address, max_attempts=2, use_services_cache=False,
            bluez={"adapter": config.adapter},
        )  # fmt: skip
    try:
        async with asyncio.timeout(config.gatt_timeout_s):
            return decode_sensor_info(bytes(await client.read_gatt_char(SENSOR_INFO_UUID)))
    finally:
        try:
            async with asyncio.timeout(config.gatt_timeout_s):
                await client.disconnect()
        except Exception as exc:
            log.debug("sensor info read: disconnect %s: %s", sensor.address, exc)


async def _live_mtu(bus: Any, char: BleakGATTCharacteristic) -> tuple[Any, int | None]:
    """(bus, BlueZ's current MTU property of `char`, or None when it cannot be read). `bus`: a dbus-fast
    system-bus connection to reuse (None: one is made and returned)."""
    path = char.obj[0] if isinstance(char.obj, tuple) and char.obj and isinstance(char.obj[0], str) else None
    if path is None:
        return bus, None
    try:
        from dbus_fast import BusType, Message, MessageType
        from dbus_fast.aio import MessageBus

        if bus is None:
            bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        reply = await bus.call(
            Message(
                destination="org.bluez",
                path=path,
                interface="org.freedesktop.DBus.Properties",
                member="Get",
                signature="ss",
                body=["org.bluez.GattCharacteristic1", "MTU"],
            )
        )
    except Exception as exc:  # not BlueZ over dbus-fast (another backend), or the bus went away
        log.debug("live MTU read: %s", exc)
        return bus, None
    if reply is None or reply.message_type != MessageType.METHOD_RETURN:
        return bus, None
    return bus, int(reply.body[0].value)


class SensorLink:
    def __init__(
        self,
        pinned: PairedSensor,
        config: BleConfig,
        lock: asyncio.Lock,
        events: EventQueue,
        clock: HostClock,
    ) -> None:
        self.pinned = pinned
        self.placement = pinned.placement
        self.config = config
        self.lock = lock
        self.events = events
        self.clock = clock
        self.client: BleakClient | None = None
        self.info: SensorInfo | None = None
        self.battery_pct: int | None = None
        self.want_streaming = False
        self.streaming = False
        self.last_rx_s = 0.0
        """time.monotonic() of the last IMU notification (written by the callback)."""
        self.stats = LinkStats()
        self._lost = asyncio.Event()
        self._lost_reason = ""
        self._replies: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue(_REPLY_QUEUE)
        """Control notifications: (value, HostClock monotonic s at arrival)."""
        self.task: asyncio.Task[None] | None = None

    # -- callbacks: convert and enqueue, nothing else ---------------------------------------------------------
    def _on_imu(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        self.last_rx_s = time.monotonic()
        self.stats.notifications += 1
        self.events.put(PacketEvent(self.placement, self.clock.monotonic(), bytes(data)))

    def _on_control(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        try:
            self._replies.put_nowait((bytes(data), self.clock.monotonic()))
        except asyncio.QueueFull:
            self.stats.control_dropped += 1

    def _on_disconnect(self, _client: BleakClient) -> None:
        if not self._lost.is_set():
            self._lost_reason = self._lost_reason or "link lost (BlueZ reported a disconnect)"
            self._lost.set()

    # -- the link task ----------------------------------------------------------------------------------------
    @property
    def silence_limit_s(self) -> float:
        """Watchdog limit, s: the configured silence timeout, but never under 3 packet intervals."""
        info = self.info
        interval = info.samples_per_packet / info.sample_rate_hz if info else 0.0
        return max(self.config.silence_timeout_s, 3.0 * interval)

    async def run(self) -> None:
        """Connect and keep connected until cancelled; every outcome is a LinkEvent."""
        attempt = 0
        self.events.put(LinkEvent(self.placement, "connecting"))
        try:
            while True:
                self.stats.attempts += 1
                try:
                    await self._connect_once()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    err = classify(exc)
                    attempt += 1
                    self.stats.last_error = f"{type(err).__name__}: {err}"
                    self.stats.errors[type(err).__name__] = self.stats.errors.get(type(err).__name__, 0) + 1
                    await self._release()
                    delay = retry_delay_s(err, attempt, self.config.backoff)
                    if delay is None:
                        log.error("%s: sensor %s refused: %s", self.placement, self.pinned.serial, err)
                        self.events.put(LinkEvent(self.placement, "lost", reason=f"refused: {err}"))
                        return
                    log.info("%s: connect attempt %d failed (%s); retry in %.2f s", self.placement, attempt, err, delay)
                    await asyncio.sleep(delay)
                    continue
                attempt = 0
                self.stats.connects += 1
                self.events.put(LinkEvent(self.placement, "connected", self.info, self.battery_pct))
                if self.want_streaming:
                    await self._start_or_lose()
                reason, silent = await self._supervise()
                self.stats.losses += 1
                self.stats.silent_losses += int(silent)
                await self._release()
                log.warning("%s: %s", self.placement, reason)
                self.events.put(LinkEvent(self.placement, "lost", reason=reason))
                if silent:  # the pure rule says: at once for a first silence
                    delay = retry_delay_s(SensorSilent(reason), 1, self.config.backoff) or 0.0
                    await asyncio.sleep(delay)
                self.events.put(LinkEvent(self.placement, "connecting"))
        finally:
            await asyncio.shield(self._release())

    async def _connect_once(self) -> None:
        cfg = self.config
        self._lost.clear()
        self._lost_reason = ""
        self.streaming = False
        async with self.lock:
            device = await BleakScanner.find_device_by_address(
                self.pinned.address, timeout=cfg.scan_timeout_s, bluez={"adapter": cfg.adapter}
            )
            if device is None:
                raise SensorNotFound(f"{self.pinned.serial} ({self.pinned.address}) not advertising")
            await close_stale_connections_by_address(self.pinned.address)
            async with asyncio.timeout(cfg.connect_timeout_s):
                self.client = await establish_connection(
                    BleakClient,
                    device,
                    f"gaitsym-{self.pinned.serial}",
                    disconnected_callback=self._on_disconnect,
                    max_attempts=2,
                    use_services_cache=False,
                    bluez={"adapter": cfg.adapter},
                )
            client = self.client
            mtu = await self._negotiated_mtu(client)
            self.stats.mtu = mtu
            info = await self._read_info(client)
            if info.serial != self.pinned.serial or str(info.placement) != self.placement:
                raise WrongSensor(
                    f"{self.pinned.address} is {info.serial} ({info.placement}), pinned: "
                    f"{self.pinned.serial} ({self.placement}); pair again if the sensor was replaced"
                )
            # MtuTooSmall (refused) below 29 bytes, decided before subscribing: real bluetoothd 5.66 crashed on a
            # Disconnect while an AcquireNotify socket was open (tests/ble_vm)
            wanted = samples_per_packet_for_mtu(mtu)
            notify_args: Any = {"use_start_notify": cfg.use_start_notify}
            async with asyncio.timeout(cfg.gatt_timeout_s):
                await client.start_notify(CONTROL_UUID, self._on_control, bluez=notify_args)
                await client.start_notify(IMU_DATA_UUID, self._on_imu, bluez=notify_args)
            if cfg.samples_per_packet is not None:
                wanted = max(1, min(wanted, cfg.samples_per_packet))
            if info.samples_per_packet != wanted:
                await self._command_locked(StopStreaming())  # settings change only while stopped
                await self._command_locked(SetSamplesPerPacket(wanted))
                info = await self._read_info(client)
                if info.samples_per_packet != wanted:
                    raise CommandFailed(f"samples_per_packet is {info.samples_per_packet} after setting {wanted}")
            self.stats.samples_per_packet = info.samples_per_packet
            self.info = info
            self.battery_pct = await self._read_battery(client)
        if self._lost.is_set():
            raise LinkLost(self._lost_reason or "link lost during set-up")

    async def _negotiated_mtu(self, client: BleakClient) -> int:
        """ATT MTU in bytes, from the IMU characteristic's MTU property (BlueZ >= 5.62; bleak exposes it as
        max_write_without_response_size + 3). Re-read for up to mtu_wait_s while it still shows 23.

        bleak's copy of the property is updated only by PropertiesChanged signals, and real bluetoothd 5.66 sends
        none when a device connected before (pairing!) gets its GATT objects from its cache before the MTU
        exchange: bleak then shows 23 for good (tests/ble_vm). So while bleak shows 23, BlueZ's live value is
        asked for too (org.freedesktop.DBus.Properties.Get)."""
        char = client.services.get_characteristic(IMU_DATA_UUID)
        if char is None:
            raise WrongSensor(f"{self.pinned.address} has no gaitsym IMU data characteristic")
        deadline = time.monotonic() + self.config.mtu_wait_s
        bus: Any = None
        try:
            while True:
                mtu = int(char.max_write_without_response_size) + 3
                if mtu > _DEFAULT_MTU:
                    return mtu
                bus, live = await _live_mtu(bus, char)
                if live is not None and live > _DEFAULT_MTU:
                    return live
                if time.monotonic() >= deadline:
                    return mtu
                await asyncio.sleep(0.1)
        finally:
            if bus is not None:
                bus.disconnect()

    async def _read_info(self, client: BleakClient) -> SensorInfo:
        async with asyncio.timeout(self.config.gatt_timeout_s):
            data = await client.read_gatt_char(SENSOR_INFO_UUID)
        return decode_sensor_info(bytes(data))  # ProtocolError -> SensorInfoInvalid (refused)

    async def _read_battery(self, client: BleakClient) -> int | None:
        try:
            async with asyncio.timeout(self.config.gatt_timeout_s):
                data = await client.read_gatt_char(BATTERY_LEVEL_UUID)
        except Exception as exc:  # optional characteristic: never fail the link for it
            log.debug("%s: battery level unreadable: %s", self.placement, exc)
            return None
        return int(data[0]) if len(data) == 1 and data[0] <= 100 else None

    async def _supervise(self) -> tuple[str, bool]:
        """Wait until the link drops (reason, False) or the watchdog finds it silent (reason, True)."""
        period = max(0.05, self.silence_limit_s / 4)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), period)
            if self._lost.is_set():
                return self._lost_reason or "link lost", False
            if self.streaming:
                silent_s = time.monotonic() - self.last_rx_s
                if silent_s > self.silence_limit_s:
                    return f"connected but silent for {silent_s:.1f} s (watchdog): reconnecting", True

    async def _release(self) -> None:
        """Disconnect (if connected) and forget the client; never raises."""
        client, self.client = self.client, None
        self.streaming = False
        if client is None:
            return
        self._lost_reason = self._lost_reason or "disconnected by gateway"
        try:
            async with self.lock, asyncio.timeout(self.config.gatt_timeout_s):
                if not self.config.use_start_notify and client.is_connected:
                    # close the AcquireNotify sockets first: real bluetoothd 5.66 segfaulted on a Disconnect with
                    # one open (tests/ble_vm, docs/ble-real-bluez-findings.md)
                    for uuid in (IMU_DATA_UUID, CONTROL_UUID):
                        with contextlib.suppress(Exception):
                            await client.stop_notify(uuid)
                await client.disconnect()
        except Exception as exc:
            log.debug("%s: disconnect: %s", self.placement, exc)

    # -- commands ---------------------------------------------------------------------------------------------
    async def _command_locked(self, cmd: Command, attempts: int | None = None) -> Reply:
        """Write one command and wait for its reply (caller holds the lock). BUSY and a missing reply are
        retried up to command_attempts; other non-OK statuses raise CommandRejected (a gateway bug)."""
        return (await self._round_trip(cmd, attempts))[0]

    async def _round_trip(self, cmd: Command, attempts: int | None = None) -> tuple[Reply, float, float]:
        """(reply, HostClock s just before the write, HostClock s when the reply notification arrived)."""
        client = self.client
        if client is None:
            raise LinkLost("not connected")
        last: Exception | None = None
        for _ in range(max(1, attempts or self.config.command_attempts)):
            while not self._replies.empty():
                self._replies.get_nowait()
            sent_s = self.clock.monotonic()
            async with asyncio.timeout(self.config.gatt_timeout_s):
                await client.write_gatt_char(CONTROL_UUID, encode_control(cmd), response=True)
            try:
                reply, received_s = await self._await_reply(cmd)
            except TimeoutError as exc:
                last = CommandFailed(f"no reply to {type(cmd).__name__} within {self.config.command_timeout_s} s")
                last.__cause__ = exc
                continue
            if reply.status == Status.OK:
                return reply, sent_s, received_s
            if reply.status == Status.BUSY:
                last = CommandFailed(f"{type(cmd).__name__}: sensor BUSY")
                await asyncio.sleep(0.1)
                continue
            raise CommandRejected(reply.opcode, reply.status, f"{type(cmd).__name__}: {Status(reply.status).name}")
        assert last is not None
        raise last

    async def _await_reply(self, cmd: Command) -> tuple[Reply, float]:
        async with asyncio.timeout(self.config.command_timeout_s):
            while True:
                data, received_s = await self._replies.get()
                try:
                    reply = decode_reply(data)
                except ProtocolError:
                    self.stats.control_dropped += 1
                    continue
                if reply.opcode != cmd.opcode or (
                    isinstance(cmd, TimeSyncRequest)
                    and isinstance(reply, TimeSyncReply)
                    and reply.request_id != cmd.request_id
                ):
                    self.stats.control_dropped += 1
                    continue
                return reply, received_s

    async def command(self, cmd: Command) -> Reply:
        async with self.lock:
            return await self._command_locked(cmd)

    async def _start_or_lose(self) -> None:
        try:
            await self.command(StartStreaming())
        except Exception as exc:
            log.warning("%s: START_STREAMING failed: %s", self.placement, exc)
            self._lost_reason = f"START_STREAMING failed: {classify(exc)}"
            self._lost.set()
            return
        self.last_rx_s = time.monotonic()
        self.streaming = True

    async def start_streaming(self) -> None:
        self.want_streaming = True
        if self.client is not None and not self.streaming:
            await self._start_or_lose()

    async def stop_streaming(self) -> None:
        self.want_streaming = False
        self.streaming = False
        if self.client is not None:
            try:
                await self.command(StopStreaming())
            except Exception as exc:
                log.warning("%s: STOP_STREAMING failed: %s", self.placement, exc)

    async def time_sync(self, request_id: int) -> TimeSyncEvent:
        """One TIME_SYNC round trip (one attempt: the gateway asks again): sent_s read just before the write,
        received_s in the reply's callback (HostClock monotonic s); timestamp_us None on failure."""
        sent_s = self.clock.monotonic()
        try:
            async with self.lock:
                reply, sent_s, received_s = await self._round_trip(TimeSyncRequest(request_id & 0xFFFFFFFF), 1)
        except Exception as exc:
            log.debug("%s: TIME_SYNC %d failed: %s", self.placement, request_id, exc)
            return TimeSyncEvent(self.placement, request_id, sent_s, self.clock.monotonic(), None)
        ts = reply.timestamp_us if isinstance(reply, TimeSyncReply) else None
        return TimeSyncEvent(self.placement, request_id, sent_s, received_s, ts)
