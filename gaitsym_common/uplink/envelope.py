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
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from gaitsym_common.errors import UplinkError
from gaitsym_common.uplink.topics import check_subject
from gaitsym_common.uplink.vocabulary import MAX_SET, PLACEMENTS, check_activity

VERSION = 1

# Limits of what a reader accepts (UPLINK.md, "Limits"). A payload is untrusted bytes from the network: each
# limit bounds the work and memory one message can cost, and every limit is far beyond what an honest gateway
# sends, so a value outside one is malformed, never clipped.
MAX_PAYLOAD_BYTES = 64 * 1024
"""The largest payload, bytes. An honest gateway's largest message is a raw batch: 1 s of one sensor at 100 Hz
is 2.2 kB (19 samples per packet) to 4.5 kB (1 sample per packet, the smallest BLE MTU); the firmware's top rate
(1000 Hz) gives 21-40 kB. An ack of 500 msg_ids is about 17 kB; markers and status under 1 kB. The broker's
``max_packet_size`` (deploy/mosquitto/mosquitto.conf) is this plus 1,024 bytes of MQTT header."""
MAX_JSON_DEPTH = 8
"""Nesting of arrays and objects (the deepest message, a status or marker, nests 3); checked on the text before
parsing, since Python's JSON parser recurses and a deep document exhausts its stack."""
MAX_INT_DIGITS = 40
"""Digits of one JSON integer: a 5,000-digit number is refused before it is converted (Python's own limit,
4,300 digits, would raise a ValueError; below it, conversion is quadratic). Every field's range check is far
below 10**40, so a value under this length but out of range is refused naming its field."""
MAX_NUMBER_CHARS = 32
"""Characters of one JSON number with a fraction or exponent (a float's repr has at most 24)."""
MAX_COUNTER = 2**53 - 1
"""Largest unwrapped sequence number or sensor time (µs). A u32 counter unwrapped to 64 bits grows by at most
1000 per second (samples at the firmware's top rate) or 1e6 (µs): 2**53 is 285 years of sensor clock, and below
it every value is exact as a float (JSON readers, the analysis) and as InfluxDB's int64."""
MAX_BOOT_EPOCH = 2**32 - 1
"""boot_epoch is a u32 in the sensor info (firmware_protocol SPEC.md section 5)."""
MAX_BATCH_SPAN = 2**31
"""``seq_last - seq_first`` of one raw batch: samples within it are unwrapped from u32 counters, which is exact
only for counters less than 2**31 apart (SPEC.md section 5)."""
UTC_MIN_S = 946_684_800.0
"""Earliest plausible UTC time, s (2000-01-01): a gateway whose clock is not synchronised says so
(``utc_synced`` false) instead of sending a time from its epoch."""
UTC_MAX_S = 4_102_444_800.0
"""Latest plausible UTC time, s (2100-01-01)."""
MAX_DRIFT_PPM = 10_000.0
"""|drift_ppm| (and |rate - 1| <= 1e-6 times it, loosely): crystals are off by 10-50 ppm; the gateway's clock
fit falls back to rate 1 when it fits more than 1000 ppm."""
RATE_RANGE = (0.98, 1.02)
"""``rate`` (host seconds per sensor second) consistent with MAX_DRIFT_PPM, with room."""
MAX_JITTER_MS = 60_000.0
SAMPLE_RATE_RANGE_HZ = (1.0, 1000.0)
"""sample_rate_hz is a u16 of 1..1000 Hz in the sensor info (SPEC.md)."""
MAX_RANGE_CODE_VALUE = 1 << 16
"""acc_range_g / gyr_range_dps: the packets' own ranges byte is the authority; these only have to be sane."""
MAX_BATCH_SAMPLES = 4096
"""Samples in one raw batch: the gateway closes a batch after ``batch_s`` (1 s: 100 samples at 100 Hz, 1000 at
the firmware's top rate); a burst after a stalled radio link adds a few seconds at most."""
MAX_BATCH_PACKETS = MAX_BATCH_SAMPLES
"""Packets in one raw batch (each holds at least one sample)."""
MAX_ACK_IDS = 1000
"""msg_ids in one ack (the worker sends at most 500 per message)."""
MAX_ID_CHARS = 256
"""msg_id, cmd_id, session, serial and other identifiers (the longest honest one, a marker id, is about 200)."""
MAX_TEXT_CHARS = 1024
"""Free-text fields (a command reply's message, the firmware version, a mapping's values)."""
MAX_MAPPING_KEYS = 32
"""Entries of a status message's ``gateway`` and ``outbox`` objects."""
MAX_GAP_DURATION_S = float(2**32)
"""A gap's duration, s: at most 2**31 samples at 1 Hz (the unwrap rule), with room."""
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
    """Parse and validate one payload; UplinkError naming the field on anything malformed.

    Bounded (the module's limits): the size is checked first, the nesting depth on the text before parsing, each
    integer's digit count while parsing, then every field's type and range. Any failure, whatever raised it,
    comes out as an UplinkError: a payload is untrusted bytes and a reader must survive all of them."""
    try:
        return _decode(payload)
    except UplinkError:
        raise
    except Exception as exc:  # a parser or reader failure not foreseen above: still only a malformed payload
        raise UplinkError("payload", f"unreadable ({type(exc).__name__}: {str(exc)[:200]})") from exc


def _decode(payload: bytes | str) -> Message:
    data = payload.encode("utf-8", errors="surrogatepass") if isinstance(payload, str) else payload
    if len(data) > MAX_PAYLOAD_BYTES:
        raise UplinkError("payload", f"{len(data)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UplinkError("payload", f"not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    _check_nesting(text)
    try:
        doc = json.loads(text, parse_int=_bounded_int, parse_float=_bounded_float, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise UplinkError("payload", f"not JSON ({exc.msg} at char {exc.pos})") from exc
    except (RecursionError, ValueError) as exc:  # the depth pre-check makes these unreachable; kept as a net
        raise UplinkError("payload", f"not readable JSON ({str(exc)[:200]})") from exc
    if not isinstance(doc, dict):
        raise UplinkError("payload", "must be a JSON object")
    if doc.get("v") != VERSION:
        raise UplinkError("v", f"unsupported envelope version {_shorten(doc.get('v'))} (this reader knows {VERSION})")
    kind = doc.get("kind")
    reader = _READERS.get(kind) if isinstance(kind, str) else None
    if reader is None:
        raise UplinkError("kind", f"{_shorten(kind)} is not one of {sorted(_READERS)}")
    message: Message = reader(_Fields(doc))
    return message


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
"""A JSON string literal, or an unterminated one up to the end: one linear pass, never a backtracking scan."""
_BRACKET = re.compile(r"[\[\]{}]")


def _check_nesting(text: str) -> None:
    """Refuse text nesting arrays/objects deeper than MAX_JSON_DEPTH, without recursing: brackets outside string
    literals are kept, then innermost pairs removed once per level; anything left after MAX_JSON_DEPTH rounds is
    deeper (or unbalanced, which is not JSON either)."""
    brackets = "".join(_BRACKET.findall(_JSON_STRING.sub("", text)))
    if len(brackets) <= 2 * MAX_JSON_DEPTH:
        return
    for _ in range(MAX_JSON_DEPTH):
        shorter = brackets.replace("[]", "").replace("{}", "")
        if not shorter:
            return
        if len(shorter) == len(brackets):
            break
        brackets = shorter
    raise UplinkError("payload", f"arrays/objects nested deeper than {MAX_JSON_DEPTH} levels (or unbalanced)")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise UplinkError("payload", f"an integer of {len(digits)} characters (at most {MAX_INT_DIGITS} digits)")
    return int(digits)


def _bounded_float(digits: str) -> float:
    if len(digits) > MAX_NUMBER_CHARS:
        raise UplinkError("payload", f"a number of {len(digits)} characters (at most {MAX_NUMBER_CHARS})")
    return float(digits)


def _reject_constant(name: str) -> Any:
    raise UplinkError("payload", f"{name} is not allowed in gaitsym JSON")


def _check_unicode(name: str, value: str) -> None:
    """A JSON string may escape a lone surrogate (``"\\ud800"``), which is no text: no store or log can write it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UplinkError(name, f"not valid Unicode text ({exc.reason} at character {exc.start})") from exc


def _shorten(value: object, limit: int = 80) -> str:
    """A value for an error message: repr, cut to ``limit`` characters (a hostile value can be 64 kB long)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


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

    def str_(
        self,
        key: str,
        optional: bool = False,
        choices: tuple[str, ...] | None = None,
        max_chars: int = MAX_ID_CHARS,
    ) -> Any:
        value = self._get(key, optional)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise UplinkError(self._name(key), f"must be a non-empty string, got {_shorten(value)}")
        if choices is not None and value not in choices:
            raise UplinkError(self._name(key), f"{_shorten(value)} is not one of {choices}")
        if len(value) > max_chars:
            raise UplinkError(self._name(key), f"{len(value)} characters exceeds {max_chars}")
        _check_unicode(self._name(key), value)
        return value

    def int_(self, key: str, optional: bool = False, minimum: int = 0, maximum: int = MAX_COUNTER) -> Any:
        value = self._get(key, optional)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise UplinkError(self._name(key), f"must be an integer in {minimum}..{maximum}, got {_shorten(value)}")
        return value

    def num(
        self,
        key: str,
        optional: bool = False,
        positive: bool = False,
        bounds: tuple[float, float] = (-float(MAX_COUNTER), float(MAX_COUNTER)),
    ) -> Any:
        value = self._get(key, optional)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise UplinkError(self._name(key), f"must be a finite number, got {_shorten(value)}")
        if positive and value <= 0:
            raise UplinkError(self._name(key), f"must be > 0, got {_shorten(value)}")
        if not bounds[0] <= value <= bounds[1]:
            raise UplinkError(self._name(key), f"must be in {bounds[0]:g}..{bounds[1]:g}, got {_shorten(value)}")
        return float(value)

    def bool_(self, key: str) -> bool:
        value = self._get(key, False)
        if not isinstance(value, bool):
            raise UplinkError(self._name(key), f"must be true or false, got {_shorten(value)}")
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
            raise UplinkError(self._name(key), f"must be a string, got {_shorten(value)}")
        if len(value) > MAX_TEXT_CHARS:
            raise UplinkError(self._name(key), f"{len(value)} characters exceeds {MAX_TEXT_CHARS}")
        _check_unicode(self._name(key), value)
        return value

    def mapping(self, key: str, values: type) -> dict[str, Any]:
        """An optional object whose values are all of one JSON type (str or number)."""
        block = self.obj(key, optional=True)
        if block is None:
            return {}
        if len(block.doc) > MAX_MAPPING_KEYS:
            raise UplinkError(self._name(key), f"{len(block.doc)} entries exceeds {MAX_MAPPING_KEYS}")
        for name, value in block.doc.items():
            ok = (
                isinstance(value, str) and len(value) <= MAX_TEXT_CHARS
                if values is str
                else (
                    isinstance(value, int | float)
                    and not isinstance(value, bool)
                    and math.isfinite(value)
                    and abs(value) <= MAX_COUNTER
                )
            )
            if len(name) > MAX_ID_CHARS or not ok:
                raise UplinkError(
                    f"{self._name(key)}.{_shorten(name, 40)}",
                    f"must be a {values.__name__} (bounded), got {_shorten(value)}",
                )
            _check_unicode(f"{self._name(key)}.{_shorten(name, 40)}", name)
            if isinstance(value, str):
                _check_unicode(f"{self._name(key)}.{_shorten(name, 40)}", value)
        return dict(block.doc)

    def list_(self, key: str, max_items: int) -> list[Any]:
        value = self._get(key, False)
        if not isinstance(value, list):
            raise UplinkError(self._name(key), "must be a JSON array")
        if len(value) > max_items:
            raise UplinkError(self._name(key), f"{len(value)} items exceeds {max_items}")
        return value


def _subject(f: _Fields) -> str:
    value = f.str_("subject")
    check_subject(value)
    return str(value)


DRIFT_TOLERANCE_PPM = 1.0
DRIFT_TOLERANCE_FRACTION = 0.01


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


def _read_raw(f: _Fields) -> RawBatch:
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
        boot_epoch=f.int_("boot_epoch", maximum=MAX_BOOT_EPOCH),
        seq_first_missing=first,
        seq_last_missing=last,
        duration_s=f.num("duration_s", bounds=(0.0, MAX_GAP_DURATION_S)),
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
        positions[placement] = SensorPosition(
            p.str_("serial"), p.int_("boot_epoch", maximum=MAX_BOOT_EPOCH), p.int_("seq")
        )
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


def _read_command(f: _Fields) -> Command:
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


def _read_reply(f: _Fields) -> CommandReply:
    return CommandReply(
        kind="cmd/reply",
        cmd_id=f.str_("cmd_id"),
        subject=_subject(f),
        ok=f.bool_("ok"),
        message=f.text("message"),
    )


def _read_ack(f: _Fields) -> Ack:
    ids = f.list_("msg_ids", MAX_ACK_IDS)
    for i, item in enumerate(ids):
        if not isinstance(item, str) or not item or len(item) > MAX_ID_CHARS:
            raise UplinkError(f"msg_ids[{i}]", f"must be a non-empty string of at most {MAX_ID_CHARS} characters")
        _check_unicode(f"msg_ids[{i}]", item)
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
