"""The InfluxDB store's write check: which stored samples a call's raw batches meet (SCHEMA.md, "Raw samples: one
sample per point"), read in as few requests as possible, in both raw layouts whatever the store writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from analytics.stores import influx_packed
from analytics.stores.influx_codec import (
    held_points,
    held_probes,
    held_queries,
    presence_statement,
    present_pairs,
    span_clusters,
    statement_requests,
    unclear_series,
)
from analytics.stores.influx_transport import InfluxConfig, InfluxTransport
from analytics.stores.model import RawSamples, SampleId, WriteReport, check_windows, maps_to_utc
from analytics.stores.points import RAW_PACKED


def held(
    config: InfluxConfig,
    transport: InfluxTransport,
    batches: Sequence[RawSamples],
    report: WriteReport,
    packed: bool = False,
) -> tuple[dict[tuple[str, str], dict[int, SampleId]], dict[tuple[str, str], set[int]]]:
    """Stored points the call's check needs (`model.check_windows`), per (subject, placement). First ONE request
    of probes, which for new data proves there is nothing to find: then nothing more is read.

    - Points per sample: where this store writes them, `influx_codec.HeldProbe`s (per subject, placement and time
      span, spans of one call closer than ``SPAN_JOIN_US`` joined, one statement reading one field); where it
      writes ``packed`` parts, a database holds such points only from before a switch of layout, so one presence
      statement per cluster of spans (`influx_codec.span_clusters`) asks whether any is near, and a pair that has
      one is unclear.
    - Packed parts, whatever this store writes (a database may hold samples of either layout): their identity and
      extent, one statement per cluster of spans.

    For the subjects and placements the probes cannot clear (a replay, a collision, a later batch stored first),
    the exact read, in one more request: per span one statement reading every point in it, and per sensor boot one
    reading, in the spans widened by `model.REPLAY_MOVE_US`, the points whose sequence is in the call's range for
    that sensor boot (filtered by the server; serial and boot epoch are compared by `plan_raw_writes`); the parts
    that may hold such samples, read whole. A row read half-written (another writer's point arriving) is not yet
    stored, as in `read_raw`. Also returns, per (subject, placement), the times held one point per sample."""
    spans: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
    wide: dict[tuple[str, str, str, str, int], list[tuple[int, int]]] = {}
    seqs: dict[tuple[str, str, str, str, int], list[int]] = {}
    for b in batches:
        rp = config.raw_rp if maps_to_utc(b.clock) else config.sensor_time_rp
        sensor = (rp, b.subject, b.placement, b.serial, b.boot_epoch)
        for span, widened in check_windows(b):
            spans.setdefault((rp, b.subject, b.placement), []).append(span)
            wide.setdefault(sensor, []).append(widened)
        seqs.setdefault(sensor, []).extend((int(b.seq[0]), int(b.seq[-1])))
    doing = f"checking {len(batches)} raw batches"
    db = config.database
    wanted = influx_packed.wanted_ranges(seqs)
    probes = [] if packed else held_probes(spans, seqs)
    near: set[tuple[str, str]] = set()
    unclear: dict[tuple[str, str, str], list[int]] = {}
    for rp in sorted({key[0] for key in spans}):  # an answer's series name subject and placement, not the policy
        clusters = span_clusters({k: v for k, v in spans.items() if k[0] == rp})
        mine = [p for p in probes if p.rp == rp]
        if packed:
            statements = [presence_statement(db, rp, lo, hi, pairs) for lo, hi, pairs in clusters]
        else:
            statements = [p.statement(db) for p in mine]
        statements += influx_packed.probe_statements(db, rp, clusters)
        found: list[dict[str, Any]] = []
        for q in statement_requests(statements):
            found += transport.select(q, doing, report)
        points = [f for f in found if f.get("name") != RAW_PACKED]
        near |= present_pairs(points) if packed else unclear_series(points, mine)
        parts = [f for f in found if f.get("name") == RAW_PACKED]
        unclear.update(influx_packed.unclear_parts(parts, rp, spans, wanted))
    if not near and not unclear:  # new data: nothing stored in the spans, none of the call's identities nearby
        return {}, {}
    # something is there (a replay, a collision, a later batch stored first): the exact read, for those only
    spans_near = {k: v for k, v in spans.items() if k[1:] in near}
    wide = {k: v for k, v in wide.items() if k[1:3] in near}
    requests = held_queries(db, spans_near, wide, seqs) if near else []
    requests += influx_packed.read_requests(db, unclear)
    found = []
    for q in requests:
        found += transport.select(q, doing, report)
    held = held_points([f for f in found if f.get("name") != RAW_PACKED])
    as_points = {pair: set(times) for pair, times in held.items()}  # the times held one point per sample
    influx_packed.held_from_parts([f for f in found if f.get("name") == RAW_PACKED], spans, wanted, held)
    return held, as_points
