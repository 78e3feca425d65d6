"""Uplink messages -> what the store keeps: a raw batch's verbatim sensor packets become `RawSamples`.

Units: seq and t_sensor_us unwrapped (64-bit) from the batch's ``seq_first`` / ``t_sensor_us_first``
(packets carry them mod 2**32); sample i of a packet is at ``timestamp_us + rint(i·1e6 / sample_rate_hz)``
sensor µs; acc m/s² (gravity included), gyr deg/s (firmware_protocol's scales). Every sample keeps its
sensor ticks; the batch's clock mapping travels with it (`RawSamples.clock`).
"""

from __future__ import annotations

import numpy as np

from analytics.stores.errors import InvalidBatch
from analytics.stores.model import RawSamples, samples_from_arrays
from analytics.worker.errors import MalformedMessage
from firmware_protocol.errors import ProtocolError
from firmware_protocol.packet import HEADER_BYTES, decode_packet
from sensor_gateway.errors import UplinkError
from sensor_gateway.uplink import envelope as env
from sensor_gateway.uplink.topics import parse_topic

U32 = 1 << 32


def decode_message(topic: str, payload: bytes) -> env.Message:
    """Envelope of one MQTT message, checked against its topic; MalformedMessage naming what is wrong."""
    try:
        parts = parse_topic(topic)
        message = env.decode(payload)
    except UplinkError as exc:
        raise MalformedMessage(topic, str(exc)) from exc
    subject = getattr(message, "subject", None)
    if subject != parts.subject:
        raise MalformedMessage(topic, f"subject {subject!r} in the payload differs from the topic's")
    if message.kind != parts.kind:
        raise MalformedMessage(topic, f"kind {message.kind!r} does not belong on a {parts.kind!r} topic")
    if parts.placement is not None and getattr(message, "placement", None) != parts.placement:
        raise MalformedMessage(topic, f"placement {getattr(message, 'placement', None)!r} differs from the topic's")
    return message


def batch_samples(batch: env.RawBatch, topic: str = "") -> RawSamples:
    """Decode a raw batch's packets (CRC checked) into samples with unwrapped sequence and sensor time.

    Each packet is validated by `firmware_protocol.packet.decode_packet` (the one authority on the wire format);
    the values of the whole batch are then converted at once (one int16 array of every packet's sample bytes,
    scaled per packet), not packet by packet."""
    rate = batch.sensor.sample_rate_hz
    counts: list[int] = []
    seq0s: list[int] = []
    t0s: list[int] = []
    acc_scale: list[float] = []
    gyr_scale: list[float] = []
    for i, data in enumerate(batch.packets):
        try:
            packet = decode_packet(data)
        except ProtocolError as exc:
            raise MalformedMessage(topic or batch.msg_id, f"packets[{i}]: {exc}") from exc
        counts.append(packet.sample_count)
        seq0s.append(batch.seq_first + (packet.sequence - batch.seq_first) % U32)
        t0s.append(batch.t_sensor_us_first + (packet.timestamp_us - batch.t_sensor_us_first) % U32)
        acc_scale.append(packet.acc_scale_mps2)
        gyr_scale.append(packet.gyr_scale_dps)
    if not counts:
        raise MalformedMessage(topic or batch.msg_id, "a raw batch without packets")
    n_per = np.asarray(counts, dtype=np.int64)
    within = np.arange(int(n_per.sum()), dtype=np.int64) - np.repeat(np.cumsum(n_per) - n_per, n_per)
    seq = np.repeat(np.asarray(seq0s, dtype=np.int64), n_per) + within
    ticks = np.repeat(np.asarray(t0s, dtype=np.int64), n_per) + np.rint(within * 1e6 / rate).astype(np.int64)
    raw = np.frombuffer(b"".join(bytes(d[HEADER_BYTES:-2]) for d in batch.packets), dtype="<i2").reshape(-1, 6)
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
        return samples_from_arrays(
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
