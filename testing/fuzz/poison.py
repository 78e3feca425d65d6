"""Mutations of untrusted input for the fuzz campaign: seeds, poison values and structure-aware strategies.

The seed: ``GAITSYM_FUZZ_SEED`` when set (to replay a failure), else a fresh random one; every fuzz test
prints it. ``GAITSYM_FUZZ_EXAMPLES`` overrides the number of examples per test (the in-suite default is small;
bench/fuzz_campaign.py runs the same targets for longer).

Payloads are built as JSON *text*, not Python objects: a value is replaced by a placeholder string, the document
serialised, and the placeholder swapped for the poison's text. So a payload can hold what ``json.dumps`` could
never produce from a Python object (100,000 levels of nesting, a 5,000-digit integer, a lone surrogate escape)
while everything around it stays valid, and the decoder gets past its first checks to the field under test.
Then, sometimes, bytes are flipped, set, cut or inserted.
"""

from __future__ import annotations

import binascii
import copy
import json
import os
import random
import struct
from collections.abc import Iterator
from importlib import resources
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

FUZZ_SEED = int(os.environ.get("GAITSYM_FUZZ_SEED") or random.SystemRandom().randrange(2**32))


def seed_line() -> str:
    return f"fuzz seed: {FUZZ_SEED} (replay with GAITSYM_FUZZ_SEED={FUZZ_SEED})"


def fuzz_settings(examples: int) -> settings:
    """A fixed number of examples, no example database: one seed always runs the same examples. No shrinking:
    a failing payload is reported as generated, with what was done to it (`Payload.how`); shrinking payloads of
    200 kB takes longer than the whole run and, for a target that keeps state (a worker, a gateway), can end
    on an example that fails only because of the one before it."""
    return settings(
        max_examples=int(os.environ.get("GAITSYM_FUZZ_EXAMPLES") or examples),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.generate),
    )


# ------------------------------------------------------------------------------------------ poison values

NESTING = 100_000
"""Levels of ``[[[...]]]``: 200,000 bytes, inside the uplink's 256 KiB payload limit."""

POISON: dict[str, str] = {
    "int 2**63": str(2**63),
    "int 2**64": str(2**64),
    "int 2**70": str(2**70),
    "int -2**70": str(-(2**70)),
    "int 400 digits": "9" * 400,
    "int 5000 digits": "7" * 5000,
    "int -1": "-1",
    "float 1e300": "1e300",
    "float -1e300": "-1e300",
    "float 1e-300": "1e-300",
    "float 5e-324": "5e-324",
    "float -0.0": "-0.0",
    "float 1e400": "1e400",
    "float 2**63": "9.223372036854776e18",
    "nested lists": "[" * NESTING + "]" * NESTING,
    "nested objects": '{"a":' * 40_000 + "0" + "}" * 40_000,
    "string 200000 ascii": '"' + "x" * 200_000 + '"',
    "string 60000 non-ascii": '"' + "é" * 60_000 + '"',
    "string lone surrogate": '"GS\\ud800"',
    "string control characters": '"a\\u0000b\\nc,d=e \\"f\\\\"',
    "list 50000 zeros": "[" + ",".join("0" * 50_000) + "]",
    "list 20000 strings": "[" + ",".join(['"AQ=="'] * 20_000) + "]",
    "empty string": '""',
    "empty object": "{}",
    "empty list": "[]",
    "true": "true",
    "false": "false",
    "null": "null",
    "zero": "0",
    "string zero": '"0"',
}
POISON_NAMES = tuple(POISON)

INT_EDGES = (0, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**62, 2**63 - 1000, 2**63 - 1, 2**63, 2**64, 2**70)
POSITIVE_FLOAT_EDGES = (
    5e-324,
    1e-300,
    1e-9,
    0.001,
    0.5,
    1.0,
    1.00002,
    99.99,
    100.0,
    1000.0,
    1000.5,
    1e6,
    2.0**53,
    1e300,
    1.7976931348623157e308,
)
FLOAT_EDGES = (*POSITIVE_FLOAT_EDGES, 0.0, -0.0, -1.0, -1e300)

_PLACEHOLDER = "@@poison-{}@@"


def edge_ints() -> st.SearchStrategy[int]:
    return st.sampled_from(INT_EDGES) | st.integers(0, 2**66)


def edge_floats(positive: bool = False) -> st.SearchStrategy[float]:
    if positive:
        return st.sampled_from(POSITIVE_FLOAT_EDGES) | st.floats(min_value=5e-324, allow_infinity=False)
    return st.sampled_from(FLOAT_EDGES) | st.floats(allow_nan=False, allow_infinity=False)


_SMALL_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


# ------------------------------------------------------------------------------------------ golden documents


def uplink_vectors() -> list[dict[str, Any]]:
    text = resources.files("gaitsym_common.uplink.vectors").joinpath("uplink.json").read_text("utf-8")
    return list(json.loads(text)["valid"])


class Payload:
    """One fuzzed message: where it goes, its bytes, and what was done to it (printed on failure, shortened)."""

    __slots__ = ("data", "how", "topic")

    def __init__(self, topic: str, data: bytes, how: str) -> None:
        self.topic, self.data, self.how = topic, data, how

    def __repr__(self) -> str:
        head = self.data[:160]
        return f"Payload(topic={self.topic!r}, {len(self.data)} bytes, how={self.how!r}, starts={head!r})"


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every value's path in a JSON document (dict keys and list indices), depth first."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def _render(doc: Any, poisons: dict[str, str]) -> str:
    text = json.dumps(doc, separators=(",", ":"))
    for placeholder, poison in poisons.items():
        text = text.replace(json.dumps(placeholder), poison)
    return text


@st.composite
def structured(draw: st.DrawFn, docs: list[tuple[str, dict[str, Any]]], extra: dict[str, Any] | None = None) -> Payload:
    """A golden document with one to three fields replaced by poison (or a wrong type), deleted, added, or its
    kind swapped; ``extra`` maps a field name to values worth trying there (e.g. a foreign subject)."""
    topic, original = draw(st.sampled_from(docs))
    doc = copy.deepcopy(original)
    poisons: dict[str, str] = {}
    how = []
    for n in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        op = draw(st.sampled_from(("poison", "poison", "poison", "wrong type", "delete", "add", "kind", "extra")))
        if op in ("kind", "extra") and not isinstance(doc, dict):
            op = "poison"
        if op == "kind":
            kinds = ("raw", "gap", "marker", "bundle", "status", "cmd", "cmd/reply", "ack", "x")
            doc["kind"] = draw(st.sampled_from(kinds))
            how.append(f"kind={doc['kind']}")
            continue
        if op == "extra" and extra:
            key = draw(st.sampled_from(sorted(extra)))
            doc[key] = copy.deepcopy(draw(st.sampled_from(extra[key])))  # later mutations must not reach ``extra``
            how.append(f"{key}={doc[key]!r}"[:80])
            continue
        if not paths or op == "add":
            holder = _parent(doc, draw(st.sampled_from(paths))) if paths else doc
            if not isinstance(holder, dict):
                holder = doc if isinstance(doc, dict) else None
            if holder is None:
                continue
            name = draw(st.sampled_from(POISON_NAMES))
            placeholder = _PLACEHOLDER.format(n)
            holder[draw(st.sampled_from(("zz_unknown", "packets", "sensor", "v")))] = placeholder
            poisons[placeholder] = POISON[name]
            how.append(f"add {name}")
            continue
        path = draw(st.sampled_from(paths))
        holder = _parent(doc, path)
        try:
            holder[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced the parent
        if op == "delete":
            del holder[path[-1]]
            how.append(f"delete {'.'.join(map(str, path))}")
        elif op == "wrong type":
            holder[path[-1]] = draw(_SMALL_JSON)
            how.append(f"{'.'.join(map(str, path))}={holder[path[-1]]!r}"[:120])
        else:
            name = draw(st.sampled_from(POISON_NAMES))
            placeholder = _PLACEHOLDER.format(n)
            holder[path[-1]] = placeholder
            poisons[placeholder] = POISON[name]
            how.append(f"{'.'.join(map(str, path))}={name}")
    data = _render(doc, poisons).encode("utf-8")
    data, flips = draw(byte_mutations(data, probability=0.25))
    return Payload(topic, data, "; ".join(how + flips))


@st.composite
def byte_mutations(draw: st.DrawFn, data: bytes, probability: float = 1.0) -> tuple[bytes, list[str]]:
    """Flip bits, set bytes, cut, or insert a few bytes (sometimes: with ``probability``)."""
    if probability < 1.0 and draw(st.floats(0, 1)) >= probability:
        return data, []
    b = bytearray(data)
    done = []
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "set", "cut", "insert")))
        if not b:
            op = "insert"
        if op == "flip":
            i = draw(st.integers(0, len(b) - 1))
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            i = draw(st.integers(0, len(b) - 1))
            b[i] = draw(st.integers(0, 255))
        elif op == "cut":
            i = draw(st.integers(0, len(b) - 1))
            del b[i : i + draw(st.integers(1, 16))]
        else:
            i = draw(st.integers(0, len(b)))
            b[i:i] = draw(st.binary(min_size=1, max_size=8))
        done.append(f"{op}@{i}")
    return bytes(b), done


def byte_level(docs: list[tuple[str, dict[str, Any]]]) -> st.SearchStrategy[Payload]:
    """A golden payload with bytes flipped, set, cut or inserted."""

    @st.composite
    def build(draw: st.DrawFn) -> Payload:
        topic, doc = draw(st.sampled_from(docs))
        data, how = draw(byte_mutations(json.dumps(doc, separators=(",", ":")).encode()))
        return Payload(topic, data, "bytes " + ",".join(how))

    return build()


# ------------------------------------------------------------------------------------------ raw batches


def imu_packet(sequence: int, timestamp_us: int, samples: bytes, ranges: int = 0x43, flags: int = 0) -> bytes:
    """An IMU data packet as firmware_protocol/SPEC.md §3-4 lays it out (CRC-16/CCITT-FALSE, little-endian)."""
    body = struct.pack("<BBBBII", 1, flags, len(samples) // 12, ranges, sequence % 2**32, timestamp_us % 2**32)
    body += samples
    return body + struct.pack("<H", binascii.crc_hqx(body, 0xFFFF))


@st.composite
def raw_batches(draw: st.DrawFn, subject: str = "H001", placement: str = "pelvis") -> Payload:
    """A raw batch whose envelope is consistent (msg_id, seq range, sample count, packets with valid CRCs that
    continue the batch's sequence), so the decoder gets past the envelope to the numbers: huge sequences and
    sensor times, tiny or huge rates, clock mappings that overflow, odd serials."""
    seq_first = draw(edge_ints())
    t_first = draw(edge_ints())
    rate = draw(edge_floats(positive=True))
    counts = draw(st.lists(st.integers(1, 19), min_size=1, max_size=3))
    packets = []
    offset = 0
    consistent = draw(st.integers(0, 9)) > 0
    for n in counts:
        seq = seq_first + offset if consistent else draw(st.integers(0, 2**32 - 1))
        ts = draw(st.sampled_from((t_first + offset * 10_000, t_first, 2**32 - 1, 0)))
        ranges = draw(st.sampled_from((0x43, 0x00, 0x32))) if consistent else draw(st.integers(0, 255))
        flags = draw(st.integers(0, 7)) if consistent else draw(st.integers(0, 255))
        samples = draw(st.binary(min_size=12 * n, max_size=12 * n))
        packets.append(imu_packet(seq, ts, samples, ranges, flags))
        offset += n
    serial = draw(st.sampled_from(("GS-1", "x" * 16, 'GS,1 ="\\', "GS\n1", "é" * 5, "a" * 3000, "raw:1:2")))
    boot = draw(edge_ints())
    synced = draw(st.booleans())
    seq_last = seq_first + offset - 1 if consistent else draw(edge_ints())
    doc = {
        "v": 1,
        "kind": "raw",
        "msg_id": f"raw:{serial}:{boot}:{seq_first}",
        "subject": subject,
        "session": draw(st.sampled_from((None, "s-1", 's,1 ="\\\n', "é" * 50))),
        "placement": placement,
        "sensor": {
            "serial": serial,
            "boot_epoch": boot,
            "sample_rate_hz": rate,
            "acc_range_g": draw(st.sampled_from((16, 2, 1, 2**70))),
            "gyr_range_dps": draw(st.sampled_from((2000, 125, 1, 2**70))),
            "firmware": "1.0.0",
        },
        "seq_first": seq_first,
        "seq_last": seq_last,
        "n_samples": offset if consistent else draw(st.integers(1, 60)),
        "t_sensor_us_first": t_first,
        "clock": {
            "utc_synced": synced,
            "ref_sensor_us": draw(edge_ints()),
            "ref_utc_s": draw(edge_floats()) if synced else None,
            "rate": draw(edge_floats(positive=True)),
            "drift_ppm": draw(edge_floats()),
            "jitter_ms": draw(edge_floats()),
        },
        "packets": [binascii.b2a_base64(p, newline=False).decode() for p in packets],
    }
    how = (
        f"seq_first={seq_first} t_first={t_first} rate={rate} boot={boot} serial={serial[:20]!r} "
        f"clock={doc['clock']} counts={counts} consistent={consistent}"
    )
    return Payload(f"gaitsym/v1/{subject}/raw/{placement}", json.dumps(doc).encode(), how)


def retarget(
    vectors: list[dict[str, Any]], subject: str, kinds: tuple[str, ...] | None = None
) -> list[tuple[str, Any]]:
    """The golden vectors (of ``kinds``) moved to ``subject``: (topic, document)."""
    out = []
    for v in vectors:
        doc = json.loads(v["payload"])
        if kinds is not None and doc["kind"] not in kinds:
            continue
        doc["subject"] = subject
        for part in doc.get("parts", ()) if doc["kind"] == "bundle" else ():  # a bundle's messages move with it
            name = part["topic"].split("/")
            name[2] = subject
            part["topic"] = "/".join(name)
            inner = json.loads(part["payload"])
            inner["subject"] = subject
            part["payload"] = json.dumps(inner, separators=(",", ":"))
        parts = v["topic"].split("/")
        parts[2] = subject
        out.append(("/".join(parts), doc))
    return out
