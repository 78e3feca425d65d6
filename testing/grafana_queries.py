"""Run a dashboard's InfluxQL the way Grafana 11 does, without Grafana: variables substituted as its InfluxDB data
source substitutes them, then ``$timeFilter`` and ``$__interval`` as its backend does, sent to InfluxDB's /query
(POST, ``epoch=ms``) as the provisioned data source's user.

Substitution, as Grafana 11.6's code does it (public/app/plugins/datasource/influxdb/datasource.ts
``interpolateQueryExpr`` and pkg/tsdb/influxdb/models/query.go ``Build``):
- a number is written as is; a multi-value or "include all" variable: each value regex-escaped, several joined as
  ``(a|b)``; "All" with a custom all value: that value, unescaped; a single value: as is, but regex-escaped where
  the query uses it inside ``=~ /.../`` or ``!~ /.../``; annotation queries regex-escape every value;
- ``${__from}``, ``${__to}``: the range's ends in ms;
- ``$timeFilter`` -> ``time >= {from}ms and time <= {to}ms``; ``$__interval`` (and ``$interval``) -> the range over
  the panel's max data points, rounded as Grafana rounds it, never below the panel's (or data source's) minimum.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

ALL = "$__all"
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")
_ROUND_MS = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000), (3500, 2000), (7500, 5000),
    (12500, 10000), (17500, 15000), (25000, 20000), (45000, 30000), (90000, 60000), (210000, 120000),
    (450000, 300000), (750000, 600000), (1050000, 900000), (1500000, 1200000), (2700000, 1800000),
    (5400000, 3600000), (9000000, 7200000), (16200000, 10800000), (32400000, 21600000), (86400000, 43200000),
    (604800000, 86400000), (1814400000, 604800000), (3628800000, 2592000000),
)  # fmt: skip
"""Grafana's roundInterval: below the first figure (ms), the second."""
_UNITS_MS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))


@dataclass(frozen=True)
class Variable:
    """A dashboard variable's current value(s) and how it is declared."""

    value: str | tuple[str, ...]
    multi: bool = False
    include_all: bool = False
    all_value: str | None = None


def escape_regex(value: str) -> str:
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def round_interval_ms(ms: float) -> int:
    for below, rounded in _ROUND_MS:
        if ms < below:
            return rounded
    return 31_536_000_000


def format_interval(ms: int) -> str:
    for unit, size in _UNITS_MS:
        if ms >= size:
            return f"{ms // size}{unit}"
    return "1ms"


def parse_interval_ms(text: str) -> int:
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|w)", text)
    if not match:
        raise ValueError(f"interval {text!r} is not a Grafana interval such as 10ms, 1s or 1d")
    size = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}[match.group(2)]
    return int(match.group(1)) * size


def interval_ms(from_ms: int, to_ms: int, max_data_points: int, min_interval_ms: int) -> int:
    return max(min_interval_ms, round_interval_ms((to_ms - from_ms) / max_data_points))


def _in_regex(query: str, start: int) -> bool:
    """Whether position ``start`` is inside a ``=~ /.../`` or ``!~ /.../`` literal."""
    return any(match.start() <= start < match.end() for match in re.finditer(r"[=!]~\s*/(?:\\.|[^/\\])*/", query))


def _value(var: Variable, in_regex: bool, annotation: bool) -> str:
    values = (var.value,) if isinstance(var.value, str) else var.value
    if values == (ALL,) and var.all_value is not None:
        return var.all_value
    if len(values) == 1 and re.fullmatch(r"-?\d+(\.\d+)?", values[0]):
        return values[0]
    if var.multi or var.include_all:
        escaped = [escape_regex(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    return escape_regex(values[0]) if (in_regex or annotation) else values[0]


def substitute(
    query: str,
    variables: Mapping[str, Variable],
    *,
    from_ms: int,
    to_ms: int,
    max_data_points: int = 1000,
    min_interval: str = "10ms",
    annotation: bool = False,
) -> str:
    """The query text InfluxDB receives from Grafana for this dashboard state (see the module's rules)."""
    pattern = re.compile(r"\$\{(\w+)\}|\$(\w+)")

    def frontend(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in ("__from", "__to"):
            return str(from_ms if name == "__from" else to_ms)
        if name in ("timeFilter", "interval", "__interval", "__interval_ms") or name not in variables:
            return match.group(0)
        return _value(variables[name], _in_regex(query, match.start()), annotation)

    text = pattern.sub(frontend, query)
    step = interval_ms(from_ms, to_ms, max_data_points, parse_interval_ms(min_interval))
    text = text.replace("$timeFilter", f"time >= {from_ms}ms and time <= {to_ms}ms")
    text = text.replace("$interval", format_interval(step))
    text = text.replace("$__interval_ms", str(step)).replace("$__interval", format_interval(step))
    left = re.findall(r"\$\{?\w+", text)
    if left:
        raise ValueError(f"variables left unsubstituted: {sorted(set(left))} in {text[:200]}")
    return text


class GrafanaInflux:
    """InfluxDB's /query, asked as Grafana's InfluxQL data source asks it (POST form, db, epoch=ms, user/password)."""

    def __init__(self, url: str, database: str, user: str, password: str, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.user = user
        self.password = password
        self.timeout_s = timeout_s

    def answer(self, query: str) -> bytes:
        """The server's whole answer to the query, unparsed; raises QueryFailed on an HTTP error.

        As Grafana's backend sends it (pkg/tsdb/influxdb/influxql/influxql.go ``createRequest``, httpMode POST):
        ``q`` in the form body, ``db`` and ``epoch=ms`` in the URL, the user by HTTP basic authentication."""
        params = urllib.parse.urlencode({"db": self.database, "epoch": "ms"})
        credentials = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        request = urllib.request.Request(
            f"{self.url}/query?{params}",
            data=urllib.parse.urlencode({"q": query}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {credentials}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                body: bytes = resp.read()
        except urllib.error.HTTPError as exc:
            raise QueryFailed(f"HTTP {exc.code}: {exc.read()[:300]!r} for {query[:300]}") from None
        return body

    def run(self, query: str) -> list[dict[str, Any]]:
        """The series of the query's one statement; raises QueryFailed with the server's error."""
        doc = json.loads(self.answer(query))
        results = doc.get("results", [])
        if doc.get("error") or any("error" in r for r in results):
            raise QueryFailed(f"{doc.get('error') or [r.get('error') for r in results]} for {query[:300]}")
        if len(results) != 1:
            raise QueryFailed(f"{len(results)} statements answered, expected 1: {query[:300]}")
        series: list[dict[str, Any]] = results[0].get("series", [])
        return series


class QueryFailed(Exception):
    """InfluxDB refused a dashboard query."""


def rows(series: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Each row as a dict (columns -> values, nulls kept), the series' tags merged in."""
    for s in series:
        for values in s.get("values", []):
            row = dict(s.get("tags") or {})
            row.update(zip(s["columns"], values, strict=True))
            yield row


@dataclass(frozen=True)
class DashboardQuery:
    """A query found in a dashboard's JSON: a panel target, a variable or an annotation."""

    where: str
    query: str
    max_data_points: int
    min_interval: str
    annotation: bool = False


def dashboard_queries(doc: Mapping[str, Any], default_min_interval: str = "10ms") -> Iterator[DashboardQuery]:
    """Every InfluxQL query of a dashboard JSON: panel targets, query variables, annotations."""
    title = str(doc.get("title"))
    for panel in doc.get("panels", []):
        for target in panel.get("targets", []):
            yield DashboardQuery(
                f"{title} / {panel.get('title')} / {target.get('refId')}",
                str(target["query"]),
                int(panel.get("maxDataPoints") or 1000),
                str(panel.get("interval") or default_min_interval),
            )
    for var in doc.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            yield DashboardQuery(f"{title} / variable {var['name']}", str(var["query"]), 1000, default_min_interval)
    for ann in doc.get("annotations", {}).get("list", []):
        if "query" in ann:
            yield DashboardQuery(
                f"{title} / annotation {ann['name']}", str(ann["query"]), 1000, default_min_interval, annotation=True
            )
