"""Generate the golden vectors: imu_packet.json, sensor_info.json, control.json (deterministic).

Run ``python -m firmware_protocol.vectors.make_vectors`` after a deliberate change to the wire format and
commit the JSON. Valid vectors are ``{"name", "hex", "decoded"}``; malformed ones are ``{"name", "hex",
"error", "field"}`` where error is the exception class a decoder raises and field the SPEC field it names;
a malformed command also carries ``"reply"``, the hex of the one reply a sensor sends to it (SPEC.md section 8),
written out here by hand from the SPEC's table, not computed by the code under test.
Malformed bytes are built by hand (with a correct CRC unless the CRC is the point), so each one fails exactly
one check.
A test checks the committed files equal what this script produces.
"""

from __future__ import annotations

import binascii
import json
import struct
import sys
from pathlib import Path
from typing import Any

from firmware_protocol.control import (
    Command,
    ControlReply,
    Opcode,
    Reply,
    SetPlacement,
    SetSampleRate,
    SetSamplesPerPacket,
    StartStreaming,
    Status,
    StopStreaming,
    TimeSyncReply,
    TimeSyncRequest,
    UnsupportedOpcodeReply,
    command_to_dict,
    encode_control,
    encode_reply,
    reply_to_dict,
)
from firmware_protocol.packet import ImuPacket, PacketFlags, Sample, encode_packet
from firmware_protocol.sensor_info import Placement, SensorInfo, encode_sensor_info
from firmware_protocol.wire import crc16_ccitt_false

VECTORS_DIR = Path(__file__).resolve().parent
GENERATOR = "firmware_protocol/vectors/make_vectors.py"


# --- IMU data packets ---------------------------------------------------------------------------------------


def _walking_samples(n: int, start: int = 0) -> tuple[Sample, ...]:
    """Plausible raw counts (±8 g -> 4096 counts/g, ±2000 deg/s -> 16.384 counts/(deg/s)), integer-only."""
    out: list[Sample] = []
    for k in range(start, start + n):
        wobble = (k * 37) % 200 - 100
        out.append((wobble // 4, 120 - wobble // 8, 4096 + wobble, 3 * wobble, -2 * wobble, 16 + k % 7))
    return tuple(out)


def _packet(samples: tuple[Sample, ...], **kw: Any) -> ImuPacket:
    fields: dict[str, Any] = {
        "sequence": 1000,
        "timestamp_us": 10_000_000,
        "acc_range_g": 8,
        "gyr_range_dps": 2000,
    }
    fields.update(kw)
    return ImuPacket(samples=samples, **fields)


def _raw_packet(
    *,
    version: int = 1,
    flags: int = 0,
    count: int | None = None,
    ranges: int = 0x42,
    sequence: int = 1000,
    timestamp_us: int = 10_000_000,
    samples: tuple[Sample, ...] = ((0, 0, 4096, 0, 0, 0),),
    crc: int | None = None,
) -> bytes:
    """Packet bytes with any header values, even forbidden ones; crc=None computes the correct CRC."""
    n = len(samples) if count is None else count
    body = struct.pack("<BBBBII", version, flags, n, ranges, sequence, timestamp_us)
    body += b"".join(struct.pack("<6h", *s) for s in samples)
    return body + struct.pack("<H", crc16_ccitt_false(body) if crc is None else crc)


def _valid(name: str, data: bytes, decoded: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, **extra, "hex": data.hex(), "decoded": decoded}


def _bad(name: str, data: bytes, error: str, field: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, **extra, "hex": data.hex(), "error": error, "field": field}


def imu_packet_vectors() -> list[dict[str, Any]]:
    v: list[dict[str, Any]] = []

    def ok(name: str, pkt: ImuPacket) -> None:
        v.append(_valid(name, encode_packet(pkt), pkt.to_dict()))

    ok("one_sample_at_rest", _packet(((0, 0, 4096, 0, 0, 0),), sequence=0, timestamp_us=0))
    ok("typical_10_samples", _packet(_walking_samples(10)))
    ok("max_19_samples", _packet(_walking_samples(19), sequence=123_456, timestamp_us=1_234_567_890))
    ok("sequence_wraps_inside_packet", _packet(_walking_samples(5), sequence=0xFFFFFFFE))
    ok(
        "sequence_and_timestamp_max",
        _packet(_walking_samples(2), sequence=0xFFFFFFFF, timestamp_us=0xFFFFFFFF),
    )
    ok("timestamp_just_wrapped", _packet(_walking_samples(3), sequence=429_497, timestamp_us=5))
    ok(
        "acc_saturated",
        _packet(((32767, -32768, 4096, 0, 0, 0), (100, 0, 4096, 0, 0, 0)), flags=PacketFlags.ACC_SATURATED),
    )
    ok(
        "gyr_saturated",
        _packet(((0, 0, 4096, 32767, -32768, 0),), flags=PacketFlags.GYR_SATURATED),
    )
    ok("fifo_overflow", _packet(_walking_samples(4), flags=PacketFlags.FIFO_OVERFLOW, sequence=1042))
    ok(
        "all_flags",
        _packet(
            ((-32768, -32768, -32768, -32768, -32768, -32768), (32767, 32767, 32767, 32767, 32767, 32767)),
            flags=PacketFlags.ACC_SATURATED | PacketFlags.GYR_SATURATED | PacketFlags.FIFO_OVERFLOW,
        ),
    )
    ok("ranges_smallest_2g_125dps", _packet(((0, 0, 16384, 1, -1, 0),), acc_range_g=2, gyr_range_dps=125))
    ok("ranges_largest_16g_2000dps", _packet(((0, 0, 2048, 16, -16, 0),), acc_range_g=16, gyr_range_dps=2000))
    ok("ranges_4g_500dps", _packet(((0, 0, 8192, 65, -65, 0),), acc_range_g=4, gyr_range_dps=500))
    ok("ranges_8g_250dps", _packet(((0, 0, 4096, 131, -131, 0),), acc_range_g=8, gyr_range_dps=250))
    ok("ranges_16g_1000dps", _packet(((0, 0, 2048, 33, -33, 0),), acc_range_g=16, gyr_range_dps=1000))

    good = encode_packet(_packet(_walking_samples(10)))
    one = _raw_packet()
    v += [
        _bad("empty", b"", "TruncatedPacket", "protocol_version"),
        _bad("truncated_header_7_bytes", one[:7], "TruncatedPacket", "sequence"),
        _bad("truncated_header_11_bytes", one[:11], "TruncatedPacket", "timestamp_us"),
        _bad("truncated_in_samples", good[:50], "TruncatedPacket", "samples"),
        _bad("truncated_by_default_mtu_23", good[:20], "TruncatedPacket", "samples"),
        _bad("truncated_crc_missing_last_byte", good[:-1], "TruncatedPacket", "crc16"),
        _bad("version_0", _raw_packet(version=0), "UnsupportedVersion", "protocol_version"),
        _bad("version_2", _raw_packet(version=2), "UnsupportedVersion", "protocol_version"),
        _bad("version_2_short", bytes([2, 0, 1]), "UnsupportedVersion", "protocol_version"),
        _bad("reserved_flag_bit3", _raw_packet(flags=0x08), "InvalidField", "flags"),
        _bad("reserved_flag_bit7", _raw_packet(flags=0x81), "InvalidField", "flags"),
        _bad("sample_count_0", _raw_packet(count=0, samples=()), "InvalidField", "sample_count"),
        _bad("sample_count_20", _raw_packet(samples=_walking_samples(20)), "InvalidField", "sample_count"),
        _bad("length_one_byte_extra", good + b"\x00", "BadLength", "length"),
        _bad(
            "length_count_says_1_but_2_sent",
            _raw_packet(count=1, samples=_walking_samples(2)),
            "BadLength",
            "length",
        ),
        _bad("bad_crc", good[:-2] + bytes([good[-2] ^ 0x01, good[-1]]), "BadCrc", "crc16"),
        _bad("bad_crc_payload_bit_flip", good[:30] + bytes([good[30] ^ 0x10]) + good[31:], "BadCrc", "crc16"),
        _bad("bad_crc_big_endian_crc", good[:-2] + good[-2:][::-1], "BadCrc", "crc16"),
        _bad(
            "bad_crc_xmodem_init_0",
            _raw_packet(crc=binascii.crc_hqx(_raw_packet()[:-2], 0)),
            "BadCrc",
            "crc16",
        ),
        _bad("acc_range_code_4", _raw_packet(ranges=0x44), "InvalidField", "ranges"),
        _bad("gyr_range_code_5", _raw_packet(ranges=0x52), "InvalidField", "ranges"),
        _bad("ranges_0xff", _raw_packet(ranges=0xFF), "InvalidField", "ranges"),
    ]
    return v


# --- sensor info -------------------------------------------------------------------------------------------


def _info(**kw: Any) -> SensorInfo:
    fields: dict[str, Any] = {
        "placement": Placement.PELVIS,
        "sample_rate_hz": 100,
        "acc_range_g": 8,
        "gyr_range_dps": 2000,
        "samples_per_packet": 10,
        "firmware_version": (1, 2, 3),
        "boot_epoch": 42,
        "serial": "GS24-0001",
    }
    fields.update(kw)
    return SensorInfo(**fields)


def _raw_info(
    *,
    version: int = 1,
    placement: int = 1,
    rate: int = 100,
    ranges: int = 0x42,
    spp: int = 10,
    reserved: int = 0,
    boot_epoch: int = 42,
    serial: bytes = b"GS24-0001",
) -> bytes:
    return struct.pack("<BBHBB3BBI16s", version, placement, rate, ranges, spp, 1, 2, 3, reserved, boot_epoch, serial)


def sensor_info_vectors() -> list[dict[str, Any]]:
    v: list[dict[str, Any]] = []

    def ok(name: str, info: SensorInfo) -> None:
        v.append(_valid(name, encode_sensor_info(info), info.to_dict()))

    ok("pelvis_100hz", _info())
    ok("left_thigh", _info(placement=Placement.LEFT_THIGH, serial="GS24-0002", boot_epoch=7))
    ok("right_thigh", _info(placement=Placement.RIGHT_THIGH, serial="GS24-0003", boot_epoch=0))
    ok(
        "unassigned_new_sensor",
        _info(placement=Placement.UNASSIGNED, boot_epoch=1, firmware_version=(0, 9, 0)),
    )
    ok("serial_16_chars_no_padding", _info(serial="ABCDEFGHIJKLMNOP"))
    ok("serial_1_char", _info(serial="x"))
    ok("serial_with_spaces_and_symbols", _info(serial="Kit 7 / L~"))
    ok(
        "limits",
        _info(
            sample_rate_hz=1000,
            acc_range_g=16,
            gyr_range_dps=125,
            samples_per_packet=19,
            firmware_version=(255, 255, 255),
            boot_epoch=0xFFFFFFFF,
        ),
    )
    ok("slowest", _info(sample_rate_hz=1, acc_range_g=2, gyr_range_dps=125, samples_per_packet=1))

    good = _raw_info()
    v += [
        _bad("empty", b"", "TruncatedPacket", "protocol_version"),
        _bad("truncated_29_bytes", good[:29], "TruncatedPacket", "serial"),
        _bad("truncated_by_default_mtu_read_22_bytes", good[:22], "TruncatedPacket", "serial"),
        _bad("truncated_5_bytes", good[:5], "TruncatedPacket", "samples_per_packet"),
        _bad("length_31_bytes", good + b"\x00", "BadLength", "length"),
        _bad("version_2", _raw_info(version=2), "UnsupportedVersion", "protocol_version"),
        _bad("placement_4", _raw_info(placement=4), "InvalidField", "placement"),
        _bad("sample_rate_0", _raw_info(rate=0), "InvalidField", "sample_rate_hz"),
        _bad("sample_rate_1001", _raw_info(rate=1001), "InvalidField", "sample_rate_hz"),
        _bad("acc_range_code_4", _raw_info(ranges=0x04), "InvalidField", "ranges"),
        _bad("samples_per_packet_0", _raw_info(spp=0), "InvalidField", "samples_per_packet"),
        _bad("samples_per_packet_20", _raw_info(spp=20), "InvalidField", "samples_per_packet"),
        _bad("reserved_not_0", _raw_info(reserved=1), "InvalidField", "reserved"),
        _bad("serial_empty", _raw_info(serial=b""), "InvalidField", "serial"),
        _bad("serial_non_ascii_utf8", _raw_info(serial="GS24-é".encode()), "InvalidField", "serial"),
        _bad("serial_control_char", _raw_info(serial=b"GS24\n0001"), "InvalidField", "serial"),
        _bad("serial_nul_inside", _raw_info(serial=b"GS24\x000001"), "InvalidField", "serial"),
        _bad("serial_0x7f", _raw_info(serial=b"GS24\x7f"), "InvalidField", "serial"),
    ]
    return v


# --- control -----------------------------------------------------------------------------------------------


def control_vectors() -> list[dict[str, Any]]:
    v: list[dict[str, Any]] = []

    def cmd(name: str, c: Command) -> None:
        v.append(_valid(name, encode_control(c), command_to_dict(c), message="command"))

    def rep(name: str, r: Reply) -> None:
        v.append(_valid(name, encode_reply(r), reply_to_dict(r), message="reply"))

    cmd("start_streaming", StartStreaming())
    cmd("stop_streaming", StopStreaming())
    cmd("set_sample_rate_100hz", SetSampleRate(100))
    cmd("set_sample_rate_1000hz", SetSampleRate(1000))
    cmd("set_samples_per_packet_19", SetSamplesPerPacket(19))
    cmd("set_samples_per_packet_1", SetSamplesPerPacket(1))
    cmd("time_sync_request", TimeSyncRequest(0xDEADBEEF))
    cmd("set_placement_pelvis", SetPlacement(Placement.PELVIS))
    cmd("set_placement_left_thigh", SetPlacement(Placement.LEFT_THIGH))
    cmd("set_placement_right_thigh", SetPlacement(Placement.RIGHT_THIGH))
    cmd("set_placement_unassigned", SetPlacement(Placement.UNASSIGNED))
    rep("reply_start_streaming_ok", ControlReply(Opcode.START_STREAMING, Status.OK))
    rep("reply_stop_streaming_ok", ControlReply(Opcode.STOP_STREAMING, Status.OK))
    rep("reply_set_sample_rate_busy", ControlReply(Opcode.SET_SAMPLE_RATE, Status.BUSY))
    rep(
        "reply_set_samples_per_packet_bad_argument",
        ControlReply(Opcode.SET_SAMPLES_PER_PACKET, Status.BAD_ARGUMENT),
    )
    rep("reply_set_placement_unsupported", ControlReply(Opcode.SET_PLACEMENT, Status.UNSUPPORTED))
    rep("reply_time_sync_ok", TimeSyncReply(request_id=0xDEADBEEF, timestamp_us=4_000_000_123))
    rep("reply_time_sync_busy", TimeSyncReply(request_id=7, timestamp_us=0, status=Status.BUSY))
    rep(
        "reply_time_sync_malformed_request",
        TimeSyncReply(request_id=0, timestamp_us=0, status=Status.BAD_ARGUMENT),
    )
    rep("reply_undefined_opcode_0x07_unsupported", UnsupportedOpcodeReply(0x07))
    rep("reply_undefined_opcode_0x7f_unsupported", UnsupportedOpcodeReply(0x7F))
    rep("reply_empty_or_reply_bit_write_unsupported", UnsupportedOpcodeReply(0x00))

    def bad_cmd(name: str, data: bytes, error: str, field: str, reply: str) -> None:
        v.append({**_bad(name, data, error, field, message="command"), "reply": reply})

    def bad_rep(name: str, data: bytes, error: str, field: str) -> None:
        v.append(_bad(name, data, error, field, message="reply"))

    time_sync_bad = "85020000000000000000"
    bad_cmd("command_empty", b"", "TruncatedPacket", "opcode", "8001")
    bad_cmd("command_opcode_0", b"\x00", "InvalidField", "opcode", "8001")
    bad_cmd("command_opcode_7", b"\x07", "InvalidField", "opcode", "8701")
    bad_cmd("command_opcode_7_with_arguments", b"\x07\x01\x02", "InvalidField", "opcode", "8701")
    bad_cmd("command_opcode_0x7f", b"\x7f", "InvalidField", "opcode", "ff01")
    bad_cmd("command_reply_bit_set", b"\x81", "InvalidField", "opcode", "8001")
    bad_cmd("command_reply_bit_on_time_sync", b"\x85\x01\x02\x03\x04", "InvalidField", "opcode", "8001")
    bad_cmd("command_0xff", b"\xff", "InvalidField", "opcode", "8001")
    bad_cmd("start_streaming_extra_byte", b"\x01\x00", "BadLength", "length", "8102")
    bad_cmd("set_sample_rate_1_byte_argument", b"\x03\x64", "TruncatedPacket", "sample_rate_hz", "8302")
    bad_cmd("set_sample_rate_0", b"\x03\x00\x00", "InvalidField", "sample_rate_hz", "8302")
    bad_cmd("set_sample_rate_1001", b"\x03\xe9\x03", "InvalidField", "sample_rate_hz", "8302")
    bad_cmd("set_samples_per_packet_0", b"\x04\x00", "InvalidField", "samples_per_packet", "8402")
    bad_cmd("set_samples_per_packet_20", b"\x04\x14", "InvalidField", "samples_per_packet", "8402")
    bad_cmd("time_sync_request_no_id", b"\x05", "TruncatedPacket", "request_id", time_sync_bad)
    bad_cmd("time_sync_request_3_byte_id", b"\x05\x01\x02\x03", "TruncatedPacket", "request_id", time_sync_bad)
    bad_cmd("time_sync_request_5_byte_id", b"\x05\x01\x02\x03\x04\x05", "BadLength", "length", time_sync_bad)
    bad_cmd("set_placement_4", b"\x06\x04", "InvalidField", "placement", "8602")
    bad_cmd("set_placement_missing", b"\x06", "TruncatedPacket", "placement", "8602")
    bad_rep("reply_empty", b"", "TruncatedPacket", "opcode")
    bad_rep("reply_without_reply_bit", b"\x01\x00", "InvalidField", "opcode")
    bad_rep("reply_undefined_opcode_0x87_ok", b"\x87\x00", "InvalidField", "opcode")
    bad_rep("reply_undefined_opcode_0x87_busy", b"\x87\x03", "InvalidField", "opcode")
    bad_rep("reply_undefined_opcode_status_missing", b"\x87", "TruncatedPacket", "status")
    bad_rep("reply_undefined_opcode_extra_byte", b"\x87\x01\x00", "BadLength", "length")
    bad_rep("reply_status_missing", b"\x81", "TruncatedPacket", "status")
    bad_rep("reply_status_4", b"\x81\x04", "InvalidField", "status")
    bad_rep("reply_extra_byte", b"\x81\x00\x00", "BadLength", "length")
    bad_rep("reply_time_sync_without_timestamp", b"\x85\x00\xef\xbe\xad\xde", "TruncatedPacket", "timestamp_us")
    bad_rep("reply_time_sync_2_bytes", b"\x85\x00", "TruncatedPacket", "request_id")
    return v


# --- files -------------------------------------------------------------------------------------------------


def build_all() -> dict[str, dict[str, Any]]:
    """File name -> JSON document."""

    def doc(message: str, about: str, vectors: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "message": message,
            "protocol_version": 1,
            "about": about,
            "generated_by": GENERATOR,
            "vectors": vectors,
        }

    return {
        "imu_packet.json": doc(
            "imu_packet",
            "IMU data packet v1 notifications (SPEC.md 'IMU data packet'); samples are raw int16 counts",
            imu_packet_vectors(),
        ),
        "sensor_info.json": doc(
            "sensor_info", "sensor info v1, 30 bytes (SPEC.md 'Sensor info')", sensor_info_vectors()
        ),
        "control.json": doc(
            "control",
            "control commands (message=command, written) and replies (message=reply, notified)",
            control_vectors(),
        ),
    }


def render(document: dict[str, Any]) -> str:
    """The exact text committed: header keys one per line, then one vector per line; trailing newline."""
    lines = ["{"]
    for key, value in document.items():
        if key != "vectors":
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)},")
    lines.append('  "vectors": [')
    vectors = [json.dumps(vector, separators=(", ", ": ")) for vector in document["vectors"]]
    lines.append(",\n".join(f"    {text}" for text in vectors))
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    out_dir = Path(argv[0]) if argv else VECTORS_DIR
    for name, document in build_all().items():
        (out_dir / name).write_text(render(document), encoding="utf-8")
        print(f"wrote {out_dir / name} ({len(document['vectors'])} vectors)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
