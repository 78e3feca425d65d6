"""IMU data packet v1: the notification a sensor sends on the IMU data characteristic.

Layout (little-endian, SPEC.md "IMU data packet"): a 12-byte header (protocol_version, flags, sample_count,
ranges, sequence, timestamp_us), `sample_count` samples of six int16 (acc x/y/z, gyr x/y/z), then a
CRC-16/CCITT-FALSE over everything before it. 14 + 12·n bytes, n = 1..19.

`decode_packet` is the gateway's hot path: it raises only `ProtocolError` subclasses, whatever the bytes,
and returns a packet only when every check passed (version, length, CRC, reserved bits, sample count, range
codes).
The decoder stays free of numpy; `ImuPacket.to_physical` imports it when called.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntFlag
from typing import TYPE_CHECKING, Any

from .errors import BadCrc, BadLength, InvalidField, MtuTooSmall, TruncatedPacket, UnsupportedVersion
from .wire import (
    MAX_SAMPLES_PER_PACKET,
    PROTOCOL_VERSION,
    STANDARD_GRAVITY_MPS2,
    U32_MAX,
    U32_MODULUS,
    check_int,
    crc16_ccitt_false,
    decode_ranges,
    encode_ranges,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "ATT_HEADER_BYTES",
    "HEADER_BYTES",
    "MAX_SAMPLES_PER_PACKET",
    "MIN_MTU",
    "PACKET_OVERHEAD_BYTES",
    "SAMPLE_BYTES",
    "ImuPacket",
    "PacketFlags",
    "Sample",
    "decode_packet",
    "encode_packet",
    "max_samples_for_mtu",
    "packet_length",
    "samples_per_packet_for_mtu",
]

HEADER_BYTES = 12
"""Bytes before the first sample."""
SAMPLE_BYTES = 12
"""Bytes per sample: six int16."""
CRC_BYTES = 2
PACKET_OVERHEAD_BYTES = HEADER_BYTES + CRC_BYTES
"""14: header + CRC; a packet of n samples is 14 + 12·n bytes."""
ATT_HEADER_BYTES = 3
"""A notification carries at most ATT_MTU - 3 bytes of value."""
MIN_MTU = ATT_HEADER_BYTES + PACKET_OVERHEAD_BYTES + SAMPLE_BYTES
"""29 bytes: the smallest ATT MTU that carries a one-sample packet."""

_FLAGS_RESERVED_MASK = 0xF8
_INT16_MIN, _INT16_MAX = -32768, 32767

_HEADER = struct.Struct("<BBBBII")
_CRC = struct.Struct("<H")
_SAMPLE = struct.Struct("<6h")
_SAMPLES = tuple(struct.Struct(f"<{6 * n}h") for n in range(MAX_SAMPLES_PER_PACKET + 1))
_HEADER_FIELDS = (  # (offset where the field ends, name): for naming the first field a short packet cuts off
    (1, "protocol_version"),
    (2, "flags"),
    (3, "sample_count"),
    (4, "ranges"),
    (8, "sequence"),
    (12, "timestamp_us"),
)

Sample = tuple[int, int, int, int, int, int]
"""One sample, raw int16 counts: (acc_x, acc_y, acc_z, gyr_x, gyr_y, gyr_z)."""


class PacketFlags(IntFlag):
    """The `flags` byte. Bits 3-7 are reserved and must be 0."""

    ACC_SATURATED = 0x01
    """Some accelerometer sample in this packet hit full scale."""
    GYR_SATURATED = 0x02
    """Some gyroscope sample in this packet hit full scale."""
    FIFO_OVERFLOW = 0x04
    """The sensor lost samples before this packet; the sequence gap says how many."""


_NO_FLAGS = PacketFlags(0)
_FLAGS = tuple(PacketFlags(b) for b in range(8))  # cached: building an IntFlag costs more than a tuple lookup


def packet_length(sample_count: int) -> int:
    """Bytes of a packet carrying `sample_count` samples: 14 + 12·n."""
    return PACKET_OVERHEAD_BYTES + SAMPLE_BYTES * sample_count


def max_samples_for_mtu(mtu: int) -> int:
    """Samples per packet that fit a notification at ATT MTU `mtu` bytes: (mtu - 3 - 14) // 12, in 0..19.

    0 means the MTU is too small for any packet (below MIN_MTU = 29 bytes, e.g. BLE's default 23).
    """
    fit = (mtu - ATT_HEADER_BYTES - PACKET_OVERHEAD_BYTES) // SAMPLE_BYTES
    return max(0, min(MAX_SAMPLES_PER_PACKET, fit))


def samples_per_packet_for_mtu(mtu: int) -> int:
    """What the gateway writes with SET_SAMPLES_PER_PACKET at ATT MTU `mtu`; MtuTooSmall below 29 bytes."""
    n = max_samples_for_mtu(mtu)
    if n < 1:
        raise MtuTooSmall(
            "mtu",
            f"negotiated ATT MTU is {mtu} bytes; the sensor needs at least {MIN_MTU} bytes "
            f"(a {packet_length(1)}-byte one-sample packet + {ATT_HEADER_BYTES} bytes ATT header)",
        )
    return n


@dataclass(frozen=True, slots=True, kw_only=True)
class ImuPacket:
    """One decoded IMU data packet (raw counts; see `to_physical` for units)."""

    protocol_version: int = PROTOCOL_VERSION
    flags: PacketFlags = _NO_FLAGS
    sequence: int
    """Sequence number of the first sample: samples since sensor boot, mod 2**32."""
    timestamp_us: int
    """Sensor clock at the first sample, µs, mod 2**32."""
    acc_range_g: int
    """Accelerometer full scale, ±g (2, 4, 8, 16)."""
    gyr_range_dps: int
    """Gyroscope full scale, ±deg/s (125, 250, 500, 1000, 2000)."""
    samples: tuple[Sample, ...]

    @property
    def sample_count(self) -> int:
        return len(self.samples)

    @property
    def acc_saturated(self) -> bool:
        return bool(self.flags & PacketFlags.ACC_SATURATED)

    @property
    def gyr_saturated(self) -> bool:
        return bool(self.flags & PacketFlags.GYR_SATURATED)

    @property
    def fifo_overflow(self) -> bool:
        return bool(self.flags & PacketFlags.FIFO_OVERFLOW)

    @property
    def next_sequence(self) -> int:
        """The sequence the next packet starts with when no sample is lost: sequence + n (mod 2**32)."""
        return (self.sequence + len(self.samples)) % U32_MODULUS

    @property
    def acc_scale_mps2(self) -> float:
        """m/s² per raw accelerometer count: range_g / 32768 · 9.80665."""
        return self.acc_range_g / 32768.0 * STANDARD_GRAVITY_MPS2

    @property
    def gyr_scale_dps(self) -> float:
        """deg/s per raw gyroscope count: range_dps / 32768."""
        return self.gyr_range_dps / 32768.0

    def sample_offsets_us(self, sample_rate_hz: int) -> tuple[float, ...]:
        """Offset of each sample from `timestamp_us`, sensor µs: i · 1e6 / sample_rate_hz."""
        period_us = 1e6 / sample_rate_hz
        return tuple(i * period_us for i in range(len(self.samples)))

    def to_physical(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(acc m/s² as (n, 3), gyr deg/s as (n, 3)) float64 arrays. Imports numpy."""
        import numpy as np

        raw = np.asarray(self.samples, dtype=np.float64).reshape(-1, 6)
        return raw[:, :3] * self.acc_scale_mps2, raw[:, 3:] * self.gyr_scale_dps

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form used by the golden vectors and the CLI (adds the derived sample_count)."""
        return {
            "protocol_version": self.protocol_version,
            "flags": {
                "acc_saturated": self.acc_saturated,
                "gyr_saturated": self.gyr_saturated,
                "fifo_overflow": self.fifo_overflow,
            },
            "sample_count": self.sample_count,
            "acc_range_g": self.acc_range_g,
            "gyr_range_dps": self.gyr_range_dps,
            "sequence": self.sequence,
            "timestamp_us": self.timestamp_us,
            "samples": [list(s) for s in self.samples],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImuPacket:
        """Inverse of `to_dict` (derived keys such as sample_count are ignored; `encode_packet` validates)."""
        flags = _NO_FLAGS
        for name, bit in (
            ("acc_saturated", PacketFlags.ACC_SATURATED),
            ("gyr_saturated", PacketFlags.GYR_SATURATED),
            ("fifo_overflow", PacketFlags.FIFO_OVERFLOW),
        ):
            if d.get("flags", {}).get(name, False):
                flags |= bit
        return cls(
            protocol_version=d.get("protocol_version", PROTOCOL_VERSION),
            flags=flags,
            sequence=d["sequence"],
            timestamp_us=d["timestamp_us"],
            acc_range_g=d["acc_range_g"],
            gyr_range_dps=d["gyr_range_dps"],
            samples=tuple(tuple(s) for s in d["samples"]),
        )


def encode_packet(pkt: ImuPacket) -> bytes:
    """ImuPacket -> 14 + 12·n bytes. Validates every field (same typed errors as the decoder)."""
    if pkt.protocol_version != PROTOCOL_VERSION:
        raise UnsupportedVersion("protocol_version", f"{pkt.protocol_version!r} is not {PROTOCOL_VERSION}")
    flags = pkt.flags
    if not isinstance(flags, int) or isinstance(flags, bool) or not 0 <= flags <= 0xFF:
        raise InvalidField("flags", f"{flags!r} is not a flags byte")
    if flags & _FLAGS_RESERVED_MASK:
        raise InvalidField("flags", f"0x{int(flags):02X} sets reserved bits 3-7 (mask 0xF8)")
    n = len(pkt.samples)
    if not 1 <= n <= MAX_SAMPLES_PER_PACKET:
        raise InvalidField("sample_count", f"{n} samples; a packet carries 1..{MAX_SAMPLES_PER_PACKET}")
    ranges = encode_ranges(pkt.acc_range_g, pkt.gyr_range_dps)
    sequence = check_int("sequence", pkt.sequence, 0, U32_MAX)
    timestamp_us = check_int("timestamp_us", pkt.timestamp_us, 0, U32_MAX, " µs")
    flat: list[int] = []
    for i, sample in enumerate(pkt.samples):
        if len(sample) != 6:
            raise InvalidField("samples", f"sample {i} has {len(sample)} values, not 6 (acc xyz, gyr xyz)")
        for axis, value in enumerate(sample):
            if not isinstance(value, int) or isinstance(value, bool) or not _INT16_MIN <= value <= _INT16_MAX:
                raise InvalidField("samples", f"sample {i} value {axis} is {value!r}, not an int16")
        flat.extend(sample)
    header = _HEADER.pack(PROTOCOL_VERSION, int(flags), n, ranges, sequence, timestamp_us)
    body = header + _SAMPLES[n].pack(*flat)
    return body + _CRC.pack(crc16_ccitt_false(body))


def decode_packet(data: bytes | bytearray | memoryview) -> ImuPacket:
    """Bytes of one notification -> ImuPacket. Raises only ProtocolError subclasses.

    Checks, in this order (so the error names the most likely cause): protocol_version
    (UnsupportedVersion), header complete (TruncatedPacket), sample_count 1..19 (InvalidField), length =
    14 + 12·n (TruncatedPacket if short, BadLength if long), CRC (BadCrc), reserved flag bits
    (InvalidField "flags"), range codes (InvalidField "ranges").
    """
    size = len(data)
    if size < HEADER_BYTES:
        if size == 0:
            raise TruncatedPacket("protocol_version", "empty packet (0 bytes)")
        if data[0] != PROTOCOL_VERSION:
            raise UnsupportedVersion("protocol_version", f"{data[0]} is not {PROTOCOL_VERSION}")
        cut = next(name for end, name in _HEADER_FIELDS if end > size)
        raise TruncatedPacket(cut, f"packet ends after {size} bytes, inside the {HEADER_BYTES}-byte header")
    version, flags, n, ranges, sequence, timestamp_us = _HEADER.unpack_from(data)
    if version != PROTOCOL_VERSION:
        raise UnsupportedVersion("protocol_version", f"{version} is not {PROTOCOL_VERSION}")
    if not 1 <= n <= MAX_SAMPLES_PER_PACKET:
        raise InvalidField("sample_count", f"{n} is outside 1..{MAX_SAMPLES_PER_PACKET}")
    expected = PACKET_OVERHEAD_BYTES + SAMPLE_BYTES * n
    if size != expected:
        if size > expected:
            raise BadLength("length", f"packet is {size} bytes but sample_count={n} makes it {expected} bytes")
        cut = "samples" if size < expected - CRC_BYTES else "crc16"
        raise TruncatedPacket(
            cut,
            f"packet ends after {size} bytes; sample_count={n} makes it {expected} bytes "
            f"(an ATT MTU of {size + ATT_HEADER_BYTES} bytes truncates notifications to this length)",
        )
    body_end = expected - CRC_BYTES
    crc = crc16_ccitt_false(data[:body_end])
    (sent_crc,) = _CRC.unpack_from(data, body_end)
    if crc != sent_crc:
        raise BadCrc("crc16", f"packet says 0x{sent_crc:04X}, its bytes give 0x{crc:04X}")
    if flags & _FLAGS_RESERVED_MASK:
        raise InvalidField("flags", f"0x{flags:02X} sets reserved bits 3-7 (mask 0xF8)")
    acc_range_g, gyr_range_dps = decode_ranges(ranges)
    return ImuPacket(
        protocol_version=version,
        flags=_FLAGS[flags],
        sequence=sequence,
        timestamp_us=timestamp_us,
        acc_range_g=acc_range_g,
        gyr_range_dps=gyr_range_dps,
        samples=tuple(_SAMPLE.iter_unpack(data[HEADER_BYTES:body_end])),
    )
