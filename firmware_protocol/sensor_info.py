"""Sensor info v1: the 30-byte value of the read-only sensor info characteristic.

It tells the gateway who the sensor is (serial, placement, boot_epoch) and how it streams (sample rate,
ranges, samples per packet). Every sample in the system is identified by (serial, boot_epoch, sequence): a
sensor that reboots increments boot_epoch (kept in flash) and restarts its sequence and its clock at 0.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import BadLength, InvalidField, TruncatedPacket, UnsupportedVersion
from .wire import (
    MAX_SAMPLE_RATE_HZ,
    MAX_SAMPLES_PER_PACKET,
    PROTOCOL_VERSION,
    U32_MAX,
    check_int,
    decode_ranges,
    encode_ranges,
)

__all__ = [
    "MAX_SAMPLE_RATE_HZ",
    "PLACEMENTS",
    "SENSOR_INFO_BYTES",
    "SERIAL_BYTES",
    "Placement",
    "SensorInfo",
    "decode_sensor_info",
    "encode_sensor_info",
]

SENSOR_INFO_BYTES = 30
SERIAL_BYTES = 16

_LAYOUT = struct.Struct("<BBHBB3BBI16s")
_FIELDS = (  # (offset where the field ends, name), for naming the first field a short message cuts off
    (1, "protocol_version"),
    (2, "placement"),
    (4, "sample_rate_hz"),
    (5, "ranges"),
    (6, "samples_per_packet"),
    (9, "firmware_version"),
    (10, "reserved"),
    (14, "boot_epoch"),
    (30, "serial"),
)


class Placement(StrEnum):
    """Where the sensor is worn. The string value is the name used everywhere above the wire."""

    UNASSIGNED = "unassigned"
    PELVIS = "pelvis"
    LEFT_THIGH = "left_thigh"
    RIGHT_THIGH = "right_thigh"

    @property
    def code(self) -> int:
        """The u8 on the wire: 0 unassigned, 1 pelvis, 2 left_thigh, 3 right_thigh."""
        return _PLACEMENT_CODES.index(self)

    @classmethod
    def from_code(cls, code: int) -> Placement:
        """u8 on the wire -> Placement; raises InvalidField("placement") for an undefined code."""
        if not 0 <= code < len(_PLACEMENT_CODES):
            raise InvalidField("placement", f"code {code} is undefined (0..{len(_PLACEMENT_CODES) - 1})")
        return _PLACEMENT_CODES[code]


_PLACEMENT_CODES: tuple[Placement, ...] = (
    Placement.UNASSIGNED,
    Placement.PELVIS,
    Placement.LEFT_THIGH,
    Placement.RIGHT_THIGH,
)

PLACEMENTS: tuple[str, ...] = tuple(str(p) for p in _PLACEMENT_CODES if p is not Placement.UNASSIGNED)
"""The kit's three worn placements in wire-code order: ("pelvis", "left_thigh", "right_thigh"). The one
definition: topics, envelopes, stores, recordings and algorithms all use this tuple."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorInfo:
    """Decoded sensor info."""

    protocol_version: int = PROTOCOL_VERSION
    placement: Placement
    sample_rate_hz: int
    """Samples per second, 1..1000 Hz."""
    acc_range_g: int
    """Accelerometer full scale, ±g."""
    gyr_range_dps: int
    """Gyroscope full scale, ±deg/s."""
    samples_per_packet: int
    """Samples in each IMU packet, 1..19."""
    firmware_version: tuple[int, int, int]
    """(major, minor, patch)."""
    boot_epoch: int
    """Incremented on every sensor boot (u32)."""
    serial: str
    """1..16 printable ASCII characters."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form used by the golden vectors and the CLI."""
        return {
            "protocol_version": self.protocol_version,
            "placement": str(self.placement),
            "sample_rate_hz": self.sample_rate_hz,
            "acc_range_g": self.acc_range_g,
            "gyr_range_dps": self.gyr_range_dps,
            "samples_per_packet": self.samples_per_packet,
            "firmware_version": list(self.firmware_version),
            "boot_epoch": self.boot_epoch,
            "serial": self.serial,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SensorInfo:
        """Inverse of `to_dict` (`encode_sensor_info` validates)."""
        major, minor, patch = d["firmware_version"]
        return cls(
            protocol_version=d.get("protocol_version", PROTOCOL_VERSION),
            placement=Placement(d["placement"]),
            sample_rate_hz=d["sample_rate_hz"],
            acc_range_g=d["acc_range_g"],
            gyr_range_dps=d["gyr_range_dps"],
            samples_per_packet=d["samples_per_packet"],
            firmware_version=(major, minor, patch),
            boot_epoch=d["boot_epoch"],
            serial=d["serial"],
        )


def _check_sample_rate(value: object) -> int:
    return check_int("sample_rate_hz", value, 1, MAX_SAMPLE_RATE_HZ, " Hz")


def _check_samples_per_packet(value: object) -> int:
    return check_int("samples_per_packet", value, 1, MAX_SAMPLES_PER_PACKET)


def _check_serial_bytes(raw: bytes) -> str:
    """16 wire bytes -> serial; printable ASCII (0x20..0x7E), then only NULs, at least one character."""
    text = raw.rstrip(b"\0")
    if not text:
        raise InvalidField("serial", "empty: all 16 bytes are NUL")
    for i, b in enumerate(text):
        if not 0x20 <= b <= 0x7E:
            raise InvalidField(
                "serial", f"byte {i} is 0x{b:02X}, not printable ASCII (0x20..0x7E) before the NUL padding"
            )
    return text.decode("ascii")


def encode_sensor_info(info: SensorInfo) -> bytes:
    """SensorInfo -> 30 bytes. Validates every field."""
    if info.protocol_version != PROTOCOL_VERSION:
        raise UnsupportedVersion("protocol_version", f"{info.protocol_version!r} is not {PROTOCOL_VERSION}")
    try:
        placement = Placement(info.placement).code
    except ValueError:
        raise InvalidField("placement", f"{info.placement!r} is not one of {[str(p) for p in Placement]}") from None
    rate = _check_sample_rate(info.sample_rate_hz)
    ranges = encode_ranges(info.acc_range_g, info.gyr_range_dps)
    spp = _check_samples_per_packet(info.samples_per_packet)
    fw = tuple(info.firmware_version)
    if len(fw) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0xFF for v in fw):
        raise InvalidField("firmware_version", f"{info.firmware_version!r} is not (major, minor, patch) u8s")
    boot_epoch = check_int("boot_epoch", info.boot_epoch, 0, U32_MAX)
    serial = info.serial
    if not isinstance(serial, str) or not serial.isascii() or len(serial) > SERIAL_BYTES:
        raise InvalidField("serial", f"{serial!r} is not 1..{SERIAL_BYTES} printable ASCII characters")
    serial_bytes = serial.encode("ascii")
    if _check_serial_bytes(serial_bytes.ljust(SERIAL_BYTES, b"\0")) != serial:  # catches "" and trailing NULs
        raise InvalidField("serial", f"{serial!r} is not 1..{SERIAL_BYTES} printable ASCII characters")
    return _LAYOUT.pack(PROTOCOL_VERSION, placement, rate, ranges, spp, *fw, 0, boot_epoch, serial_bytes)


def decode_sensor_info(data: bytes | bytearray | memoryview) -> SensorInfo:
    """30 bytes -> SensorInfo. Raises only ProtocolError subclasses; checks every field."""
    size = len(data)
    if size == 0:
        raise TruncatedPacket("protocol_version", "empty sensor info (0 bytes)")
    if data[0] != PROTOCOL_VERSION:
        raise UnsupportedVersion("protocol_version", f"{data[0]} is not {PROTOCOL_VERSION}")
    if size < SENSOR_INFO_BYTES:
        cut = next(name for end, name in _FIELDS if end > size)
        raise TruncatedPacket(cut, f"sensor info ends after {size} bytes; it is {SENSOR_INFO_BYTES} bytes")
    if size > SENSOR_INFO_BYTES:
        raise BadLength("length", f"sensor info is {size} bytes; it is {SENSOR_INFO_BYTES} bytes")
    version, placement, rate, ranges, spp, major, minor, patch, reserved, boot_epoch, serial = _LAYOUT.unpack(
        bytes(data)
    )
    placement_ = Placement.from_code(placement)
    rate = _check_sample_rate(rate)
    acc_range_g, gyr_range_dps = decode_ranges(ranges)
    spp = _check_samples_per_packet(spp)
    if reserved != 0:
        raise InvalidField("reserved", f"0x{reserved:02X} is not 0")
    return SensorInfo(
        protocol_version=version,
        placement=placement_,
        sample_rate_hz=rate,
        acc_range_g=acc_range_g,
        gyr_range_dps=gyr_range_dps,
        samples_per_packet=spp,
        firmware_version=(major, minor, patch),
        boot_epoch=boot_epoch,
        serial=_check_serial_bytes(serial),
    )
