"""`gaitsym recording check DIR`: validate a recording folder and summarise what it holds."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from analytics.errors import RecordingError


def summarize(path: str) -> dict[str, Any]:
    from analytics.recording.io import read_recording

    rec = read_recording(path)
    sensors = {}
    for placement, data in rec.sensors.items():
        acc_norm = (data.acc_mps2**2).sum(axis=1) ** 0.5
        sensors[placement] = {
            "acc_norm_median_mps2": round(float(sorted(acc_norm)[len(acc_norm) // 2]), 3),
            "gyr_peak_dps": round(float(abs(data.gyr_dps).max()), 1),
        }
    sets = sorted({(m.exercise, m.side, m.set) for m in rec.markers})
    return {
        "path": path,
        "sampling_rate_hz": rec.sampling_rate_hz,
        "n_samples": rec.n_samples,
        "duration_s": round(rec.duration_s, 3),
        "placements": list(rec.sensors),
        "sensors": sensors,
        "subject": rec.subject,
        "task": rec.task,
        "exercise_sets": [{"exercise": e, "side": s, "set": n} for e, s, n in sets],
        "has_truth": _regular_file_in(Path(path), "truth.json"),
    }


def _regular_file_in(folder: Path, name: str) -> bool:
    """A regular file right in ``folder`` (a symbolic link, possibly to something outside, does not count)."""
    path = folder / name
    return not path.is_symlink() and path.is_file()


def check_command(args: argparse.Namespace) -> int:
    try:
        summary = summarize(args.recording_dir)
    except RecordingError as exc:
        print(f"gaitsym: invalid recording: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    print(f"{summary['path']}: valid recording/1")
    print(f"  {summary['n_samples']} samples at {summary['sampling_rate_hz']:g} Hz = {summary['duration_s']:.1f} s")
    for placement, info in summary["sensors"].items():
        print(
            f"  {placement:<12} |acc| median {info['acc_norm_median_mps2']:.2f} m/s^2, "
            f"gyro peak {info['gyr_peak_dps']:.0f} deg/s"
        )
    print(f"  exercise sets marked: {len(summary['exercise_sets'])}; truth.json: {summary['has_truth']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`gaitsym recording check DIR [--json]`."""
    recording = sub.add_parser("recording", help="check or summarise a recording folder")
    actions = recording.add_subparsers(dest="recording_command", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate a recording folder and summarise it")
    check.add_argument("recording_dir")
    check.add_argument("--json", action="store_true", help="print the summary as JSON")
    check.set_defaults(handler=check_command)
