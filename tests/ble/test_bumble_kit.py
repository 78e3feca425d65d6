"""The Bumble kit (the BLE VM test's peripherals) in process: a Bumble central on the kit's own link streams from
the pelvis sensor, the sensor drops the link, and a new link streams again where the sequence left off.

Fast and without a VM: what the kit itself does (GATT server, control replies, packet pacing, the sensor-side
drop); the VM test (tests/ble_vm) runs the same kit against the real kernel and bluetoothd."""

from __future__ import annotations

import asyncio

import pytest
from bumble import hci
from bumble.core import UUID
from bumble.device import Connection, Device, Peer
from bumble.host import Host
from bumble.transport.common import AsyncPipeSink

from firmware_protocol.control import ControlReply, Opcode, StartStreaming, decode_reply, encode_control
from firmware_protocol.gatt import PROFILE
from firmware_protocol.packet import ImuPacket, decode_packet
from testing.ble_peripheral.bumble_kit import BumbleKit
from testing.ble_peripheral.bumble_link import legacy_controller

pytestmark = pytest.mark.timeout(60)

WANTED = 20
"""Packets each link must deliver (a fifth of a second at 100 Hz)."""


def _uuid(name: str) -> UUID:
    return UUID(next(c.uuid for s in PROFILE.services for c in s.characteristics if c.name == name))


async def _stream(central: Device, address: str) -> tuple[Connection, list[ImuPacket], list[bytes]]:
    """Connect, subscribe, START: the first `WANTED` packets decoded, and the control replies."""
    connection = await central.connect(hci.Address(address))
    peer = Peer(connection)
    await peer.request_mtu(247)  # a real central's exchange: the default 23 bytes cut every packet short
    await peer.discover_services()
    await peer.discover_characteristics()
    imu = peer.get_characteristics_by_uuid(_uuid("imu_data"))[0]
    control = peer.get_characteristics_by_uuid(_uuid("control"))[0]
    packets: list[ImuPacket] = []
    replies: list[bytes] = []
    enough = asyncio.Event()

    def on_packet(value: bytes) -> None:
        packets.append(decode_packet(bytes(value)))
        if len(packets) >= WANTED:
            enough.set()

    await peer.subscribe(imu, on_packet)
    await peer.subscribe(control, lambda value: replies.append(bytes(value)))
    await peer.write_value(control, encode_control(StartStreaming()), with_response=True)
    await asyncio.wait_for(enough.wait(), 20.0)
    return connection, packets[:WANTED], replies


def test_a_link_dropped_by_the_sensor_streams_again_on_the_next_link_where_the_sequence_left_off() -> None:
    async def body() -> None:
        kit = BumbleKit()
        await kit.start()
        try:
            controller = legacy_controller("central", kit.link)
            central = Device(
                name="central",
                address=hci.Address("F0:00:00:00:00:01"),
                host=Host(controller, AsyncPipeSink(controller)),
            )
            await central.power_on()
            pelvis = kit.by_placement_or_serial("pelvis")

            _, first, replies = await _stream(central, pelvis.address)
            assert [decode_reply(r) for r in replies] == [ControlReply(Opcode.START_STREAMING)]
            assert [p.sequence for p in first] == list(range(first[0].sequence, first[0].sequence + WANTED))

            reply = await kit.handle({"cmd": "drop", "sensor": "pelvis"})
            assert reply["dropped"] == 1
            while pelvis.connection is not None:  # the disconnection reaches the sensor's side
                await asyncio.sleep(0.01)
            assert not pelvis.sensor.streaming  # link loss stops streaming, as on the firmware
            last_sent = pelvis.sensor.sequence

            _, again, _ = await _stream(central, pelvis.address)
            assert again[0].sequence >= last_sent  # same boot: the sequence goes on
            assert [p.sequence for p in again] == list(range(again[0].sequence, again[0].sequence + WANTED))
            assert pelvis.stats()["links"] == 2 and pelvis.notify_failures == 0
        finally:
            await kit.stop()
        assert kit._tasks == []

    asyncio.run(body())
