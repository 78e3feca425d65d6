"""InfluxDB store: the one module that talks to InfluxDB (influxdb-client for the v2 API, urllib3 for v1).

Writes (line protocol, precision µs, gzip except v1 to a loopback host, batches of ``batch_lines`` lines,
5,000 by default):
- ``api="v2"``: influxdb-client's synchronous write API on ``/api/v2/write`` (token auth; InfluxDB 1.8, 2.x,
  3.x), bucket ``{database}/{retention policy}`` (2.x maps such names to DBRP automatically, 1.8 reads them as
  database/retention policy), deletes through influxdb-client's delete API (``/api/v2/delete``).
- ``api="v1"``: ``POST /write?db=&rp=&precision=u`` (answered by 1.x, 2.x and 3.x; Debian's 1.6 has only this),
  user/password (HTTP Basic) or token auth; deletes with an InfluxQL ``DELETE``.
Reads: InfluxQL on ``/query`` (epoch=u, chunked), which 1.x, 2.x (read-only) and 3.x answer; Flux is not used.
Raw samples are asked for as CSV (pandas parses them at about a third of the JSON's CPU); a server that answers
in another format is read as JSON from then on.

Durability: a write call returns only after the server answered 2xx for every line (or the lines it refused
as bad data are in the quarantine, committed): that is when the worker may acknowledge. Failures are sorted by
`analytics.stores.errors.sort_write_error`: retried with backoff (honouring Retry-After; at most
``refused_delay_s`` apart while the connection is refused, so writes resume within about a second of a restarted
server answering) for up to ``retry_for_s`` seconds, then `StoreUnavailable` (nothing acknowledged); split on
413; quarantined on 400/422.

Raw samples are never written over another sample, nor stored twice (SCHEMA.md, "Raw samples: one sample per
point"): before a call's samples are written, ONE request asks which points of their time spans are already
stored, and which of their own identities are stored within `model.REPLAY_MOVE_US` of them (usually none); a
sample whose point holds another sample's identity is refused, one whose identity is stored at another time is
not written again (`model.plan_raw_writes`).
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import random
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import urllib3

from analytics.stores.errors import (
    CONFIGURATION_MESSAGES,
    StoreConfigError,
    StoreError,
    StoreQueryError,
    StoreUnavailable,
    WriteAction,
    WriteVerdict,
    connection_refused,
    retry_after_s,
    sort_write_error,
)
from analytics.stores.model import (
    EXERCISE_SET,
    EXERCISE_SET_LIVE,
    GAP,
    LIVE_MEASUREMENTS,
    RAW,
    RAW_BATCH,
    RAW_FIELDS,
    RESULT_MEASUREMENTS,
    SENSOR_SLOT_US,
    SESSION_SUMMARY,
    SPAN_JOIN_US,
    STRIDE,
    STRIDE_LIVE,
    GapRecord,
    RawIndex,
    RawProgress,
    RawSamples,
    RawSeries,
    RawSession,
    ResultRow,
    SampleId,
    SessionResults,
    WriteReport,
    batch_point,
    check_windows,
    collision_reason,
    gap_point,
    plan_raw_writes,
    point_line,
    raw_lines,
    raw_sessions_from_batches,
    sensor_slot_start_us,
)
from analytics.stores.paths import state_dir
from analytics.stores.quarantine import Quarantine
from sensor_gateway.redaction import redact_url
from sensor_gateway.uplink.envelope import ClockMapping

log = logging.getLogger("gaitsym.stores")

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
TIME_MIN_NS = -(1 << 62)
TIME_MAX_NS = 1 << 62
ANCHOR_US = 0
"""Time of the anchor point every result series keeps (1970-01-01T00:00:00Z, field ``anchor=true``).

Why: on InfluxDB 1.6.7 (inmem index) a series that a DELETE empties is dropped from the in-memory index; once
such a series is written again, the next DELETE that empties *another* series of the same measurement drops
the whole measurement from the index, and every re-written series is invisible to queries (and to later
DELETEs) until influxd restarts (reproduced: tests/stores/test_replace_many_subjects.py, docs/influxdb-index-loss.md).
Live window results replace their range every few seconds, so this hid final strides. A series that keeps a
point outside every replaced range is never emptied, never dropped: the anchor. Reads skip it."""
ANCHOR_FIELD = "anchor"


@dataclass(frozen=True)
class InfluxConfig:
    """Where and how to write. Durations in seconds; ``raw_retention`` in InfluxQL duration syntax."""

    url: str
    """Server base URL, e.g. ``http://127.0.0.1:8086``."""
    database: str = "gaitsym"
    api: Literal["v1", "v2"] = "v1"
    username: str | None = None
    password: str | None = None
    token: str | None = None
    org: str = "gaitsym"
    raw_rp: str = "raw"
    sensor_time_rp: str = "raw_unsynced"
    """Raw samples in sensor time (before 1970): 1.x drops points older than a policy's duration, so they
    need a policy without one; `remap_raw` moves them to ``raw_rp`` once a synchronised mapping exists."""
    results_rp: str = "results"
    raw_retention: str = "30d"
    batch_lines: int = 5000
    gzip: bool | None = None
    """Compress write bodies; None: yes, except v1 writes to a loopback host (compressing 30 kB per turn for
    a server on the same machine costs both sides CPU and saves nothing). influxdb-client (v2) always does."""
    timeout_s: float = 30.0
    retry_for_s: float = 60.0
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    refused_delay_s: float = 1.0
    """Longest wait between attempts while the connection is refused (nothing listening: the server is
    restarting; a refused connection costs it nothing), so writes resume within about this long after it is back."""
    quarantine_path: str = field(default_factory=lambda: str(state_dir() / "quarantine.sqlite"))
    """Where refused batches are kept: under the gaitsym state folder, never the current directory."""

    def bucket(self, rp: str) -> str:
        return f"{self.database}/{rp}"


def quote_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


HELD_STATEMENTS = 200
"""Statements per request of the collision check (two per sensor and span of a turn; more requests only for
batches mapped far apart)."""


def _merged(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans, sorted, those closer than ``SPAN_JOIN_US`` joined (one statement each)."""
    merged: list[list[int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + SPAN_JOIN_US:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


class _WriteFailed(Exception):
    def __init__(self, status: int | None, message: str, retry_after: str | None = None, refused: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.refused = refused


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
        self.base = config.url.rstrip("/")
        host = urllib.parse.urlparse(self.base).hostname or ""
        loopback = host in ("localhost", "::1") or host.startswith("127.")
        self._gzip = config.gzip if config.gzip is not None else not loopback
        self.quarantine = quarantine if quarantine is not None else Quarantine(config.quarantine_path)
        self._sleep = sleep
        timeout = urllib3.Timeout(connect=min(5.0, config.timeout_s), read=config.timeout_s)
        self._http = urllib3.PoolManager(num_pools=2, maxsize=4, timeout=timeout, retries=False)
        self._csv_supported = True
        """Raw samples are read as CSV until the server answers /query in another format (then JSON)."""
        self._client: Any = None
        self._write_api: Any = None
        if config.api == "v2":
            from influxdb_client import InfluxDBClient
            from influxdb_client.client.write_api import SYNCHRONOUS

            self._client = InfluxDBClient(
                url=self.base,
                token=config.token or "",
                org=config.org,
                enable_gzip=config.gzip is not False,
                timeout=int(config.timeout_s * 1000),
                retries=False,
            )
            self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    # ------------------------------------------------------------------------------------------ HTTP

    def _headers(self) -> dict[str, str]:
        c = self.config
        if c.token:
            return {"Authorization": f"Token {c.token}"}
        if c.username is not None:
            raw = f"{c.username}:{c.password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
        return {}

    def _send(self, rp: str, lines: Sequence[str]) -> None:
        """One HTTP write of these lines; raises _WriteFailed with what the server said."""
        body = ("\n".join(lines) + "\n").encode("utf-8")
        if self.config.api == "v2":
            self._send_v2(rp, body)
            return
        headers = {**self._headers(), "Content-Type": "text/plain; charset=utf-8"}
        if self._gzip:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        query = urllib.parse.urlencode({"db": self.config.database, "rp": rp, "precision": "u"})
        try:
            resp = self._http.request("POST", f"{self.base}/write?{query}", body=body, headers=headers)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _WriteFailed(None, f"{type(exc).__name__}: {exc}", refused=connection_refused(exc)) from exc
        if not 200 <= resp.status < 300:
            raise _WriteFailed(resp.status, resp.data.decode("utf-8", "replace"), resp.headers.get("Retry-After"))

    def _send_v2(self, rp: str, body: bytes) -> None:
        from influxdb_client.client.write_api import WritePrecision
        from influxdb_client.rest import ApiException

        try:
            self._write_api.write(
                bucket=self.config.bucket(rp), org=self.config.org, record=body, write_precision=WritePrecision.US
            )
        except ApiException as exc:
            headers: Mapping[str, str] = exc.headers or {}
            message = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body or "")
            raise _WriteFailed(exc.status, message, headers.get("Retry-After")) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _WriteFailed(None, f"{type(exc).__name__}: {exc}", refused=connection_refused(exc)) from exc

    def query(self, q: str, rp: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL on /query (epoch=u, chunked); returns the series of every statement, in order."""
        params = {"db": self.config.database, "epoch": "u", "q": q, "chunked": "true", "chunk_size": "20000"}
        if rp:
            params["rp"] = rp
        body = urllib.parse.urlencode(params).encode()
        headers = {**self._headers(), "Content-Type": "application/x-www-form-urlencoded"}
        try:
            resp = self._http.request("POST", f"{self.base}/query", body=body, headers=headers)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            refused = connection_refused(exc)
            raise StoreUnavailable(f"query {q!r}: {type(exc).__name__}: {exc}", refused=refused) from exc
        text = resp.data.decode("utf-8", "replace")
        if resp.status >= 500 or resp.status == 429:
            wait = retry_after_s(resp.headers.get("Retry-After"), time.time())
            raise StoreUnavailable(
                f"query {q!r}: HTTP {resp.status} {text[:300]}", retry_after_s=wait or 1.0, status=resp.status
            )
        if resp.status != 200:
            raise StoreQueryError(f"query {q!r}: HTTP {resp.status} {text[:300]}")
        series: list[dict[str, Any]] = []
        for chunk in text.splitlines():
            if not chunk.strip():
                continue
            doc = json.loads(chunk)
            if "error" in doc:
                raise StoreQueryError(f"query {q!r}: {doc['error']}")
            for result in doc.get("results", []):
                if "error" in result:
                    raise StoreQueryError(f"query {q!r}: {result['error']}")
                series.extend(result.get("series", []))
        return series

    def query_csv(self, q: str) -> bytes | None:
        """Run one InfluxQL statement on /query asking for CSV (``Accept: application/csv``, 1.x and 2.x's
        compatibility API; about a third of the JSON's parsing CPU for raw samples). None when the server
        answered in another format (the caller then uses `query`)."""
        if not self._csv_supported:
            return None
        params = {"db": self.config.database, "epoch": "u", "q": q, "chunked": "true", "chunk_size": "20000"}
        body = urllib.parse.urlencode(params).encode()
        headers = {
            **self._headers(),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/csv",
        }
        try:
            resp = self._http.request("POST", f"{self.base}/query", body=body, headers=headers)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailable(f"query {q!r}: {type(exc).__name__}: {exc}") from exc
        if resp.status >= 500 or resp.status == 429:
            raise StoreUnavailable(f"query {q!r}: HTTP {resp.status} {resp.data[:300]!r}", status=resp.status)
        if resp.status != 200:
            return None  # the JSON query says what is wrong
        if "csv" not in (resp.headers.get("Content-Type") or ""):
            self._csv_supported = False
            log.info("%s answers /query without CSV: reading JSON", redact_url(self.base))
            return None
        data: bytes = resp.data
        if not data.strip() or data.startswith(b"error"):
            # 1.x's CSV writer drops a statement's error (a missing retention policy answers an empty 200):
            # an empty answer is asked again as JSON, which reports errors
            return None
        return data

    def rows(self, q: str) -> Iterator[dict[str, Any]]:
        """Rows of a query as dicts (column -> value), series tags merged in."""
        for s in self.query(q):
            columns = s["columns"]
            tags = s.get("tags", {})
            for values in s.get("values", []):
                row = dict(tags)
                row.update({c: v for c, v in zip(columns, values, strict=True) if v is not None})
                yield row

    # ------------------------------------------------------------------------------------------ writes

    def _write_lines(self, rp: str, lines: list[str], what: str) -> WriteReport:
        report = WriteReport()
        size = max(1, self.config.batch_lines)
        for i in range(0, len(lines), size):
            self._write_chunk(rp, lines[i : i + size], what, report)
        return report

    def _write_chunk(self, rp: str, lines: list[str], what: str, report: WriteReport, quarantine: bool = True) -> None:
        deadline = time.monotonic() + self.config.retry_for_s
        attempt = 0
        while True:
            attempt += 1
            report.requests += 1
            try:
                self._send(rp, lines)
            except _WriteFailed as fail:
                verdict = self._verdict(fail, attempt, len(lines))
                if verdict.action is WriteAction.SPLIT:
                    report.splits += 1
                    half = len(lines) // 2
                    self._write_chunk(rp, lines[:half], what, report, quarantine)
                    self._write_chunk(rp, lines[half:], what, report, quarantine)
                    return
                if verdict.action is WriteAction.QUARANTINE:
                    if quarantine:
                        self.quarantine.put(what, fail.status, verdict.reason, fail.message, lines)
                    report.quarantined.append(what)
                    return
                self._wait_or_give_up(f"writing {what}", fail, verdict, attempt, deadline)
                report.retries += 1
                continue
            report.points_written += len(lines)
            return

    def _verdict(self, fail: _WriteFailed, attempt: int, n_lines: int) -> WriteVerdict:
        c = self.config
        return sort_write_error(
            fail.status,
            n_lines=n_lines,
            attempt=attempt,
            retry_after=fail.retry_after,
            message=fail.message,
            now_s=time.time(),
            base_delay_s=c.base_delay_s,
            max_delay_s=c.max_delay_s,
            refused=fail.refused,
            refused_delay_s=c.refused_delay_s,
        )

    def _wait_or_give_up(
        self, doing: str, fail: _WriteFailed, verdict: WriteVerdict, attempt: int, deadline: float
    ) -> None:
        """Sleep the verdict's delay (+0-20 % jitter), or raise StoreUnavailable when that passes the deadline."""
        delay = verdict.delay_s * (1.0 + 0.2 * random.random())
        if time.monotonic() + delay > deadline:
            raise StoreUnavailable(
                f"{doing}: {verdict.reason}: {fail.message.strip()[:300]}; "
                f"gave up after {attempt} attempts ({self.config.retry_for_s:g} s); nothing acknowledged",
                retry_after_s=verdict.delay_s,
                status=fail.status,
                refused=fail.refused,
            ) from fail
        log.warning("%s: %s; retry %d in %.1f s", doing, verdict.reason, attempt, delay)
        self._sleep(delay)

    def write_raw(self, samples: RawSamples) -> WriteReport:
        return self.write_raw_many([samples])

    def write_raw_many(self, batches: Sequence[RawSamples]) -> WriteReport:
        """Ask which points of the batches' time spans, and which of their identities nearby, are stored (one
        request), refuse the samples that would land on another sample's point (quarantined with the collisions
        named, recorded as gaps first), leave out those already stored at another time (`WriteReport.moved`), then
        write the rest (`_write_raw_batches`)."""
        batches = [b for b in batches if len(b)]
        if not batches:
            return WriteReport()
        report = WriteReport()
        plan = plan_raw_writes(batches, self._held(batches, report))
        for lost, collisions in plan.refused:
            what = f"{lost.describe()} (time collision)"
            self.quarantine.put(what, None, collision_reason(collisions), "", raw_lines(lost))
            report.quarantined.append(what)
            report.collisions.extend(collisions)
        if plan.gaps:
            lines = [point_line(gap_point(g)) for g in plan.gaps]
            report.merge(self._write_lines(self.config.results_rp, lines, f"{len(lines)} time-collision gaps"))
            report.gaps.extend(plan.gaps)
        report.moved.extend(plan.moved)
        report.merge(self._write_raw_batches(plan.write))
        return report

    def _held(self, batches: Sequence[RawSamples], report: WriteReport) -> dict[tuple[str, str], dict[int, SampleId]]:
        """Stored points the call's check needs (`model.check_windows`), per (subject, placement), in one request:
        per subject, placement and time span (spans of one call closer than ``SPAN_JOIN_US`` joined) one statement
        reading every point in the span, and per sensor boot one reading, in the spans widened by
        `model.REPLAY_MOVE_US`, only the points whose sequence is in the call's range for that sensor boot (filtered
        by the server; serial and boot epoch are compared by `plan_raw_writes`). In normal operation every answer
        is empty (new data); a replay finds its own samples, where they are. A row read half-written (another
        writer's point arriving) is not yet stored, as in `read_raw`."""
        spans: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
        wide: dict[tuple[str, str, str, str, int], list[tuple[int, int]]] = {}
        seqs: dict[tuple[str, str, str, str, int], list[int]] = {}
        for b in batches:
            rp = self._raw_rp(b)
            sensor = (rp, b.subject, b.placement, b.serial, b.boot_epoch)
            for span, widened in check_windows(b):
                spans.setdefault((rp, b.subject, b.placement), []).append(span)
                wide.setdefault(sensor, []).append(widened)
            seqs.setdefault(sensor, []).extend((int(b.seq[0]), int(b.seq[-1])))
        statements = []
        for (rp, subject, placement), found in spans.items():
            where = f"subject = {quote_str(subject)} AND placement = {quote_str(placement)}"
            statements += [
                f'SELECT "seq", "serial", "boot_epoch" FROM {self._from(rp, RAW)} WHERE {where} AND '
                f'{self._time_clause(lo, hi)} GROUP BY "subject", "placement"'
                for lo, hi in _merged(found)
            ]
        for (rp, subject, placement, serial, boot), found in wide.items():
            where = (  # the sequence range only: InfluxDB answers it faster than with serial and boot epoch too,
                # and another sensor's samples in that range are only ever a handful (a swapped sensor)
                f"subject = {quote_str(subject)} AND placement = {quote_str(placement)} AND "
                f'"seq" >= {min(seqs[(rp, subject, placement, serial, boot)])} AND '
                f'"seq" <= {max(seqs[(rp, subject, placement, serial, boot)])}'
            )
            statements += [
                f'SELECT "seq", "serial", "boot_epoch" FROM {self._from(rp, RAW)} WHERE {where} AND '
                f'{self._time_clause(lo, hi)} GROUP BY "subject", "placement"'
                for lo, hi in _merged(found)
            ]
        held: dict[tuple[str, str], dict[int, SampleId]] = {}
        found_series: list[dict[str, Any]] = []
        for i in range(0, len(statements), HELD_STATEMENTS):  # one request unless batches were mapped far apart
            q = ";".join(statements[i : i + HELD_STATEMENTS])
            found_series += self._select(q, f"checking {len(batches)} raw batches", report)
        for series in found_series:
            tags = series.get("tags") or {}
            points = held.setdefault((str(tags.get("subject")), str(tags.get("placement"))), {})
            for t, seq, serial, boot in series.get("values", []):
                if seq is not None and serial is not None and boot is not None:
                    points[int(t)] = (str(serial), int(boot), int(seq))
        return held

    def _select(self, q: str, doing: str, report: WriteReport) -> list[dict[str, Any]]:
        """A read that a write depends on: retried like a write (refused, 429/5xx with Retry-After, credentials
        or configuration) until ``retry_for_s``, then StoreUnavailable; a statement error is StoreQueryError."""
        deadline = time.monotonic() + self.config.retry_for_s
        attempt = 0
        while True:
            attempt += 1
            report.requests += 1
            try:
                return self._query_once(q)
            except _WriteFailed as fail:
                verdict = self._verdict(fail, attempt, 1)
                if verdict.action is not WriteAction.RETRY:  # the query itself refused: asking again cannot help
                    raise StoreQueryError(f"{doing}: HTTP {fail.status} {fail.message.strip()[:300]}") from fail
                self._wait_or_give_up(doing, fail, verdict, attempt, deadline)
                report.retries += 1

    def _query_once(self, q: str) -> list[dict[str, Any]]:
        """One POST of InfluxQL on /query; the series of every statement. Raises _WriteFailed when the server is
        away, busy, or not configured; StoreQueryError when it rejects the query itself."""
        params = {"db": self.config.database, "epoch": "u", "q": q, "chunked": "true", "chunk_size": "20000"}
        body = urllib.parse.urlencode(params).encode()
        headers = {**self._headers(), "Content-Type": "application/x-www-form-urlencoded"}
        try:
            resp = self._http.request("POST", f"{self.base}/query", body=body, headers=headers)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _WriteFailed(None, f"{type(exc).__name__}: {exc}", refused=connection_refused(exc)) from exc
        text = resp.data.decode("utf-8", "replace")
        if resp.status != 200:
            if resp.status == 400 and not any(m in text.lower() for m in CONFIGURATION_MESSAGES):
                raise StoreQueryError(f"query {q[:300]!r}: HTTP 400 {text[:300]}")
            raise _WriteFailed(resp.status, text[:300], resp.headers.get("Retry-After"))
        series: list[dict[str, Any]] = []
        for chunk in text.splitlines():
            if not chunk.strip():
                continue
            doc = json.loads(chunk)
            errors = [str(doc["error"])] if "error" in doc else []
            errors += [str(r["error"]) for r in doc.get("results", []) if "error" in r]
            for error in errors:
                if any(m in error.lower() for m in CONFIGURATION_MESSAGES):
                    raise _WriteFailed(404, error)
                raise StoreQueryError(f"query {q[:300]!r}: {error}")
            for result in doc.get("results", []):
                series.extend(result.get("series", []))
        return series

    def _write_raw_batch(self, samples: RawSamples) -> WriteReport:
        """Write samples, then their batch-index point (so the index never claims what is not stored)."""
        what = samples.describe()
        rp = self._raw_rp(samples)
        report = self._write_lines(rp, raw_lines(samples), what)
        if not report.quarantined:
            report.merge(self._write_lines(rp, [point_line(batch_point(samples))], what + " (index)"))
        return report

    def _raw_rp(self, samples: RawSamples) -> str:
        synced = samples.clock.utc_synced and samples.clock.ref_utc_s is not None
        return self.config.raw_rp if synced else self.config.sensor_time_rp

    def _write_raw_batches(self, batches: Sequence[RawSamples]) -> WriteReport:
        """All batches' samples in as few requests as possible (per retention policy), then their index points.
        If the server refuses any line as bad data, each batch is written again alone (idempotent), so the
        quarantine names the one bad batch and the index claims only what is stored."""
        if len(batches) <= 1:
            return self._write_raw_batch(batches[0]) if batches else WriteReport()
        by_rp: dict[str, list[RawSamples]] = {}
        for b in batches:
            by_rp.setdefault(self._raw_rp(b), []).append(b)
        report = WriteReport()
        for rp, group in by_rp.items():
            lines = [line for b in group for line in raw_lines(b)]
            what = f"{len(group)} raw batches ({group[0].describe()} ...)"
            probe = WriteReport()
            size = max(1, self.config.batch_lines)
            for i in range(0, len(lines), size):
                self._write_chunk(rp, lines[i : i + size], what, probe, quarantine=False)
                if probe.quarantined:
                    break
            if probe.quarantined:  # one or more bad batches: sort them out one by one
                for b in group:
                    report.merge(self._write_raw_batch(b))
                continue
            report.merge(probe)
            report.merge(self._write_lines(rp, [point_line(batch_point(b)) for b in group], what + " (index)"))
        return report

    def write_gap(self, gap: GapRecord) -> WriteReport:
        what = f"gap subject={gap.subject} placement={gap.placement} {gap.serial}/{gap.boot_epoch} seq {gap.seq_first}"
        return self._write_lines(self.config.results_rp, [point_line(gap_point(gap))], what)

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
        return f"{quote_ident(self.config.database)}.{quote_ident(rp)}.{quote_ident(measurement)}"

    @staticmethod
    def _time_clause(start_us: int | None, end_us: int | None) -> str:
        lo = TIME_MIN_NS if start_us is None else start_us * 1000
        hi = TIME_MAX_NS if end_us is None else end_us * 1000
        return f"time >= {lo} AND time <= {hi}"

    def read_raw(
        self,
        subject: str,
        placement: str,
        *,
        start_us: int | None = None,
        end_us: int | None = None,
        session: str | None = None,
    ) -> RawSeries:
        where = f"subject = {quote_str(subject)} AND placement = {quote_str(placement)}"
        if session is not None:
            where += f" AND session = {quote_str(session)}"
        where += " AND " + self._time_clause(start_us, end_us)
        cols = ("seq", "t_sensor_us", "boot_epoch", "serial", "session", *RAW_FIELDS)
        parts: list[RawSeries] = []
        for rp in self._raw_rps(start_us, end_us):
            q = f"SELECT {', '.join(quote_ident(c) for c in cols)} FROM {self._from(rp, RAW)} WHERE {where}"
            csv = self.query_csv(q)
            if csv is not None:
                try:
                    parts.append(raw_series_from_csv(csv))
                    continue
                except ValueError as exc:  # pandas' parser errors too: a CSV layout this reader does not know
                    self._csv_supported = False
                    log.warning("%s: raw samples' CSV unreadable (%s): reading JSON", redact_url(self.base), exc)
            values: list[list[Any]] = []
            for series in self.query(q):
                values.extend(series.get("values", []))
            parts.append(raw_series_from_values(values))
        return parts[0] if len(parts) == 1 else raw_series_concat(parts)

    def _batch_where(self, subject: str, placement: str, serial: str, boot_epoch: int) -> str:
        return (
            f"subject = {quote_str(subject)} AND placement = {quote_str(placement)} AND serial = {quote_str(serial)}"
            f" AND boot_epoch = {int(boot_epoch)} AND {self._time_clause(None, None)}"
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
            q = (
                f"SELECT count(seq) AS n FROM {self._from(rp, RAW)} WHERE subject = {quote_str(subject)}"
                f" AND placement = {quote_str(placement)} AND serial = {quote_str(serial)} AND boot_epoch = "
                f"{int(boot_epoch)} AND seq >= {int(seq_first)} AND seq <= {int(seq_last)} "
                f"AND {self._time_clause(start, end)}"
            )
            rows = list(self.rows(q))
            total += int(rows[0]["n"]) if rows else 0
        return total

    def raw_sessions(
        self, start_us: int, end_us: int, *, subject: str | None = None, session: str | None = None
    ) -> list[RawSession]:
        """The range's batch-index rows (session is a field: InfluxQL cannot group by it), folded here."""
        where = self._time_clause(start_us, end_us)
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

    def _delete(
        self, rp: str, measurements: Sequence[str], tags: Mapping[str, str], start_us: int, end_us: int
    ) -> None:
        if self.config.api == "v2":
            from datetime import UTC, datetime, timedelta

            epoch = datetime(1970, 1, 1, tzinfo=UTC)
            start = epoch + timedelta(microseconds=start_us)
            stop = epoch + timedelta(microseconds=end_us + 1)
            tag_pred = " AND ".join(f'{k}="{v}"' for k, v in sorted(tags.items()))
            for m in measurements:
                predicate = f'_measurement="{m}" AND {tag_pred}'
                self._client.delete_api().delete(
                    start, stop, predicate, bucket=self.config.bucket(rp), org=self.config.org
                )
            return
        names = "|".join(measurements)
        where = " AND ".join(f"{quote_ident(k)} = {quote_str(v)}" for k, v in sorted(tags.items()))
        self.query(f"DELETE FROM /^({names})$/ WHERE {where} AND {self._time_clause(start_us, end_us)}")

    def _delete_results(self, subject: str, start_us: int, end_us: int, measurements: Sequence[str] = ANCHORED) -> None:
        """Delete a subject's results (of ``measurements``) in [start_us, end_us], never its anchor points."""
        pieces = [(start_us, end_us)]
        if start_us <= ANCHOR_US <= end_us:
            pieces = [(start_us, ANCHOR_US - 1), (ANCHOR_US + 1, end_us)]
        for lo, hi in pieces:
            if lo <= hi:
                self._delete(self.config.results_rp, measurements, {"subject": subject}, lo, hi)

    def _result_series(self, subject: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        """The subject's result series the index knows (measurement, sorted tags)."""
        names = "|".join(ANCHORED)
        q = (
            f"SHOW SERIES ON {quote_ident(self.config.database)} FROM /^({names})$/ "
            f"WHERE {quote_ident('subject')} = {quote_str(subject)}"
        )
        out = set()
        for row in self.rows(q):
            measurement, tags = parse_series_key(str(row["key"]))
            if measurement in ANCHORED and tags.get("subject") == subject:
                out.add((measurement, tuple(sorted(tags.items()))))
        return out

    def _anchor_lines(self, results: SessionResults) -> list[str]:
        """Anchor points for every result series of the subject: the stored ones and those about to be written."""
        from analytics.stores.model import Point

        series = {(p.measurement, tuple(sorted(p.tags))) for p in results.points}
        series |= self._result_series(results.subject)
        return [point_line(Point(m, tags, {ANCHOR_FIELD: True}, ANCHOR_US)) for m, tags in sorted(series)]

    def _stored_session(self, subject: str, session: str) -> list[dict[str, Any]]:
        q = (
            f"SELECT result_version, duration_s FROM {self._from(self.config.results_rp, SESSION_SUMMARY)} "
            f"WHERE subject = {quote_str(subject)} AND session = {quote_str(session)} AND "
            f"{self._time_clause(None, None)}"
        )
        return list(self.rows(q))

    def replace_results(self, results: SessionResults) -> WriteReport:
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

    def read_results(
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
        where += " AND " + self._time_clause(start_us, end_us)
        for m in LIVE_MEASUREMENTS if live else RESULT_MEASUREMENTS:
            q = f"SELECT * FROM {self._from(self.config.results_rp, m)} WHERE {where}"
            floats: set[str] | None = None
            for row in self.rows(q):
                if row.get(ANCHOR_FIELD) is True:
                    continue
                if floats is None:  # InfluxDB's JSON writes 4.0 as 4: restore float fields from their type
                    floats = self._float_fields(self.config.results_rp, m)
                t = int(row.pop("time"))
                tags = {k: str(row.pop(k)) for k in TAGS[m] if k in row}
                fields = {k: float(v) if k in floats and not isinstance(v, bool) else v for k, v in row.items()}
                out.append(ResultRow(m, t, tags, fields))
        out.sort(key=lambda r: (r.time_us, r.measurement, sorted(r.tags.items())))
        return out

    def _float_fields(self, rp: str, measurement: str) -> set[str]:
        rows = self.rows(f"SHOW FIELD KEYS FROM {self._from(rp, measurement)}")
        return {str(r["fieldKey"]) for r in rows if r.get("fieldType") == "float"}

    # ------------------------------------------------------------------------------------------ remap

    def remap_raw(self, subject: str, placement: str, serial: str, boot_epoch: int, clock: ClockMapping) -> int:
        """Move one boot epoch's sensor-time points to UTC with a synchronised mapping; returns samples moved.

        Writes the UTC points first, then deletes the boot epoch's sensor-time slot and writes back any other
        sensor's points that shared the slot (a swap within 4096 boots): a crash in between leaves both
        copies, never none, and the rerun is idempotent.
        """
        if not clock.utc_synced or clock.ref_utc_s is None:
            raise StoreConfigError("clock: remapping needs a synchronised mapping (utc_synced, ref_utc_s)")
        slot = sensor_slot_start_us(boot_epoch)
        series = self.read_raw(subject, placement, start_us=slot, end_us=slot + SENSOR_SLOT_US - 1)
        mine = [i for i in range(len(series)) if series.serial[i] == serial and int(series.boot_epoch[i]) == boot_epoch]
        others = [i for i in range(len(series)) if i not in set(mine)]
        if not mine:
            return 0
        from analytics.stores.model import samples_from_arrays

        sessions = {series.session[i] for i in mine}
        for sess in sessions:
            idx = [i for i in mine if series.session[i] == sess]
            self.write_raw(
                samples_from_arrays(
                    subject=subject,
                    session=sess,
                    placement=placement,
                    serial=serial,
                    boot_epoch=boot_epoch,
                    seq=series.seq[idx],
                    t_sensor_us=series.t_sensor_us[idx],
                    acc_mps2=series.acc_mps2[idx],
                    gyr_dps=series.gyr_dps[idx],
                    clock=clock,
                )
            )
        keep_lines = self._slot_lines(series, others, subject, placement)
        self._delete_raw_slot(subject, placement, slot)
        if keep_lines:
            self._write_lines(
                self.config.sensor_time_rp, keep_lines, f"raw subject={subject} placement={placement} (kept)"
            )
        return len(mine)

    def _delete_raw_slot(self, subject: str, placement: str, slot: int) -> None:
        self._delete(
            self.config.sensor_time_rp,
            (RAW,),
            {"subject": subject, "placement": placement},
            slot,
            slot + SENSOR_SLOT_US - 1,
        )

    @staticmethod
    def _slot_lines(series: RawSeries, idx: Sequence[int], subject: str, placement: str) -> list[str]:
        from analytics.stores.model import Point

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

    # ------------------------------------------------------------------------------------------ admin

    def retention_policies(self) -> dict[str, str]:
        """Retention policies of the database (1.x; 2.x answers through DBRP mappings): name -> duration."""
        out = {}
        for row in self.rows(f"SHOW RETENTION POLICIES ON {quote_ident(self.config.database)}"):
            out[str(row["name"])] = str(row["duration"])
        return out

    def with_config(self, **changes: Any) -> InfluxStore:
        return InfluxStore(replace(self.config, **changes), self.quarantine, self._sleep)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._http.clear()


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


def without_secret(exc: StoreError, secret: str) -> StoreError:
    """A copy of ``exc`` (same class) whose message no longer holds ``secret``, quoted or not."""
    message = str(exc)
    if secret:
        message = message.replace(quote_str(secret), "'***'").replace(secret, "***")
    return type(exc)(message)


def setup_v1(
    url: str,
    admin_user: str,
    admin_password: str,
    *,
    database: str = "gaitsym",
    raw_rp: str = "raw",
    raw_retention: str = "30d",
    sensor_time_rp: str = "raw_unsynced",
    results_rp: str = "results",
    worker_user: str | None = None,
    worker_password: str | None = None,
    timeout_s: float = 10.0,
) -> None:
    """Create the database, its retention policies and (optionally) the worker's user on InfluxDB 1.x.

    Idempotent: an existing policy is ALTERed to the requested duration. Needs an admin user (1.x grants
    CREATE RETENTION POLICY to admins only). 2.x: create buckets ``{database}/{raw_rp}`` with the raw
    retention, ``{database}/{sensor_time_rp}`` and ``{database}/{results_rp}`` with none instead
    (``influx bucket create``).
    """
    admin = InfluxStore(
        InfluxConfig(url=url, database=database, username=admin_user, password=admin_password, timeout_s=timeout_s),
        quarantine=_NoQuarantine(),
    )
    try:
        db = quote_ident(database)
        admin.query(f"CREATE DATABASE {db}")
        existing = admin.retention_policies()
        policies = ((raw_rp, raw_retention, ""), (sensor_time_rp, "INF", ""), (results_rp, "INF", " DEFAULT"))
        for rp, duration, default in policies:
            verb = "ALTER" if rp in existing else "CREATE"
            shard = " SHARD DURATION 1d" if duration != "INF" else ""
            admin.query(
                f"{verb} RETENTION POLICY {quote_ident(rp)} ON {db} DURATION {duration} REPLICATION 1{shard}{default}"
            )
        if worker_user:
            secret = worker_password or ""
            try:
                admin.query(f"CREATE USER {quote_ident(worker_user)} WITH PASSWORD {quote_str(secret)}")
            except StoreError as exc:
                if not (isinstance(exc, StoreQueryError) and "already exists" in str(exc)):
                    # the error quotes the statement, password included: never let it reach a log
                    raise without_secret(exc, secret) from None
            admin.query(f"GRANT ALL ON {db} TO {quote_ident(worker_user)}")
    finally:
        admin.close()


class _NoQuarantine(Quarantine):
    """Admin connections never write data: no quarantine file."""

    def __init__(self) -> None:
        pass

    def close(self) -> None:
        pass
