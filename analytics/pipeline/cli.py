"""`gaitsym analyze RECORDING_DIR [--json]`: analyse a recording; print a summary or the result document."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _fmt(value: Any, unit: str = "", digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def render(doc: dict[str, Any]) -> str:
    """A readable summary of a gaitsym.result/1 document."""
    rec, gait, quality = doc["recording"], doc["gait"], doc["quality"]
    s = gait["summary"]
    stance = s["asymmetry"]["stance_time_s"]
    drop = s["pelvic_drop_deg"]
    ci = stance.get("si_ci95_pct")
    sources = sorted({b.get("source", "?") for b in gait["bouts"]})
    lines = [
        f"recording: {rec['duration_s']:.1f} s at {rec['sampling_rate_hz']:g} Hz, sensors: "
        + ", ".join(rec["placements"]),
        f"walking: {len(gait['bouts'])} bouts (events from {', '.join(sources) or 'none'}), "
        f"{len(gait['strides'])} strides, included left {s['n_strides']['left']} / right {s['n_strides']['right']}",
        f"stance time   left {_fmt(s['stance_time_s']['left'], ' s')}   "
        f"right {_fmt(s['stance_time_s']['right'], ' s')}",
        f"stance SI     {_fmt(s['stance_si_pct'], ' %', 1)}"
        + (f"  (95% CI {ci[0]:.1f} .. {ci[1]:.1f} %)" if ci else "")
        + f"   ratio {_fmt(s.get('stance_ratio'))}   GA {_fmt(s['stance_ga_pct'], ' %', 1)}",
        f"pelvic drop   left stance {_fmt(drop['left'], ' deg', 1)}   right stance {_fmt(drop['right'], ' deg', 1)}"
        "   (relative to quiet standing)",
    ]
    if quality.get("withheld"):
        lines.append("withheld: " + ", ".join(quality["withheld"]))
    lines.append("flags:")
    for flag in quality["flags"]:
        where = f" [{flag['placement']}]" if "placement" in flag else ""
        span = f" {flag['start_s']:.2f}-{flag['end_s']:.2f} s" if "start_s" in flag else ""
        lines.append(f"  {flag['severity']:<8} {flag['code']}{where}{span}: {flag['message']}")
    return "\n".join(lines)


def analyze_command(args: argparse.Namespace) -> int:
    from analytics.errors import AnalyticsError
    from analytics.pipeline.analyze import analyze_recording
    from analytics.recording.io import read_recording
    from analytics.results import validate_result

    try:
        doc = analyze_recording(read_recording(args.recording_dir))
        validate_result(doc)
    except AnalyticsError as exc:
        print(f"gaitsym: cannot analyse {args.recording_dir}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(render(doc))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`gaitsym analyze RECORDING_DIR [--json]`."""
    parser = sub.add_parser("analyze", help="analyse a recording: gait events, stance asymmetry, pelvic drop")
    parser.add_argument("recording_dir")
    parser.add_argument("--json", action="store_true", help="print the gaitsym.result/1 document")
    parser.set_defaults(handler=analyze_command)
