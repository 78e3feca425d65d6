"""`gaitsym results --subject S [--session ID] [--store URL_or_path] [--json]`: a subject's stored results.

Prints strides (stance time s, pelvic drop deg per side), exercise sets and session summaries as a table,
or every stored field as JSON. Light module: the store is opened only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from analytics.stores.errors import StoreError
from analytics.stores.location import add_store_argument
from gaitsym_common.redaction import redact_url


def _when(time_us: int) -> str:
    if time_us < 0:
        return f"sensor {time_us}"
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=time_us)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def results_command(args: argparse.Namespace) -> int:
    from analytics.stores import open_store

    try:
        store = open_store(args.store)
        try:
            rows = store.read_results(args.subject, session=args.session)
        finally:
            store.close()
    except StoreError as exc:
        print(f"gaitsym: store: {redact_url(exc)}", file=sys.stderr)
        return 2
    if args.json:
        doc = [{"measurement": r.measurement, "time_us": r.time_us, **r.tags, **r.fields} for r in rows]
        print(json.dumps(doc, indent=1))
        return 0
    if not rows:
        print(f"no results for subject {args.subject}" + (f" session {args.session}" if args.session else ""))
        return 0
    header = f"{'time (UTC)':<23} {'what':<16} {'side':<6} {'exercise':<20} {'session':<10} {'ver':>3}  values"
    print(header)
    print("-" * len(header))
    for r in rows:
        f = r.fields
        if r.measurement == "stride":
            values = f"stance {_fmt(f.get('stance_time_s'), 3)} s, drop {_fmt(f.get('pelvic_drop_deg'))} deg" + (
                "" if f.get("included", True) else " (excluded)"
            )
        elif r.measurement == "exercise_set":
            metrics = ", ".join(
                f"{k} {_fmt(v)}" for k, v in sorted(f.items()) if k.endswith(("_deg", "_pct")) and k != "clock"
            )
            values = f"set {f.get('set')}, reps {_fmt(f.get('reps'))}" + (f", {metrics}" if metrics else "")
        elif r.tags.get("side") == "none":
            values = (
                f"stance SI {_fmt(f.get('stance_si_pct'))} %, ratio {_fmt(f.get('stance_ratio'), 3)}, "
                f"drop L-R {_fmt(f.get('pelvic_drop_deg_diff'))} deg"
            )
        else:
            values = (
                f"n {f.get('n_strides')}, stance {_fmt(f.get('stance_time_s'), 3)} s, "
                f"drop {_fmt(f.get('pelvic_drop_deg'))} deg"
            )
        print(
            f"{_when(r.time_us):<23} {r.measurement:<16} {r.tags.get('side', ''):<6} {r.tags.get('exercise', ''):<20} "
            f"{f.get('session', '')!s:<10} {_fmt(f.get('result_version')):>3}  {values}"
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`gaitsym results --subject S [--session ID] [--store URL_or_path] [--json]`."""
    p = sub.add_parser("results", help="print a subject's stored results (strides, exercise sets, summaries)")
    p.add_argument("--subject", required=True, help="subject id")
    p.add_argument("--session", help="only this session")
    add_store_argument(p)
    p.add_argument("--json", action="store_true", help="print every stored field as JSON")
    p.set_defaults(handler=results_command)
