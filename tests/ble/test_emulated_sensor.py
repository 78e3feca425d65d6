"""The emulated sensor's firmware behaviour without any BLE stack (fake clock, ns)."""

from __future__ import annotations

from firmware_protocol.control import (
    ControlReply,
    Opcode,
    SetSampleRate,
    SetSamplesPerPacket,
    StartStreaming,
    Status,
    StopStreaming,
    TimeSyncReply,
    TimeSyncRequest,
    decode_reply,
    encode_control,
)
from firmware_protocol.errors import BadCrc
from firmware_protocol.packet import decode_packet
from firmware_protocol.sensor_info import Placement, decode_sensor_info
from testing.ble_peripheral import EmulatedSensor, SensorIdentity, SineSource
from testing.ble_peripheral.samples import to_counts


class FakeClock:
    def __init__(self) -> None:
        self.ns = 5_000_000_000

    def __call__(self) -> int:
        return self.ns


def _sensor(**kw: object) -> tuple[EmulatedSensor, FakeClock]:
    clock = FakeClock()
    ident = SensorIdentity(serial="T-1", placement=Placement.PELVIS, boot_epoch=9)
    return EmulatedSensor(ident, clock_ns=clock, **kw), clock  # type: ignore[arg-type]


def _cmd(sensor: EmulatedSensor, cmd: object) -> object:
    return decode_reply(sensor.handle_control(encode_control(cmd)))  # type: ignore[arg-type]


def test_packets_are_due_at_the_last_sample_and_contiguous() -> None:
    sensor, clock = _sensor(samples_per_packet=5)
    assert _cmd(sensor, StartStreaming()) == ControlReply(Opcode.START_STREAMING)
    assert sensor.next_due_ns() == clock.ns + 40_000_000  # 5th sample at 100 Hz
    clock.ns += 1_000_000_000
    out = sensor.take_due(clock.ns)
    packets = [decode_packet(p.data) for p in out]
    assert [p.sequence for p in packets] == list(range(0, 100, 5))
    # Booted and started streaming at the same instant: first sample at 0 µs of sensor clock, 50 ms per packet.
    assert [p.timestamp_us for p in packets][:3] == [0, 50_000, 100_000]


def test_busy_while_streaming_and_time_sync() -> None:
    sensor, clock = _sensor()
    _cmd(sensor, StartStreaming())
    assert _cmd(sensor, SetSampleRate(50)) == ControlReply(Opcode.SET_SAMPLE_RATE, Status.BUSY)
    assert _cmd(sensor, SetSamplesPerPacket(4)) == ControlReply(Opcode.SET_SAMPLES_PER_PACKET, Status.BUSY)
    clock.ns += 2_500_000
    reply = _cmd(sensor, TimeSyncRequest(7))
    assert reply == TimeSyncReply(request_id=7, timestamp_us=2_500)
    assert _cmd(sensor, StopStreaming()) == ControlReply(Opcode.STOP_STREAMING)
    assert sensor.next_due_ns() is None


def test_reboot_silence_and_malformed() -> None:
    sensor, clock = _sensor()
    sensor.start_streaming()
    clock.ns += 100_000_000
    assert len(sensor.take_due(clock.ns)) == 11  # samples at 0..100 ms inclusive
    sensor.silent = True
    clock.ns += 100_000_000
    assert sensor.take_due(clock.ns) == []
    sensor.silent = False
    sensor.inject_malformed("bad_crc")
    clock.ns += 10_000_000
    (bad,) = sensor.take_due(clock.ns)
    try:
        decode_packet(bad.data)
    except BadCrc:
        pass
    else:
        raise AssertionError("expected BadCrc")
    sensor.reboot()
    info = decode_sensor_info(sensor.sensor_info())
    assert info.boot_epoch == 10 and not sensor.streaming and sensor.sequence == 0


def test_to_counts_saturates_and_flags() -> None:
    counts, acc_sat, gyr_sat = to_counts((9.80665, 0.0, 1000.0, 10.0, 0.0, -5000.0), 8, 1000)
    assert counts[0] == 4096 and counts[2] == 32767 and counts[5] == -32768
    assert acc_sat and gyr_sat
    rows = SineSource().read(3, 100)
    assert len(rows) == 3
