"""The README written into every export: what each file holds, every column and its unit, how gaps, times and
labels work, and what the export leaves out. Built from `export.columns`, so it cannot drift from the files."""

from __future__ import annotations

from export.columns import (
    BATCHES,
    EVENTS,
    GAPS,
    MSG_ID,
    PLACEMENT,
    PROVENANCE,
    RAW,
    RESULT_TABLES,
    SERIAL,
    SESSION_ID,
    SESSIONS_INDEX,
    SUBJECT_ID,
    SUBJECTS_INDEX,
    table_doc,
)
from export.labels import HASH_DIGITS

COMMON = f"""
## What this is

Raw sensor streams of gaitsym home sessions (three IMUs: pelvis, left thigh, right thigh), exactly as the sensors
sent them and the gaitsym worker stored them, with the gait events and results computed from them. Exported by
`gaitsym export`; `manifest.json` (written last: an export without it is incomplete) lists the request, every
session with its sample, gap and rate counts, and every file.

- **Nothing is interpolated, resampled, filtered or filled.** Samples lost on the way (Bluetooth, a gateway
  outage, a refused write) are listed in the gaps table where they are, with the reason recorded; a hole in the
  sequence numbers that no recorded gap explains is listed as `not_recorded`; a sensor restart (new boot epoch)
  as `sensor_restart`.
- **Times**: each sample keeps its sensor timestamp (`t_sensor_us`) and sequence number (`seq`); `time_utc_us`
  is the UTC time the gateway's clock mapping (drift-corrected linear fit, per batch: see the batches table)
  gave it. Sensors are not synchronised with each other: each stream has its own timeline; align by
  `time_utc_us`, never by row number.
- **Values** are float64 exactly as stored (acc m/s² with gravity, gyr deg/s), converted once from the sensor's
  int16 counts with its declared range.
- **Labels**: folder and file names use labels (ASCII letters and digits). An id that already is one is its own
  label; any other keeps its letters and digits plus `x` and the first {HASH_DIGITS} hex digits of the SHA-256 of
  the id. The original ids are kept beside the labels.
- **Pseudonymous**: no names; sensor serial numbers (and the gateway's message ids, which contain them) only when
  exported with `--with-serials`. Still health data: the files are readable by their owner only (0600).
- **Sessions** are exported whole: those whose first sample lies in the range asked for, to their last sample.
- **Events** are the initial and final contacts of the stored strides (initial contact = stride start; final
  contact = start + stance time): contacts outside a stored stride are not exported.
- **Results** keep every stored field (units in gaitsym's storage schema: s, deg, %) and their provenance:
"""


def _provenance() -> str:
    return "".join(f"  `{c.name}` ({c.meaning}),\n" for c in PROVENANCE) + (
        "  and, in the session summary, `clock`: the clock mapping the analysis used, per placement (JSON).\n"
    )


def _tables(with_serials: bool, ids: bool) -> str:
    lead = [SUBJECT_ID, SESSION_ID] if ids else []
    raw = [*lead, *([PLACEMENT] if ids else []), *RAW, *([SERIAL] if with_serials else [])]
    batches = [*lead, *BATCHES, *([SERIAL, MSG_ID] if with_serials else [])]
    out = [
        table_doc("raw samples", raw),
        table_doc("batches (what delivered each sample: clock mapping, the sensor's declarations)", batches),
        table_doc("gaps", [*lead, *GAPS]),
        table_doc("events", [*lead, *EVENTS, *PROVENANCE]),
    ]
    out.append(
        "#### results\n\n"
        "Every stored field of a result is a column; each session's file of a table has the same columns (empty "
        "where the session has no value: withheld, not computed, or a table with no row, such as strides of a "
        "session without walking, which still has its header). A field stored that is not listed below (written "
        "by a newer analysis) is exported too, as a column after the listed fields, typed by its values; a value "
        "that does not fit a listed type makes that column float (an integer column holding a fraction) or text "
        "for the whole export, and its meaning says so in Parquet's field metadata.\n"
    )
    for name, table in RESULT_TABLES.items():
        out.append(table_doc(f"{name} ({table.what})", [*lead, *table.declared]))
    return "\n".join(out)


def csv_readme(with_serials: bool) -> str:
    return (
        "# gaitsym export (CSV)\n"
        + COMMON
        + _provenance()
        + """
## Files

- `subjects.csv`, `sessions.csv`: original ids, labels, folders (columns below).
- `<subject>/<session>/raw_<placement>.csv`: one file per sensor and session, in time order.
- `<subject>/<session>/batches.csv`, `gaps.csv`, `events.csv`, `strides.csv`, `exercise_sets.csv`,
  `session_summary.csv`.

Floats are written as the shortest text that reads back to the same float64 (pandas `read_csv`, Python `float()`:
bit for bit). An empty cell is a value that does not exist: unknown (a sensor declaration stored before the store
kept it), or no UTC time (the gateway's clock was never synchronised for that sample).

## Columns

"""
        + table_doc("subjects.csv", SUBJECTS_INDEX)
        + "\n"
        + table_doc("sessions.csv", SESSIONS_INDEX)
        + "\n"
        + _tables(with_serials, ids=False)
    )


def parquet_readme(with_serials: bool) -> str:
    return (
        "# gaitsym export (Parquet)\n"
        + COMMON
        + _provenance()
        + """
## Files

One dataset per table, partitioned by subject and session (hive style: `<table>/subject=<label>/session=<label>/`):
`raw/` (one file per sensor: `<placement>.parquet`), `batches/`, `gaps/`, `events/`, `strides/`, `exercise_sets/`,
`session_summary/`. Read one with `pyarrow.dataset.dataset("raw", partitioning="hive")` or
`pandas.read_parquet("raw")`. Times are UTC timestamps in µs; null is a value that does not exist (unknown, or no
UTC time). Units and meanings are also in each field's metadata.

## Columns

"""
        + _tables(with_serials, ids=True)
    )
