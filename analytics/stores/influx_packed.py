"""InfluxDB's side of the packed raw layout (`raw_packed`, docs/raw-layout-packed.md): the stored parts a read, the
write check, a count and a move to UTC need, read back and unpacked (`raw_packed.unpack`), and the lines a packed
write sends.

Every reader reads both layouts (a clinic's older samples stay one point per sample in ``raw``); only the writer
follows `InfluxConfig.raw_layout`. A stored part that does not unpack (another writer's, another version's, a
hand-made point) is logged by name and left out of what is read, never allowed to stop the read of the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.stores.errors import InvalidStoredPart
from analytics.stores.influx_codec import (
    from_clause,
    pairs_clause,
    quote_ident,
    quote_str,
    statement_requests,
    time_clause,
)
from analytics.stores.influx_transport import InfluxTransport
from analytics.stores.points import Point, point_line
from analytics.stores.raw_display import display_lines
from analytics.stores.raw_model import RawSamples, RawSeries
from analytics.stores.raw_packed import PART_MAX_US, RAW_PACKED, merge, pack, unpack
from analytics.stores.raw_plan import REPLAY_MOVE_US, SampleId

log = logging.getLogger(__name__)

PACKED_FIELDS = (
    "serial",
    "boot_epoch",
    "session",
    "seq_first",
    "seq_last",
    "n",
    "t_sensor_us_first",
    "time_last_us",
    "enc",
    "samples",
    "acc_scale",
    "gyr_scale",
)
"""What a stored part holds besides its time and tags (`raw_packed`)."""


@dataclass(frozen=True)
class StoredPart:
    """One stored part: its point (time, the fields as read) and its samples."""

    time_us: int
    fields: Mapping[str, Any]
    samples: RawSeries

    @property
    def identity(self) -> tuple[str, int]:
        return str(self.fields["serial"]), int(self.fields["boot_epoch"])


def packed_lines(fresh: RawSamples | None, shown: RawSamples | None) -> list[str]:
    """The line protocol of a batch's samples not stored yet (``fresh``; None: none) as packed parts, then the display
    points (`raw_display`: what the dashboards plot) of ``shown`` (`not_points`: its samples stored packed once
    this write is done, stored already or not: written again alike, so a replay repairs a lost display)."""
    lines = [] if fresh is None else [point_line(p) for p in pack(fresh)]
    if shown is None:
        return lines
    values = np.concatenate([shown.acc_mps2, shown.gyr_dps], axis=1)
    return lines + display_lines(shown.subject, shown.placement, shown.session, shown.time_us(), values)


def not_points(batch: RawSamples, as_points: Mapping[tuple[str, str], set[int]]) -> RawSamples | None:
    """The batch's samples but those stored one point per sample at their time (``as_points``: per (subject,
    placement), the times the write check found so; a sample there is the batch's own, or the plan refused it):
    the per-sample panels plot those already. None: all of them are."""
    times = as_points.get((batch.subject, batch.placement))
    if not times:
        return batch
    stored = np.array([t in times for t in batch.time_us().tolist()], dtype=bool)
    return None if stored.all() else batch.take(~stored) if stored.any() else batch


def part_display_lines(
    subject: str, placement: str, part: StoredPart, only: Sequence[tuple[int, int]] | None = None
) -> list[str]:
    """A stored part's display points again, those whose time lies in ``only`` (µs ranges, inclusive; None: all):
    a move's deletes took them."""
    s = part.samples
    values = np.concatenate([s.acc_mps2, s.gyr_dps], axis=1)
    return display_lines(subject, placement, s.session[0] if len(s) else None, s.time_us, values, only)


def part_line(subject: str, placement: str, time_us: int, fields: Mapping[str, Any]) -> str:
    """A stored part's line again, field for field as read (a part written back where a move deleted it, one that
    does not unpack too: it may be another version's)."""
    kept = {k: fields[k] for k in PACKED_FIELDS if isinstance(fields.get(k), int | float | str | bool)}
    return point_line(Point(RAW_PACKED, (("placement", placement), ("subject", subject)), kept, time_us))


def select_statement(
    database: str,
    rp: str,
    where: str,
    lo: int | None,
    hi: int | None,
    *,
    parts_from: int | None = None,
    fields: Sequence[str] = PACKED_FIELDS,
) -> str:
    """The parts holding samples in [lo, hi] µs (those starting up to `PART_MAX_US` before lo), by ``where``;
    ``parts_from``: instead, the parts starting from that time on (a keyset page). ``fields``: what is read."""
    start = parts_from if parts_from is not None else None if lo is None else lo - PART_MAX_US
    cols = ", ".join(quote_ident(c) for c in fields)
    return (
        f"SELECT {cols} FROM {from_clause(database, rp, RAW_PACKED)} WHERE {where} AND {time_clause(start, hi)} "
        'GROUP BY "subject", "placement"'
    )


def parts_of(
    series: Iterable[dict[str, Any]], what: str, bad: list[tuple[str, str, int, Mapping[str, Any]]] | None = None
) -> list[tuple[str, str, StoredPart]]:
    """(subject, placement, part) of every part in a /query answer's series; a part that does not unpack is left
    out, named in a warning (and listed in ``bad`` as (subject, placement, time, fields as read) when given)."""
    out = []
    for s in series:
        tags = s.get("tags") or {}
        subject, placement = str(tags.get("subject")), str(tags.get("placement"))
        columns = s.get("columns") or []
        for values in s.get("values") or []:
            row = {c: v for c, v in zip(columns, values, strict=False) if v is not None}
            time_us = int(row.pop("time"))
            try:
                out.append((subject, placement, StoredPart(time_us, row, unpack(time_us, row))))
            except InvalidStoredPart as exc:
                log.warning("%s: stored raw part %s %s at %d us left out: %s", what, subject, placement, time_us, exc)
                if bad is not None:
                    bad.append((subject, placement, time_us, row))
    return out


def where(subject: str, placement: str, session: str | None = None, extra: str = "") -> str:
    clause = f"subject = {quote_str(subject)} AND placement = {quote_str(placement)}"
    if session is not None:
        clause += f" AND session = {quote_str(session)}"
    return clause + extra


def read_parts(
    transport: InfluxTransport,
    rp: str,
    subject: str,
    placement: str,
    start_us: int | None,
    end_us: int | None,
    session: str | None = None,
    bad: list[tuple[str, str, int, Mapping[str, Any]]] | None = None,
) -> list[StoredPart]:
    """The parts of a subject's placement with samples in [start_us, end_us] (whole: trim with `merge`); those
    that do not unpack are listed in ``bad`` when given (`parts_of`)."""
    q = select_statement(transport.config.database, rp, where(subject, placement, session), start_us, end_us)
    return [p for _, _, p in parts_of(transport.query(q), f"reading raw {subject} {placement}", bad)]


def read_samples(
    transport: InfluxTransport,
    rps: Sequence[str],
    subject: str,
    placement: str,
    start_us: int | None,
    end_us: int | None,
    session: str | None,
    points: Sequence[RawSeries],
) -> RawSeries | None:
    """Per-sample ``points`` already read, with the packed parts' samples in the range: one series, one sample per
    time (a point's sample before a part's copy of it). None when there are no parts (the points stand alone)."""
    parts = [p.samples for rp in rps for p in read_parts(transport, rp, subject, placement, start_us, end_us, session)]
    if not parts:
        return None
    return merge([*points, *parts], start_us, end_us)


PROBE_FIELDS = ("serial", "boot_epoch", "seq_first", "seq_last", "time_last_us")
"""What the write check's first read of parts asks for: each part's identity and extent, not its samples."""
UNREADABLE: SampleId = ("(a stored part that does not unpack)", -1, -1)
"""The identity the write check gives the first time of a stored part it cannot unpack: occupied, so a new sample
there is refused as a collision rather than written over what may be another version's part."""


def wanted_ranges(
    seqs: Mapping[tuple[str, str, str, str, int], Sequence[int]],
) -> dict[tuple[str, str], dict[tuple[str, int], tuple[int, int]]]:
    """The call's sequence range per (subject, placement) and sensor boot, from its first and last sequence numbers
    per (retention policy, subject, placement, serial, boot epoch) (`InfluxStore._held`)."""
    wanted: dict[tuple[str, str], dict[tuple[str, int], tuple[int, int]]] = {}
    for (_, subject, placement, serial, boot), numbers in seqs.items():
        ranges = wanted.setdefault((subject, placement), {})
        lo, hi = ranges.get((serial, boot), (min(numbers), max(numbers)))
        ranges[(serial, boot)] = (min(lo, min(numbers)), max(hi, max(numbers)))
    return wanted


def probe_statements(
    database: str, rp: str, clusters: Sequence[tuple[int, int, Sequence[tuple[str, str]]]]
) -> list[str]:
    """The write check's first read of parts in policy ``rp``: each part's identity and extent (`PROBE_FIELDS`, no
    samples) near each cluster of the call's spans (`influx_codec.span_clusters`), widened by `REPLAY_MOVE_US` (and
    `PART_MAX_US` before it), one statement per cluster. A part near another sensor's span of the cluster is
    answered too: `unclear_parts` judges each part by its own sensor's spans."""
    return [
        select_statement(
            database, rp, pairs_clause(pairs), lo - REPLAY_MOVE_US, hi + REPLAY_MOVE_US, fields=PROBE_FIELDS
        )
        for lo, hi, pairs in clusters
    ]


def unclear_parts(
    series: Iterable[dict[str, Any]],
    rp: str,
    spans: Mapping[tuple[str, str, str], Sequence[tuple[int, int]]],
    wanted: Mapping[tuple[str, str], Mapping[tuple[str, int], tuple[int, int]]],
) -> dict[tuple[str, str, str], list[int]]:
    """From the probe's answer (series of `raw_packed` in policy ``rp``): the start times of the parts that may hold
    a sample in the call's spans, or one of its identities within `REPLAY_MOVE_US` of them, per (policy, subject,
    placement). For new data none: every part near is the sensor's earlier batches."""
    unclear: dict[tuple[str, str, str], list[int]] = {}
    for s in series:
        tags = s.get("tags") or {}
        key = (rp, str(tags.get("subject")), str(tags.get("placement")))
        columns = s.get("columns") or []
        for values in s.get("values") or []:
            row = dict(zip(columns, values, strict=False))
            if _may_hold(row, spans.get(key, []), wanted.get(key[1:], {})):
                unclear.setdefault(key, []).append(int(row["time"]))
    return unclear


def read_requests(database: str, unclear: Mapping[tuple[str, str, str], Sequence[int]]) -> list[str]:
    """The parts the probe could not clear, read whole (`statement_requests`)."""
    return statement_requests(
        [
            select_statement(database, rp, where(subject, placement), None, max(times), parts_from=min(times))
            for (rp, subject, placement), times in unclear.items()
        ]
    )


def held_from_parts(
    series: Iterable[dict[str, Any]],
    spans: Mapping[tuple[str, str, str], Sequence[tuple[int, int]]],
    wanted: Mapping[tuple[str, str], Mapping[tuple[str, int], tuple[int, int]]],
    held: dict[tuple[str, str], dict[int, SampleId]],
) -> None:
    """Add to ``held`` (per (subject, placement), time -> identity) what the parts read whole hold that the check
    needs: every sample in the call's spans, and within `REPLAY_MOVE_US` of them the samples of the call's sensor
    boots in its sequence ranges (what the per-sample exact read finds). A part that does not unpack occupies its
    first time (`UNREADABLE`)."""
    bad: list[tuple[str, str, int, Mapping[str, Any]]] = []
    for subject, placement, part in parts_of(series, "checking raw batches", bad):
        pair = (subject, placement)
        mine = [v for (_, s_, p), v in spans.items() if (s_, p) == pair]
        inside = _within(part.samples.time_us, [span for v in mine for span in v])
        own = wanted.get(pair, {}).get(part.identity)
        if own is not None:
            wide = [(lo - REPLAY_MOVE_US, hi + REPLAY_MOVE_US) for v in mine for lo, hi in v]
            seq = part.samples.seq
            inside |= _within(part.samples.time_us, wide) & (seq >= own[0]) & (seq <= own[1])
        keep = np.flatnonzero(inside)
        if keep.size:
            points = held.setdefault(pair, {})
            serial, boot = part.identity
            for i in keep.tolist():
                points.setdefault(int(part.samples.time_us[i]), (serial, boot, int(part.samples.seq[i])))
    for subject, placement, time_us, _ in bad:
        held.setdefault((subject, placement), {})[time_us] = UNREADABLE


def _may_hold(
    row: Mapping[str, Any], spans: Sequence[tuple[int, int]], wanted: Mapping[tuple[str, int], tuple[int, int]]
) -> bool:
    """Whether a part (its identity and extent as read) may hold a sample in one of ``spans``, or one of the call's
    identities (``wanted``: sequence range per sensor boot) within `REPLAY_MOVE_US` of them. A row that does not
    read back as integers may: it is read whole (and `unpack` names what is wrong)."""
    try:
        first, last = int(row["time"]), int(row["time_last_us"])
        identity = (str(row["serial"]), int(row["boot_epoch"]))
        seq_first, seq_last = int(row["seq_first"]), int(row["seq_last"])
    except (KeyError, TypeError, ValueError):
        return True
    if any(first <= hi and last >= lo for lo, hi in spans):
        return True
    own = wanted.get(identity)
    if own is None or seq_last < own[0] or seq_first > own[1]:
        return False
    return any(first <= hi + REPLAY_MOVE_US and last >= lo - REPLAY_MOVE_US for lo, hi in spans)


def _within(times: np.ndarray, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    inside = np.zeros(len(times), dtype=bool)
    for lo, hi in spans:
        inside |= (times >= lo) & (times <= hi)
    return inside


def count_packed(
    transport: InfluxTransport,
    rp: str,
    subject: str,
    placement: str,
    serial: str,
    boot_epoch: int,
    seq_first: int,
    seq_last: int,
    start_us: int,
    end_us: int,
) -> set[int]:
    """The times of a sensor boot's samples with seq in [seq_first, seq_last] held in parts within the index's
    span [start_us, end_us] (a set: a sample in two parts counts once)."""
    extra = (
        f" AND serial = {quote_str(serial)} AND boot_epoch = {int(boot_epoch)} AND seq_last >= {int(seq_first)}"
        f" AND seq_first <= {int(seq_last)}"
    )
    q = select_statement(transport.config.database, rp, where(subject, placement, extra=extra), start_us, end_us)
    times: set[int] = set()
    for _, _, part in parts_of(transport.query(q), f"counting raw {subject} {placement}"):
        s = part.samples
        keep = (s.seq >= seq_first) & (s.seq <= seq_last) & (s.time_us >= start_us) & (s.time_us <= end_us)
        times.update(s.time_us[keep].tolist())
    return times
