"""`gaitsym export --subject S [--subject S2 ...] [--session ID] [--since DATE --until DATE] --format
csv|parquet|bids --out DIR [--with-serials] [--store URL_or_path]`: researchers' export of raw streams and
results. Light module: the store and pyarrow are imported only when the command runs."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from analytics.stores.location import add_store_argument

FORMAT_CHOICES = ("csv", "parquet", "bids")


def parse_when(text: str, what: str, end_of_day: bool = False) -> int:
    """A date (``2025-03-01``: the whole day, UTC) or an ISO date-time (UTC unless it names a zone) -> µs."""
    from export.errors import InvalidExportRequest

    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidExportRequest(f"{what} {text!r}: not a date (YYYY-MM-DD) or ISO date-time") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    us = round(when.timestamp() * 1e6)
    if end_of_day and len(text) == 10:
        us += 86_400_000_000 - 1
    return us


def export_command(args: argparse.Namespace) -> int:
    from analytics.stores import open_store
    from analytics.stores.errors import StoreError
    from analytics.stores.location import EmbeddedStoreMissing, existing_store
    from export.errors import ExportError, StoreNotFound
    from export.run import ExportRequest, run_export
    from gaitsym_common.redaction import redact_url

    try:
        request = ExportRequest(
            subjects=tuple(args.subject),
            fmt=args.format,
            out=Path(args.out),
            session=args.session,
            since_us=None if args.since is None else parse_when(args.since, "--since"),
            until_us=None if args.until is None else parse_when(args.until, "--until", end_of_day=True),
            with_serials=args.with_serials,
        )
        try:
            location = existing_store(args.store)
        except EmbeddedStoreMissing as exc:
            raise StoreNotFound(f"--store: {exc} (the export never creates one)") from exc
        store = open_store(location)
        try:
            outcome = run_export(store, request)
        finally:
            store.close()
    except ExportError as exc:
        print(f"gaitsym export: {redact_url(str(exc))}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"gaitsym export: store: {redact_url(str(exc))}", file=sys.stderr)
        return 2
    print(
        f"exported {outcome.samples:,} samples of {len(outcome.sessions)} session(s) as {args.format} to "
        f"{outcome.out} in {outcome.seconds:.1f} s (README.md says every column; manifest.json lists every file)"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`gaitsym export ...`."""
    p = sub.add_parser(
        "export",
        help="export raw streams and results for research: CSV, Parquet or Motion-BIDS",
        description="Export subjects' raw sensor streams exactly as stored (nothing interpolated; gaps listed), "
        "with gait events, strides, exercise sets and session summaries. Streamed in bounded memory; files are "
        "renamed into place when complete, manifest.json last.",
    )
    p.add_argument("--subject", action="append", required=True, help="subject id (repeat for several)")
    p.add_argument("--session", help="only this session")
    p.add_argument("--since", help="sessions starting from this date (YYYY-MM-DD, UTC) or ISO date-time")
    p.add_argument(
        "--until", help="sessions starting up to this date (the whole day) or ISO date-time; each exported whole"
    )
    p.add_argument("--format", required=True, choices=FORMAT_CHOICES, help="csv, parquet or bids (Motion-BIDS)")
    p.add_argument("--out", required=True, help="output folder: new, or empty (files owner-only)")
    p.add_argument("--with-serials", action="store_true", help="include the sensors' serial numbers")
    add_store_argument(p)
    p.set_defaults(handler=export_command)
