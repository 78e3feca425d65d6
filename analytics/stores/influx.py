"""InfluxDB store: `analytics.stores.Store` on InfluxDB. Raw samples here; session results in `influx_results`;
requests and their retries in `influx_transport`; InfluxQL text and the parsing of answers in `influx_codec`.

Writes are line protocol in batches of ``batch_lines`` lines (20,000 by default). Durability: a write call
returns only after the server answered 2xx for every line (or the lines it refused as bad data are in the
quarantine, committed): that is when the worker may acknowledge. Raw samples are asked for as CSV (pandas parses
them at about a third of the JSON's CPU); a server that answers in another format is read as JSON from then on.

Raw samples are never written over another sample, nor stored twice (SCHEMA.md, "Raw samples: one sample per
point"): before a call's samples are written, ONE request asks whether any point of their time spans is already
stored, or any of their own identities within `model.REPLAY_MOVE_US` of them (for new data: none, and nothing more
is read); where something is, a second request reads those points' identities; a sample whose point holds another
sample's identity is refused, one whose identity is stored at another time is not written (`model.plan_raw_writes`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from analytics.stores import influx_check, influx_packed, influx_reads, influx_remap
from analytics.stores.errors import StoreConfigError
from analytics.stores.export_reads import DEFAULT_CHUNK_SAMPLES, BatchRecord
from analytics.stores.influx_codec import (
    from_clause,
    quote_ident,
    quote_str,
    raw_series_concat,
    series_rows,
    time_clause,
)
from analytics.stores.influx_layout import RawLayout
from analytics.stores.influx_results import InfluxResults
from analytics.stores.influx_transport import InfluxConfig as InfluxConfig
from analytics.stores.influx_transport import InfluxTransport
from analytics.stores.model import (
    GAP,
    RAW,
    RAW_BATCH,
    STORE_REFUSED,
    GapRecord,
    RawIndex,
    RawProgress,
    RawSamples,
    RawSeries,
    RawSession,
    ResultRow,
    SessionResults,
    WriteReport,
    batch_point,
    gap_point,
    maps_to_utc,
    missing_gaps,
    not_stored_yet,
    plan_raw_writes,
    point_line,
    quarantine_refused,
    raw_lines,
    raw_sessions_from_batches,
)
from analytics.stores.plans import ExercisePlan
from analytics.stores.quarantine import Quarantine
from gaitsym_common.uplink.envelope import ClockMapping

log = logging.getLogger("gaitsym.stores")


class InfluxStore:
    """`analytics.stores.Store` on InfluxDB (1.x, 2.x; 3.x untested)."""

    def __init__(
        self,
        config: InfluxConfig,
        quarantine: Quarantine | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if config.api not in ("v1", "v2"):
            raise StoreConfigError(f"api: {config.api!r} is neither v1 nor v2")
        if config.api == "v2" and not config.token:
            raise StoreConfigError("token: the v2 API needs a token (GAITSYM_INFLUX_TOKEN)")
        self.config = config
        self.quarantine = quarantine if quarantine is not None else Quarantine(config.quarantine_path)
        self.transport = InfluxTransport(config, sleep)
        self._results = InfluxResults(config, self.transport, self.quarantine)
        self.layout = RawLayout(config, self.transport)
        """The raw layout this store writes (`influx_layout`: the database's marker unless the URL names one)."""

    def query(self, q: str, rp: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL on /query (epoch=u, chunked); returns the series of every statement, in order."""
        return self.transport.query(q, rp)

    def rows(self, q: str) -> Iterator[dict[str, Any]]:
        """Rows of a query as dicts (column -> value), series tags merged in."""
        yield from series_rows(self.query(q))

    # ------------------------------------------------------------------------------------------ writes

    def _write_lines(self, rp: str, lines: list[str], what: str, subject: str | None = None) -> WriteReport:
        return self.transport.write_lines(rp, lines, what, self.quarantine, subject)

    def write_raw(self, samples: RawSamples) -> WriteReport:
        return self.write_raw_many([samples])

    def write_raw_many(self, batches: Sequence[RawSamples], *, index: bool = True) -> WriteReport:
        """Ask which points of the batches' time spans, and which of their identities nearby, are stored (one
        request), refuse the samples that would land on another sample's point (quarantined with the collisions
        named, recorded as gaps first), leave out those already stored at another time (`WriteReport.moved`), then
        write the rest (`_write_raw_batches`; without their index points when not ``index``: `remap_raw`)."""
        batches = [b for b in batches if len(b)]
        if not batches:
            return WriteReport()
        report = WriteReport()
        packed = self.layout.writes() == "packed"
        held, as_points = influx_check.held(self.config, self.transport, batches, report, packed)
        plan = plan_raw_writes(batches, held)
        report.quarantined.extend(quarantine_refused(plan, self.quarantine))
        report.collisions.extend(plan.collisions)
        if plan.gaps:
            lines = [point_line(gap_point(g)) for g in plan.gaps]
            report.merge(self._write_lines(self.config.results_rp, lines, f"{len(lines)} time-collision gaps"))
            report.gaps.extend(plan.gaps)
        report.moved.extend(plan.moved)
        # packed: a part's point stands at its first sample's time, so samples stored at their own time are not
        # written again (a part there would hide the stored one); their batches' index points are, as a replay's
        fresh = not_stored_yet(plan.write, held) if packed else list(plan.write)
        # a batch whose every sample an earlier batch of the call holds at the same time (a copy, a prefix batched
        # again) gets no index point: its first sample's is the earlier one's, which it would narrow
        own = [f is not None for f in not_stored_yet(plan.write, {})]
        # packed: the display of every sample stored packed once written (a replay repairs a lost one)
        shown = [influx_packed.not_points(b, as_points) for b in plan.write] if packed else fresh
        report.merge(self._write_raw_batches(list(zip(plan.write, fresh, own, shown, strict=True)), index, packed))
        return report

    def _write_raw_batch(
        self,
        samples: RawSamples,
        fresh: RawSamples | None,
        own: bool,
        shown: RawSamples | None,
        index: bool,
        packed: bool,
    ) -> WriteReport:
        """Write a batch's samples (``fresh``: those not stored yet; ``packed``: in parts with the display of
        ``shown``, else a point each), then its batch-index point (so the index never claims what is not stored)."""
        what = samples.describe()
        rp = self._raw_rp(samples)
        report = WriteReport()
        lines = self._sample_lines(fresh, shown, packed)
        if lines:
            report = self._write_lines(rp, lines, what, samples.subject)
        if not report.quarantined:
            if index and own:
                line = point_line(batch_point(samples))
                report.merge(self._write_lines(rp, [line], what + " (index)", samples.subject))
            return report
        # refused as bad data (quarantined, never retried): recorded as missing, so an analysis proceeds across
        # them (flagged data_gap) instead of waiting for samples that never come; the whole batch, since the
        # server may have refused any part of it (a part it kept is stored as well, never read as missing)
        gaps = missing_gaps(samples, samples, STORE_REFUSED)
        lines = [point_line(gap_point(g)) for g in gaps]
        report.merge(self._write_lines(self.config.results_rp, lines, what + " (refused: gaps)", samples.subject))
        report.gaps.extend(gaps)
        return report

    @staticmethod
    def _sample_lines(fresh: RawSamples | None, shown: RawSamples | None, packed: bool) -> list[str]:
        """The lines of a batch's samples not stored yet (``fresh``): a point per sample, or ``packed`` in parts
        with the display of ``shown`` (`influx_layout`, `influx_packed.packed_lines`)."""
        if packed:
            return influx_packed.packed_lines(fresh, shown)
        return [] if fresh is None else raw_lines(fresh)

    def _raw_rp(self, samples: RawSamples) -> str:
        return self.config.raw_rp if maps_to_utc(samples.clock) else self.config.sensor_time_rp

    def _write_raw_batches(
        self,
        batches: Sequence[tuple[RawSamples, RawSamples | None, bool, RawSamples | None]],
        index: bool,
        packed: bool,
    ) -> WriteReport:
        """All batches' samples in as few requests as possible (per retention policy), then their index points in a
        request of their own: InfluxDB 1.x stores the valid lines of a request it answers 400 (a partial write), so
        an index line sent with samples the server refused would be stored and claim them. If the server refuses
        any line as bad data, each batch is written again alone (idempotent), so the quarantine names the one bad
        batch and the index claims only what is stored. Each batch comes with the samples of it to write (None:
        all stored already) and whether it gets an index point (not when an earlier batch of the call holds all
        of it), and the samples whose display a packed write writes."""
        if len(batches) <= 1:
            return self._write_raw_batch(*batches[0], index, packed) if batches else WriteReport()
        by_rp: dict[str, list[tuple[RawSamples, RawSamples | None, bool, RawSamples | None]]] = {}
        for item in batches:
            by_rp.setdefault(self._raw_rp(item[0]), []).append(item)
        report = WriteReport()
        for rp, group in by_rp.items():
            lines = [line for _, fresh, _, shown in group for line in self._sample_lines(fresh, shown, packed)]
            what = f"{len(group)} raw batches ({group[0][0].describe()} ...)"
            probe = WriteReport()
            size = max(1, self.config.batch_lines)
            for i in range(0, len(lines), size):
                self.transport.write_chunk(rp, lines[i : i + size], what, probe, None)
                if probe.quarantined:
                    break
            if probe.quarantined:  # one or more bad batches: sort them out one by one
                for b, fresh, own, shown in group:
                    report.merge(self._write_raw_batch(b, fresh, own, shown, index, packed))
                continue
            report.merge(probe)
            if index:
                records = [point_line(batch_point(b)) for b, _, own, _ in group if own]
                report.merge(self._write_lines(rp, records, what + " (index)"))
        return report

    def write_gap(self, gap: GapRecord) -> WriteReport:
        what = f"gap subject={gap.subject} placement={gap.placement} {gap.serial}/{gap.boot_epoch} seq {gap.seq_first}"
        return self._write_lines(self.config.results_rp, [point_line(gap_point(gap))], what, gap.subject)

    def raw_index(
        self, subject: str, placement: str, serial: str, boot_epoch: int, seq_first: int | None, seq_last: int
    ) -> RawIndex:
        lo = "" if seq_first is None else f" AND seq_last >= {int(seq_first)}"
        batches: set[tuple[int, int, int]] = set()
        for rp in self._raw_rps(None, None):
            q = (
                f"SELECT seq_first, seq_last, n_samples FROM {self._from(rp, RAW_BATCH)} WHERE "
                f"{self._batch_where(subject, placement, serial, boot_epoch)}{lo} AND seq_first <= {int(seq_last)}"
            )
            for s in self.query(q):
                batches.update((int(v[1]), int(v[2]), int(v[3])) for v in s.get("values", []))
        glo = "" if seq_first is None else f" AND seq_last_missing >= {int(seq_first)}"
        q = (
            f"SELECT seq_first_missing, seq_last_missing FROM {self._from(self.config.results_rp, GAP)} WHERE "
            f"{self._batch_where(subject, placement, serial, boot_epoch)}{glo} AND seq_first_missing <= {int(seq_last)}"
        )
        gaps = {(int(v[1]), int(v[2])) for s in self.query(q) for v in s.get("values", [])}
        return RawIndex(tuple(sorted(batches)), tuple(sorted(gaps)))

    def _raw_rps(self, start_us: int | None, end_us: int | None) -> list[str]:
        """Policies holding raw points in a time range: UTC (>= 0) in raw_rp, sensor time (< 0) in the other."""
        rps = []
        if end_us is None or end_us >= 0:
            rps.append(self.config.raw_rp)
        if start_us is None or start_us < 0:
            rps.append(self.config.sensor_time_rp)
        return rps

    # ------------------------------------------------------------------------------------------ reads

    def _from(self, rp: str, measurement: str) -> str:
        return from_clause(self.config.database, rp, measurement)

    def read_raw(
        self,
        subject: str,
        placement: str,
        *,
        start_us: int | None = None,
        end_us: int | None = None,
        session: str | None = None,
    ) -> RawSeries:
        parts = self.read_raw_points(subject, placement, start_us=start_us, end_us=end_us, session=session)
        rps = self._raw_rps(start_us, end_us)
        both = influx_packed.read_samples(self.transport, rps, subject, placement, start_us, end_us, session, parts)
        if both is not None:
            return both
        return parts[0] if len(parts) == 1 else raw_series_concat(parts)

    def read_raw_points(
        self,
        subject: str,
        placement: str,
        *,
        start_us: int | None = None,
        end_us: int | None = None,
        session: str | None = None,
    ) -> list[RawSeries]:
        """The samples stored one point per sample (``raw``), one series per retention policy the range touches."""
        rps = self._raw_rps(start_us, end_us)
        return influx_reads.raw_points(self, rps, subject, placement, start_us, end_us, session)

    def _batch_where(self, subject: str, placement: str, serial: str, boot_epoch: int) -> str:
        return (
            f"subject = {quote_str(subject)} AND placement = {quote_str(placement)} AND serial = {quote_str(serial)}"
            f" AND boot_epoch = {int(boot_epoch)} AND {time_clause(None, None)}"
        )

    def raw_progress(self, subject: str, placement: str, serial: str, boot_epoch: int) -> RawProgress:
        rows: list[dict[str, Any]] = []
        for rp in self._raw_rps(None, None):
            q = (
                "SELECT count(seq_first) AS n_batches, sum(n_samples) AS n_samples, min(seq_first) AS seq_first, "
                f"max(seq_last) AS seq_last FROM {self._from(rp, RAW_BATCH)} "
                f"WHERE {self._batch_where(subject, placement, serial, boot_epoch)}"
            )
            rows.extend(self.rows(q))
        if not rows:
            return RawProgress(0, 0, None, None)
        return RawProgress(
            sum(int(r["n_batches"]) for r in rows),
            sum(int(r["n_samples"]) for r in rows),
            min(int(r["seq_first"]) for r in rows),
            max(int(r["seq_last"]) for r in rows),
        )

    def count_raw(
        self, subject: str, placement: str, serial: str, boot_epoch: int, seq_first: int, seq_last: int
    ) -> int:
        """Samples stored with seq in [seq_first, seq_last]; the batch index bounds the time range scanned."""
        total = 0
        for rp in self._raw_rps(None, None):
            index = (
                f"SELECT seq_first, time_last_us FROM {self._from(rp, RAW_BATCH)} WHERE "
                f"{self._batch_where(subject, placement, serial, boot_epoch)} "
                f"AND seq_last >= {int(seq_first)} AND seq_first <= {int(seq_last)}"
            )
            batches = list(self.rows(index))
            if not batches:
                continue
            start = min(int(b["time"]) for b in batches)
            end = max(int(b["time_last_us"]) for b in batches)
            where = (
                f"subject = {quote_str(subject)} AND placement = {quote_str(placement)} AND serial = "
                f"{quote_str(serial)} AND boot_epoch = {int(boot_epoch)} AND seq >= {int(seq_first)} AND seq <= "
                f"{int(seq_last)} AND {time_clause(start, end)}"
            )
            ident = (subject, placement, serial, boot_epoch, seq_first, seq_last, start, end)
            packed = influx_packed.count_packed(self.transport, rp, *ident)
            if packed:  # a sample both a point and in a part (written under both layouts) counts once
                points = {int(r["time"]) for r in self.rows(f"SELECT seq FROM {self._from(rp, RAW)} WHERE {where}")}
                total += len(points | packed)
                continue
            rows = list(self.rows(f"SELECT count(seq) AS n FROM {self._from(rp, RAW)} WHERE {where}"))
            total += int(rows[0]["n"]) if rows else 0
        return total

    def raw_sessions(
        self, start_us: int, end_us: int, *, subject: str | None = None, session: str | None = None
    ) -> list[RawSession]:
        """The range's batch-index rows (session is a field: InfluxQL cannot group by it), folded here."""
        where = time_clause(start_us, end_us)
        if subject is not None:
            where += f" AND subject = {quote_str(subject)}"
        if session is not None:
            where += f" AND session = {quote_str(session)}"
        cols = ("session", "serial", "boot_epoch", "seq_first", "seq_last", "time_last_us")
        rows: list[tuple[str, str, str | None, str, int, int, int, int, int]] = []
        for rp in self._raw_rps(start_us, end_us):
            q = (
                f"SELECT {', '.join(quote_ident(c) for c in cols)} FROM {self._from(rp, RAW_BATCH)} "
                f"WHERE {where} GROUP BY subject, placement"
            )
            for r in self.rows(q):
                if r.get("session") is None:
                    continue
                rows.append(
                    (
                        str(r["subject"]),
                        str(r["placement"]),
                        str(r["session"]),
                        str(r["serial"]),
                        int(r["boot_epoch"]),
                        int(r["seq_first"]),
                        int(r["seq_last"]),
                        int(r["time"]),
                        int(r["time_last_us"]),
                    )
                )
        return raw_sessions_from_batches(rows)

    # ------------------------------------------------------------------------------------------ results

    def replace_results(self, results: SessionResults) -> WriteReport:
        return self._results.replace(results)

    def delete_live(self, subject: str, start_us: int, end_us: int) -> None:
        self._results.delete_live(subject, start_us, end_us)

    def write_live(self, results: SessionResults) -> WriteReport:
        return self._results.write_live(results)

    def write_plan(self, plan: ExercisePlan) -> WriteReport:
        return self._results.write_plan(plan)

    def read_plans(self, subject: str) -> list[ExercisePlan]:
        return self._results.read_plans(subject)

    def read_results(
        self,
        subject: str,
        *,
        session: str | None = None,
        start_us: int | None = None,
        end_us: int | None = None,
        live: bool = False,
    ) -> list[ResultRow]:
        return self._results.read(subject, session=session, start_us=start_us, end_us=end_us, live=live)

    # ------------------------------------------------------------------------------------------ remap

    def remap_raw(self, subject: str, placement: str, serial: str, boot_epoch: int, clock: ClockMapping) -> int:
        """Move a boot epoch's sensor-time samples and index to UTC (`influx_remap.remap_raw`); returns samples
        moved."""
        return influx_remap.remap_raw(self, subject, placement, serial, boot_epoch, clock)

    # ------------------------------------------------------------------------------------------ admin

    def retention_policies(self) -> dict[str, str]:
        """Retention policies of the database (1.x; 2.x answers through DBRP mappings): name -> duration."""
        out = {}
        for row in self.rows(f"SHOW RETENTION POLICIES ON {quote_ident(self.config.database)}"):
            out[str(row["name"])] = str(row["duration"])
        return out

    # ------------------------------------------------------------------------------------------ export reads

    def raw_chunks(
        self,
        subject: str,
        placement: str,
        *,
        start_us: int | None = None,
        end_us: int | None = None,
        session: str | None = None,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    ) -> Iterator[Any]:
        return influx_reads.raw_chunks(
            self, subject, placement, start_us=start_us, end_us=end_us, session=session, chunk_samples=chunk_samples
        )

    def raw_batches(
        self, subject: str, *, start_us: int | None = None, end_us: int | None = None, session: str | None = None
    ) -> list[BatchRecord]:
        return influx_reads.raw_batches(self, subject, start_us=start_us, end_us=end_us, session=session)

    def gaps(self, subject: str, *, session: str | None = None) -> list[GapRecord]:
        return influx_reads.gaps(self, subject, session=session)

    def raw_kept_for_s(self) -> float | None:
        return influx_reads.raw_retention_s(self)

    def with_config(self, **changes: Any) -> InfluxStore:
        return InfluxStore(replace(self.config, **changes), self.quarantine, self.transport.sleep)

    def close(self) -> None:
        self.transport.close()
