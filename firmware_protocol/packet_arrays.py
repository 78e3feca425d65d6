"""Many IMU data packets at once -> arrays: the vectorised twin of `packet.decode_packet`.

A receiver that holds many packets of one sensor (a batch of the uplink) wants arrays, not a tuple per sample.
`packet_header` makes exactly the checks of `decode_packet` (version, sample count, length, CRC, reserved flag
bits, range codes) without building the samples; `decode_packets` then converts every packet's samples at once
(one int16 array, scaled per packet). A packet `packet_header` refuses is handed to `decode_packet`, so the error
raised is always `decode_packet`'s own (same class, field and message), with `ProtocolError.packet_index` naming
which packet it was.

Units: sequence and sensor ticks unwrapped (64-bit) from the first sample's values the caller gives (packets carry
them mod 2**32); sample i of a packet is at ``timestamp_us + rint(i·1e6 / sample_rate_hz)`` sensor µs; acc m/s²
(gravity included), gyr deg/s (`ImuPacket.acc_scale_mps2`, `gyr_scale_dps`).

This module imports numpy; `import firmware_protocol` does not import it.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import ProtocolError
from .packet import HEADER_BYTES, MAX_SAMPLES_PER_PACKET, PACKET_OVERHEAD_BYTES, SAMPLE_BYTES, ImuPacket, decode_packet
from .wire import PROTOCOL_VERSION, U32_MODULUS, crc16_ccitt_false, decode_ranges

__all__ = ["PacketArrays", "PacketHeader", "decode_packets", "packet_header"]

_HEADER = struct.Struct("<BBBBII")
"""protocol_version, flags, sample_count, ranges, sequence, timestamp_us (SPEC.md "IMU data packet")."""
_CRC = struct.Struct("<H")
_FLAGS_RESERVED = 0xF8

PacketHeader = tuple[int, int, int, float, float]
"""(sample_count, sequence, timestamp_us, m/s² per acc count, deg/s per gyr count) of an accepted packet."""


@functools.lru_cache(maxsize=256)
def _scales(ranges: int) -> tuple[float, float] | None:
    """(m/s² per acc count, deg/s per gyr count) of a ``ranges`` byte, as `ImuPacket` computes them; None for a
    byte the decoder rejects."""
    try:
        acc_range_g, gyr_range_dps = decode_ranges(ranges)
    except ProtocolError:
        return None
    packet = ImuPacket(sequence=0, timestamp_us=0, acc_range_g=acc_range_g, gyr_range_dps=gyr_range_dps, samples=())
    return packet.acc_scale_mps2, packet.gyr_scale_dps


def packet_header(data: bytes) -> PacketHeader | None:
    """The header of a packet that `decode_packet` accepts, else None (then `decode_packet` names what is wrong).

    The same checks as `decode_packet` without building a tuple per sample."""
    size = len(data)
    if size < HEADER_BYTES:
        return None
    version, flags, n, ranges, sequence, timestamp_us = _HEADER.unpack_from(data)
    if (
        version != PROTOCOL_VERSION
        or not 1 <= n <= MAX_SAMPLES_PER_PACKET
        or size != PACKET_OVERHEAD_BYTES + SAMPLE_BYTES * n
        or flags & _FLAGS_RESERVED
        or crc16_ccitt_false(data[: size - 2]) != _CRC.unpack_from(data, size - 2)[0]
    ):
        return None
    scales = _scales(ranges)
    if scales is None:
        return None
    return n, sequence, timestamp_us, scales[0], scales[1]


@dataclass(frozen=True, slots=True)
class PacketArrays:
    """The samples of consecutive packets of one sensor, one row per sample."""

    seq: npt.NDArray[np.int64]
    """Sample sequence numbers, unwrapped."""
    t_sensor_us: npt.NDArray[np.int64]
    """Sensor clock of each sample, µs, unwrapped."""
    acc_mps2: npt.NDArray[np.float64]
    """(n, 3) accelerometer, m/s² including gravity."""
    gyr_dps: npt.NDArray[np.float64]
    """(n, 3) gyroscope, deg/s."""


def decode_packets(
    packets: Sequence[bytes], *, seq_first: int, timestamp_us_first: int, sample_rate_hz: float
) -> PacketArrays:
    """Packets (each checked as `decode_packet` checks it) -> arrays of all their samples.

    `seq_first` and `timestamp_us_first` are the unwrapped sequence and sensor time the first packet's mod-2**32
    fields stand for; every packet's fields are unwrapped forward from them. A refused packet raises
    `decode_packet`'s ProtocolError with `.packet_index` set; no packets at all raise ValueError."""
    headers = []
    for i, data in enumerate(packets):
        header = packet_header(data)
        if header is None:
            try:
                decode_packet(data)
            except ProtocolError as exc:
                exc.packet_index = i
                raise
            raise AssertionError(f"packet {i}: packet_header refused what decode_packet accepts")  # pragma: no cover
        headers.append(header)
    if not headers:
        raise ValueError("no packets")
    counts, seqs, stamps, acc_scale, gyr_scale = zip(*headers, strict=True)
    s0, t0 = seq_first, timestamp_us_first
    seq0s = np.asarray([s0 + (s - s0) % U32_MODULUS for s in seqs], dtype=np.int64)
    t0s = np.asarray([t0 + (t - t0) % U32_MODULUS for t in stamps], dtype=np.int64)
    raw = np.frombuffer(b"".join([d[HEADER_BYTES:-2] for d in packets]), dtype="<i2").reshape(-1, 6)
    k = len(headers)
    if counts.count(counts[0]) == k and acc_scale.count(acc_scale[0]) == k and gyr_scale.count(gyr_scale[0]) == k:
        # the usual batch: every packet of one size and one range setting. The same values as below, from one
        # packet's offsets broadcast over the packets and one scale per sensor (fewer numpy calls)
        within = np.arange(counts[0], dtype=np.int64)
        seq = (seq0s[:, None] + within).reshape(-1)
        ticks = (t0s[:, None] + np.rint(within * 1e6 / sample_rate_hz).astype(np.int64)).reshape(-1)
        return PacketArrays(
            seq=seq, t_sensor_us=ticks, acc_mps2=raw[:, :3] * acc_scale[0], gyr_dps=raw[:, 3:] * gyr_scale[0]
        )
    n_per = np.asarray(counts, dtype=np.int64)
    within = np.arange(int(n_per.sum()), dtype=np.int64) - np.repeat(np.cumsum(n_per) - n_per, n_per)
    seq = np.repeat(seq0s, n_per) + within
    ticks = np.repeat(t0s, n_per) + np.rint(within * 1e6 / sample_rate_hz).astype(np.int64)
    acc = raw[:, :3] * np.repeat(np.asarray(acc_scale), n_per)[:, None]
    gyr = raw[:, 3:] * np.repeat(np.asarray(gyr_scale), n_per)[:, None]
    return PacketArrays(seq=seq, t_sensor_us=ticks, acc_mps2=acc, gyr_dps=gyr)
