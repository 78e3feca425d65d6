"""The central side inside the BLE VM: the real bleak talking to the real bluetoothd over D-Bus.

Scenario (writes every figure to --out as JSON; the pytest test asserts on it):
1. power the adapter on, scan for the gaitsym service until the three sensors and the small-MTU one are seen;
2. connect the three sensors one after another; per sensor (SPEC.md section 9): read the sensor info, subscribe
   to the control replies and IMU data, write START_STREAMING and wait for its OK reply;
3. stream for --stream-s seconds; every notification is decoded with firmware_protocol; gaps by sequence;
4. the pelvis sensor drops the link (Bumble disconnects, via the kit's control socket): measure the time to
   bleak's disconnected_callback; reconnect, set it up again, stream on for --stream-s seconds;
5. STOP_STREAMING on all three, compare what arrived with what each sensor sent, disconnect;
6. MTU truncation: connect the sensor whose GATT server negotiates at most --small-mtu bytes and streams 10
   samples per packet; its notifications arrive cut to MTU - 3 bytes and the decoder rejects each as a typed
   error; then SET_SAMPLES_PER_PACKET with samples_per_packet_for_mtu(MTU) makes the packets fit.
Times are CLOCK_MONOTONIC (shared with the kit process in the same VM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from firmware_protocol.control import (
    Command,
    SetSamplesPerPacket,
    StartStreaming,
    StopStreaming,
    check_reply,
    decode_reply,
    encode_control,
)
from firmware_protocol.errors import ProtocolError
from firmware_protocol.gatt import (
    CONTROL_UUID,
    IMU_DATA_UUID,
    SENSOR_INFO_UUID,
    SERVICE_UUID,
    serial_from_advertised_name,
)
from firmware_protocol.packet import decode_packet, packet_length, samples_per_packet_for_mtu
from firmware_protocol.sensor_info import decode_sensor_info

KIT_SERIALS = ("GS1-PLV-0001", "GS1-LTH-0002", "GS1-RTH-0003")
MTU_SERIAL = "GS1-MTU-0004"


def now_ns() -> int:
    return time.monotonic_ns()


def say(what: str) -> None:
    print(f"{time.monotonic():.3f} {what}", flush=True)


async def kit_call(socket_path: str, **request: Any) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(socket_path)
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        reply: dict[str, Any] = json.loads(await reader.readline())
    finally:
        writer.close()
    if "error" in reply:
        raise RuntimeError(f"kit: {reply['error']}")
    return reply


async def power_on_adapter(timeout_s: float = 60.0) -> str:
    """Wait for bluetoothd to show an adapter, power it on, return its object path."""
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            reply = await bus.call(
                Message(
                    destination="org.bluez",
                    path="/",
                    interface="org.freedesktop.DBus.ObjectManager",
                    member="GetManagedObjects",
                )
            )
            if reply is not None and reply.message_type == MessageType.METHOD_RETURN:
                adapters = [p for p, ifaces in reply.body[0].items() if "org.bluez.Adapter1" in ifaces]
                if adapters:
                    path = sorted(adapters)[0]
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("bluetoothd showed no adapter")
            await asyncio.sleep(0.2)
        while True:
            reply = await bus.call(
                Message(
                    destination="org.bluez",
                    path=path,
                    interface="org.freedesktop.DBus.Properties",
                    member="Set",
                    signature="ssv",
                    body=["org.bluez.Adapter1", "Powered", Variant("b", True)],
                )
            )
            if reply is not None and reply.message_type == MessageType.METHOD_RETURN:
                return path
            if time.monotonic() > deadline:
                raise RuntimeError(f"cannot power {path} on: {reply.body if reply else None}")
            await asyncio.sleep(0.2)
    finally:
        bus.disconnect()


async def scan(serials: set[str], timeout_s: float) -> dict[str, BLEDevice]:
    found: dict[str, BLEDevice] = {}
    done = asyncio.Event()

    def seen(device: BLEDevice, adv: Any) -> None:
        serial = serial_from_advertised_name(adv.local_name or device.name)
        if serial in serials and serial not in found:
            found[serial] = device
            if set(found) >= serials:
                done.set()

    async with BleakScanner(seen, service_uuids=[SERVICE_UUID]):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout_s)
    if set(found) < serials:
        raise RuntimeError(f"scan found {sorted(found)} of {sorted(serials)}")
    return found


@dataclass
class Session:
    """One link's worth of IMU notifications."""

    received: int = 0
    samples: int = 0
    gaps: int = 0
    samples_lost: int = 0
    decode_errors: dict[str, int] = field(default_factory=dict)
    lengths: set[int] = field(default_factory=set)
    first_sequence: int | None = None
    next_sequence: int | None = None
    sample_counts: set[int] = field(default_factory=set)

    def on_packet(self, data: bytes) -> None:
        self.received += 1
        self.lengths.add(len(data))
        try:
            packet = decode_packet(data)
        except ProtocolError as exc:
            name = type(exc).__name__
            self.decode_errors[name] = self.decode_errors.get(name, 0) + 1
            return
        self.samples += packet.sample_count
        self.sample_counts.add(packet.sample_count)
        if self.first_sequence is None:
            self.first_sequence = packet.sequence
        elif packet.sequence != self.next_sequence:
            self.gaps += 1
            self.samples_lost += (packet.sequence - (self.next_sequence or 0)) % 2**32
        self.next_sequence = packet.next_sequence

    def summary(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "samples": self.samples,
            "gaps": self.gaps,
            "samples_lost": self.samples_lost,
            "decode_errors": self.decode_errors,
            "lengths": sorted(self.lengths),
            "sample_counts": sorted(self.sample_counts),
            "first_sequence": self.first_sequence,
            "next_sequence": self.next_sequence,
        }


class SensorLink:
    """bleak client for one sensor with the gaitsym connection sequence."""

    def __init__(self, serial: str, device: BLEDevice) -> None:
        self.serial = serial
        self.device = device
        self.client: BleakClient | None = None
        self.sessions: list[Session] = []
        self.disconnected_at_ns: list[int] = []
        self.disconnected = asyncio.Event()
        self._replies: asyncio.Queue[bytes] = asyncio.Queue()
        self.info: dict[str, Any] = {}
        self.mtu = 23
        self.connect_s: list[float] = []

    def _on_disconnect(self, _client: BleakClient) -> None:
        self.disconnected_at_ns.append(now_ns())
        self.disconnected.set()

    def _char(self, uuid: str) -> BleakGATTCharacteristic:
        assert self.client is not None
        char = self.client.services.get_characteristic(uuid)
        if char is None:
            raise RuntimeError(f"{self.serial}: no characteristic {uuid}")
        return char

    async def connect(self) -> None:
        t0 = time.monotonic()
        self.disconnected.clear()
        self.client = BleakClient(self.device, disconnected_callback=self._on_disconnect, timeout=30.0)
        say(f"{self.serial}: connecting")
        await self.client.connect()
        say(f"{self.serial}: connected")
        self.connect_s.append(round(time.monotonic() - t0, 3))
        imu = self._char(IMU_DATA_UUID)
        for _ in range(50):  # the MTU exchange may still be under way right after the connection
            if imu.max_write_without_response_size != 20:
                break
            await asyncio.sleep(0.1)
        self.mtu = imu.max_write_without_response_size + 3
        await self.read_info()
        session = Session()
        self.sessions.append(session)
        await self.client.start_notify(CONTROL_UUID, lambda _c, data: self._replies.put_nowait(bytes(data)))
        await self.start_imu(session)

    async def start_imu(self, session: Session) -> None:
        """IMU notifications through BlueZ's AcquireNotify (a socket per characteristic): at 3 x 100
        notifications/s under software emulation, one D-Bus signal each (StartNotify) is too much CPU."""
        assert self.client is not None
        await self.client.start_notify(
            IMU_DATA_UUID, lambda _c, data: session.on_packet(bytes(data)), bluez={"use_start_notify": False}
        )

    async def read_info(self) -> None:
        assert self.client is not None
        info = decode_sensor_info(await self.client.read_gatt_char(SENSOR_INFO_UUID))
        self.info = {"serial": info.serial, "placement": str(info.placement), "spp": info.samples_per_packet}

    async def command(self, cmd: Command, timeout_s: float = 10.0) -> None:
        assert self.client is not None
        while not self._replies.empty():
            self._replies.get_nowait()
        await self.client.write_gatt_char(CONTROL_UUID, encode_control(cmd), response=True)
        while True:
            reply = decode_reply(await asyncio.wait_for(self._replies.get(), timeout_s))
            if reply.opcode == cmd.opcode:
                check_reply(reply)
                return

    async def disconnect(self) -> None:
        if self.client is not None:
            # release the AcquireNotify socket first: bluetoothd 5.66 crashed once on a Disconnect with it open
            with contextlib.suppress(Exception):
                await self.client.stop_notify(IMU_DATA_UUID)
            await self.client.disconnect()


async def scenario(args: argparse.Namespace, out: dict[str, Any]) -> None:
    t0 = time.monotonic()
    out["adapter"] = await power_on_adapter()
    out["t_adapter_s"] = round(time.monotonic() - t0, 2)
    devices = await scan({*KIT_SERIALS, MTU_SERIAL}, timeout_s=60.0)
    out["t_scan_s"] = round(time.monotonic() - t0, 2)
    links = {serial: SensorLink(serial, devices[serial]) for serial in KIT_SERIALS}
    for link in links.values():
        await link.connect()
    for link in links.values():
        await link.command(StartStreaming())
    out["t_streaming_s"] = round(time.monotonic() - t0, 2)
    stream_start = time.monotonic()
    await asyncio.sleep(args.stream_s)

    pelvis = links[KIT_SERIALS[0]]
    say("streamed; dropping the pelvis link")
    drop = await kit_call(args.kit, cmd="drop", sensor=pelvis.serial)
    await asyncio.wait_for(pelvis.disconnected.wait(), 30.0)
    out["drop"] = {
        "dropped": drop["dropped"],
        "latency_ms": round((pelvis.disconnected_at_ns[-1] - drop["t_ns"]) / 1e6, 2),
    }
    say("disconnected_callback fired")
    t_reconnect = time.monotonic()
    await pelvis.connect()
    await pelvis.command(StartStreaming())
    out["drop"]["reconnect_s"] = round(time.monotonic() - t_reconnect, 2)
    await asyncio.sleep(args.stream_s)

    for link in links.values():
        await link.command(StopStreaming())
    stream_s = time.monotonic() - stream_start
    await asyncio.sleep(0.5)  # anything still in flight
    stats = (await kit_call(args.kit, cmd="stats"))["sensors"]
    out["stream_wall_s"] = round(stream_s, 2)
    out["sensors"] = {}
    for serial, link in links.items():
        out["sensors"][serial] = {
            "info": link.info,
            "mtu": link.mtu,
            "connect_s": link.connect_s,
            "sessions": [s.summary() for s in link.sessions],
            "received": sum(s.received for s in link.sessions),
            "sent": stats[serial]["notifications_sent"],
            "sensor_sequence": stats[serial]["sequence"],
            "links": stats[serial]["links"],
        }
    for link in links.values():
        await link.disconnect()

    # -- MTU truncation ------------------------------------------------------------------------------------
    # scan again: bluetoothd forgets a device it only saw in a scan ~30 s after the scan ended
    small = SensorLink(MTU_SERIAL, (await scan({MTU_SERIAL}, timeout_s=60.0))[MTU_SERIAL])
    await small.connect()
    mtu_out: dict[str, Any] = {"mtu": small.mtu, "spp_before": small.info["spp"]}
    mtu_out["packet_bytes_before"] = packet_length(small.info["spp"])
    await small.command(StartStreaming())
    await asyncio.sleep(1.0)
    await small.command(StopStreaming())
    await asyncio.sleep(0.3)
    spp = samples_per_packet_for_mtu(small.mtu)
    await small.command(SetSamplesPerPacket(spp))
    await small.read_info()
    mtu_out["spp_after"] = small.info["spp"]
    mtu_out["packet_bytes_after"] = packet_length(spp)
    fitted = Session()
    small.sessions.append(fitted)
    assert small.client is not None
    await small.client.stop_notify(IMU_DATA_UUID)
    await small.start_imu(fitted)
    await small.command(StartStreaming())
    await asyncio.sleep(1.0)
    await small.command(StopStreaming())
    await asyncio.sleep(0.3)
    mtu_out["truncated"] = small.sessions[0].summary()
    mtu_out["fitted"] = fitted.summary()
    await small.disconnect()
    out["mtu_test"] = mtu_out
    out["t_total_s"] = round(time.monotonic() - t0, 2)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kit", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--stream-s", type=float, default=5.0)
    parser.add_argument("--small-mtu", type=int, default=65)
    parser.add_argument("--boot-uptime-file")
    args = parser.parse_args()
    out: dict[str, Any] = {"ok": False, "stream_s": args.stream_s, "rate_hz": 100}
    if args.boot_uptime_file:
        out["vm"] = {
            "boot_to_stage2_s": float(Path(args.boot_uptime_file).read_text()),
            "central_start_uptime_s": float(Path("/proc/uptime").read_text().split()[0]),
        }
    try:
        asyncio.run(scenario(args, out))
        out["ok"] = True
    except Exception:
        out["error"] = traceback.format_exc()
        traceback.print_exc()
    if "vm" in out:
        out["vm"]["end_uptime_s"] = float(Path("/proc/uptime").read_text().split()[0])
    Path(args.out).write_text(json.dumps(out, indent=1, default=sorted))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
