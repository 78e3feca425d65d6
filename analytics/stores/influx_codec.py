"""What goes over the wire to InfluxDB and back, as text: InfluxQL quoting and time bounds, the chunked JSON
answer of /query, raw samples' CSV and JSON rows (pandas' C reader for the CSV: about a third of the JSON's CPU),
series keys as SHOW SERIES prints them, and raw samples back to line protocol. No I/O here."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analytics.stores.model import (
    RAW,
    RAW_FIELDS,
    REPLAY_MOVE_US,
    SPAN_JOIN_US,
    Point,
    RawSeries,
    SampleId,
    point_line,
)

TIME_MIN_NS = -(1 << 62)
TIME_MAX_NS = 1 << 62


def quote_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def time_clause(start_us: int | None, end_us: int | None) -> str:
    """InfluxQL bounds (inclusive, in ns) of a µs range; None: unbounded on that side."""
    lo = TIME_MIN_NS if start_us is None else start_us * 1000
    hi = TIME_MAX_NS if end_us is None else end_us * 1000
    return f"time >= {lo} AND time <= {hi}"


def from_clause(database: str, rp: str, measurement: str) -> str:
    return f"{quote_ident(database)}.{quote_ident(rp)}.{quote_ident(measurement)}"


HELD_REQUEST_CHARS = 1_000_000
"""Statement text per request of the collision check, at most (influxd parses a /query form of up to 10 MB): a
probe statement is ~300 characters (one of `PROBE_PAIRS_MAX` sensors ~3,500), so a turn of a few thousand
sensors' batches is checked in ONE request. Every request costs influxd its own parsing, authentication and
answer (~0.3 ms), and the write waits for each."""


def statement_requests(statements: Sequence[str], limit: int = HELD_REQUEST_CHARS) -> list[str]:
    """Statements joined by ``;`` into as few requests as ``limit`` characters each allow (a statement longer than
    ``limit`` goes alone)."""
    requests: list[str] = []
    current: list[str] = []
    size = 0
    for s in statements:
        if current and size + len(s) + 1 > limit:
            requests.append(";".join(current))
            current, size = [], 0
        current.append(s)
        size += len(s) + 1
    if current:
        requests.append(";".join(current))
    return requests


PROBE_CLUSTER_US = 5_000_000
"""Spans of several sensors lying within this much of one another (µs) are probed together: a real-time turn's
batches all end within a second or two, and one statement answers as one chunk where one per sensor answers one
chunk each (each read, parsed and planned on its own). Spans further apart (a turn catching up several minutes)
are probed apart, so one statement never reads far more than its sensors' own windows."""
PROBE_PAIRS_MAX = 50
"""Sensors (subject, placement) in one probe statement at most: InfluxDB 1.6 plans an OR of N series conditions in
time that grows about as N² (measured on 1.6.7: 900 pairs in one statement 0.5-0.6 s, in 18 of 50 pairs 76-90 ms,
one statement per pair 128-135 ms), so a turn of hundreds of sensors is probed in statements of 50."""


def span_clusters(
    spans: Mapping[tuple[str, str, str], Sequence[tuple[int, int]]],
) -> list[tuple[int, int, list[tuple[str, str]]]]:
    """The merged spans (`merged_spans`) of every (retention policy, subject, placement) in ``spans`` (one policy),
    grouped in time: (lo, hi, [(subject, placement), ...]) with hi - lo within `PROBE_CLUSTER_US` unless one span
    alone is longer, and at most `PROBE_PAIRS_MAX` pairs."""
    items = sorted((lo, hi, key[1:]) for key, found in spans.items() for lo, hi in merged_spans(found))
    clusters: list[tuple[int, int, list[tuple[str, str]]]] = []
    members: set[tuple[str, str]] = set()
    for lo, hi, pair in items:
        if clusters:
            c_lo, c_hi, pairs = clusters[-1]
            fits = pair in members or len(pairs) < PROBE_PAIRS_MAX
            if fits and max(hi, c_hi) - c_lo <= PROBE_CLUSTER_US:
                if pair not in members:
                    pairs.append(pair)
                    members.add(pair)
                clusters[-1] = (c_lo, max(c_hi, hi), pairs)
                continue
        clusters.append((lo, hi, [pair]))
        members = {pair}
    return clusters


def pairs_clause(pairs: Sequence[tuple[str, str]]) -> str:
    """InfluxQL selecting the series of these (subject, placement) pairs, parenthesised."""
    return "(" + " OR ".join(f"(subject = {quote_str(s)} AND placement = {quote_str(p)})" for s, p in pairs) + ")"


def presence_statement(database: str, rp: str, lo: int, hi: int, pairs: Sequence[tuple[str, str]]) -> str:
    """The write check's first read of points-per-sample where a store writes packed parts: whether any such point
    of these pairs lies in [lo, hi] widened by ``REPLAY_MOVE_US`` (one row per pair that has one, none where it
    has none). ONE field, as `HeldProbe`."""
    return (
        f'SELECT max("seq") FROM {from_clause(database, rp, RAW)} WHERE {pairs_clause(pairs)} AND '
        f'{time_clause(lo - REPLAY_MOVE_US, hi + REPLAY_MOVE_US)} GROUP BY "subject", "placement"'
    )


def present_pairs(found: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
    """The (subject, placement) pairs a presence statement's answer has a row for."""
    out = set()
    for series in found:
        if series.get("values"):
            tags = series.get("tags") or {}
            out.add((str(tags.get("subject")), str(tags.get("placement"))))
    return out


def merged_spans(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans, sorted, those closer than ``SPAN_JOIN_US`` joined (one statement each)."""
    merged: list[list[int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + SPAN_JOIN_US:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


HELD_FIELDS = ("seq", "serial", "boot_epoch")
"""What the collision check's exact read (`held_queries`) takes of a stored point: its identity (the subject and
placement are its tags)."""
PROBE_BUCKET_MIN_US = 100_000
"""The probe's bucket (its span's length) is at least this long: a span of one sample would otherwise cut the
widened span into millions of 1-µs buckets. A longer bucket only reaches past the span: anything there is unclear."""


@dataclass(frozen=True)
class HeldProbe:
    """The collision check's first read of one subject's placement and time span (`InfluxStore._held`): ONE
    statement, ONE field. InfluxDB 1.6 builds a cursor per field a statement reads, and each cursor copies the whole
    in-memory column of that field of the series (everything written since the last snapshot, up to minutes of
    samples, whatever the time range asked for): the exact read (`held_queries`: two statements, seven cursors per
    sensor) made the check cost grow with that column. The probe asks for the largest sequence number per bucket of
    the span's length over the span widened by ``REPLAY_MOVE_US``, the buckets aligned so that one of them is the
    span (``GROUP BY time(bucket, offset) fill(none)``: empty buckets are not answered). For new data the answer
    proves what the exact read would have found empty: no bucket overlapping the span holds a point, and every other
    bucket's largest sequence number is below the smallest the call writes for this subject and placement (so none
    of the call's identities is stored nearby). Anything else (a replay, a collision, a later batch stored first,
    a sensor rebooted) is unclear, and the exact read is made for this subject and placement."""

    rp: str
    subject: str
    placement: str
    lo: int
    hi: int
    """The span, µs (inclusive)."""
    seq_min: int
    """The smallest sequence number the call writes for this subject and placement (any sensor)."""

    @property
    def bucket_us(self) -> int:
        return max(self.hi - self.lo + 1, PROBE_BUCKET_MIN_US)

    def statement(self, database: str) -> str:
        where = f"subject = {quote_str(self.subject)} AND placement = {quote_str(self.placement)}"
        bucket = self.bucket_us
        return (
            f'SELECT max("seq") FROM {from_clause(database, self.rp, RAW)} WHERE {where} AND '
            f"{time_clause(self.lo - REPLAY_MOVE_US, self.hi + REPLAY_MOVE_US)} "
            f'GROUP BY time({bucket}u, {self.lo % bucket}u), "subject", "placement" fill(none)'
        )

    def clear(self, rows: Sequence[Sequence[Any]]) -> bool:
        """Whether the answer's rows (bucket start µs, largest sequence number) prove nothing is stored in the span
        and none of the call's identities nearby. Judged from the bucket starts the server answered, so a bucket
        laid out otherwise than asked (or a sequence number missing) is unclear, never clear."""
        bucket = self.bucket_us
        for row in rows:
            start, largest = row[0], row[1]
            if start is None or largest is None:
                return False
            if int(start) + bucket > self.lo and int(start) <= self.hi:
                return False  # a point in (or too near to tell from) the span
            if int(largest) >= self.seq_min:
                return False  # possibly one of the call's identities, possibly not: the exact read tells
        return True


def held_probes(
    spans: Mapping[tuple[str, str, str], Sequence[tuple[int, int]]],
    seqs: Mapping[tuple[str, str, str, str, int], Sequence[int]],
) -> list[HeldProbe]:
    """One probe per (retention policy, subject, placement) and merged span (`merged_spans`) of a call; ``seqs``: the
    call's sequence numbers per (retention policy, subject, placement, serial, boot epoch)."""
    lowest: dict[tuple[str, str, str], int] = {}
    for sensor, numbers in seqs.items():
        key = sensor[:3]
        lowest[key] = min(lowest.get(key, min(numbers)), min(numbers))
    return [
        HeldProbe(rp, subject, placement, lo, hi, lowest[(rp, subject, placement)])
        for (rp, subject, placement), found in spans.items()
        for lo, hi in merged_spans(found)
    ]


def unclear_series(found: Sequence[dict[str, Any]], probes: Sequence[HeldProbe]) -> set[tuple[str, str]]:
    """The (subject, placement) pairs whose probes' answers (series tagged by subject and placement) do not prove
    the spans empty and the call's identities absent nearby: these need the exact read. A pair probed more than
    once (spans far apart, both retention policies) is unclear as soon as any of its probes answered a row."""
    by_series: dict[tuple[str, str], list[HeldProbe]] = {}
    for p in probes:
        by_series.setdefault((p.subject, p.placement), []).append(p)
    unclear = set()
    for series in found:
        tags = series.get("tags") or {}
        key = (str(tags.get("subject")), str(tags.get("placement")))
        rows = series.get("values") or []
        mine = by_series.get(key, [])
        if rows and not (len(mine) == 1 and mine[0].clear(rows)):
            unclear.add(key)
    return unclear


def held_queries(
    database: str,
    spans: Mapping[tuple[str, str, str], Sequence[tuple[int, int]]],
    wide: Mapping[tuple[str, str, str, str, int], Sequence[tuple[int, int]]],
    seqs: Mapping[tuple[str, str, str, str, int], Sequence[int]],
    fields: Sequence[str] = HELD_FIELDS,
) -> list[str]:
    """The collision check's requests (`InfluxStore._held`, `statement_requests`): per (retention
    policy, subject, placement) every point in each of its ``spans``; per (retention policy, subject, placement,
    serial, boot epoch) the points in its ``wide`` spans whose sequence is within the range of its ``seqs``. Each
    statement reads ``fields`` of those points, grouped by subject and placement (`held_points`)."""
    statements = []
    for (rp, subject, placement), found in spans.items():
        where = f"subject = {quote_str(subject)} AND placement = {quote_str(placement)}"
        statements += [_held_statement(database, rp, where, lo, hi, fields) for lo, hi in merged_spans(found)]
    for sensor, found in wide.items():
        rp, subject, placement = sensor[:3]
        where = (  # the sequence range only: InfluxDB answers it faster than with serial and boot epoch too,
            # and another sensor's samples in that range are only ever a handful (a swapped sensor)
            f"subject = {quote_str(subject)} AND placement = {quote_str(placement)} AND "
            f'"seq" >= {min(seqs[sensor])} AND "seq" <= {max(seqs[sensor])}'
        )
        statements += [_held_statement(database, rp, where, lo, hi, fields) for lo, hi in merged_spans(found)]
    return statement_requests(statements)


def _held_statement(database: str, rp: str, where: str, lo: int, hi: int, fields: Sequence[str]) -> str:
    return (
        f"SELECT {', '.join(quote_ident(f) for f in fields)} FROM {from_clause(database, rp, RAW)} WHERE {where} AND "
        f'{time_clause(lo, hi)} GROUP BY "subject", "placement"'
    )


def held_points(found: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[int, SampleId]]:
    """The collision check's answer: per (subject, placement), time -> the identity stored there. A row read
    half-written (another writer's point arriving) is not yet stored."""
    held: dict[tuple[str, str], dict[int, SampleId]] = {}
    for series in found:
        tags = series.get("tags") or {}
        points = held.setdefault((str(tags.get("subject")), str(tags.get("placement"))), {})
        for t, seq, serial, boot in series.get("values", []):
            if seq is not None and serial is not None and boot is not None:
                points[int(t)] = (str(serial), int(boot), int(seq))
    return held


def query_chunks(text: str) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
    """Per chunk of a chunked /query JSON answer, in order: its errors (the query's, then each statement's) and
    the series of its statements."""
    for chunk in text.splitlines():
        if not chunk.strip():
            continue
        doc = json.loads(chunk)
        results = doc.get("results", [])
        errors = [str(doc["error"])] if "error" in doc else []
        errors += [str(r["error"]) for r in results if "error" in r]
        yield errors, [s for r in results for s in r.get("series", [])]


def series_rows(series: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Rows of /query series as dicts (column -> value, None left out), series tags merged in."""
    for s in series:
        columns = s["columns"]
        tags = s.get("tags", {})
        for values in s.get("values", []):
            row = dict(tags)
            row.update({c: v for c, v in zip(columns, values, strict=True) if v is not None})
            yield row


RAW_CSV_INTS = ("time", "seq", "t_sensor_us", "boot_epoch")


def raw_series_from_csv(data: bytes) -> RawSeries:
    """RawSeries from InfluxDB's CSV answer to the raw SELECT of `InfluxStore.read_raw` (columns ``name,tags,
    time,seq,t_sensor_us,boot_epoch,serial,session,acc_x .. gyr_z``), parsed by pandas' C reader. A row read
    half-written (InfluxDB stores each field apart: a point being written can show some fields only) is not
    yet stored and is left out."""
    import io

    import numpy as np
    import pandas as pd

    if not data.strip():
        return RawSeries.from_rows([])
    numeric = [*RAW_CSV_INTS, *RAW_FIELDS]
    frame = pd.read_csv(
        io.BytesIO(data),
        usecols=[*numeric, "serial", "session"],
        dtype={**dict.fromkeys(numeric, "float64"), "serial": str, "session": str},
        keep_default_na=False,
        na_values={c: [""] for c in numeric},
        engine="c",
    )
    if frame.empty:
        return RawSeries.from_rows([])
    values = frame[numeric].to_numpy(dtype=np.float64)
    complete = ~np.isnan(values).any(axis=1)
    if not complete.all():
        values = values[complete]
        frame = frame[complete]
    ints = values[:, : len(RAW_CSV_INTS)].astype(np.int64)
    return _raw_series(
        ints[:, 0],
        ints[:, 1],
        ints[:, 2],
        ints[:, 3],
        tuple(frame["serial"].tolist()),
        tuple(x or None for x in frame["session"].tolist()),  # CSV writes a missing field as empty
        values[:, len(RAW_CSV_INTS) :],
    )


def raw_series_concat(parts: Sequence[RawSeries]) -> RawSeries:
    """Several retention policies' samples as one series in time order."""
    import numpy as np

    return _raw_series(
        np.concatenate([p.time_us for p in parts]),
        np.concatenate([p.seq for p in parts]),
        np.concatenate([p.t_sensor_us for p in parts]),
        np.concatenate([p.boot_epoch for p in parts]),
        tuple(x for p in parts for x in p.serial),
        tuple(x for p in parts for x in p.session),
        np.concatenate([np.hstack([p.acc_mps2, p.gyr_dps]).reshape(-1, 6) for p in parts]),
    )


def raw_series_from_values(values: list[list[Any]]) -> RawSeries:
    """RawSeries from InfluxQL rows ``[time, seq, t_sensor_us, boot_epoch, serial, session, acc_x .. gyr_z]``
    (column-wise: no dict per row), sorted by time (stable), one row per timestamp. InfluxDB answers in time
    order already: the rows are only reordered when they are not (several retention policies). A row read
    half-written (InfluxDB stores each field apart) is not yet stored and is left out, as in `raw_series_from_csv`."""
    import numpy as np

    if not values:
        return RawSeries.from_rows([])
    try:
        series = _raw_series_from_rows(values)
        if not (np.isnan(series.acc_mps2).any() or np.isnan(series.gyr_dps).any()):
            return series
    except TypeError:  # an integer field None
        pass
    numeric = (0, 1, 2, 3, 6, 7, 8, 9, 10, 11)  # a row read half-written: not yet stored, left out
    return _raw_series_from_rows([v for v in values if all(v[i] is not None for i in numeric)])


def _raw_series_from_rows(values: list[list[Any]]) -> RawSeries:
    import numpy as np

    if not values:
        return RawSeries.from_rows([])
    cols = list(zip(*values, strict=True))
    return _raw_series(
        np.array(cols[0], dtype=np.int64),
        np.array(cols[1], dtype=np.int64),
        np.array(cols[2], dtype=np.int64),
        np.array(cols[3], dtype=np.int64),
        cols[4],
        cols[5],
        np.array([cols[i] for i in (6, 7, 8, 9, 10, 11)], dtype=np.float64).T,
    )


def _raw_series(
    time_us: Any, seq: Any, t_sensor_us: Any, boot_epoch: Any, serial: Any, session: Any, numbers: Any
) -> RawSeries:
    """Columns -> RawSeries sorted by time (stable; reordered only when not already in time order)."""
    import numpy as np

    if len(time_us) > 1 and bool((time_us[1:] < time_us[:-1]).any()):
        order = np.argsort(time_us, kind="stable")
        time_us, seq, t_sensor_us, boot_epoch = time_us[order], seq[order], t_sensor_us[order], boot_epoch[order]
        numbers = numbers[order]
        picked = order.tolist()
        serial = tuple(serial[i] for i in picked)
        session = tuple(session[i] for i in picked)
    return RawSeries(
        time_us=time_us,
        seq=seq,
        t_sensor_us=t_sensor_us,
        boot_epoch=boot_epoch,
        serial=tuple(map(str, serial)),
        session=tuple(session),
        acc_mps2=np.ascontiguousarray(numbers[:, :3]),
        gyr_dps=np.ascontiguousarray(numbers[:, 3:]),
    )


def _split_unescaped(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split on ``sep`` where it is not backslash-escaped (escapes kept)."""
    parts, current, i = [], [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if text[i] == sep and maxsplit != 0:
            parts.append("".join(current))
            current = []
            maxsplit -= 1
        else:
            current.append(text[i])
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out)


def parse_series_key(key: str) -> tuple[str, dict[str, str]]:
    """``measurement,tag=value,...`` as SHOW SERIES prints it (backslash escapes) -> (measurement, tags)."""
    measurement, *pairs = _split_unescaped(key, ",")
    tags = {}
    for pair in pairs:
        k, v = ([*_split_unescaped(pair, "=", 1), ""])[:2]
        tags[_unescape(k)] = _unescape(v)
    return _unescape(measurement), tags


def raw_slot_lines(series: RawSeries, idx: Sequence[int], subject: str, placement: str) -> list[str]:
    """Line protocol of the samples ``idx`` of a series read back, as they were written."""
    lines = []
    for i in idx:
        fields: dict[str, float | int | str | bool] = {
            "seq": int(series.seq[i]),
            "t_sensor_us": int(series.t_sensor_us[i]),
            "boot_epoch": int(series.boot_epoch[i]),
            "serial": series.serial[i],
        }
        sess = series.session[i]
        if sess is not None:
            fields["session"] = sess
        for k, v in zip(("acc_x", "acc_y", "acc_z"), series.acc_mps2[i].tolist(), strict=True):
            fields[k] = float(v)
        for k, v in zip(("gyr_x", "gyr_y", "gyr_z"), series.gyr_dps[i].tolist(), strict=True):
            fields[k] = float(v)
        lines.append(
            point_line(Point(RAW, (("placement", placement), ("subject", subject)), fields, int(series.time_us[i])))
        )
    return lines
