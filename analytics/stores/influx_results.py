"""Session results on InfluxDB: replaced whole (summary last), live results appended and swept, read back.

Every result series keeps an anchor point (``ANCHOR_US``) that no replacement deletes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from analytics.stores.influx_codec import (
    from_clause,
    parse_series_key,
    quote_ident,
    quote_str,
    series_rows,
    time_clause,
)
from analytics.stores.influx_transport import InfluxConfig, InfluxTransport
from analytics.stores.model import (
    EXERCISE_SET,
    EXERCISE_SET_LIVE,
    GAP,
    LIVE_MEASUREMENTS,
    RAW,
    RAW_BATCH,
    RESULT_MEASUREMENTS,
    SESSION_SUMMARY,
    STRIDE,
    STRIDE_LIVE,
    Point,
    ResultRow,
    SessionResults,
    WriteReport,
    point_line,
    result_order,
)
from analytics.stores.plans import EXERCISE_PLAN, ExercisePlan, plan_from_row
from analytics.stores.quarantine import Quarantine

TAGS = {
    RAW: ("placement", "subject"),
    RAW_BATCH: ("placement", "subject"),
    STRIDE: ("side", "subject"),
    EXERCISE_SET: ("exercise", "side", "subject"),
    SESSION_SUMMARY: ("side", "subject"),
    STRIDE_LIVE: ("side", "subject"),
    EXERCISE_SET_LIVE: ("exercise", "side", "subject"),
    GAP: ("placement", "subject"),
}
ANCHORED = (*RESULT_MEASUREMENTS, *LIVE_MEASUREMENTS)
"""Measurements a replacement deletes from: each of their series keeps an anchor point (see ANCHOR_US)."""
ANCHOR_US = 0
"""Time of the anchor point every result series keeps (1970-01-01T00:00:00Z, field ``anchor=true``).

Why: on InfluxDB 1.6.7 (inmem index) a series that a DELETE empties is dropped from the in-memory index; once
such a series is written again, the next DELETE that empties *another* series of the same measurement drops
the whole measurement from the index, and every re-written series is invisible to queries (and to later
DELETEs) until influxd restarts (reproduced: tests/stores/test_replace_many_subjects.py, docs/influxdb-index-loss.md).
Live window results replace their range every few seconds, so this hid final strides. A series that keeps a
point outside every replaced range is never emptied, never dropped: the anchor. Reads skip it."""
ANCHOR_FIELD = "anchor"


class InfluxResults:
    """The results side of `analytics.stores.influx.InfluxStore` (same server, same quarantine)."""

    def __init__(self, config: InfluxConfig, transport: InfluxTransport, quarantine: Quarantine) -> None:
        self.config = config
        self.transport = transport
        self.quarantine = quarantine

    def _from(self, measurement: str) -> str:
        return from_clause(self.config.database, self.config.results_rp, measurement)

    def _rows(self, q: str) -> Iterator[dict[str, Any]]:
        yield from series_rows(self.transport.query(q))

    def _write_lines(self, rp: str, lines: list[str], what: str) -> WriteReport:
        return self.transport.write_lines(rp, lines, what, self.quarantine)

    def _delete_results(self, subject: str, start_us: int, end_us: int, measurements: Sequence[str] = ANCHORED) -> None:
        """Delete a subject's results (of ``measurements``) in [start_us, end_us], never its anchor points."""
        pieces = [(start_us, end_us)]
        if start_us <= ANCHOR_US <= end_us:
            pieces = [(start_us, ANCHOR_US - 1), (ANCHOR_US + 1, end_us)]
        for lo, hi in pieces:
            if lo <= hi:
                self.transport.delete(self.config.results_rp, measurements, {"subject": subject}, lo, hi)

    def _result_series(self, subject: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        """The subject's result series the index knows (measurement, sorted tags)."""
        names = "|".join(ANCHORED)
        q = (
            f"SHOW SERIES ON {quote_ident(self.config.database)} FROM /^({names})$/ "
            f"WHERE {quote_ident('subject')} = {quote_str(subject)}"
        )
        out = set()
        for row in self._rows(q):
            measurement, tags = parse_series_key(str(row["key"]))
            if measurement in ANCHORED and tags.get("subject") == subject:
                out.add((measurement, tuple(sorted(tags.items()))))
        return out

    def _anchor_lines(self, results: SessionResults) -> list[str]:
        """Anchor points for every result series of the subject: the stored ones and those about to be written."""
        series = {(p.measurement, tuple(sorted(p.tags))) for p in results.points}
        series |= self._result_series(results.subject)
        return [point_line(Point(m, tags, {ANCHOR_FIELD: True}, ANCHOR_US)) for m, tags in sorted(series)]

    def _stored_session(self, subject: str, session: str) -> list[dict[str, Any]]:
        q = (
            f"SELECT result_version, duration_s FROM {self._from(SESSION_SUMMARY)} "
            f"WHERE subject = {quote_str(subject)} AND session = {quote_str(session)} AND "
            f"{time_clause(None, None)}"
        )
        return list(self._rows(q))

    def replace(self, results: SessionResults) -> WriteReport:
        """Replace a session's results: skip if a newer version is stored, else delete old ranges, then write.

        The session summary is written last: it marks the replacement complete (and records the range to
        delete at the next re-analysis).
        """
        old = self._stored_session(results.subject, results.session)
        if any(int(r.get("result_version", 0)) > results.result_version for r in old):
            return WriteReport(superseded=True)
        ranges = {(results.start_us, results.end_us)}
        for r in old:
            start = int(r["time"])
            ranges.add((start, start + round(float(r.get("duration_s", 0.0)) * 1e6)))
        what = f"results subject={results.subject} session={results.session} version={results.result_version}"
        anchors = self._anchor_lines(results)
        report = self._write_lines(self.config.results_rp, anchors, what + " (anchors)")
        report.points_written -= len(anchors)  # result points only
        for start, end in sorted(ranges):
            self._delete_results(results.subject, start, end)
        body = [point_line(p) for p in results.points if p.measurement != SESSION_SUMMARY]
        summary = [point_line(p) for p in results.points if p.measurement == SESSION_SUMMARY]
        report.merge(self._write_lines(self.config.results_rp, body, what))
        report.merge(self._write_lines(self.config.results_rp, summary, what + " (summary)"))
        return report

    def delete_live(self, subject: str, start_us: int, end_us: int) -> None:
        """DELETE the subject's live points in the range, after re-writing the anchors of its result series (an
        emptied series must stay in 1.6's index, see ``ANCHOR_US``)."""
        anchors = self._anchor_lines(SessionResults(subject, "", start_us, end_us, 0, ()))
        self._write_lines(self.config.results_rp, anchors, f"live sweep subject={subject} (anchors)")
        self._delete_results(subject, start_us, end_us, LIVE_MEASUREMENTS)

    def write_live(self, results: SessionResults) -> WriteReport:
        """Append provisional points (live measurements): one write, no DELETE, no read."""
        what = f"live results subject={results.subject} session={results.session}"
        return self._write_lines(self.config.results_rp, [point_line(p) for p in results.points], what)

    def read(
        self,
        subject: str,
        *,
        session: str | None = None,
        start_us: int | None = None,
        end_us: int | None = None,
        live: bool = False,
    ) -> list[ResultRow]:
        out: list[ResultRow] = []
        where = f"subject = {quote_str(subject)}"
        if session is not None:
            where += f" AND session = {quote_str(session)}"
        where += " AND " + time_clause(start_us, end_us)
        for m in LIVE_MEASUREMENTS if live else RESULT_MEASUREMENTS:
            q = f"SELECT * FROM {self._from(m)} WHERE {where}"
            floats: set[str] | None = None
            for row in self._rows(q):
                if row.get(ANCHOR_FIELD) is True:
                    continue
                if floats is None:  # InfluxDB's JSON writes 4.0 as 4: restore float fields from their type
                    floats = self._float_fields(m)
                t = int(row.pop("time"))
                tags = {k: str(row.pop(k)) for k in TAGS[m] if k in row}
                fields = {k: float(v) if k in floats and not isinstance(v, bool) else v for k, v in row.items()}
                out.append(ResultRow(m, t, tags, fields))
        out.sort(key=result_order)
        return out

    def write_plan(self, plan: ExercisePlan) -> WriteReport:
        """Write one exercise-plan point (never deleted: the plan history stays)."""
        what = f"exercise plan subject={plan.subject} exercise={plan.exercise} side={plan.side}"
        return self._write_lines(self.config.results_rp, [point_line(plan.point())], what)

    def read_plans(self, subject: str) -> list[ExercisePlan]:
        """Every exercise-plan point of a subject, oldest first."""
        where = f"subject = {quote_str(subject)} AND {time_clause(None, None)}"
        q = f"SELECT * FROM {self._from(EXERCISE_PLAN)} WHERE {where}"
        plans = []
        for row in self._rows(q):
            tags: dict[str, str] = {k: str(row.pop(k)) for k in ("exercise", "side", "subject") if k in row}
            plans.append(plan_from_row(int(row.pop("time")), tags, row))
        return sorted(plans, key=lambda p: p.time_us)

    def _float_fields(self, measurement: str) -> set[str]:
        rows = self._rows(f"SHOW FIELD KEYS FROM {self._from(measurement)}")
        return {str(r["fieldKey"]) for r in rows if r.get("fieldType") == "float"}
