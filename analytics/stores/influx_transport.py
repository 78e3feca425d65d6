"""HTTP to InfluxDB: the one module that imports influxdb-client (v2 writes and deletes); urllib3 for the rest.

Writes (line protocol, precision µs, gzip except v1 to a loopback host):
- ``api="v2"``: influxdb-client's synchronous write API on ``/api/v2/write`` (token auth; InfluxDB 1.8, 2.x,
  3.x), bucket ``{database}/{retention policy}`` (2.x maps such names to DBRP automatically, 1.8 reads them as
  database/retention policy), deletes through influxdb-client's delete API (``/api/v2/delete``).
- ``api="v1"``: ``POST /write?db=&rp=&precision=u`` (answered by 1.x, 2.x and 3.x; Debian's 1.6 has only this),
  user/password (HTTP Basic) or token auth; deletes with an InfluxQL ``DELETE``.
Reads: InfluxQL on ``/query`` (epoch=u, chunked), which 1.x, 2.x (read-only) and 3.x answer; Flux is not used.

Failures are sorted by `analytics.stores.errors.sort_write_error`: retried with backoff (honouring Retry-After; at
most ``refused_delay_s`` apart while the connection is refused, so writes resume within about a second of a
restarted server answering) for up to ``retry_for_s`` seconds, then `StoreUnavailable` (nothing acknowledged);
split on 413; quarantined on 400/422.
"""

from __future__ import annotations

import base64
import gzip
import logging
import random
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import urllib3

from analytics.stores.errors import (
    CONFIGURATION_MESSAGES,
    StoreQueryError,
    StoreUnavailable,
    WriteAction,
    WriteVerdict,
    connection_refused,
    retry_after_s,
    sort_write_error,
)
from analytics.stores.influx_codec import query_chunks, quote_ident, quote_str, time_clause
from analytics.stores.model import WriteReport
from analytics.stores.paths import state_dir
from analytics.stores.quarantine import Quarantine
from gaitsym_common.redaction import redact_url

log = logging.getLogger("gaitsym.stores")


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
    raw_layout: Literal["auto", "points", "packed"] = "auto"
    """How raw samples are written: ``points``, one point per sample (``raw``); ``packed``, one point per batch
    part (``raw_packed``, docs/raw-layout-packed.md); ``auto``, as the database's marker says (`influx_layout`:
    a clinic's workers switch together). Reads read both whatever the setting."""
    layout_recheck_s: float = 60.0
    """How often an ``auto`` store reads the database's raw layout marker again (s)."""
    batch_lines: int = 20_000
    """Lines per write request at most (about 5 MB of raw samples; influxd's ``max-body-size`` is 25 MB, and a 413
    splits a request in halves anyway). Every request costs the server its own parsing, authentication and WAL
    fsync, and the writer waits for each: a worker turn at 100 subjects (30,000 raw lines) goes in two."""
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


class RequestFailed(Exception):
    """What the server answered to one request that a retry loop sorts (never leaves this package)."""

    def __init__(self, status: int | None, message: str, retry_after: str | None = None, refused: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.refused = refused

    @classmethod
    def no_answer(cls, exc: BaseException) -> RequestFailed:
        """The request got no HTTP answer (refused, reset, timed out)."""
        return cls(None, f"{type(exc).__name__}: {exc}", refused=connection_refused(exc))


class InfluxTransport:
    """Requests to one InfluxDB server, and the retry rules around them."""

    def __init__(self, config: InfluxConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.sleep = sleep
        self.base = config.url.rstrip("/")
        host = urllib.parse.urlparse(self.base).hostname or ""
        loopback = host in ("localhost", "::1") or host.startswith("127.")
        self._gzip = config.gzip if config.gzip is not None else not loopback
        timeout = urllib3.Timeout(connect=min(5.0, config.timeout_s), read=config.timeout_s)
        self._http = urllib3.PoolManager(num_pools=2, maxsize=4, timeout=timeout, retries=False)
        self.csv_supported = True
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

    def _headers(self) -> dict[str, str]:
        c = self.config
        if c.token:
            return {"Authorization": f"Token {c.token}"}
        if c.username is not None:
            raw = f"{c.username}:{c.password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
        return {}

    # ------------------------------------------------------------------------------------------ one request

    def send(self, rp: str, lines: Sequence[str]) -> None:
        """One HTTP write of these lines; raises RequestFailed with what the server said."""
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
            raise RequestFailed.no_answer(exc) from exc
        if not 200 <= resp.status < 300:
            raise RequestFailed(resp.status, resp.data.decode("utf-8", "replace"), resp.headers.get("Retry-After"))

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
            raise RequestFailed(exc.status, message, headers.get("Retry-After")) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RequestFailed.no_answer(exc) from exc

    def _post_query(self, q: str, rp: str | None = None, csv: bool = False) -> urllib3.BaseHTTPResponse:
        """POST InfluxQL to /query (epoch=u, chunked); raises what urllib3 raises when there is no answer."""
        params = {"db": self.config.database, "epoch": "u", "q": q, "chunked": "true", "chunk_size": "20000"}
        if rp:
            params["rp"] = rp
        body = urllib.parse.urlencode(params).encode()
        headers = {**self._headers(), "Content-Type": "application/x-www-form-urlencoded"}
        if csv:
            headers["Accept"] = "application/csv"
        return self._http.request("POST", f"{self.base}/query", body=body, headers=headers)

    def query(self, q: str, rp: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL on /query (epoch=u, chunked); returns the series of every statement, in order."""
        try:
            resp = self._post_query(q, rp)
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
        for errors, found in query_chunks(text):
            if errors:
                raise StoreQueryError(f"query {q!r}: {errors[0]}")
            series.extend(found)
        return series

    def query_csv(self, q: str) -> bytes | None:
        """Run one InfluxQL statement on /query asking for CSV (``Accept: application/csv``, 1.x and 2.x's
        compatibility API; about a third of the JSON's parsing CPU for raw samples). None when the server
        answered in another format (the caller then uses `query`)."""
        if not self.csv_supported:
            return None
        try:
            resp = self._post_query(q, csv=True)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailable(f"query {q!r}: {type(exc).__name__}: {exc}") from exc
        if resp.status >= 500 or resp.status == 429:
            raise StoreUnavailable(f"query {q!r}: HTTP {resp.status} {resp.data[:300]!r}", status=resp.status)
        if resp.status != 200:
            return None  # the JSON query says what is wrong
        if "csv" not in (resp.headers.get("Content-Type") or ""):
            self.csv_supported = False
            log.info("%s answers /query without CSV: reading JSON", redact_url(self.base))
            return None
        data: bytes = resp.data
        if not data.strip() or data.startswith(b"error"):
            # 1.x's CSV writer drops a statement's error (a missing retention policy answers an empty 200):
            # an empty answer is asked again as JSON, which reports errors
            return None
        return data

    def _query_once(self, q: str) -> list[dict[str, Any]]:
        """One POST of InfluxQL on /query; the series of every statement. Raises RequestFailed when the server is
        away, busy, or not configured; StoreQueryError when it rejects the query itself."""
        try:
            resp = self._post_query(q)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RequestFailed.no_answer(exc) from exc
        text = resp.data.decode("utf-8", "replace")
        if resp.status != 200:
            if resp.status == 400 and not any(m in text.lower() for m in CONFIGURATION_MESSAGES):
                raise StoreQueryError(f"query {q[:300]!r}: HTTP 400 {text[:300]}")
            raise RequestFailed(resp.status, text[:300], resp.headers.get("Retry-After"))
        series: list[dict[str, Any]] = []
        for errors, found in query_chunks(text):
            if errors and any(m in errors[0].lower() for m in CONFIGURATION_MESSAGES):
                raise RequestFailed(404, errors[0])
            if errors:
                raise StoreQueryError(f"query {q[:300]!r}: {errors[0]}")
            series.extend(found)
        return series

    def delete(self, rp: str, measurements: Sequence[str], tags: Mapping[str, str], start_us: int, end_us: int) -> None:
        """Delete the points of ``measurements`` with these tags in [start_us, end_us]."""
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
        self.query(f"DELETE FROM /^({names})$/ WHERE {where} AND {time_clause(start_us, end_us)}")

    # ------------------------------------------------------------------------------------------ retried

    def write_lines(
        self, rp: str, lines: list[str], what: str, quarantine: Quarantine | None, subject: str | None = None
    ) -> WriteReport:
        """`write_chunk` per ``batch_lines`` lines."""
        report = WriteReport()
        size = max(1, self.config.batch_lines)
        for i in range(0, len(lines), size):
            self.write_chunk(rp, lines[i : i + size], what, report, quarantine, subject)
        return report

    def write_chunk(
        self,
        rp: str,
        lines: list[str],
        what: str,
        report: WriteReport,
        quarantine: Quarantine | None,
        subject: str | None = None,
    ) -> None:
        """Write lines until the server took them all (split on 413), or those it refused as bad data are in
        ``quarantine`` (when given, charged to ``subject``; always named in ``report.quarantined``);
        StoreUnavailable past the deadline."""
        deadline = time.monotonic() + self.config.retry_for_s
        attempt = 0
        while True:
            attempt += 1
            report.requests += 1
            try:
                self.send(rp, lines)
            except RequestFailed as fail:
                verdict = self._verdict(fail, attempt, len(lines))
                if verdict.action is WriteAction.SPLIT:
                    report.splits += 1
                    half = len(lines) // 2
                    self.write_chunk(rp, lines[:half], what, report, quarantine, subject)
                    self.write_chunk(rp, lines[half:], what, report, quarantine, subject)
                    return
                if verdict.action is WriteAction.QUARANTINE:
                    if quarantine is not None:
                        quarantine.put(what, fail.status, verdict.reason, fail.message, lines, subject)
                    report.quarantined.append(what)
                    return
                self._wait_or_give_up(f"writing {what}", fail, verdict, attempt, deadline)
                report.retries += 1
                continue
            report.points_written += len(lines)
            return

    def select(self, q: str, doing: str, report: WriteReport) -> list[dict[str, Any]]:
        """A read that a write depends on: retried like a write (refused, 429/5xx with Retry-After, credentials
        or configuration) until ``retry_for_s``, then StoreUnavailable; a statement error is StoreQueryError."""
        deadline = time.monotonic() + self.config.retry_for_s
        attempt = 0
        while True:
            attempt += 1
            report.requests += 1
            try:
                return self._query_once(q)
            except RequestFailed as fail:
                verdict = self._verdict(fail, attempt, 1)
                if verdict.action is not WriteAction.RETRY:  # the query itself refused: asking again cannot help
                    raise StoreQueryError(f"{doing}: HTTP {fail.status} {fail.message.strip()[:300]}") from fail
                self._wait_or_give_up(doing, fail, verdict, attempt, deadline)
                report.retries += 1

    def _verdict(self, fail: RequestFailed, attempt: int, n_lines: int) -> WriteVerdict:
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
        self, doing: str, fail: RequestFailed, verdict: WriteVerdict, attempt: int, deadline: float
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
        self.sleep(delay)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._http.clear()
