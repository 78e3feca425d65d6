"""A small local HTTP stand-in for what the real InfluxDB 1.6 cannot do here (tests only).

- InfluxDB 2.x's v2 API: it checks what influxdb-client sends (``/api/v2/write`` with org, bucket
  ``db/rp``, ``precision=us``, ``Authorization: Token ...``, gzip body; ``/api/v2/delete`` with a predicate)
  and FORWARDS it to the real 1.6 server (``/write``, or an InfluxQL ``DELETE`` on ``/query``), so what the
  v2 client writes is proven to land and be queryable. ``/query`` with a token is forwarded too (2.x answers
  InfluxQL on /query; it forwards /query without the Accept header, so the store reads JSON through it, as
  from a server without CSV answers).
- Server answers 1.6 never gives on demand (429/503 with Retry-After): ``script`` holds (status, headers,
  body) answered to the next write requests, before forwarding resumes.
Every request is recorded in ``requests`` (method, path, query, headers, decoded body).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class StandIn:
    upstream: str
    """Base URL of the real InfluxDB 1.6."""
    user: str
    password: str
    token: str = "test-token"
    org: str = "gaitsym-org"
    script: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """What the stand-in found wrong in a request (the tests assert it stays empty)."""

    def __post_init__(self) -> None:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                standin._handle(self)

            def do_POST(self) -> None:
                standin._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------------------------------ handling

    def _upstream(self, path: str, params: dict[str, str], body: bytes, content_type: str) -> tuple[int, bytes]:
        auth = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req = urllib.request.Request(
            f"{self.upstream}{path}?{urllib.parse.urlencode(params)}",
            data=body,
            headers={"Authorization": f"Basic {auth}", "Content-Type": content_type},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def _answer(
        self, h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlparse(h.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        raw = h.rfile.read(int(h.headers.get("Content-Length", "0") or 0))
        headers = {k.lower(): v for k, v in h.headers.items()}
        body = gzip.decompress(raw) if headers.get("content-encoding") == "gzip" else raw
        self.requests.append(Seen(h.command, parsed.path, query, headers, body))
        if parsed.path in ("/write", "/api/v2/write") and self.script:
            status, extra, answer = self.script.pop(0)
            self._answer(h, status, answer, extra)
            return
        if parsed.path == "/api/v2/write":
            self._check_v2(headers, query, need_precision=True)
            if headers.get("content-encoding") != "gzip":
                self.problems.append("v2 write body not gzip-compressed")
            db, _, rp = query.get("bucket", "").partition("/")
            status, answer = self._upstream("/write", {"db": db, "rp": rp, "precision": "u"}, body, "text/plain")
            self._answer(h, status, answer)
        elif parsed.path == "/api/v2/delete":
            self._check_v2(headers, query, need_precision=False)
            status, answer = self._delete(query, json.loads(body))
            self._answer(h, status, answer)
        elif parsed.path == "/query":
            if headers.get("authorization") != f"Token {self.token}":
                self.problems.append(f"query without the token: {headers.get('authorization')!r}")
            params = dict(urllib.parse.parse_qsl(body.decode())) if body else {}
            params.update(query)
            form = urllib.parse.urlencode(params).encode()
            status, answer = self._upstream("/query", {}, form, "application/x-www-form-urlencoded")
            self._answer(h, status, answer)
        elif parsed.path == "/write":
            status, answer = self._upstream("/write", query, body, "text/plain")
            self._answer(h, status, answer)
        else:
            self._answer(h, 404, b'{"code":"not found"}')

    def _check_v2(self, headers: dict[str, str], query: dict[str, str], need_precision: bool) -> None:
        if headers.get("authorization") != f"Token {self.token}":
            self.problems.append(f"authorization header {headers.get('authorization')!r}")
        if query.get("org") != self.org:
            self.problems.append(f"org {query.get('org')!r}")
        if "/" not in query.get("bucket", ""):
            self.problems.append(f"bucket {query.get('bucket')!r} is not database/retention-policy")
        if need_precision and query.get("precision") != "us":
            self.problems.append(f"precision {query.get('precision')!r}")

    def _delete(self, query: dict[str, str], doc: dict[str, str]) -> tuple[int, bytes]:
        """/api/v2/delete -> InfluxQL DELETE on the real server (equality predicates joined by AND)."""
        db, _, _rp = query["bucket"].partition("/")
        terms = [t.strip() for t in doc["predicate"].split(" AND ")]
        measurement = None
        where = []
        for term in terms:
            m = re.fullmatch(r'(\w+)\s*=\s*"([^"]*)"', term)
            if not m:
                self.problems.append(f"delete predicate term {term!r}")
                return 400, b'{"message":"bad predicate"}'
            if m.group(1) == "_measurement":
                measurement = m.group(2)
            else:
                where.append(f"\"{m.group(1)}\" = '{m.group(2)}'")

        def ns(text: str) -> int:
            # exact integer µs: a float timestamp() of a pre-1970 sensor-time instant (year 1827) loses the last µs
            t = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return (t - EPOCH) // timedelta(microseconds=1) * 1000

        clause = " AND ".join([*where, f"time >= {ns(doc['start'])}", f"time < {ns(doc['stop'])}"])
        q = f'DELETE FROM "{measurement}" WHERE {clause}'
        status, answer = self._upstream(
            "/query", {"db": db}, urllib.parse.urlencode({"q": q}).encode(), "application/x-www-form-urlencoded"
        )
        return (204, b"") if status == 200 and b'"error"' not in answer else (500, answer)
