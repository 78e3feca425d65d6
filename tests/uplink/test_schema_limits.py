"""uplink-v1.json states the limits envelope.decode enforces, with the same values.

One table, LIMITS: for each bounded field, a payload built from a golden vector with the field at its limit is
accepted by both the JSON Schema and the decoder, and one with the field just past it is refused by both (the
decoder naming the field). The values come from envelope's constants, so changing a limit in one place and not
the other fails here. What JSON Schema cannot say (payload size, nesting, digits, cross-field rules) must be
stated in the schema's descriptions and in UPLINK.md's "Limits" section, with the decoder's numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gaitsym_common.errors import UplinkError
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.vocabulary import MAX_SET

VECTORS = json.loads(resources.files("gaitsym_common.uplink.vectors").joinpath("uplink.json").read_text())
SCHEMA = json.loads(resources.files("gaitsym_common.uplink").joinpath("uplink-v1.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
UPLINK_MD = Path(env.__file__).with_name("UPLINK.md").read_text(encoding="utf-8")

Changes = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class Limit:
    """One bound of one field: ``at`` is on the bound (accepted), ``past`` one step beyond it (refused)."""

    vector: str
    """Name of the golden vector the payload is built from."""
    path: str
    """The field, dotted through objects (``clock.rate``, ``sensors.pelvis.battery_pct``)."""
    at: Any
    past: Any
    refused_as: str
    """The field the decoder names when it refuses ``past``."""
    also: Changes | None = None
    """Other fields a cross-field rule ties to this value (dotted path -> value), applied with it."""
    at_refused_as: str | None = None
    """Set when no payload can hold ``at`` because a cross-field rule (stated in the schema's description, not
    checkable by JSON Schema) refuses it first: the decoder must then refuse ``at`` naming this other field."""
    schema_path: str = ""
    """Where the bound sits in the schema, ``{kind}.{path}`` with placements as ``*``, ``[]`` for array items
    and ``{}`` for an object's keys; derived from ``path`` unless given."""

    @property
    def kind(self) -> str:
        return str(json.loads(_vector(self.vector)["payload"])["kind"])

    @property
    def where(self) -> str:
        if self.schema_path:
            return self.schema_path
        parts = ["*" if part in ("pelvis", "left_thigh", "right_thigh") else part for part in self.path.split(".")]
        return ".".join([_DEF_OF_KIND[self.kind], *parts])

    @property
    def shown(self) -> Any:
        """The bound: a number, a length, a count, or for a one-entry array or object what varies in its entry."""
        return _size(self._varying()[0])

    @property
    def side(self) -> str:
        """``<=`` for an upper bound, ``>=`` for a lower one."""
        at, past = self._varying()
        return "<=" if _size(past) > _size(at) else ">="

    def _varying(self) -> tuple[Any, Any]:
        at, past = self.at, self.past
        if isinstance(at, list) and isinstance(past, list) and len(at) == len(past) == 1:
            return at[0], past[0]
        if isinstance(at, dict) and isinstance(past, dict) and len(at) == len(past) == 1:
            (at_key, at_value), (past_key, past_value) = next(iter(at.items())), next(iter(past.items()))
            return (at_key, past_key) if at_key != past_key else (at_value, past_value)
        return at, past


def _size(value: Any) -> Any:
    return value if isinstance(value, int | float) else len(value)


_DEF_OF_KIND = {"cmd/reply": "cmd_reply"}
_DEF_OF_KIND.update({k: k for k in ("raw", "gap", "marker", "status", "cmd", "ack")})


def _vector(name: str) -> dict[str, Any]:
    return dict(next(v for v in VECTORS["valid"] if v["name"] == name))


def _step_past(value: int | float, direction: float) -> int | float:
    if isinstance(value, int):
        return value + (1 if direction > 0 else -1)
    return math.nextafter(value, direction)


def _range(vector: str, path: str, low: float | None, high: float | None, also: Changes | None = None) -> list[Limit]:
    """A number's bounds (integers step by 1, floats to the next float)."""
    limits = []
    for bound, direction in ((low, -math.inf), (high, math.inf)):
        if bound is not None:
            limits.append(Limit(vector, path, bound, _step_past(bound, direction), path, also))
    return limits


def _length(vector: str, path: str, low: int | None, high: int, also: Changes | None = None) -> list[Limit]:
    """A string's length in characters."""
    limits = [Limit(vector, path, "x" * high, "x" * (high + 1), path, also)]
    if low is not None:
        limits.append(Limit(vector, path, "x" * low, "x" * (low - 1), path, also))
    return limits


IDS = env.MAX_ID_CHARS
TEXT = env.MAX_TEXT_CHARS
COUNTER = env.MAX_COUNTER
UTC = (env.UTC_MIN_S, env.UTC_MAX_S)
DRIFT = env.MAX_DRIFT_PPM
JITTER = env.MAX_JITTER_MS
MAPPING = env.MAX_MAPPING_KEYS

RAW = "raw batch across a u32 wrap"
UNSYNCED = "raw batch before the gateway clock is synchronised"
GAP = "gap"
SET_START = "set start marker"
WINDOW = "window marker"
SESSION_END = "session end marker with each sensor's first sample of the session"
STATUS = "status online"
CMD = "command"
REPLY = "command reply"
ACK = "ack"


def _rate_of(drift_ppm: float) -> dict[str, Any]:
    """The rate a drift means (rate = 1 / (1 + drift_ppm * 1e-6)): the decoder refuses the two disagreeing."""
    return {"clock.rate": 1.0 / (1.0 + drift_ppm * 1e-6)}


def _drift_nearest(rate: float) -> dict[str, Any]:
    """The drift closest to what ``rate`` means that the drift's own bound allows."""
    return {"clock.drift_ppm": max(-DRIFT, min(DRIFT, (1.0 / rate - 1.0) * 1e6))}


def _raw_serial_for_id_length(msg_id: str) -> dict[str, Any]:
    """A serial of the length that makes the raw batch's msg_id, which embeds it, as long as ``msg_id``."""
    return {"sensor.serial": "S" * (len(msg_id) - len(_raw_id_with_serial("")))}


def _raw_id_with_serial(serial: str) -> str:
    doc = json.loads(_vector(RAW)["payload"])
    return env.raw_batch_id(serial, doc["sensor"]["boot_epoch"], doc["seq_first"])


def _gap_serial_for_id_length(msg_id: str) -> dict[str, Any]:
    return {"serial": "S" * (len(msg_id) - len(_gap_id_with_serial("")))}


def _gap_id_with_serial(serial: str) -> str:
    doc = json.loads(_vector(GAP)["payload"])
    return env.gap_id(serial, doc["boot_epoch"], doc["seq_first_missing"])


def _ids(count: int) -> list[str]:
    return [f"m{i}" for i in range(count)]


def _entries(count: int, value: Any) -> dict[str, Any]:
    return {f"k{i}": value for i in range(count)}


def _packets(count: int) -> list[str]:
    return ["AA=="] * count


def _golden_raw(field: str) -> Any:
    return json.loads(_vector(RAW)["payload"])[field]


def _batch_of(packets: list[str]) -> dict[str, Any]:
    """A raw batch whose samples (and sequence range) can hold this many packets (each holds one or more)."""
    n = max(1, len(packets))
    return {"n_samples": n, "seq_last": _golden_raw("seq_first") + n - 1}


def _holding(n_samples: int) -> dict[str, Any]:
    """A sequence range that holds ``n_samples`` (the decoder checks n_samples <= seq_last - seq_first + 1)."""
    return {"seq_last": _golden_raw("seq_first") + n_samples - 1, "packets": _packets(1)}


def _alone(seq_first: int) -> dict[str, Any]:
    """A one-sample batch starting at ``seq_first`` (so seq_last can equal it)."""
    return {"seq_last": seq_first, "n_samples": 1, "packets": _packets(1)}


def _span(seq_first: int) -> dict[str, Any]:
    """seq_last after seq_first by the golden batch's span."""
    return {"seq_last": seq_first + _golden_raw("seq_last") - _golden_raw("seq_first")}


def _ending_at(seq_last: int) -> dict[str, Any]:
    return {"seq_first": seq_last - (_golden_raw("seq_last") - _golden_raw("seq_first"))}


def _serial_limits(vector: str, path: str, id_with_serial: Callable[[str], str]) -> list[Limit]:
    """A durable message's serial: its own bound is MAX_ID_CHARS, but the msg_id embeds it and is bounded by the
    same number, so the id's bound is met first; past it the decoder names msg_id."""
    longest = IDS - len(id_with_serial(""))
    return [
        Limit(vector, path, "S", "", path),
        Limit(vector, path, "S" * longest, "S" * (longest + 1), "msg_id"),
    ]


LIMITS: list[Limit] = [
    # ---- raw: identity and sequence ----------------------------------------------------------------------
    Limit(RAW, "msg_id", "x" * IDS, "x" * (IDS + 1), "msg_id", _raw_serial_for_id_length),
    *_length(RAW, "session", 1, IDS),
    *_serial_limits(RAW, "sensor.serial", _raw_id_with_serial),
    *_range(RAW, "sensor.boot_epoch", 0, env.MAX_BOOT_EPOCH),
    *_range(RAW, "sensor.sample_rate_hz", *env.SAMPLE_RATE_RANGE_HZ),
    *_range(RAW, "sensor.acc_range_g", 1, env.MAX_RANGE_CODE_VALUE),
    *_range(RAW, "sensor.gyr_range_dps", 1, env.MAX_RANGE_CODE_VALUE),
    *_length(RAW, "sensor.firmware", None, TEXT),
    *_range(RAW, "seq_first", 0, None, also=_span),
    *_range(RAW, "seq_first", None, COUNTER, also=_alone),
    *_range(RAW, "seq_last", 0, None, also=lambda _: {"seq_first": 0, **_alone(0)}),
    *_range(RAW, "seq_last", None, COUNTER, also=_ending_at),
    *_range(RAW, "n_samples", 1, env.MAX_BATCH_SAMPLES, also=_holding),
    *_range(RAW, "t_sensor_us_first", 0, COUNTER),
    # ---- raw: clock --------------------------------------------------------------------------------------
    *_range(RAW, "clock.ref_sensor_us", 0, COUNTER),
    *_range(RAW, "clock.ref_utc_s", *UTC),
    *[  # a rate at its bound means a drift past MAX_DRIFT_PPM: the drift-rate rule refuses every such batch
        Limit(RAW, "clock.rate", bound, _step_past(bound, side), "clock.rate", _drift_nearest, "clock.drift_ppm")
        for bound, side in zip(env.RATE_RANGE, (-math.inf, math.inf), strict=True)
    ],
    *_range(RAW, "clock.drift_ppm", -DRIFT, DRIFT, also=_rate_of),
    *_range(RAW, "clock.jitter_ms", -JITTER, JITTER),
    # ---- raw: packets ------------------------------------------------------------------------------------
    Limit(RAW, "packets", _packets(1), _packets(0), "packets", _batch_of),
    Limit(RAW, "packets", _packets(env.MAX_BATCH_PACKETS), _packets(env.MAX_BATCH_PACKETS + 1), "packets", _batch_of),
    # ---- gap ---------------------------------------------------------------------------------------------
    Limit(GAP, "msg_id", "x" * IDS, "x" * (IDS + 1), "msg_id", _gap_serial_for_id_length),
    *_length(GAP, "session", 1, IDS),
    *_serial_limits(GAP, "serial", _gap_id_with_serial),
    *_length(GAP, "reason", 1, IDS),
    *_range(GAP, "boot_epoch", 0, env.MAX_BOOT_EPOCH),
    *_range(GAP, "seq_first_missing", 0, None),
    *_range(GAP, "seq_first_missing", None, COUNTER, also=lambda first: {"seq_last_missing": first}),
    *_range(GAP, "seq_last_missing", 0, COUNTER, also=lambda _: {"seq_first_missing": 0}),
    *_range(GAP, "duration_s", 0.0, env.MAX_GAP_DURATION_S),
    # ---- marker ------------------------------------------------------------------------------------------
    *_length(SET_START, "msg_id", 1, IDS),
    *_length(SET_START, "session", 1, IDS),
    *_range(SET_START, "t_utc_s", *UTC),
    *_length(SET_START, "last_seq.pelvis.serial", 1, IDS),
    *_range(SET_START, "last_seq.pelvis.boot_epoch", 0, env.MAX_BOOT_EPOCH),
    *_range(SET_START, "last_seq.pelvis.seq", 0, COUNTER),
    *_range(SET_START, "set", 1, MAX_SET),
    *_range(SESSION_END, "last_seq.pelvis.session_seq_first", 0, None),
    *_range(  # at most seq (cross-field), so seq goes up with it
        SESSION_END, "last_seq.pelvis.session_seq_first", None, COUNTER, also=lambda _: {"last_seq.pelvis.seq": COUNTER}
    ),
    *_length(WINDOW, "exercise", 1, IDS),  # a window marker: no vocabulary check on the exercise
    *_length(SET_START, "source", None, TEXT),
    # ---- status ------------------------------------------------------------------------------------------
    *_range(STATUS, "t_utc_s", *UTC),
    *_length(STATUS, "session", 1, IDS),
    Limit(STATUS, "gateway", _entries(MAPPING, "v"), _entries(MAPPING + 1, "v"), "gateway"),
    Limit(STATUS, "gateway", {"k" * IDS: "v"}, {"k" * (IDS + 1): "v"}, "gateway.", schema_path="status.gateway{}"),
    Limit(STATUS, "gateway", {"k": "v" * TEXT}, {"k": "v" * (TEXT + 1)}, "gateway.", schema_path="status.gateway.*"),
    Limit(STATUS, "outbox", _entries(MAPPING, 1), _entries(MAPPING + 1, 1), "outbox"),
    Limit(STATUS, "outbox", {"k" * IDS: 1}, {"k" * (IDS + 1): 1}, "outbox.", schema_path="status.outbox{}"),
    Limit(STATUS, "outbox", {"k": COUNTER}, {"k": COUNTER + 1}, "outbox.", schema_path="status.outbox.*"),
    Limit(STATUS, "outbox", {"k": -COUNTER}, {"k": -COUNTER - 1}, "outbox.", schema_path="status.outbox.*"),
    *_length(STATUS, "sensors.pelvis.serial", 1, IDS),
    *_range(STATUS, "sensors.pelvis.battery_pct", 0, 100),
    *_range(STATUS, "sensors.pelvis.rssi_dbm", -200, 127),
    *_range(STATUS, "sensors.pelvis.boot_epoch", 0, env.MAX_BOOT_EPOCH),
    *_range(STATUS, "sensors.pelvis.last_seq", 0, COUNTER),
    *_range(STATUS, "sensors.pelvis.drift_ppm", -DRIFT, DRIFT),
    *_range(STATUS, "sensors.pelvis.jitter_ms", -JITTER, JITTER),
    *_range(STATUS, "sensors.pelvis.samples_received", 0, COUNTER),
    *_range(STATUS, "sensors.pelvis.gaps", 0, COUNTER),
    # ---- cmd, cmd/reply, ack -----------------------------------------------------------------------------
    *_length(CMD, "cmd_id", 1, IDS),
    *_length(CMD, "exercise", 1, IDS, also=lambda _: {"action": "session_stop"}),  # no vocabulary check
    *_range(CMD, "set", 1, MAX_SET),
    *_length(REPLY, "cmd_id", 1, IDS),
    *_length(REPLY, "message", None, TEXT),
    Limit(ACK, "msg_ids", _ids(env.MAX_ACK_IDS), _ids(env.MAX_ACK_IDS + 1), "msg_ids"),
    Limit(ACK, "msg_ids", ["x" * IDS], ["x" * (IDS + 1)], "msg_ids[0]", schema_path="ack.msg_ids[]"),
    Limit(ACK, "msg_ids", ["x"], [""], "msg_ids[0]", schema_path="ack.msg_ids[]"),
    *_length(ACK, "worker", None, TEXT),
]


def _payload(limit: Limit, value: Any) -> dict[str, Any]:
    """The limit's golden vector with the field set to ``value`` (and whatever cross-field rules tie to it)."""
    doc: dict[str, Any] = json.loads(_vector(limit.vector)["payload"])
    changes = {**(limit.also(value) if limit.also else {}), limit.path: value}
    for path, new in changes.items():
        *blocks, key = path.split(".")
        target = doc
        for block in blocks:
            target[block] = dict(target[block])
            target = target[block]
        target[key] = new
    # a durable message's id is derived from the fields it identifies; kept consistent unless it is the subject
    if doc["kind"] == "raw":
        doc["msg_id"] = env.raw_batch_id(doc["sensor"]["serial"], doc["sensor"]["boot_epoch"], doc["seq_first"])
    if doc["kind"] == "gap":
        doc["msg_id"] = env.gap_id(doc["serial"], doc["boot_epoch"], doc["seq_first_missing"])
    return doc


def _encoded(doc: dict[str, Any]) -> bytes:
    payload = json.dumps(doc).encode()
    assert len(payload) <= env.MAX_PAYLOAD_BYTES, "the table must test the field, not the payload size"
    return payload


def _id(limit: Limit) -> str:
    return f"{limit.where}{limit.side}{limit.shown}"


@pytest.mark.parametrize("limit", LIMITS, ids=_id)
def test_a_field_at_its_limit_is_accepted_by_schema_and_decoder(limit: Limit) -> None:
    doc = _payload(limit, limit.at)
    VALIDATOR.validate(doc)
    if limit.at_refused_as is None:
        env.decode(_encoded(doc))
        return
    with pytest.raises(UplinkError) as info:  # the field's own check passed; a cross-field rule refused it
        env.decode(_encoded(doc))
    assert info.value.field == limit.at_refused_as, str(info.value)


@pytest.mark.parametrize("limit", LIMITS, ids=_id)
def test_a_field_just_past_its_limit_is_refused_by_schema_and_decoder(limit: Limit) -> None:
    doc = _payload(limit, limit.past)
    assert not VALIDATOR.is_valid(doc), f"the schema accepts {limit.path} past its limit"
    with pytest.raises(UplinkError) as info:
        env.decode(_encoded(doc))
    assert info.value.field.startswith(limit.refused_as), str(info.value)
    assert "contradicts" not in str(info.value)  # refused by the bound, not by the drift-rate rule


# ---- every bound in the schema is in the table ------------------------------------------------------------

_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target: dict[str, Any] = SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(target), **{k: v for k, v in node.items() if k != "$ref"}}


def _bounded_paths(node: dict[str, Any], path: str) -> Iterator[str]:
    node = _resolve(node)
    if any(key in node for key in _LOWER):
        yield f"{path}>="
    if any(key in node for key in _UPPER):
        yield f"{path}<="
    for branch in (*node.get("anyOf", ()), *node.get("oneOf", ()), *node.get("allOf", ())):
        yield from _bounded_paths(branch, path)
    for branch in (node.get("then"), node.get("else")):
        if branch:
            yield from _bounded_paths(branch, path)
    for name, child in node.get("properties", {}).items():
        yield from _bounded_paths(child, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _bounded_paths(node["additionalProperties"], f"{path}.*")
    if isinstance(node.get("propertyNames"), dict):
        yield from _bounded_paths(node["propertyNames"], f"{path}{{}}")
    if isinstance(node.get("items"), dict):
        yield from _bounded_paths(node["items"], f"{path}[]")


def test_every_bound_the_schema_states_is_tested_against_the_decoder() -> None:
    in_schema = {p for kind in _DEF_OF_KIND.values() for p in _bounded_paths(SCHEMA["$defs"][kind], kind)}
    tested = {f"{limit.where}{limit.side}" for limit in LIMITS}
    assert in_schema - tested == set(), "add these fields to LIMITS"
    assert tested - in_schema == set(), "the schema states no bound for these"


# ---- cross-field rules: stated by the schema where it can, in words where it cannot ----------------------


@pytest.mark.parametrize(
    ("vector", "changes", "field"),
    [
        (RAW, {"clock.ref_utc_s": None}, "clock.ref_utc_s"),  # synchronised: a UTC reference is required
        (UNSYNCED, {"clock.ref_utc_s": env.UTC_MIN_S}, "clock.ref_utc_s"),  # not synchronised: no invented UTC
        (SET_START, {"set": None}, "exercise"),  # set markers name exercise, side and set
        (SET_START, {"side": None}, "exercise"),
        (CMD, {"exercise": None}, "exercise"),  # set commands name exercise and side
    ],
    ids=lambda v: str(v)[:40],
)
def test_cross_field_rules_the_schema_states_fail_schema_and_decoder_alike(
    vector: str, changes: dict[str, Any], field: str
) -> None:
    doc = json.loads(_vector(vector)["payload"])
    VALIDATOR.validate(doc)
    for path, value in changes.items():
        *blocks, key = path.split(".")
        target = doc
        for block in blocks:
            target = target[block]
        target[key] = value
    assert not VALIDATOR.is_valid(doc)
    with pytest.raises(UplinkError) as info:
        env.decode(_encoded(doc))
    assert info.value.field == field, str(info.value)


def _limits_row(label: str) -> str:
    """The row of UPLINK.md's Limits table whose first cell starts with ``label``."""
    section = UPLINK_MD.split("## Limits", 1)[1].split("\n## ", 1)[0]
    return next(line for line in section.splitlines() if line.startswith(f"| {label}"))


def test_limits_json_schema_cannot_express_are_stated_with_the_decoders_values() -> None:
    top = SCHEMA["description"]
    for value in (env.MAX_PAYLOAD_BYTES, env.MAX_JSON_DEPTH, env.MAX_INT_DIGITS, env.MAX_NUMBER_CHARS):
        assert f" {value} " in top, value
    raw = SCHEMA["$defs"]["raw"]["properties"]
    assert str(env.MAX_BATCH_SPAN) in raw["seq_last"]["description"]
    assert "n_samples" in raw["packets"]["description"]
    drift = raw["clock"]["properties"]["drift_ppm"]["description"]
    assert f"{env.DRIFT_TOLERANCE_PPM:g} ppm + {env.DRIFT_TOLERANCE_FRACTION:.0%}" in drift

    assert f"{env.MAX_PAYLOAD_BYTES:,} bytes" in _limits_row("payload size")
    assert f"| {env.MAX_JSON_DEPTH} " in _limits_row("nesting")
    assert f"| {env.MAX_INT_DIGITS}; a number with a fraction or exponent: {env.MAX_NUMBER_CHARS} characters" in (
        _limits_row("digits of one integer")
    )
    assert "2³¹" in _limits_row("`seq_last - seq_first`") and env.MAX_BATCH_SPAN == 2**31
    assert "packets ≤ `n_samples`" in _limits_row("samples in a raw batch")
