"""Checking a Motion-BIDS export: the official validator (PyPI ``bids-validator-deno``, offline, every row), and what
it does not catch (FIELD_NOTES section 7): a header row in ``_motion.tsv``, a missing ``_channels.tsv``, a
channel type that is not a motion one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MOTION_TYPES = {
    "ACCEL", "ANGACCEL", "GYRO", "JNTANG", "LATENCY", "MAGN", "MISC", "ORNT", "POS", "VEL",
}  # fmt: skip
"""Channel types of Motion-BIDS (the schema's `type` column for the motion datatype)."""
CHANNEL_COLUMNS = ["name", "component", "type", "tracked_point", "units"]


@dataclass
class ValidatorReport:
    exit_code: int
    errors: list[dict[str, Any]]
    warnings: list[dict[str, Any]]


def validator_path() -> str:
    """The validator installed in the virtualenv beside this Python (``make test`` installs it)."""
    beside = Path(sys.executable).parent / "bids-validator-deno"
    found = str(beside) if beside.exists() else shutil.which("bids-validator-deno")
    if not found:
        raise AssertionError("bids-validator-deno is not installed (pip install bids-validator-deno)")
    return found


def validate(dataset: Path) -> ValidatorReport:
    done = subprocess.run(
        [validator_path(), str(dataset), "--format", "json", "--max-rows", "-1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    doc = json.loads(done.stdout)
    issues = doc["issues"]["issues"]
    errors = [i for i in issues if i.get("severity") == "error"]
    return ValidatorReport(done.returncode, errors, [i for i in issues if i.get("severity") == "warning"])


def motion_files(dataset: Path, placement: str | None = None) -> list[Path]:
    files = sorted(dataset.glob("sub-*/ses-*/motion/*_motion.tsv"))
    if placement is not None:
        point = placement.replace("_", "")
        files = [f for f in files if f"tracksys-imu{point}_" in f.name]
    return files


def check_beyond_validator(dataset: Path) -> list[str]:
    """What the validator does not catch, as a list of problems (empty: none)."""
    problems = []
    for motion in motion_files(dataset):
        channels_path = motion.with_name(motion.name.replace("_motion.tsv", "_channels.tsv"))
        if not channels_path.exists():
            problems.append(f"{motion.name}: no _channels.tsv")
            continue
        lines = channels_path.read_text().splitlines()
        header, rows = lines[0].split("\t"), [line.split("\t") for line in lines[1:]]
        if header[:5] != CHANNEL_COLUMNS:
            problems.append(f"{channels_path.name}: columns {header}")
        types = {row[header.index("type")] for row in rows}
        if not types <= MOTION_TYPES:
            problems.append(f"{channels_path.name}: non-motion channel types {sorted(types - MOTION_TYPES)}")
        with motion.open() as f:
            first = f.readline().rstrip("\n").split("\t")
        if len(first) != len(rows):
            problems.append(f"{motion.name}: {len(first)} columns, {len(rows)} channels")
        for cell in first:
            if cell != "n/a":
                try:
                    float(cell)
                except ValueError:
                    problems.append(f"{motion.name}: first row is a header ({cell!r} is not a number)")
                    break
    return problems
