"""`gaitsym report --subject S [--session ID] [--store URL_or_path] --out report.html`: a clinician's session
report, one self-contained HTML page (print it on A4 or attach it to the record).

Light module: the store, the analysis code and the page builder are imported only when the command runs.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

from analytics.stores.location import add_store_argument


def _number_up_to(highest: float, not_a_number: str, out_of_range: str) -> Callable[[str], float]:
    """An argparse type: a finite number above 0 and at most ``highest``, else an error in the option's words."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} {not_a_number}") from None
        if not (math.isfinite(value) and 0 < value <= highest):
            raise argparse.ArgumentTypeError(f"{text!r}: {out_of_range}")
        return value

    return parse


_band = _number_up_to(100, "is not a number (%)", "the band is a percentage above 0 and at most 100")
_weeks = _number_up_to(520, "is not a number of weeks", "weeks above 0 and at most 520")


def report_command(args: argparse.Namespace) -> int:
    from report.build import write_report
    from report.errors import ReportError

    try:
        path = write_report(
            args.store,
            args.subject,
            args.out,
            session=args.session,
            band_pct=args.band,
            trend_weeks=args.trend_weeks,
        )
    except ReportError as exc:
        print(f"gaitsym report: {exc}", file=sys.stderr)
        return 2
    print(f"Session report written: {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`gaitsym report --subject S [--session ID] [--store URL] --out FILE [--band PCT --trend-weeks W]`."""
    p = sub.add_parser(
        "report",
        help="write a clinician's session report: one HTML page (left/right readings, trend, exercises, flags)",
    )
    p.add_argument("--subject", required=True, help="subject id")
    p.add_argument("--session", help="session id (default: the subject's latest session with final results)")
    add_store_argument(p)
    p.add_argument("--out", required=True, help="the HTML file to write (its folder must exist)")
    p.add_argument(
        "--band",
        type=_band,
        default=10.0,
        help="normal range of a symmetry index, +-%% (default 10: a common, arbitrary cut-off)",
    )
    p.add_argument(
        "--trend-weeks",
        type=_weeks,
        default=12.0,
        help="how many weeks before the session the trend shows (default 12)",
    )
    p.set_defaults(handler=report_command)
