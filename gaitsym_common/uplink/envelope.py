"""Uplink v1 payloads: the JSON envelopes the gateway publishes and the worker and clinic apps read.

Every payload is a UTF-8 JSON object with ``"v": 1`` and a ``"kind"``. Durable kinds (raw, gap, marker)
carry a ``msg_id`` that is the same on every replay, so the worker can acknowledge it and de-duplicate it;
samples themselves are identified by (sensor serial, boot epoch, sequence) from the sensor packets.

Raw batches carry the sensor's packets verbatim (base64 of the firmware_protocol bytes, CRC included), so
the sensor's own ticks and integrity check travel end to end, and a ``clock`` mapping from sensor time to
UTC valid for that sensor's boot epoch (``messages`` states the formula). The schema of every kind is in
``uplink-v1.json``; UPLINK.md explains it.

This module encodes and decodes, with one reader per kind. Beside it: the limits and bounded JSON loading
(``limits``), the message dataclasses (``messages``, both re-exported here so callers import ``envelope`` alone)
and the typed field access the readers use (``fields``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any

from gaitsym_common.errors import UplinkError
from gaitsym_common.uplink.fields import Fields
from gaitsym_common.uplink.limits import (
    DRIFT_TOLERANCE_FRACTION,
    DRIFT_TOLERANCE_PPM,
    MAX_ACK_IDS,
    MAX_BATCH_PACKETS,
    MAX_BATCH_SAMPLES,
    MAX_BATCH_SPAN,
    MAX_BOOT_EPOCH,
    MAX_BUNDLE_PARTS,
    MAX_COUNTER,
    MAX_DRIFT_PPM,
    MAX_GAP_DURATION_S,
    MAX_ID_CHARS,
    MAX_INT_DIGITS,
    MAX_JITTER_MS,
    MAX_JSON_DEPTH,
    MAX_MAPPING_KEYS,
    MAX_NUMBER_CHARS,
    MAX_PAYLOAD_BYTES,
    MAX_RANGE_CODE_VALUE,
    MAX_TEXT_CHARS,
    RATE_RANGE,
    SAMPLE_RATE_RANGE_HZ,
    UTC_MAX_S,
    UTC_MIN_S,
    check_unicode,
    load_bounded_json,
    shorten,
)
from gaitsym_common.uplink.messages import (
    COMMAND_ACTIONS,
    LINK_STATES,
    MARKER_TYPES,
    Ack,
    Bundle,
    BundlePart,
    ClockMapping,
    Command,
    CommandReply,
    Gap,
    Marker,
    Message,
    RawBatch,
    SensorIdentity,
    SensorPosition,
    SensorStatus,
    Status,
    gap_id,
    raw_batch_id,
)
from gaitsym_common.uplink.topics import DURABLE_KINDS, check_subject, parse_topic
from gaitsym_common.uplink.vocabulary import MAX_SET, PLACEMENTS, check_activity

__all__ = [
    "COMMAND_ACTIONS",
    "DRIFT_TOLERANCE_FRACTION",
    "DRIFT_TOLERANCE_PPM",
    "LINK_STATES",
    "MARKER_TYPES",
    "MAX_ACK_IDS",
    "MAX_BATCH_PACKETS",
    "MAX_BATCH_SAMPLES",
    "MAX_BATCH_SPAN",
    "MAX_BOOT_EPOCH",
    "MAX_BUNDLE_PARTS",
    "MAX_COUNTER",
    "MAX_DRIFT_PPM",
    "MAX_GAP_DURATION_S",
    "MAX_ID_CHARS",
    "MAX_INT_DIGITS",
    "MAX_JITTER_MS",
    "MAX_JSON_DEPTH",
    "MAX_MAPPING_KEYS",
    "MAX_NUMBER_CHARS",
    "MAX_PAYLOAD_BYTES",
    "MAX_RANGE_CODE_VALUE",
    "MAX_TEXT_CHARS",
    "RATE_RANGE",
    "SAMPLE_RATE_RANGE_HZ",
    "UTC_MAX_S",
    "UTC_MIN_S",
    "VERSION",
    "Ack",
    "Bundle",
    "BundlePart",
    "ClockMapping",
    "Command",
    "CommandReply",
    "Gap",
    "Marker",
    "Message",
    "RawBatch",
    "SensorIdentity",
    "SensorPosition",
    "SensorStatus",
    "Status",
    "decode",
    "encode",
    "gap_id",
    "raw_batch_id",
]

VERSION = 1


# ----------------------------------------------------------------------------------------------- encode


def encode(message: Message) -> bytes:
    """Serialise a message to its JSON payload (compact, UTF-8)."""
    doc = _to_doc(message)
    payload = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
    decode(payload)  # never publish what the other side would reject
    return payload


def _to_doc(message: Message) -> dict[str, Any]:
    if isinstance(message, Ack):  # flat: asdict's document without its deep copy (a worker's hot path)
        flat = {f.name: getattr(message, f.name) for f in fields(message)}
        return {"v": VERSION, **flat, "msg_ids": list(message.msg_ids)}
    if isinstance(message, Bundle):  # each part's payload as the text it is (UTF-8 JSON), not re-encoded
        parts = [{"topic": p.topic, "payload": p.payload.decode("utf-8")} for p in message.parts]
        return {"v": VERSION, "kind": message.kind, "subject": message.subject, "parts": parts}
    doc = asdict(message)
    if isinstance(message, RawBatch):
        doc["packets"] = [base64.b64encode(p).decode("ascii") for p in message.packets]
    if isinstance(message, Marker):
        # optional and additive: absent, not null, when the gateway does not say it (a marker's bytes unchanged)
        for position in doc["last_seq"].values():
            if position.get("session_seq_first") is None:
                position.pop("session_seq_first", None)
    return {"v": VERSION, **doc}


# ----------------------------------------------------------------------------------------------- decode


def decode(payload: bytes | str) -> Message:
    """Parse and validate one payload; UplinkError naming the field on anything malformed.

    Bounded (the limits in ``limits``): the size is checked first, the nesting depth on the text before parsing, each
    integer's digit count while parsing, then every field's type and range. Any failure, whatever raised it,
    comes out as an UplinkError: a payload is untrusted bytes and a reader must survive all of them."""
    try:
        return _decode(payload)
    except UplinkError:
        raise
    except Exception as exc:  # a parser or reader failure not foreseen above: still only a malformed payload
        raise UplinkError("payload", f"unreadable ({type(exc).__name__}: {str(exc)[:200]})") from exc


def _decode(payload: bytes | str) -> Message:
    doc = load_bounded_json(payload)
    if not isinstance(doc, dict):
        raise UplinkError("payload", "must be a JSON object")
    if doc.get("v") != VERSION:
        raise UplinkError("v", f"unsupported envelope version {shorten(doc.get('v'))} (this reader knows {VERSION})")
    kind = doc.get("kind")
    reader = _READERS.get(kind) if isinstance(kind, str) else None
    if reader is None:
        raise UplinkError("kind", f"{shorten(kind)} is not one of {sorted(_READERS)}")
    message: Message = reader(Fields(doc))
    return message


def _subject(f: Fields) -> str:
    value = f.str_("subject")
    check_subject(value)
    return str(value)


def _check_drift_matches_rate(clock: ClockMapping) -> None:
    """``drift_ppm`` must say what ``rate`` says, ``rate = 1 / (1 + drift_ppm * 1e-6)``: a drift of the wrong sign
    (or scale) would be stored next to the samples and mislead whoever diagnoses a sensor's clock. Both come
    from one fit, so they agree to rounding; the tolerance (1 ppm + 1 % of the drift) admits a gateway that
    rounds ``drift_ppm`` or uses the first-order ``(1 - rate) * 1e6``. Written as a product: no division, so no
    overflow or division by zero whatever the (finite) values."""
    mismatch_ppm = abs(clock.rate * (1.0 + clock.drift_ppm * 1e-6) - 1.0) * 1e6
    if not mismatch_ppm <= DRIFT_TOLERANCE_PPM + DRIFT_TOLERANCE_FRACTION * abs(clock.drift_ppm):
        expected = (1.0 / clock.rate - 1.0) * 1e6
        raise UplinkError(
            "clock.drift_ppm",
            f"{clock.drift_ppm!r} ppm contradicts rate {clock.rate!r}, which means {expected:.6g} ppm "
            "(rate = 1 / (1 + drift_ppm * 1e-6); positive drift: the sensor's clock is fast)",
        )


def _read_raw(f: Fields) -> RawBatch:
    s = f.obj("sensor")
    sensor = SensorIdentity(
        serial=s.str_("serial"),
        boot_epoch=s.int_("boot_epoch", maximum=MAX_BOOT_EPOCH),
        sample_rate_hz=s.num("sample_rate_hz", positive=True, bounds=SAMPLE_RATE_RANGE_HZ),
        acc_range_g=s.int_("acc_range_g", minimum=1, maximum=MAX_RANGE_CODE_VALUE),
        gyr_range_dps=s.int_("gyr_range_dps", minimum=1, maximum=MAX_RANGE_CODE_VALUE),
        firmware=s.text("firmware"),
    )
    c = f.obj("clock")
    synced = c.bool_("utc_synced")
    clock = ClockMapping(
        utc_synced=synced,
        ref_sensor_us=c.int_("ref_sensor_us"),
        ref_utc_s=c.num("ref_utc_s", optional=not synced, bounds=(UTC_MIN_S, UTC_MAX_S)),
        rate=c.num("rate", positive=True, bounds=RATE_RANGE),
        drift_ppm=c.num("drift_ppm", bounds=(-MAX_DRIFT_PPM, MAX_DRIFT_PPM)),
        jitter_ms=c.num("jitter_ms", bounds=(-MAX_JITTER_MS, MAX_JITTER_MS)),
    )
    if not synced and clock.ref_utc_s is not None:
        raise UplinkError("clock.ref_utc_s", "must be null while utc_synced is false (no invented UTC)")
    _check_drift_matches_rate(clock)
    packets = []
    for i, item in enumerate(f.list_("packets", MAX_BATCH_PACKETS)):
        if not isinstance(item, str):
            raise UplinkError(f"packets[{i}]", "must be a base64 string")
        try:
            packets.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise UplinkError(f"packets[{i}]", f"not valid base64 ({exc})") from exc
    if not packets:
        raise UplinkError("packets", "a raw batch carries at least one packet")
    seq_first, seq_last = f.int_("seq_first"), f.int_("seq_last")
    n = f.int_("n_samples", minimum=1, maximum=MAX_BATCH_SAMPLES)
    if seq_last < seq_first or n > seq_last - seq_first + 1:
        raise UplinkError("seq_last", f"{seq_first}..{seq_last} cannot hold {n} samples")
    if seq_last - seq_first > MAX_BATCH_SPAN:
        raise UplinkError("seq_last", f"{seq_first}..{seq_last} spans more than {MAX_BATCH_SPAN} samples")
    if len(packets) > n:
        raise UplinkError("packets", f"{len(packets)} packets cannot hold only {n} samples (each holds one or more)")
    batch = RawBatch(
        kind="raw",
        msg_id=f.str_("msg_id"),
        subject=_subject(f),
        session=f.str_("session", optional=True),
        placement=f.str_("placement", choices=PLACEMENTS),
        sensor=sensor,
        seq_first=seq_first,
        seq_last=seq_last,
        n_samples=n,
        t_sensor_us_first=f.int_("t_sensor_us_first"),
        clock=clock,
        packets=tuple(packets),
    )
    expected = raw_batch_id(sensor.serial, sensor.boot_epoch, seq_first)
    if batch.msg_id != expected:
        raise UplinkError("msg_id", f"{batch.msg_id!r} must be {expected!r} (serial:boot_epoch:seq_first)")
    return batch


def _read_gap(f: Fields) -> Gap:
    first, last = f.int_("seq_first_missing"), f.int_("seq_last_missing")
    if last < first:
        raise UplinkError("seq_last_missing", f"{last} is before seq_first_missing {first}")
    gap = Gap(
        kind="gap",
        msg_id=f.str_("msg_id"),
        subject=_subject(f),
        session=f.str_("session", optional=True),
        placement=f.str_("placement", choices=PLACEMENTS),
        serial=f.str_("serial"),
        boot_epoch=f.int_("boot_epoch", maximum=MAX_BOOT_EPOCH),
        seq_first_missing=first,
        seq_last_missing=last,
        duration_s=f.num("duration_s", bounds=(0.0, MAX_GAP_DURATION_S)),
        reason=f.str_("reason"),
    )
    if gap.msg_id != gap_id(gap.serial, gap.boot_epoch, first):
        raise UplinkError("msg_id", f"must be {gap_id(gap.serial, gap.boot_epoch, first)!r}")
    return gap


def _read_marker(f: Fields) -> Marker:
    positions = {}
    last_seq = f.obj("last_seq")
    for placement in last_seq.doc:
        if placement not in PLACEMENTS:
            raise UplinkError(f"last_seq.{placement}", f"unknown placement (one of {PLACEMENTS})")
        p = last_seq.obj(placement)
        position = SensorPosition(
            p.str_("serial"),
            p.int_("boot_epoch", maximum=MAX_BOOT_EPOCH),
            p.int_("seq"),
            p.int_("session_seq_first", optional=True),
        )
        if position.session_seq_first is not None and position.session_seq_first > position.seq:
            raise UplinkError(
                f"last_seq.{placement}.session_seq_first",
                f"{position.session_seq_first} is after the last sample the marker names ({position.seq})",
            )
        positions[placement] = position
    marker_type = f.str_("type", choices=MARKER_TYPES)
    exercise = f.str_("exercise", optional=True)
    side = f.str_("side", optional=True)
    set_number = f.int_("set", optional=True, minimum=1, maximum=MAX_SET)
    if marker_type in ("set_start", "set_end"):
        if exercise is None or side is None or set_number is None:
            raise UplinkError("exercise", f"a {marker_type} marker names exercise, side and set")
        check_activity(exercise, side, set_number)
    return Marker(
        kind="marker",
        msg_id=f.str_("msg_id"),
        subject=_subject(f),
        session=f.str_("session"),
        type=marker_type,
        t_utc_s=f.num("t_utc_s", optional=True, bounds=(UTC_MIN_S, UTC_MAX_S)),
        last_seq=positions,
        exercise=exercise,
        side=side,
        set=set_number,
        source=f.text("source") or "gateway",
    )


def _read_status(f: Fields) -> Status:
    sensors = {}
    block = f.obj("sensors", optional=True)
    for placement in block.doc if block else {}:
        if placement not in PLACEMENTS:
            raise UplinkError(f"sensors.{placement}", f"unknown placement (one of {PLACEMENTS})")
        s = block.obj(placement)
        sensors[placement] = SensorStatus(
            link=s.str_("link", choices=LINK_STATES),
            serial=s.str_("serial", optional=True),
            battery_pct=s.int_("battery_pct", optional=True, maximum=100),
            rssi_dbm=s.int_("rssi_dbm", optional=True, minimum=-200, maximum=127),
            boot_epoch=s.int_("boot_epoch", optional=True, maximum=MAX_BOOT_EPOCH),
            last_seq=s.int_("last_seq", optional=True),
            drift_ppm=s.num("drift_ppm", optional=True, bounds=(-MAX_DRIFT_PPM, MAX_DRIFT_PPM)),
            jitter_ms=s.num("jitter_ms", optional=True, bounds=(-MAX_JITTER_MS, MAX_JITTER_MS)),
            samples_received=s.int_("samples_received", optional=True) or 0,
            gaps=s.int_("gaps", optional=True) or 0,
        )
        battery = sensors[placement].battery_pct
        if battery is not None and battery > 100:
            raise UplinkError(f"sensors.{placement}.battery_pct", f"must be a percentage 0..100, got {battery!r}")
    return Status(
        kind="status",
        subject=_subject(f),
        state=f.str_("state", choices=("online", "offline")),
        t_utc_s=f.num("t_utc_s", optional=True, bounds=(UTC_MIN_S, UTC_MAX_S)),
        gateway=f.mapping("gateway", str),
        session=f.str_("session", optional=True),
        sensors=sensors,
        outbox=f.mapping("outbox", float),
    )


def _read_command(f: Fields) -> Command:
    action = f.str_("action", choices=COMMAND_ACTIONS)
    cmd = Command(
        kind="cmd",
        cmd_id=f.str_("cmd_id"),
        subject=_subject(f),
        action=action,
        exercise=f.str_("exercise", optional=True),
        side=f.str_("side", optional=True),
        set=f.int_("set", optional=True, minimum=1, maximum=MAX_SET),
    )
    if action in ("set_start", "set_end"):
        if cmd.exercise is None or cmd.side is None:
            raise UplinkError("exercise", f"{action} names the exercise and side")
        check_activity(cmd.exercise, cmd.side, cmd.set)
    return cmd


def _read_reply(f: Fields) -> CommandReply:
    return CommandReply(
        kind="cmd/reply",
        cmd_id=f.str_("cmd_id"),
        subject=_subject(f),
        ok=f.bool_("ok"),
        message=f.text("message"),
    )


def _read_ack(f: Fields) -> Ack:
    ids = f.list_("msg_ids", MAX_ACK_IDS)
    for i, item in enumerate(ids):
        if not isinstance(item, str) or not item or len(item) > MAX_ID_CHARS:
            raise UplinkError(f"msg_ids[{i}]", f"must be a non-empty string of at most {MAX_ID_CHARS} characters")
        check_unicode(f"msg_ids[{i}]", item)
    return Ack(kind="ack", subject=_subject(f), msg_ids=tuple(ids), worker=f.text("worker"))


def _read_bundle(f: Fields) -> Bundle:
    """The parts' topics are checked (a durable kind of the bundle's own subject); their payloads are read by
    whoever takes the parts, each on its own, so that one malformed part is set aside without the others."""
    subject = _subject(f)
    items = f.list_("parts", MAX_BUNDLE_PARTS)
    if not items:
        raise UplinkError("parts", "must hold at least one message")
    parts = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise UplinkError(f"parts[{i}]", "must be a JSON object")
        part = Fields(item, f"parts[{i}].")
        name = part.str_("topic")
        where = parse_topic(name)
        if where.subject != subject:
            raise UplinkError(f"parts[{i}].topic", f"{shorten(name)} is not of the bundle's subject {subject!r}")
        if where.kind not in DURABLE_KINDS:
            raise UplinkError(f"parts[{i}].topic", f"{shorten(name)}: only {DURABLE_KINDS} messages are bundled")
        payload = part.str_("payload", max_chars=MAX_PAYLOAD_BYTES)
        parts.append(BundlePart(name, payload.encode("utf-8")))
    return Bundle(kind="bundle", subject=subject, parts=tuple(parts))


_READERS: dict[str, Callable[[Fields], Message]] = {
    "raw": _read_raw,
    "gap": _read_gap,
    "marker": _read_marker,
    "status": _read_status,
    "cmd": _read_command,
    "cmd/reply": _read_reply,
    "ack": _read_ack,
    "bundle": _read_bundle,
}
