"""The dataset-level files of a Motion-BIDS export: ``dataset_description.json``, ``README.md``, ``participants.tsv``
(labels and the original subject ids) with its sidecar, each subject's ``sessions.tsv`` (labels and original
session ids), the events' column descriptions, and the derivatives folder's own description."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from export.columns import Column
from export.files import write_text
from export.labels import HASH_DIGITS
from export.plan import iso
from export.raw_stream import SensorSummary
from export.readme import COMMON
from export.tables import arrow_table
from export.tsv import write_tsv

if TYPE_CHECKING:
    from export.session import SessionContext

PARTICIPANTS = (Column("participant_id", "text", "", ""), Column("original_id", "text", "", ""))
SESSIONS = tuple(Column(n, "text", "", "") for n in ("session_id", "acq_time", "original_session_id"))
GENERATED_BY = [{"Name": "gaitsym", "Description": "gaitsym export --format bids"}]

EVENTS_SIDECAR = {
    "onset": {"Description": "seconds from the session's first exported sample (the earliest acq_time of the "
              "session's motion files in scans.tsv)", "Units": "s"},
    "duration": {"Description": "0 for a contact; the set's length for an exercise set", "Units": "s"},
    "trial_type": {
        "Description": "what happened",
        "Levels": {
            "initial_contact": "initial contact (heel strike) of the side's foot: a stored stride's start",
            "final_contact": "final contact (toe off) of the side's foot: stride start + stance time",
            "exercise_set": "an exercise set of the session (the study's gluteal control exercises)",
        },
    },
    "side": {"Description": "the stance (working) leg: left, right, or none for a bilateral exercise"},
    "exercise": {"Description": "the exercise (gaitsym.exercises/1 vocabulary) of an exercise set"},
    "set": {"Description": "the set's number within the session"},
    "stride_included": {"Description": "the stride passed gaitsym's plausibility rules (true/false)"},
}  # fmt: skip

BIDS_README = (
    """# gaitsym export (Motion-BIDS)
"""
    + COMMON
    + f"""
## Layout

- `sub-<label>/ses-<label>/motion/`: per sensor `..._tracksys-imu<placement>_motion.tsv` (no header row;
  ACCEL x y z in m/s², GYRO x y z in deg/s, then LATENCY: seconds from the file's first sample, its `acq_time` in
  `scans.tsv`), `_channels.tsv`, `_motion.json`; the session's `_events.tsv`. A gap is as many `n/a` rows as
  samples are missing, at the nominal period. Samples never mapped to UTC are left out (counted in manifest.json).
- Labels: an id made of ASCII letters and digits is its own label; any other keeps its letters and digits plus `x`
  and the first {HASH_DIGITS} hex digits of the SHA-256 of the id. `participants.tsv` and
  `sub-<label>/sub-<label>_sessions.tsv` hold the original ids.
- `derivatives/gaitsym/`: per session the batches (clock mappings, the sensors' declared rate, ranges, firmware),
  the gaps with their reasons, events with provenance, strides, exercise sets and session summaries (TSV, `n/a`
  for a value that does not exist).
"""
)


@dataclass
class Recording:
    tracksys: str
    path: Path
    placements: tuple[str, ...]
    first_us: int
    last_us: int
    rows: int
    summaries: tuple[SensorSummary, ...]


def dataset_files(
    out: Path,
    sessions: Sequence[tuple[SessionContext, list[Recording]]],
    subject_labels: dict[str, str],
    with_serials: bool,
) -> list[Path]:
    files: list[Path] = []
    description = {
        "Name": "gaitsym home sessions (raw IMU streams)",
        "BIDSVersion": "1.10.0",
        "DatasetType": "raw",
        "GeneratedBy": GENERATED_BY,
    }
    files.append(out / "dataset_description.json")
    write_text(files[-1], json.dumps(description, indent=1) + "\n")
    files.append(out / "README.md")
    write_text(files[-1], BIDS_README)
    files.append(out / ".bidsignore")  # the export's own manifest is not a BIDS file
    write_text(files[-1], "manifest.json\n")
    participants = [{"participant_id": f"sub-{lab}", "original_id": s} for s, lab in subject_labels.items()]
    files.append(out / "participants.tsv")
    write_tsv(files[-1], arrow_table(participants, PARTICIPANTS))
    files.append(out / "participants.json")
    write_text(
        files[-1],
        json.dumps({"original_id": {"Description": "the subject id as gaitsym stores it"}}, indent=1) + "\n",
    )
    files.append(out / "task-home_events.json")
    write_text(files[-1], json.dumps(EVENTS_SIDECAR, indent=1) + "\n")
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for ctx, recordings in sessions:
        first = min((r.first_us for r in recordings), default=ctx.start_us)
        by_subject.setdefault(ctx.subject_label, []).append(
            {"session_id": f"ses-{ctx.session_label}", "acq_time": iso(first), "original_session_id": ctx.plan.session}
        )
    for sub, rows in by_subject.items():
        files.append(out / f"sub-{sub}" / f"sub-{sub}_sessions.tsv")
        write_tsv(files[-1], arrow_table(rows, SESSIONS))
        files.append(out / f"sub-{sub}" / f"sub-{sub}_sessions.json")
        write_text(
            files[-1],
            json.dumps({"original_session_id": {"Description": "the session id as gaitsym stores it"}}, indent=1)
            + "\n",
        )
    derived = {**description, "Name": "gaitsym results and stream bookkeeping", "DatasetType": "derivative"}
    files.append(out / "derivatives" / "gaitsym" / "dataset_description.json")
    write_text(files[-1], json.dumps(derived, indent=1) + "\n")
    return files
