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
from firmware_protocol.packet import decode_packet
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
    """Decode a raw batch's packets (CRC checked) into samples with unwrapped sequence and sensor time."""
    rate = batch.sensor.sample_rate_hz
    seqs: list[np.ndarray] = []
    ticks: list[np.ndarray] = []
    accs: list[np.ndarray] = []
    gyrs: list[np.ndarray] = []
    for i, data in enumerate(batch.packets):
        try:
            packet = decode_packet(data)
        except ProtocolError as exc:
            raise MalformedMessage(topic or batch.msg_id, f"packets[{i}]: {exc}") from exc
        n = packet.sample_count
        seq0 = batch.seq_first + (packet.sequence - batch.seq_first) % U32
        t0 = batch.t_sensor_us_first + (packet.timestamp_us - batch.t_sensor_us_first) % U32
        seqs.append(seq0 + np.arange(n, dtype=np.int64))
        ticks.append(t0 + np.rint(np.arange(n) * 1e6 / rate).astype(np.int64))
        acc, gyr = packet.to_physical()
        accs.append(acc)
        gyrs.append(gyr)
    seq = np.concatenate(seqs)
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
            t_sensor_us=np.concatenate(ticks),
            acc_mps2=np.concatenate(accs),
            gyr_dps=np.concatenate(gyrs),
            clock=batch.clock,
            msg_id=batch.msg_id,
        )
    except InvalidBatch as exc:
        raise MalformedMessage(topic or batch.msg_id, str(exc)) from exc
