"""Uplink messages -> what the store keeps: a raw batch's verbatim sensor packets become `RawSamples`.

Units: seq and t_sensor_us unwrapped (64-bit) from the batch's ``seq_first`` / ``t_sensor_us_first``
(packets carry them mod 2**32); sample i of a packet is at ``timestamp_us + rint(i·1e6 / sample_rate_hz)``
sensor µs; acc m/s² (gravity included), gyr deg/s (firmware_protocol's scales). Every sample keeps its
sensor ticks; the batch's clock mapping travels with it (`RawSamples.clock`).
"""

from __future__ import annotations

import functools
import struct

import numpy as np

from analytics.stores.errors import InvalidBatch
from analytics.stores.model import RawSamples, samples_from_arrays
from analytics.worker.errors import MalformedMessage
from firmware_protocol.errors import ProtocolError
from firmware_protocol.packet import (
    HEADER_BYTES,
    MAX_SAMPLES_PER_PACKET,
    PACKET_OVERHEAD_BYTES,
    SAMPLE_BYTES,
    ImuPacket,
    decode_packet,
)
from firmware_protocol.wire import PROTOCOL_VERSION, crc16_ccitt_false, decode_ranges
from sensor_gateway.errors import UplinkError
from sensor_gateway.uplink import envelope as env
from sensor_gateway.uplink.topics import SUBJECT_RE, parse_topic

U32 = 1 << 32


MAX_TOPIC_CHARS = 200
"""The longest gaitsym topic is ``gaitsym/v1/{64-character subject}/cmd/reply`` or ``.../raw/right_thigh``."""


def topic_subject(topic: str) -> str:
    """The subject a delivery's topic names, "" when it names none validly: whose budget and quarantine share it
    is counted in. Cheap (no payload is looked at): it runs before anything is decoded."""
    parts = topic.split("/", 3)
    if len(parts) > 2 and SUBJECT_RE.match(parts[2]):
        return parts[2]
    return ""


def decode_message(topic: str, payload: bytes) -> env.Message:
    """Envelope of one MQTT message, checked against its topic; MalformedMessage naming what is wrong.

    The boundary of untrusted bytes: whatever goes wrong while reading them (the bounded decoder's UplinkError, or
    anything unforeseen) is a MalformedMessage, never another exception."""
    try:
        if len(topic) > MAX_TOPIC_CHARS:
            raise UplinkError("topic", f"{len(topic)} characters exceeds {MAX_TOPIC_CHARS}")
        parts = parse_topic(topic)
        message = env.decode(payload)
    except UplinkError as exc:
        raise MalformedMessage(topic[:MAX_TOPIC_CHARS], str(exc)) from exc
    except Exception as exc:  # env.decode already turns any failure into UplinkError; kept as a net
        raise MalformedMessage(topic[:MAX_TOPIC_CHARS], f"unreadable ({type(exc).__name__}: {exc})"[:300]) from exc
    subject = getattr(message, "subject", None)
    if subject != parts.subject:
        raise MalformedMessage(topic, f"subject {subject!r} in the payload differs from the topic's")
    if message.kind != parts.kind:
        raise MalformedMessage(topic, f"kind {message.kind!r} does not belong on a {parts.kind!r} topic")
    if parts.placement is not None and getattr(message, "placement", None) != parts.placement:
        raise MalformedMessage(topic, f"placement {getattr(message, 'placement', None)!r} differs from the topic's")
    return message


_HEADER = struct.Struct("<BBBBII")
"""protocol_version, flags, sample_count, ranges, sequence, timestamp_us (firmware_protocol SPEC.md)."""
_CRC = struct.Struct("<H")
_FLAGS_RESERVED = 0xF8


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


def packet_header(data: bytes) -> tuple[int, int, int, float, float] | None:
    """(sample_count, sequence, timestamp_us, acc scale, gyr scale) of a packet that
    `firmware_protocol.packet.decode_packet` accepts, else None (then decode_packet names what is wrong).

    The same checks (version, sample count, length, CRC, reserved flag bits, range codes) without building a
    tuple per sample: the batch's samples are then converted at once (`batch_samples`)."""
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


def batch_samples(batch: env.RawBatch, topic: str = "") -> RawSamples:
    """Decode a raw batch's packets (CRC checked) into samples with unwrapped sequence and sensor time.

    Each packet passes the checks of `firmware_protocol.packet.decode_packet` (the one authority on the wire
    format: `packet_header` accepts exactly what it accepts, and any packet it refuses is handed to it, so the
    error is its own); the values of the whole batch are then converted at once (one int16 array of every
    packet's sample bytes, scaled per packet), not packet by packet. A synchronised batch's samples must map to
    plausible UTC times (`envelope.UTC_MIN_S` .. `UTC_MAX_S`). Any failure is a MalformedMessage."""
    try:
        return _batch_samples(batch, topic)
    except MalformedMessage:
        raise
    except Exception as exc:  # numbers the envelope's ranges let through but numpy cannot hold: still bad data
        raise MalformedMessage(topic or batch.msg_id, f"undecodable ({type(exc).__name__}: {exc})"[:300]) from exc


_UTC_RANGE_US = (round(env.UTC_MIN_S * 1e6), round(env.UTC_MAX_S * 1e6))


def _batch_samples(batch: env.RawBatch, topic: str) -> RawSamples:
    rate = batch.sensor.sample_rate_hz
    headers = []
    for i, data in enumerate(batch.packets):
        header = packet_header(data)
        if header is None:
            try:
                decode_packet(data)
            except ProtocolError as exc:
                raise MalformedMessage(topic or batch.msg_id, f"packets[{i}]: {exc}") from exc
            raise MalformedMessage(topic or batch.msg_id, f"packets[{i}]: refused")  # pragma: no cover
        headers.append(header)
    if not headers:
        raise MalformedMessage(topic or batch.msg_id, "a raw batch without packets")
    counts, seqs, stamps, acc_scale, gyr_scale = zip(*headers, strict=True)
    n_per = np.asarray(counts, dtype=np.int64)
    s0, t0 = batch.seq_first, batch.t_sensor_us_first
    seq0s = np.asarray([s0 + (s - s0) % U32 for s in seqs], dtype=np.int64)
    t0s = np.asarray([t0 + (t - t0) % U32 for t in stamps], dtype=np.int64)
    within = np.arange(int(n_per.sum()), dtype=np.int64) - np.repeat(np.cumsum(n_per) - n_per, n_per)
    seq = np.repeat(seq0s, n_per) + within
    ticks = np.repeat(t0s, n_per) + np.rint(within * 1e6 / rate).astype(np.int64)
    raw = np.frombuffer(b"".join([d[HEADER_BYTES:-2] for d in batch.packets]), dtype="<i2").reshape(-1, 6)
    raw = raw.astype(np.float64)
    acc = raw[:, :3] * np.repeat(np.asarray(acc_scale), n_per)[:, None]
    gyr = raw[:, 3:] * np.repeat(np.asarray(gyr_scale), n_per)[:, None]
    if len(seq) != batch.n_samples or int(seq[0]) != batch.seq_first or int(seq[-1]) != batch.seq_last:
        raise MalformedMessage(
            topic or batch.msg_id,
            f"packets hold {len(seq)} samples {int(seq[0])}..{int(seq[-1])}, the batch says "
            f"{batch.n_samples} in {batch.seq_first}..{batch.seq_last}",
        )
    try:
        samples = samples_from_arrays(
            subject=batch.subject,
            session=batch.session,
            placement=batch.placement,
            serial=batch.sensor.serial,
            boot_epoch=batch.sensor.boot_epoch,
            seq=seq,
            t_sensor_us=ticks,
            acc_mps2=acc,
            gyr_dps=gyr,
            clock=batch.clock,
            msg_id=batch.msg_id,
        )
    except InvalidBatch as exc:
        raise MalformedMessage(topic or batch.msg_id, str(exc)) from exc
    if batch.clock.utc_synced:
        times = samples.time_us()
        lo, hi = int(times.min()), int(times.max())
        if lo < _UTC_RANGE_US[0] or hi > _UTC_RANGE_US[1]:
            raise MalformedMessage(
                topic or batch.msg_id,
                f"clock: the samples map to {lo / 1e6:.0f}..{hi / 1e6:.0f} s UTC, outside "
                f"{env.UTC_MIN_S:.0f}..{env.UTC_MAX_S:.0f} (ref_sensor_us too far from the samples' ticks)",
            )
    return samples
