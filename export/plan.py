"""What an export will read: the sessions of each subject in the range (from the batch index), each session's
batches and time span, and the raw-retention check that refuses a range whose raw samples are gone.

Sessions are found a week at a time (`Store.raw_sessions` over the batch index: one row per sensor-second, so a
week is at most ~1.8 million rows in InfluxDB and a small GROUP BY in SQLite), whatever the range: memory stays
bounded for a year of sessions. A session is exported whole when its first sample lies in [since, until]: one
seen at an end of the range is followed beyond it a day at a time until a day holds none of its samples (a
session running past ``until`` is exported whole; one that started before ``since`` is not exported).

Placements read from the store become file names: any that is not one of the protocol's
(`firmware_protocol.sensor_info.PLACEMENTS`) is refused while planning, before anything is written.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from analytics.stores import Store
from analytics.stores.export_reads import BatchRecord
from analytics.stores.model import SENSOR_SLOT_US, ResultRow, raw_time_us, sensor_slot_start_us
from export.errors import NothingToExport, RawSamplesGone, UnknownPlacement
from firmware_protocol.sensor_info import PLACEMENTS
from gaitsym_common.uplink.limits import UTC_MAX_S, UTC_MIN_S

WEEK_US = 7 * 86_400 * 1_000_000
DAY_US = 86_400 * 1_000_000
MARGIN_US = 5_000_000
"""Widening of a session's span when reading: samples moved to UTC while their batch is still indexed in sensor
time (a move interrupted before the index moved) sit near the session's first indexed sample; the session filter
keeps out everything else."""
RESULTS_MARGIN_US = 120_000_000


def iso(time_us: int) -> str:
    return datetime.fromtimestamp(time_us / 1e6, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class SessionPlan:
    subject: str
    session: str
    first_us: int
    """First sample (UTC, from the batch index), µs."""
    last_us: int
    batches: tuple[BatchRecord, ...]
    """Every batch-index entry of the session, UTC and sensor time, by placement then time."""
    read_from_us: int
    read_to_us: int
    sensor_time_ranges: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    """Per placement, the sensor-time slots of boots indexed only in sensor time (their samples may still be there)."""

    @property
    def placements(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(b.placement for b in self.batches))

    def batches_of(self, placement: str) -> list[BatchRecord]:
        return [b for b in self.batches if b.placement == placement]

    @property
    def n_samples(self) -> int:
        return sum(b.n_samples for b in self.batches)


@dataclass(frozen=True)
class Range:
    since_us: int
    until_us: int
    kept_for_s: float | None
    cutoff_us: int | None
    """Raw samples before this are deleted by the retention (None: kept forever, or the store does not say)."""
    since_asked: bool = True
    """``since_us`` was asked for (else it is where the raw retention starts: a session begun before it is
    exported from there, its older samples being gone or going)."""


def export_range(store: Store, since_us: int | None, until_us: int | None, now_us: int | None = None) -> Range:
    now = round(time.time() * 1e6) if now_us is None else now_us
    kept = store.raw_kept_for_s()
    cutoff = None if kept is None else now - round(kept * 1e6)
    lo = since_us if since_us is not None else (cutoff if cutoff is not None else round(UTC_MIN_S * 1e6))
    hi = until_us if until_us is not None else min(now + WEEK_US, round(UTC_MAX_S * 1e6))  # nothing after a week ahead
    return Range(lo, hi, kept, cutoff, since_asked=since_us is not None)


def check_retention(store: Store, subjects: Sequence[str], rng: Range) -> None:
    """RawSamplesGone when the range starts before what the raw retention keeps: names the cutoff, the retention,
    and the sessions of these subjects whose results are stored there (their raw samples are gone)."""
    if rng.cutoff_us is None or rng.since_us >= rng.cutoff_us:
        return
    gone: list[str] = []
    for subject in subjects:
        rows = store.read_results(subject, start_us=rng.since_us, end_us=min(rng.cutoff_us, rng.until_us))
        for r in rows:
            if r.measurement == "session_summary" and r.tags.get("side") == "none":
                gone.append(f"{subject} session {r.fields.get('session')} ({iso(r.time_us)[:19]}Z)")
    days = (rng.kept_for_s or 0.0) / 86400.0
    what = (
        "sessions whose raw samples are gone (their results are still stored): " + ", ".join(gone)
        if gone
        else "no session of " + ", ".join(subjects) + " has results stored there"
    )
    raise RawSamplesGone(
        f"raw samples before {iso(rng.cutoff_us)} are gone: the store keeps raw samples {days:g} days (raw "
        f"retention), the range asked for starts {iso(rng.since_us)}; {what}. Export from {iso(rng.cutoff_us)[:10]} "
        "on (--since), or the results only with `gaitsym results`"
    )


def find_sessions(store: Store, subject: str, rng: Range, session: str | None) -> list[SessionPlan]:
    """The subject's sessions whose first sample lies in the range (one session only when ``session`` is given),
    oldest first, each with its batches."""
    spans: dict[str, list[int]] = {}
    lo = rng.since_us
    while lo <= rng.until_us:
        hi = min(lo + WEEK_US - 1, rng.until_us)
        for s in store.raw_sessions(lo, hi, subject=subject, session=session):
            span = spans.setdefault(s.session, [s.first_us, s.last_us])
            span[0], span[1] = min(span[0], s.first_us), max(span[1], s.last_us)
        lo = hi + 1
    out = []
    for sid, (first, last) in sorted(spans.items(), key=lambda kv: (kv[1][0], kv[0])):
        # a session seen at an end of the range may run past it: its whole span decides (and is exported)
        if rng.since_asked and first - rng.since_us < DAY_US:
            first = session_edge(store, subject, sid, first, rng.since_us, forward=False)
        if first < rng.since_us:
            continue
        if rng.until_us - last < DAY_US:
            last = session_edge(store, subject, sid, last, rng.until_us, forward=True)
        out.append(session_plan(store, subject, sid, first, last))
    return out


def session_edge(store: Store, subject: str, session: str, known_us: int, bound_us: int, *, forward: bool) -> int:
    """A session's last (``forward``) or first indexed sample, ``known_us`` as far as ``bound_us``: read on a day
    at a time beyond ``bound_us`` until a day holds none of the session's samples."""
    edge = known_us
    lo = bound_us + 1 if forward else bound_us - DAY_US
    while round(UTC_MIN_S * 1e6) <= lo <= round(UTC_MAX_S * 1e6):
        found = store.raw_sessions(lo, lo + DAY_US - 1, subject=subject, session=session)
        if not found:
            break
        edge = max(edge, *(s.last_us for s in found)) if forward else min(edge, *(s.first_us for s in found))
        lo += DAY_US if forward else -DAY_US
    return edge


def session_plan(store: Store, subject: str, session: str, first_us: int, last_us: int) -> SessionPlan:
    """A session's batches (UTC ones in its span, and any it has in sensor time) and the time ranges to read."""
    utc = store.raw_batches(subject, start_us=first_us - MARGIN_US, end_us=last_us + MARGIN_US, session=session)
    sensor_time = store.raw_batches(subject, start_us=None, end_us=-1, session=session)
    for b in (*utc, *sensor_time):
        if b.placement not in PLACEMENTS:
            raise UnknownPlacement(
                f"subject {subject} session {session}: the store names a sensor placement {b.placement!r}, not one "
                f"of {', '.join(PLACEMENTS)}; nothing was exported (placements name the export's files)"
            )
    read_from = first_us
    synced_clock: dict[tuple[str, str, int], BatchRecord] = {}
    for b in utc:
        if b.clock.utc_synced:
            synced_clock.setdefault((b.placement, b.serial, b.boot_epoch), b)
    ranges: dict[str, list[tuple[int, int]]] = {}
    for b in sensor_time:
        ref = synced_clock.get((b.placement, b.serial, b.boot_epoch))
        if ref is not None:  # a later mapping of the same boot moves them to UTC (not yet run, or interrupted before
            # their index moved): once moved they sit near the session's start
            read_from = min(read_from, int(raw_time_us([b.t_sensor_us_first], ref.clock, b.boot_epoch)[0]))
        slot = sensor_slot_start_us(b.boot_epoch)
        rng = (slot, slot + SENSOR_SLOT_US - 1)
        if rng not in ranges.setdefault(b.placement, []):
            ranges[b.placement].append(rng)
    batches = sorted([*sensor_time, *utc], key=lambda b: (b.placement, b.time_us, b.seq_first))
    return SessionPlan(
        subject, session, first_us, last_us, tuple(batches), read_from - MARGIN_US, last_us + MARGIN_US, ranges
    )


def session_results(store: Store, plan: SessionPlan) -> list[ResultRow]:
    """The session's stored results (strides, exercise sets, summaries), read around its span."""
    return store.read_results(
        plan.subject,
        session=plan.session,
        start_us=plan.read_from_us - RESULTS_MARGIN_US,
        end_us=plan.read_to_us + RESULTS_MARGIN_US,
    )


def plan_subject(store: Store, subject: str, rng: Range, session: str | None) -> list[SessionPlan]:
    """`find_sessions`, or a typed error naming what is missing: RawSamplesGone for a session whose results are
    stored but whose raw samples the retention deleted, NothingToExport otherwise."""
    found = find_sessions(store, subject, rng, session)
    if found:
        return found
    if session is not None:
        rows = [r for r in store.read_results(subject, session=session) if r.measurement == "session_summary"]
        if rows and rng.cutoff_us is not None and min(r.time_us for r in rows) < rng.cutoff_us:
            days = (rng.kept_for_s or 0.0) / 86400.0
            raise RawSamplesGone(
                f"subject {subject} session {session} ({iso(min(r.time_us for r in rows))[:19]}Z): its raw samples "
                f"are gone (the store keeps raw samples {days:g} days, since {iso(rng.cutoff_us)}); its results are "
                "still stored (`gaitsym results`)"
            )
        raise NothingToExport(f"subject {subject}: no raw samples of session {session} in the store")
    raise NothingToExport(
        f"subject {subject}: no session with raw samples from {iso(rng.since_us)} to {iso(rng.until_us)}"
    )
