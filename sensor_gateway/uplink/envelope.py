"""Uplink v1 payloads: the JSON envelopes the gateway publishes and the worker and clinic apps read.

Every payload is a UTF-8 JSON object with ``"v": 1`` and a ``"kind"``. Durable kinds (raw, gap, marker)
carry a ``msg_id`` that is the same on every replay, so the worker can acknowledge it and de-duplicate it;
samples themselves are identified by (sensor serial, boot epoch, sequence) from the sensor packets.

Raw batches carry the sensor's packets verbatim (base64 of the firmware_protocol bytes, CRC included), so
the sensor's own ticks and integrity check travel end to end, and a ``clock`` mapping from sensor time to
UTC valid for that sensor's boot epoch:

    t_utc_s = clock.ref_utc_s + (t_sensor_us - clock.ref_sensor_us) * 1e-6 * clock.rate

where ``t_sensor_us`` is the unwrapped (64-bit) sensor time of a sample. ``rate`` is host seconds per sensor
second; ``drift_ppm`` is how fast the sensor's clock runs, positive when fast (rate = 1 / (1 + drift_ppm 1e-6));
``utc_synced`` is false while the gateway's own clock is not synchronised, and then
``ref_utc_s`` is null: the worker keeps sensor time and maps it when a later batch of the same boot epoch
brings a synchronised mapping. The schema of every kind is in ``uplink-v1.json``; UPLINK.md explains it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sensor_gateway.errors import UplinkError
from sensor_gateway.uplink.topics import check_subject
from sensor_gateway.uplink.vocabulary import PLACEMENTS, check_activity

VERSION = 1
MAX_PAYLOAD_BYTES = 256 * 1024
MARKER_TYPES = ("session_start", "session_end", "set_start", "set_end", "window")
COMMAND_ACTIONS = ("session_start", "session_stop", "set_start", "set_end")
LINK_STATES = ("connected", "connecting", "lost", "unpaired")


@dataclass(frozen=True)
class SensorIdentity:
    """Which physical sensor and which of its boots: (serial, boot_epoch) scopes every sequence number."""

    serial: str
    boot_epoch: int
    sample_rate_hz: float
    acc_range_g: int
    gyr_range_dps: int
    firmware: str = ""


@dataclass(frozen=True)
class ClockMapping:
    """Sensor time -> UTC for one boot epoch (see the module docstring for the formula and units)."""

    utc_synced: bool
    ref_sensor_us: int
    ref_utc_s: float | None
    rate: float
    drift_ppm: float
    jitter_ms: float

    def to_utc_s(self, t_sensor_us: int) -> float | None:
        if self.ref_utc_s is None:
            return None
        return self.ref_utc_s + (t_sensor_us - self.ref_sensor_us) * 1e-6 * self.rate


@dataclass(frozen=True)
class RawBatch:
    kind: Literal["raw"]
    msg_id: str
    subject: str
    session: str | None
    placement: str
    sensor: SensorIdentity
    seq_first: int
    seq_last: int
    n_samples: int
    t_sensor_us_first: int
    clock: ClockMapping
    packets: tuple[bytes, ...]


@dataclass(frozen=True)
class Gap:
    """Samples a sensor's stream is known to be missing (never papered over)."""

    kind: Literal["gap"]
    msg_id: str
    subject: str
    session: str | None
    placement: str
    serial: str
    boot_epoch: int
    seq_first_missing: int
    seq_last_missing: int
    duration_s: float
    reason: str


@dataclass(frozen=True)
class SensorPosition:
    """The last sample of one sensor that a marker refers to."""

    serial: str
    boot_epoch: int
    seq: int


@dataclass(frozen=True)
class Marker:
    kind: Literal["marker"]
    msg_id: str
    subject: str
    session: str
    type: str
    t_utc_s: float | None
    last_seq: dict[str, SensorPosition]
    exercise: str | None = None
    side: str | None = None
    set: int | None = None
    source: str = "gateway"


@dataclass(frozen=True)
class SensorStatus:
    link: str
    serial: str | None = None
    battery_pct: int | None = None
    rssi_dbm: int | None = None
    boot_epoch: int | None = None
    last_seq: int | None = None
    drift_ppm: float | None = None
    jitter_ms: float | None = None
    samples_received: int = 0
    gaps: int = 0


@dataclass(frozen=True)
class Status:
    kind: Literal["status"]
    subject: str
    state: Literal["online", "offline"]
    t_utc_s: float | None = None
    gateway: dict[str, str] = field(default_factory=dict)
    session: str | None = None
    sensors: dict[str, SensorStatus] = field(default_factory=dict)
    outbox: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Command:
    kind: Literal["cmd"]
    cmd_id: str
    subject: str
    action: str
    exercise: str | None = None
    side: str | None = None
    set: int | None = None


@dataclass(frozen=True)
class CommandReply:
    kind: Literal["cmd/reply"]
    cmd_id: str
    subject: str
    ok: bool
    message: str = ""


@dataclass(frozen=True)
class Ack:
    kind: Literal["ack"]
    subject: str
    msg_ids: tuple[str, ...]
    worker: str = ""


Message = RawBatch | Gap | Marker | Status | Command | CommandReply | Ack


def raw_batch_id(serial: str, boot_epoch: int, seq_first: int) -> str:
    """The msg_id of a raw batch: identical on every replay of the same samples."""
    return f"raw:{serial}:{boot_epoch}:{seq_first}"


def gap_id(serial: str, boot_epoch: int, seq_first_missing: int) -> str:
    return f"gap:{serial}:{boot_epoch}:{seq_first_missing}"


# ----------------------------------------------------------------------------------------------- encode


def encode(message: Message) -> bytes:
    """Serialise a message to its JSON payload (compact, UTF-8)."""
    doc = _to_doc(message)
    payload = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
    decode(payload)  # never publish what the other side would reject
    return payload


def _to_doc(message: Message) -> dict[str, Any]:
    doc = asdict(message)
    if isinstance(message, RawBatch):
        doc["packets"] = [base64.b64encode(p).decode("ascii") for p in message.packets]
    if isinstance(message, Ack):
        doc["msg_ids"] = list(message.msg_ids)
    return {"v": VERSION, **doc}


# ----------------------------------------------------------------------------------------------- decode


def decode(payload: bytes | str) -> Message:
    """Parse and validate one payload; UplinkError naming the field on anything malformed."""
    if isinstance(payload, bytes | bytearray):
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise UplinkError("payload", f"{len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UplinkError("payload", f"not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    else:
        text = payload
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise UplinkError("payload", f"not JSON ({exc.msg} at char {exc.pos})") from exc
    if not isinstance(doc, dict):
        raise UplinkError("payload", "must be a JSON object")
    if doc.get("v") != VERSION:
        raise UplinkError("v", f"unsupported envelope version {doc.get('v')!r} (this reader knows {VERSION})")
    kind = doc.get("kind")
    reader = _READERS.get(kind) if isinstance(kind, str) else None
    if reader is None:
        raise UplinkError("kind", f"{kind!r} is not one of {sorted(_READERS)}")
    message: Message = reader(_Fields(doc))
    return message


def _reject_constant(name: str) -> Any:
    raise UplinkError("payload", f"{name} is not allowed in gaitsym JSON")


class _Fields:
    """Typed access to a JSON object's fields, each error naming the field's path."""

    def __init__(self, doc: dict[str, Any], path: str = "") -> None:
        self.doc, self.path = doc, path

    def _name(self, key: str) -> str:
        return f"{self.path}{key}"

    def _get(self, key: str, optional: bool) -> Any:
        value = self.doc.get(key)
        if value is None and not optional:
            raise UplinkError(self._name(key), "missing" if key not in self.doc else "must not be null")
        return value

    def str_(self, key: str, optional: bool = False, choices: tuple[str, ...] | None = None) -> Any:
        value = self._get(key, optional)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise UplinkError(self._name(key), f"must be a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            raise UplinkError(self._name(key), f"{value!r} is not one of {choices}")
        return value

    def int_(self, key: str, optional: bool = False, minimum: int = 0) -> Any:
        value = self._get(key, optional)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise UplinkError(self._name(key), f"must be an integer >= {minimum}, got {value!r}")
        return value

    def num(self, key: str, optional: bool = False, positive: bool = False) -> Any:
        value = self._get(key, optional)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise UplinkError(self._name(key), f"must be a finite number, got {value!r}")
        if positive and value <= 0:
            raise UplinkError(self._name(key), f"must be > 0, got {value!r}")
        return float(value)

    def bool_(self, key: str) -> bool:
        value = self._get(key, False)
        if not isinstance(value, bool):
            raise UplinkError(self._name(key), f"must be true or false, got {value!r}")
        return value

    def obj(self, key: str, optional: bool = False) -> Any:
        value = self._get(key, optional)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise UplinkError(self._name(key), "must be a JSON object")
        return _Fields(value, f"{self._name(key)}.")

    def text(self, key: str) -> str:
        """An optional free-text field: a string (possibly empty) or absent/null -> ""."""
        value = self.doc.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise UplinkError(self._name(key), f"must be a string, got {value!r}")
        return value

    def mapping(self, key: str, values: type) -> dict[str, Any]:
        """An optional object whose values are all of one JSON type (str or number)."""
        block = self.obj(key, optional=True)
        if block is None:
            return {}
        for name, value in block.doc.items():
            ok = (
                isinstance(value, str)
                if values is str
                else (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value))
            )
            if not ok:
                raise UplinkError(f"{self._name(key)}.{name}", f"must be a {values.__name__}, got {value!r}")
        return dict(block.doc)

    def list_(self, key: str) -> list[Any]:
        value = self._get(key, False)
        if not isinstance(value, list):
            raise UplinkError(self._name(key), "must be a JSON array")
        return value


def _subject(f: _Fields) -> str:
    value = f.str_("subject")
    check_subject(value)
    return str(value)


def _read_raw(f: _Fields) -> RawBatch:
    s = f.obj("sensor")
    sensor = SensorIdentity(
        serial=s.str_("serial"),
        boot_epoch=s.int_("boot_epoch"),
        sample_rate_hz=s.num("sample_rate_hz", positive=True),
        acc_range_g=s.int_("acc_range_g", minimum=1),
        gyr_range_dps=s.int_("gyr_range_dps", minimum=1),
        firmware=s.text("firmware"),
    )
    c = f.obj("clock")
    synced = c.bool_("utc_synced")
    clock = ClockMapping(
        utc_synced=synced,
        ref_sensor_us=c.int_("ref_sensor_us"),
        ref_utc_s=c.num("ref_utc_s", optional=not synced),
        rate=c.num("rate", positive=True),
        drift_ppm=c.num("drift_ppm"),
        jitter_ms=c.num("jitter_ms"),
    )
    if not synced and clock.ref_utc_s is not None:
        raise UplinkError("clock.ref_utc_s", "must be null while utc_synced is false (no invented UTC)")
    packets = []
    for i, item in enumerate(f.list_("packets")):
        if not isinstance(item, str):
            raise UplinkError(f"packets[{i}]", "must be a base64 string")
        try:
            packets.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise UplinkError(f"packets[{i}]", f"not valid base64 ({exc})") from exc
    if not packets:
        raise UplinkError("packets", "a raw batch carries at least one packet")
    seq_first, seq_last, n = f.int_("seq_first"), f.int_("seq_last"), f.int_("n_samples", minimum=1)
    if seq_last < seq_first or n > seq_last - seq_first + 1:
        raise UplinkError("seq_last", f"{seq_first}..{seq_last} cannot hold {n} samples")
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


def _read_gap(f: _Fields) -> Gap:
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
        boot_epoch=f.int_("boot_epoch"),
        seq_first_missing=first,
        seq_last_missing=last,
        duration_s=f.num("duration_s"),
        reason=f.str_("reason"),
    )
    if gap.msg_id != gap_id(gap.serial, gap.boot_epoch, first):
        raise UplinkError("msg_id", f"must be {gap_id(gap.serial, gap.boot_epoch, first)!r}")
    return gap


def _read_marker(f: _Fields) -> Marker:
    positions = {}
    last_seq = f.obj("last_seq")
    for placement in last_seq.doc:
        if placement not in PLACEMENTS:
            raise UplinkError(f"last_seq.{placement}", f"unknown placement (one of {PLACEMENTS})")
        p = last_seq.obj(placement)
        positions[placement] = SensorPosition(p.str_("serial"), p.int_("boot_epoch"), p.int_("seq"))
    marker_type = f.str_("type", choices=MARKER_TYPES)
    exercise = f.str_("exercise", optional=True)
    side = f.str_("side", optional=True)
    set_number = f.int_("set", optional=True, minimum=1)
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
        t_utc_s=f.num("t_utc_s", optional=True),
        last_seq=positions,
        exercise=exercise,
        side=side,
        set=set_number,
        source=f.text("source") or "gateway",
    )


def _read_status(f: _Fields) -> Status:
    sensors = {}
    block = f.obj("sensors", optional=True)
    for placement in block.doc if block else {}:
        if placement not in PLACEMENTS:
            raise UplinkError(f"sensors.{placement}", f"unknown placement (one of {PLACEMENTS})")
        s = block.obj(placement)
        sensors[placement] = SensorStatus(
            link=s.str_("link", choices=LINK_STATES),
            serial=s.str_("serial", optional=True),
            battery_pct=s.int_("battery_pct", optional=True),
            rssi_dbm=s.int_("rssi_dbm", optional=True, minimum=-200),
            boot_epoch=s.int_("boot_epoch", optional=True),
            last_seq=s.int_("last_seq", optional=True),
            drift_ppm=s.num("drift_ppm", optional=True),
            jitter_ms=s.num("jitter_ms", optional=True),
            samples_received=s.int_("samples_received", optional=True) or 0,
            gaps=s.int_("gaps", optional=True) or 0,
        )
    return Status(
        kind="status",
        subject=_subject(f),
        state=f.str_("state", choices=("online", "offline")),
        t_utc_s=f.num("t_utc_s", optional=True),
        gateway=f.mapping("gateway", str),
        session=f.str_("session", optional=True),
        sensors=sensors,
        outbox=f.mapping("outbox", float),
    )


def _read_command(f: _Fields) -> Command:
    action = f.str_("action", choices=COMMAND_ACTIONS)
    cmd = Command(
        kind="cmd",
        cmd_id=f.str_("cmd_id"),
        subject=_subject(f),
        action=action,
        exercise=f.str_("exercise", optional=True),
        side=f.str_("side", optional=True),
        set=f.int_("set", optional=True, minimum=1),
    )
    if action in ("set_start", "set_end"):
        if cmd.exercise is None or cmd.side is None:
            raise UplinkError("exercise", f"{action} names the exercise and side")
        check_activity(cmd.exercise, cmd.side, cmd.set)
    return cmd


def _read_reply(f: _Fields) -> CommandReply:
    return CommandReply(
        kind="cmd/reply",
        cmd_id=f.str_("cmd_id"),
        subject=_subject(f),
        ok=f.bool_("ok"),
        message=f.text("message"),
    )


def _read_ack(f: _Fields) -> Ack:
    ids = f.list_("msg_ids")
    for i, item in enumerate(ids):
        if not isinstance(item, str) or not item:
            raise UplinkError(f"msg_ids[{i}]", "must be a non-empty string")
    return Ack(kind="ack", subject=_subject(f), msg_ids=tuple(ids), worker=f.text("worker"))


_READERS: dict[str, Callable[[_Fields], Message]] = {
    "raw": _read_raw,
    "gap": _read_gap,
    "marker": _read_marker,
    "status": _read_status,
    "cmd": _read_command,
    "cmd/reply": _read_reply,
    "ack": _read_ack,
}
