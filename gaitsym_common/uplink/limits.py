"""Uplink v1 limits: the bounds a reader holds every payload to, and the bounded JSON loading that applies the
ones a JSON parser must see (size, nesting depth, number length) before any field is read.

``envelope`` re-exports every constant here; UPLINK.md ("Limits") states the same values and why.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gaitsym_common.errors import UplinkError

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
MAX_BUNDLE_PARTS = 64
"""Messages in one bundle. The payload limit binds first for honest ones: a 1-s bundle holds three raw batches and
a window marker; one catching up after an outage holds about 25 raw batches of 100 Hz in 64 KiB."""
MAX_ID_CHARS = 256
"""msg_id, cmd_id, session, serial and other identifiers (the longest honest one, a marker id, is about 200)."""
MAX_TEXT_CHARS = 1024
"""Free-text fields (a command reply's message, the firmware version, a mapping's values)."""
MAX_MAPPING_KEYS = 32
"""Entries of a status message's ``gateway`` and ``outbox`` objects."""
MAX_GAP_DURATION_S = float(2**32)
"""A gap's duration, s: at most 2**31 samples at 1 Hz (the unwrap rule), with room."""
# How far a raw batch's ``clock.drift_ppm`` may stray from what its ``clock.rate`` says (envelope's drift-rate rule).
DRIFT_TOLERANCE_PPM = 1.0
DRIFT_TOLERANCE_FRACTION = 0.01


def load_bounded_json(payload: bytes | str) -> Any:
    """Parse untrusted JSON text within the limits: size first, UTF-8, nesting depth on the text, each number's
    length while parsing; the constants NaN and Infinity are refused (a number too large for a float, ``1e999``,
    parses to infinity: the typed readers, `fields`, refuse non-finite values). UplinkError(``payload``) on any of
    them."""
    data = payload.encode("utf-8", errors="surrogatepass") if isinstance(payload, str) else payload
    if len(data) > MAX_PAYLOAD_BYTES:
        raise UplinkError("payload", f"{len(data)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UplinkError("payload", f"not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    # one pass over the bytes for both pre-checks (brackets are ASCII: the bytes hold as many as the text)
    scan = bytes(data).translate(_SCAN)
    _check_nesting(text, scan.count(b"["))
    # the number hooks cost a Python call per number (most of a raw batch's parse): text holding no run of
    # characters long enough to make a number past either limit (strings included: a false alarm only takes
    # the hooked path) is parsed by the C scanner alone, to the same values
    hooked = _LONG_RUN in scan
    try:
        if hooked:
            doc = json.loads(text, parse_int=_bounded_int, parse_float=_bounded_float, parse_constant=_reject_constant)
        else:
            if text.startswith("\ufeff"):  # what `json.loads` refuses before its decoder runs
                raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
            # a decoder made once: `json.loads` with a hook builds a decoder and its scanner on every call
            doc = _PLAIN.decode(text)
    except json.JSONDecodeError as exc:
        raise UplinkError("payload", f"not JSON ({exc.msg} at char {exc.pos})") from exc
    except (RecursionError, ValueError) as exc:  # the depth pre-check makes these unreachable; kept as a net
        raise UplinkError("payload", f"not readable JSON ({str(exc)[:200]})") from exc
    return doc


_SCAN = bytes(0x30 if chr(i) in "-+0123456789.eE" else 0x5B if chr(i) in "[]{}" else 0x20 for i in range(256))
"""``bytes.translate`` table: each byte that can be part of a JSON number -> ``0``, each bracket -> ``[``, every
other byte -> space."""
_LONG_RUN = b"0" * (min(MAX_INT_DIGITS, MAX_NUMBER_CHARS) + 1)
"""A run of number characters as long as this is needed to make a number past either limit (an integer of more than
MAX_INT_DIGITS digits, a number of more than MAX_NUMBER_CHARS characters)."""
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
"""A JSON string literal, or an unterminated one up to the end: one linear pass, never a backtracking scan."""
_BRACKET = re.compile(r"[\[\]{}]")


def _check_nesting(text: str, n_brackets: int) -> None:
    """Refuse text nesting arrays/objects deeper than MAX_JSON_DEPTH, without recursing: brackets outside string
    literals are kept, then innermost pairs removed once per level; anything left after MAX_JSON_DEPTH rounds is
    deeper (or unbalanced, which is not JSON either). Text with few enough brackets anywhere (``n_brackets``, strings
    included) passes without the scan, as it would after it."""
    if n_brackets <= 2 * MAX_JSON_DEPTH:
        return
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


_PLAIN = json.JSONDecoder(parse_constant=_reject_constant)


def check_unicode(name: str, value: str) -> None:
    """A JSON string may escape a lone surrogate (``"\\ud800"``), which is no text: no store or log can write it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UplinkError(name, f"not valid Unicode text ({exc.reason} at character {exc.start})") from exc


def shorten(value: object, limit: int = 80) -> str:
    """A value for an error message: repr, cut to ``limit`` characters (a hostile value can be 64 kB long)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
