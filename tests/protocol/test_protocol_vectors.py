"""Golden vectors: decode(hex) == decoded, encode(decoded) == hex, malformed -> the named error and field.

The CRC of every vector is also checked with a bitwise reference CRC written here, and the IMU headers are
parsed here with int.from_bytes, so the vectors do not only agree with the code that generated them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fp_testlib import VECTOR_FILES, VECTORS_DIR, crc16_reference, load_vectors

import firmware_protocol.errors as errors
from firmware_protocol.control import (
    command_from_dict,
    command_to_dict,
    decode_control,
    decode_reply,
    encode_control,
    encode_reply,
    reply_from_dict,
    reply_to_dict,
)
from firmware_protocol.packet import ImuPacket, decode_packet, encode_packet
from firmware_protocol.sensor_info import SensorInfo, decode_sensor_info, encode_sensor_info
from firmware_protocol.vectors import make_vectors

Codec = tuple[Callable[[bytes], Any], Callable[[Any], bytes], Callable[[Any], dict[str, Any]], Callable[..., Any]]

CODECS: dict[str, Codec] = {
    "imu_packet": (decode_packet, encode_packet, ImuPacket.to_dict, ImuPacket.from_dict),
    "sensor_info": (decode_sensor_info, encode_sensor_info, SensorInfo.to_dict, SensorInfo.from_dict),
    "command": (decode_control, encode_control, command_to_dict, command_from_dict),
    "reply": (decode_reply, encode_reply, reply_to_dict, reply_from_dict),
}


def _cases(file_name: str, kind: str | None = None) -> list[Any]:
    out = []
    for vector in load_vectors(file_name):
        message = kind or vector["message"]
        out.append(pytest.param(message, vector, id=f"{message}-{vector['name']}"))
    return out


ALL = _cases("imu_packet.json", "imu_packet") + _cases("sensor_info.json", "sensor_info") + _cases("control.json")
VALID = [case for case in ALL if "decoded" in case.values[1]]
MALFORMED = [case for case in ALL if "error" in case.values[1]]


def test_crc_check_value() -> None:
    assert crc16_reference(b"123456789") == 0x29B1
    from firmware_protocol.wire import crc16_ccitt_false

    assert crc16_ccitt_false(b"123456789") == 0x29B1


@pytest.mark.parametrize(("message", "vector"), VALID)
def test_decode_valid_vector(message: str, vector: dict[str, Any]) -> None:
    decode, _, to_dict, _ = CODECS[message]
    assert to_dict(decode(bytes.fromhex(vector["hex"]))) == vector["decoded"]


@pytest.mark.parametrize(("message", "vector"), VALID)
def test_encode_valid_vector(message: str, vector: dict[str, Any]) -> None:
    _, encode, _, from_dict = CODECS[message]
    assert encode(from_dict(vector["decoded"])).hex() == vector["hex"]


@pytest.mark.parametrize(("message", "vector"), MALFORMED)
def test_malformed_vector_raises_named_error(message: str, vector: dict[str, Any]) -> None:
    decode = CODECS[message][0]
    expected = getattr(errors, vector["error"])
    with pytest.raises(expected) as info:
        decode(bytes.fromhex(vector["hex"]))
    assert type(info.value) is expected
    assert info.value.field == vector["field"]
    assert str(info.value).startswith(f"{vector['field']}: ")


def test_imu_vectors_crc_and_header_independently() -> None:
    """Parse each valid IMU vector by hand: length, header fields, samples, CRC (reference implementation)."""
    for vector in load_vectors("imu_packet.json"):
        if "decoded" not in vector:
            continue
        data, decoded = bytes.fromhex(vector["hex"]), vector["decoded"]
        n = data[2]
        assert len(data) == 14 + 12 * n
        assert data[0] == 1
        assert n == decoded["sample_count"] == len(decoded["samples"])
        assert int.from_bytes(data[4:8], "little") == decoded["sequence"]
        assert int.from_bytes(data[8:12], "little") == decoded["timestamp_us"]
        assert (2, 4, 8, 16)[data[3] & 0x0F] == decoded["acc_range_g"]
        assert (125, 250, 500, 1000, 2000)[data[3] >> 4] == decoded["gyr_range_dps"]
        flags = decoded["flags"]
        assert data[1] == flags["acc_saturated"] | flags["gyr_saturated"] << 1 | flags["fifo_overflow"] << 2
        for i, sample in enumerate(decoded["samples"]):
            for axis, value in enumerate(sample):
                offset = 12 + 12 * i + 2 * axis
                assert int.from_bytes(data[offset : offset + 2], "little", signed=True) == value
        assert int.from_bytes(data[-2:], "little") == crc16_reference(data[:-2]), vector["name"]


def test_sensor_info_vectors_independently() -> None:
    for vector in load_vectors("sensor_info.json"):
        if "decoded" not in vector:
            continue
        data, decoded = bytes.fromhex(vector["hex"]), vector["decoded"]
        assert len(data) == 30
        assert int.from_bytes(data[2:4], "little") == decoded["sample_rate_hz"]
        assert int.from_bytes(data[10:14], "little") == decoded["boot_epoch"]
        assert data[14:].rstrip(b"\0").decode("ascii") == decoded["serial"]
        assert list(data[6:9]) == decoded["firmware_version"]
        assert data[9] == 0


def test_vectors_cover_the_required_cases() -> None:
    names = {v["name"] for f in VECTOR_FILES for v in load_vectors(f)}
    for required in (
        "max_19_samples",
        "sequence_wraps_inside_packet",
        "sequence_and_timestamp_max",
        "acc_saturated",
        "gyr_saturated",
        "fifo_overflow",
        "truncated_in_samples",
        "version_2",
        "reserved_flag_bit3",
        "bad_crc",
        "sample_count_0",
        "sample_count_20",
        "length_one_byte_extra",
        "acc_range_code_4",
        "serial_non_ascii_utf8",
    ):
        assert required in names
    errors_seen = {v["error"] for f in VECTOR_FILES for v in load_vectors(f) if "error" in v}
    assert errors_seen == {"TruncatedPacket", "BadLength", "BadCrc", "UnsupportedVersion", "InvalidField"}


def test_vector_names_unique_per_file() -> None:
    for file_name in VECTOR_FILES:
        names = [v["name"] for v in load_vectors(file_name)]
        assert len(names) == len(set(names)), file_name


def test_committed_vectors_match_generator() -> None:
    """make_vectors.py is deterministic and the committed JSON is what it produces."""
    for file_name, document in make_vectors.build_all().items():
        committed = (VECTORS_DIR / file_name).read_text(encoding="utf-8")
        assert committed == make_vectors.render(document), f"regenerate {file_name} with make_vectors.py"


def test_spec_examples_are_the_vectors() -> None:
    """The hex quoted in SPEC.md is real: the worked example is a vector, and every quoted message decodes."""
    import re

    spec = (VECTORS_DIR.parent / "SPEC.md").read_text(encoding="utf-8")
    block = spec.split("## 11. Worked example", 1)[1].split("```", 2)[1]
    worked = "".join(block.split())
    by_hex = {v["hex"]: v for f in VECTOR_FILES for v in load_vectors(f)}
    assert by_hex[worked]["name"] == "acc_saturated"
    quoted = re.findall(r"`([0-9a-f]{4,})`", spec.split("## 11. Worked example", 1)[1])
    assert len(quoted) >= 4
    for hex_text in quoted:
        assert "decoded" in by_hex[hex_text], hex_text
