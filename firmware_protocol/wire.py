"""Pieces shared by every message: the CRC, the measurement-range byte, and wrap-safe u32 arithmetic.

All pure functions. The sensor's `sequence` (samples since boot) and `timestamp_us` (its own microsecond
clock) are u32 counters that wrap modulo 2**32; `unwrap_u32` and `seq_distance` use serial-number arithmetic
(RFC 1982 style): a raw value up to half the range ahead of the previous one is taken as ahead, otherwise as
behind.
"""

from __future__ import annotations

import binascii

from .errors import InvalidField

__all__ = [
    "ACC_RANGES_G",
    "GYR_RANGES_DPS",
    "MAX_SAMPLES_PER_PACKET",
    "MAX_SAMPLE_RATE_HZ",
    "PROTOCOL_VERSION",
    "STANDARD_GRAVITY_MPS2",
    "U32_MAX",
    "U32_MODULUS",
    "check_int",
    "crc16_ccitt_false",
    "decode_ranges",
    "encode_ranges",
    "seq_distance",
    "unwrap_u32",
]

PROTOCOL_VERSION = 1
"""The only protocol version: first byte of every IMU packet and of the sensor info."""

U32_MODULUS = 1 << 32
U32_MAX = U32_MODULUS - 1
_HALF_U32 = 1 << 31

MAX_SAMPLES_PER_PACKET = 19
"""Most samples in one IMU packet (242 bytes, fits an ATT MTU of 247 bytes)."""
MAX_SAMPLE_RATE_HZ = 1000
"""Highest sample rate a sensor may report or be set to, Hz."""

STANDARD_GRAVITY_MPS2 = 9.80665
"""g, m/s², used to turn accelerometer readings in g into m/s²."""

ACC_RANGES_G: tuple[int, ...] = (2, 4, 8, 16)
"""Accelerometer full scale in ±g, indexed by the range code in bits 0-3 of `ranges`."""

GYR_RANGES_DPS: tuple[int, ...] = (125, 250, 500, 1000, 2000)
"""Gyroscope full scale in ±deg/s, indexed by the range code in bits 4-7 of `ranges`."""

_ACC_CODE = {g: code for code, g in enumerate(ACC_RANGES_G)}
_GYR_CODE = {dps: code for code, dps in enumerate(GYR_RANGES_DPS)}

# All 256 possible `ranges` bytes -> (acc_range_g, gyr_range_dps), or None when a code is invalid.
_RANGES_TABLE: tuple[tuple[int, int] | None, ...] = tuple(
    (ACC_RANGES_G[b & 0x0F], GYR_RANGES_DPS[b >> 4])
    if (b & 0x0F) < len(ACC_RANGES_G) and (b >> 4) < len(GYR_RANGES_DPS)
    else None
    for b in range(256)
)


def check_int(field: str, value: object, lo: int, hi: int, unit: str = "") -> int:
    """`value` if it is an int (bool excluded) in lo..hi, else InvalidField(field) naming the value and range."""
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise InvalidField(field, f"{value!r}{unit} is outside {lo}..{hi}{unit}")
    return value


def crc16_ccitt_false(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no xorout. crc(b"123456789") = 0x29B1."""
    return binascii.crc_hqx(data, 0xFFFF)


def decode_ranges(byte: int) -> tuple[int, int]:
    """`ranges` byte -> (acc_range_g, gyr_range_dps); raises InvalidField("ranges") for an undefined code."""
    ranges = _RANGES_TABLE[byte] if 0 <= byte <= 0xFF else None
    if ranges is None:
        raise InvalidField(
            "ranges",
            f"0x{byte:02X} has accelerometer code {byte & 0x0F} (valid 0..{len(ACC_RANGES_G) - 1}) and "
            f"gyroscope code {byte >> 4} (valid 0..{len(GYR_RANGES_DPS) - 1})",
        )
    return ranges


def encode_ranges(acc_range_g: int, gyr_range_dps: int) -> int:
    """(±g, ±deg/s) -> `ranges` byte; InvalidField("ranges") for a full scale the format cannot state."""
    acc_code = None if isinstance(acc_range_g, bool) else _ACC_CODE.get(acc_range_g)
    gyr_code = None if isinstance(gyr_range_dps, bool) else _GYR_CODE.get(gyr_range_dps)
    if acc_code is None or gyr_code is None:
        raise InvalidField(
            "ranges",
            f"acc_range_g={acc_range_g!r} (valid {ACC_RANGES_G}) / gyr_range_dps={gyr_range_dps!r} "
            f"(valid {GYR_RANGES_DPS})",
        )
    return acc_code | (gyr_code << 4)


def unwrap_u32(prev_unwrapped: int, raw: int) -> int:
    """The unwrapped value of the u32 counter reading `raw`, nearest to the previous unwrapped value.

    `raw` is taken as ahead of `prev_unwrapped` when it is less than 2**31 counts ahead modulo 2**32, else
    as behind (by up to 2**31 counts). Start a stream with ``prev_unwrapped = raw`` of the first reading. Used
    for `sequence` (wraps after 2**32 samples) and `timestamp_us` (wraps every 71.6 min): consecutive readings
    must be less than 2**31 counts apart (35.8 min of sensor clock) for the answer to be right.
    """
    if not 0 <= raw < U32_MODULUS:
        raise ValueError(f"raw: {raw!r} is not a u32 (0..{U32_MODULUS - 1})")
    delta = (raw - prev_unwrapped) % U32_MODULUS
    if delta >= _HALF_U32:
        delta -= U32_MODULUS
    return prev_unwrapped + delta


def seq_distance(a: int, b: int) -> int:
    """Signed count of steps from u32 counter value `a` to `b`, in -2**31 .. 2**31 - 1 (wrap-safe).

    Positive when `b` is after `a`. Lost samples between packets: ``seq_distance(prev.next_sequence,
    pkt.sequence)`` (0 when contiguous, > 0 for a gap, < 0 for a repeat or reordering).
    """
    return (b - a + _HALF_U32) % U32_MODULUS - _HALF_U32
