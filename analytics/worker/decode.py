"""Uplink messages -> what the store keeps: a raw batch's verbatim sensor packets become `RawSamples`.

Units (`firmware_protocol.packet_arrays`): seq and t_sensor_us unwrapped (64-bit) from the batch's
``seq_first`` / ``t_sensor_us_first``; acc m/s² (gravity included), gyr deg/s. Every sample keeps its
sensor ticks; the batch's clock mapping travels with it (`RawSamples.clock`).
"""

from __future__ import annotations

import numpy as np

from analytics.stores.errors import InvalidBatch
from analytics.stores.model import RawSamples, samples_from_arrays
from analytics.worker.errors import MalformedMessage
from firmware_protocol.errors import ProtocolError
from firmware_protocol.packet_arrays import decode_packets
from gaitsym_common.errors import UplinkError
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import SUBJECT_RE, parse_topic

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


def batch_samples(batch: env.RawBatch, topic: str = "") -> RawSamples:
    """Decode a raw batch's packets (CRC checked) into samples with unwrapped sequence and sensor time.

    The packets are decoded by `firmware_protocol.packet_arrays.decode_packets` (each checked as
    `decode_packet` checks it, a refused one named by its own error; the whole batch converted at once). A
    synchronised batch's samples must map to plausible UTC times (`envelope.UTC_MIN_S` .. `UTC_MAX_S`). Any
    failure is a MalformedMessage."""
    try:
        return _batch_samples(batch, topic)
    except MalformedMessage:
        raise
    except Exception as exc:  # numbers the envelope's ranges let through but numpy cannot hold: still bad data
        raise MalformedMessage(topic or batch.msg_id, f"undecodable ({type(exc).__name__}: {exc})"[:300]) from exc


_UTC_RANGE_US = (round(env.UTC_MIN_S * 1e6), round(env.UTC_MAX_S * 1e6))


def _batch_samples(batch: env.RawBatch, topic: str) -> RawSamples:
    if not batch.packets:
        raise MalformedMessage(topic or batch.msg_id, "a raw batch without packets")
    try:
        arrays = decode_packets(
            batch.packets,
            seq_first=batch.seq_first,
            timestamp_us_first=batch.t_sensor_us_first,
            sample_rate_hz=batch.sensor.sample_rate_hz,
        )
    except ProtocolError as exc:
        raise MalformedMessage(topic or batch.msg_id, f"packets[{exc.packet_index}]: {exc}") from exc
    seq, ticks, acc, gyr = arrays.seq, arrays.t_sensor_us, arrays.acc_mps2, arrays.gyr_dps
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
            sensor=batch.sensor,
        )
    except InvalidBatch as exc:
        raise MalformedMessage(topic or batch.msg_id, str(exc)) from exc
    times = samples.time_us()
    # the store keys samples by time: within one batch the keys must strictly increase, or two samples of the
    # batch would share a point (sensor time stepping back inside a batch: a gateway closes its batch at a sensor
    # clock jump; or sensor time crossing the boundary of its unsynchronised slot)
    back = np.flatnonzero(np.subtract(times[1:], times[:-1]) <= 0)  # `np.diff`'s arithmetic, without its overhead
    if back.size:
        k = int(back[0]) + 1
        raise MalformedMessage(
            topic or batch.msg_id,
            f"sample seq {int(seq[k])} maps to {int(times[k])} us, not after seq {int(seq[k - 1])} at "
            f"{int(times[k - 1])} us: sample times must strictly increase within a batch",
        )
    if batch.clock.utc_synced:
        lo, hi = int(times[0]), int(times[-1])  # strictly increasing, as just checked
        if lo < _UTC_RANGE_US[0] or hi > _UTC_RANGE_US[1]:
            raise MalformedMessage(
                topic or batch.msg_id,
                f"clock: the samples map to {lo / 1e6:.0f}..{hi / 1e6:.0f} s UTC, outside "
                f"{env.UTC_MIN_S:.0f}..{env.UTC_MAX_S:.0f} (ref_sensor_us too far from the samples' ticks)",
            )
    return samples
