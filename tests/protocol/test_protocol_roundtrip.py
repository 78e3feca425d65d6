"""Round trips (encode then decode gives the same object) and the pure helpers: wrap arithmetic, MTU rules."""

from __future__ import annotations

import math
import sys

import pytest
from fp_testlib import crc16_reference
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocol import control
from firmware_protocol.errors import InvalidField, MtuTooSmall, ProtocolError, UnsupportedVersion
from firmware_protocol.packet import (
    MIN_MTU,
    ImuPacket,
    PacketFlags,
    decode_packet,
    encode_packet,
    max_samples_for_mtu,
    packet_length,
    samples_per_packet_for_mtu,
)
from firmware_protocol.sensor_info import Placement, SensorInfo, decode_sensor_info, encode_sensor_info
from firmware_protocol.wire import ACC_RANGES_G, GYR_RANGES_DPS, seq_distance, unwrap_u32

U32 = st.integers(0, 2**32 - 1)
INT16 = st.integers(-32768, 32767)
FAST = settings(max_examples=200, deadline=None, database=None)

samples_st = st.lists(st.tuples(INT16, INT16, INT16, INT16, INT16, INT16), min_size=1, max_size=19).map(tuple)
packets = st.builds(
    ImuPacket,
    flags=st.integers(0, 7).map(PacketFlags),
    sequence=U32,
    timestamp_us=U32,
    acc_range_g=st.sampled_from(ACC_RANGES_G),
    gyr_range_dps=st.sampled_from(GYR_RANGES_DPS),
    samples=samples_st,
)
serials = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=16)
infos = st.builds(
    SensorInfo,
    placement=st.sampled_from(Placement),
    sample_rate_hz=st.integers(1, 1000),
    acc_range_g=st.sampled_from(ACC_RANGES_G),
    gyr_range_dps=st.sampled_from(GYR_RANGES_DPS),
    samples_per_packet=st.integers(1, 19),
    firmware_version=st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
    boot_epoch=U32,
    serial=serials,
)
commands = st.one_of(
    st.just(control.StartStreaming()),
    st.just(control.StopStreaming()),
    st.builds(control.SetSampleRate, st.integers(1, 1000)),
    st.builds(control.SetSamplesPerPacket, st.integers(1, 19)),
    st.builds(control.TimeSyncRequest, U32),
    st.builds(control.SetPlacement, st.sampled_from(Placement)),
)
statuses = st.sampled_from(control.Status)
replies = st.one_of(
    st.builds(
        control.ControlReply,
        st.sampled_from([op for op in control.Opcode if op is not control.Opcode.TIME_SYNC_REQUEST]),
        statuses,
    ),
    st.builds(control.TimeSyncReply, request_id=U32, timestamp_us=U32, status=statuses),
)


@FAST
@given(packets)
def test_packet_round_trip(pkt: ImuPacket) -> None:
    data = encode_packet(pkt)
    assert len(data) == packet_length(pkt.sample_count) == 14 + 12 * pkt.sample_count
    assert int.from_bytes(data[-2:], "little") == crc16_reference(data[:-2])
    assert decode_packet(data) == pkt
    assert decode_packet(bytearray(data)) == pkt
    assert decode_packet(memoryview(data)) == pkt


@FAST
@given(infos)
def test_sensor_info_round_trip(info: SensorInfo) -> None:
    data = encode_sensor_info(info)
    assert len(data) == 30
    assert decode_sensor_info(data) == info
    assert SensorInfo.from_dict(info.to_dict()) == info


@FAST
@given(commands)
def test_command_round_trip(cmd: control.Command) -> None:
    data = control.encode_control(cmd)
    assert data[0] == cmd.opcode
    assert control.decode_control(data) == cmd
    assert control.command_from_dict(control.command_to_dict(cmd)) == cmd


@FAST
@given(replies)
def test_reply_round_trip(reply: control.Reply) -> None:
    data = control.encode_reply(reply)
    assert data[0] == 0x80 | reply.opcode
    assert len(data) == (10 if reply.opcode is control.Opcode.TIME_SYNC_REQUEST else 2)
    assert control.decode_reply(data) == reply
    assert control.reply_from_dict(control.reply_to_dict(reply)) == reply


def test_encoder_validates_like_decoder() -> None:
    good = ImuPacket(sequence=0, timestamp_us=0, acc_range_g=8, gyr_range_dps=2000, samples=((0,) * 6,))
    encode_packet(good)
    bad_cases: list[tuple[dict[str, object], type[ProtocolError], str]] = [
        ({"protocol_version": 2}, UnsupportedVersion, "protocol_version"),
        ({"flags": 0x08}, InvalidField, "flags"),
        ({"samples": ()}, InvalidField, "sample_count"),
        ({"samples": ((0,) * 6,) * 20}, InvalidField, "sample_count"),
        ({"samples": ((0, 0, 0, 0, 0, 32768),)}, InvalidField, "samples"),
        ({"samples": ((0, 0, 0),)}, InvalidField, "samples"),
        ({"acc_range_g": 3}, InvalidField, "ranges"),
        ({"gyr_range_dps": 4000}, InvalidField, "ranges"),
        ({"sequence": 2**32}, InvalidField, "sequence"),
        ({"timestamp_us": -1}, InvalidField, "timestamp_us"),
    ]
    import dataclasses

    for change, error, field in bad_cases:
        with pytest.raises(error) as info:
            encode_packet(dataclasses.replace(good, **change))  # type: ignore[arg-type]
        assert info.value.field == field


def test_sensor_info_encoder_validates() -> None:
    good = SensorInfo(
        placement=Placement.PELVIS,
        sample_rate_hz=100,
        acc_range_g=8,
        gyr_range_dps=2000,
        samples_per_packet=10,
        firmware_version=(1, 0, 0),
        boot_epoch=1,
        serial="A",
    )
    import dataclasses

    for change, field in [
        ({"serial": ""}, "serial"),
        ({"serial": "é"}, "serial"),
        ({"serial": "x" * 17}, "serial"),
        ({"serial": "ab\0"}, "serial"),
        ({"sample_rate_hz": 0}, "sample_rate_hz"),
        ({"samples_per_packet": 20}, "samples_per_packet"),
        ({"placement": "elbow"}, "placement"),
        ({"firmware_version": (1, 256, 0)}, "firmware_version"),
        ({"boot_epoch": 2**32}, "boot_epoch"),
    ]:
        with pytest.raises(InvalidField) as info:
            encode_sensor_info(dataclasses.replace(good, **change))  # type: ignore[arg-type]
        assert info.value.field == field


def test_placement_strings_and_codes() -> None:
    assert [str(p) for p in Placement] == ["unassigned", "pelvis", "left_thigh", "right_thigh"]
    assert [p.code for p in Placement] == [0, 1, 2, 3]
    assert Placement.from_code(2) is Placement.LEFT_THIGH
    assert Placement("right_thigh").code == 3
    with pytest.raises(InvalidField):
        Placement.from_code(4)


def test_check_reply() -> None:
    ok = control.ControlReply(control.Opcode.START_STREAMING)
    assert control.check_reply(ok) is ok
    with pytest.raises(control.CommandRejected) as info:
        control.check_reply(control.TimeSyncReply(request_id=1, timestamp_us=0, status=control.Status.BUSY))
    assert info.value.opcode is control.Opcode.TIME_SYNC_REQUEST
    assert info.value.status is control.Status.BUSY
    assert "TIME_SYNC_REQUEST" in str(info.value) and "BUSY" in str(info.value)


def test_status_for_invalid_command() -> None:
    for data, status in [
        (b"\x09", control.Status.UNSUPPORTED),
        (b"\x03\x00\x00", control.Status.BAD_ARGUMENT),
        (b"\x01\x00", control.Status.BAD_ARGUMENT),
        (b"\x04", control.Status.BAD_ARGUMENT),
    ]:
        with pytest.raises(control.ProtocolError) as info:
            control.decode_control(data)
        assert control.status_for_invalid_command(info.value) is status


# --- wrap-safe arithmetic -----------------------------------------------------------------------------------


@FAST
@given(U32, st.integers(-(2**31), 2**31 - 1))
def test_seq_distance(a: int, d: int) -> None:
    assert seq_distance(a, (a + d) % 2**32) == d


@FAST
@given(st.integers(-(2**40), 2**40), st.integers(-(2**31), 2**31 - 1))
def test_unwrap_u32_recovers_the_step(prev: int, d: int) -> None:
    assert unwrap_u32(prev, (prev + d) % 2**32) == prev + d


@FAST
@given(U32, st.lists(st.integers(0, 2**31 - 1), max_size=50))
def test_unwrap_follows_a_counter_through_many_wraps(start: int, steps: list[int]) -> None:
    unwrapped, truth = start, start
    for step in steps:
        truth += step
        unwrapped = unwrap_u32(unwrapped, truth % 2**32)
        assert unwrapped == truth


def test_wrap_examples() -> None:
    assert unwrap_u32(0xFFFFFFF0, 0x00000005) == 0x1_0000_0005  # wrapped forward
    assert unwrap_u32(0x1_0000_0005, 0xFFFFFFF0) == 0xFFFFFFF0  # a late packet from before the wrap
    assert unwrap_u32(100, 100) == 100
    assert unwrap_u32(0, 2**31) == -(2**31)  # exactly half way counts as behind
    assert unwrap_u32(0, 2**31 - 1) == 2**31 - 1
    assert seq_distance(0xFFFFFFFF, 0) == 1
    assert seq_distance(0, 0xFFFFFFFF) == -1
    assert seq_distance(0, 2**31) == -(2**31)
    with pytest.raises(ValueError):
        unwrap_u32(0, 2**32)
    pkt = ImuPacket(sequence=0xFFFFFFFE, timestamp_us=0, acc_range_g=2, gyr_range_dps=125, samples=((0,) * 6,) * 5)
    assert pkt.next_sequence == 3
    assert seq_distance(pkt.next_sequence, 3) == 0  # contiguous
    assert seq_distance(pkt.next_sequence, 10) == 7  # 7 samples lost


# --- MTU ------------------------------------------------------------------------------------------------------


def test_mtu_rules() -> None:
    assert MIN_MTU == 29
    assert max_samples_for_mtu(23) == 0
    assert max_samples_for_mtu(28) == 0
    assert max_samples_for_mtu(29) == 1
    assert max_samples_for_mtu(100) == 6
    assert max_samples_for_mtu(247) == 19
    assert max_samples_for_mtu(517) == 19
    for mtu in range(MIN_MTU, 600):
        n = max_samples_for_mtu(mtu)
        assert 1 <= n <= 19
        assert packet_length(n) <= mtu - 3
        assert n == 19 or packet_length(n + 1) > mtu - 3
    assert samples_per_packet_for_mtu(185) == 14
    with pytest.raises(MtuTooSmall) as info:
        samples_per_packet_for_mtu(23)
    assert info.value.field == "mtu"
    assert "23" in str(info.value) and "29" in str(info.value)


# --- physical units and speed ---------------------------------------------------------------------------------


def test_to_physical() -> None:
    pkt = ImuPacket(
        sequence=0,
        timestamp_us=0,
        acc_range_g=8,
        gyr_range_dps=2000,
        samples=((4096, 0, -4096, 16384, -16384, 0), (0, 32767, 0, 0, 0, -32768)),
    )
    acc, gyr = pkt.to_physical()
    assert acc.shape == (2, 3) and gyr.shape == (2, 3)
    assert acc[0].tolist() == pytest.approx([9.80665, 0.0, -9.80665])
    assert gyr[0].tolist() == pytest.approx([1000.0, -1000.0, 0.0])
    assert gyr[1, 2] == pytest.approx(-2000.0)
    assert acc[1, 1] == pytest.approx(8 * 9.80665 * 32767 / 32768)
    assert pkt.sample_offsets_us(100) == (0.0, 10_000.0)
    assert math.isclose(pkt.acc_scale_mps2 * 4096, 9.80665)


def test_package_import_does_not_import_numpy() -> None:
    import subprocess

    code = (
        "import sys, firmware_protocol, firmware_protocol.cli, firmware_protocol.gatt;"
        "from firmware_protocol.cli import decode_hex;"
        "decode_hex(bytes.fromhex('0100014200000000000000000000000000100000000000009122'));"
        "sys.exit('numpy' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
