"""Every table an export writes, column by column: name, type, unit, meaning. One source for the CSV header, the
Parquet schema (units in each field's metadata) and the README written into every export.

Raw samples are exported as stored: acc in m/s² (gravity included), gyr in deg/s (converted from the sensor's
int16 counts with its declared range when the worker decoded the packet; never resampled, filtered or filled),
with the sensor's own timestamp and sequence number and the UTC time the gateway's clock mapping gave each sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    """int, float, text, bool or time (µs since 1970-01-01 UTC: an int in CSV, a UTC timestamp in Parquet)."""
    unit: str
    meaning: str


RAW = (
    Column("time_utc_us", "time", "µs UTC", "the sample's mapped UTC time (sensor clock -> UTC by the batch's clock "
           "mapping); empty when the gateway's clock was never synchronised (the sample keeps sensor time only)"),
    Column("t_sensor_us", "int", "µs", "the sensor's own timestamp, µs since its boot (unwrapped, 64-bit)"),
    Column("seq", "int", "samples", "the sensor's sequence number since boot (unwrapped): a jump is a gap"),
    Column("boot_epoch", "int", "", "which boot of the sensor: sequence numbers count from each boot"),
    *(Column(f"acc_{a}", "float", "m/s²", f"acceleration, sensor {a} axis, gravity included") for a in "xyz"),
    *(Column(f"gyr_{a}", "float", "deg/s", f"angular rate, sensor {a} axis") for a in "xyz"),
    Column("batch", "int", "", "the batch that delivered the sample: its row in batches (clock mapping used, the "
           "sensor's declared rate, ranges, firmware); empty when no batch-index entry claims it"),
)  # fmt: skip
SERIAL = Column("serial", "text", "", "the sensor's serial number (only with --with-serials)")
PLACEMENT = Column("placement", "text", "", "where the sensor is worn: pelvis, left_thigh, right_thigh")
SUBJECT_ID = Column("subject_id", "text", "", "the subject id as stored (the folder name is its label)")
SESSION_ID = Column("session_id", "text", "", "the session id as stored (the folder name is its label)")

BATCHES = (
    Column("batch", "int", "", "the batch's key within the session (the raw samples' batch column)"),
    PLACEMENT,
    Column("boot_epoch", "int", "", "the sensor boot the batch belongs to"),
    Column("seq_first", "int", "samples", "first sample stored from the batch"),
    Column("seq_last", "int", "samples", "last sample stored from the batch"),
    Column("n_samples", "int", "samples", "samples stored from the batch"),
    Column("t_sensor_us_first", "int", "µs", "sensor timestamp of the batch's first sample"),
    Column("time_first_utc_us", "time", "µs UTC", "mapped time of the first sample (empty: sensor time only)"),
    Column("time_last_utc_us", "time", "µs UTC", "mapped time of the last sample (empty: sensor time only)"),
    Column("utc_synced", "bool", "", "the gateway's clock was UTC-synchronised: the mapping below placed the "
           "samples; false: they were stored in sensor time (and moved to UTC later by a synchronised mapping of "
           "the same sensor boot when their time_utc_us is set: then the mapping below is the one that moved them)"),
    Column("ref_sensor_us", "int", "µs", "clock mapping: the sensor time of the reference point"),
    Column("ref_utc_s", "float", "s UTC", "clock mapping: the UTC time of the reference point (empty: none)"),
    Column("rate", "float", "UTC s per sensor s", "clock mapping: UTC seconds per sensor second (drift corrected)"),
    Column("drift_ppm", "float", "ppm", "clock mapping: the sensor clock's drift estimated by the gateway"),
    Column("jitter_ms", "float", "ms", "clock mapping: residual jitter of the gateway's fit"),
    Column("sample_rate_hz", "float", "Hz", "the sensor's declared sample rate (empty: unknown, stored before "
           "the store kept it)"),
    Column("acc_range_g", "int", "g", "the sensor's declared accelerometer range, ± (empty: unknown)"),
    Column("gyr_range_dps", "int", "deg/s", "the sensor's declared gyroscope range, ± (empty: unknown)"),
    Column("firmware", "text", "", "the sensor's declared firmware version (empty: unknown)"),
)  # fmt: skip
MSG_ID = Column("msg_id", "text", "", "the gateway's message id (names the serial: only with --with-serials)")

GAPS = (
    PLACEMENT,
    Column("boot_epoch", "int", "", "the sensor boot of the missing samples"),
    Column("seq_first_missing", "int", "samples", "first missing sample (empty: the sensor restarted, sequence "
           "numbers do not say how many are missing)"),
    Column("seq_last_missing", "int", "samples", "last missing sample, inclusive (empty: as above)"),
    Column("n_missing", "int", "samples", "samples missing (by sequence; by time at the declared rate across a "
           "sensor restart)"),
    Column("time_before_utc_us", "time", "µs UTC", "mapped time of the last sample before the gap (empty: none "
           "exported before it)"),
    Column("time_after_utc_us", "time", "µs UTC", "mapped time of the first sample after the gap (empty: none "
           "exported after it)"),
    Column("duration_s", "float", "s", "how long the gap lasts as recorded by the gateway (empty: not recorded)"),
    Column("reason", "text", "", "why the samples are missing as the gateway or store recorded it (e.g. "
           "packets lost on the air, time_collision, store_refused); not_recorded: a hole in the sequence that no "
           "recorded gap names; sensor_restart: a new boot epoch"),
)  # fmt: skip

EVENTS = (
    Column("time_utc_us", "time", "µs UTC", "when the event happened"),
    Column("onset_s", "float", "s", "seconds from the session's first exported sample"),
    Column("event", "text", "", "initial_contact or final_contact (of the side's foot)"),
    Column("side", "text", "", "left or right: the stance leg whose contact it is"),
    Column("stride_included", "bool", "", "the stride it opens or closes passed the plausibility rules"),
)
PROVENANCE = (
    Column("analysis_id", "text", "", "the analysis run that produced the row"),
    Column("result_version", "int", "", "grows with each re-analysis of the session"),
    Column("algorithm", "text", "", "generator name and version"),
    Column("result_schema", "text", "", "gaitsym.result/1"),
    Column("store_schema", "text", "", "gaitsym.store/1"),
)

CLOCK = Column("clock", "text", "", "the clock mapping the analysis used, per placement (JSON; the sensors' serial "
               "numbers only with --with-serials)")  # fmt: skip
FLAGS = Column("flags", "text", "", "quality flags, comma-separated (empty: none)")


def _unit(name: str) -> str:
    return {"s": "s", "deg": "deg", "pct": "%", "ms": "ms"}.get(name.rsplit("_", 1)[-1], "")


def _float(name: str, meaning: str) -> Column:
    return Column(name, "float", _unit(name), meaning)


@dataclass(frozen=True)
class ResultTable:
    """A result table: one stored measurement, its rows' time and tags (``lead``), its fields (``fields``, the
    measurement's fields in analytics/stores/SCHEMA.md), then ``trail`` (flags and provenance). A field stored
    that ``fields`` does not name (a newer analysis's) is exported too, as a column after ``fields``."""

    measurement: str
    what: str
    lead: tuple[Column, ...]
    fields: tuple[Column, ...]
    trail: tuple[Column, ...]

    @property
    def declared(self) -> tuple[Column, ...]:
        return (*self.lead, *self.fields, *self.trail)

    @property
    def keeps_clock(self) -> bool:
        return CLOCK in self.trail


def _asymmetry() -> tuple[Column, ...]:
    from analytics.results.summary import ASYMMETRY_METRICS

    out = []
    for m in ASYMMETRY_METRICS:
        unit = _unit(m)
        out += [
            Column(f"{m}_diff", "float", unit, f"{m}: left minus right"),
            Column(f"{m}_si_pct", "float", "%", f"{m}: symmetry index 100 (L - R) / (0.5 (L + R))"),
            Column(f"{m}_ratio", "float", "", f"{m}: ratio left / right"),
            Column(f"{m}_ga_pct", "float", "%", f"{m}: gait asymmetry 100 |ln(L / R)|"),
        ]
    for m in ("stance", *ASYMMETRY_METRICS):
        out += [
            Column(f"{m}_si_ci95_low_pct", "float", "%", f"{m}: 95 % interval of the symmetry index, low end"),
            Column(f"{m}_si_ci95_high_pct", "float", "%", f"{m}: 95 % interval of the symmetry index, high end"),
        ]
    return tuple(out)


STRIDES = ResultTable(
    "stride",
    "one row per stride (initial contact to the next of the same side): the stride measurement",
    (
        Column("time_utc_us", "time", "µs UTC", "the stride's start (its initial contact)"),
        Column("side", "text", "", "left or right: the stance leg"),
    ),
    (
        _float("start_s", "the stride's start, seconds from the analysed recording's first sample"),
        _float("end_s", "the stride's end (the next initial contact of the same side), as start_s"),
        _float("stance_time_s", "initial to final contact of the side's foot"),
        _float("swing_time_s", "final contact to the stride's end"),
        _float("step_time_s", "initial contact to the other foot's next initial contact"),
        _float("pelvic_drop_deg", "peak contralateral pelvic drop during the stance, relative to quiet standing"),
        Column("bout", "int", "", "the walking bout of the session it belongs to (0, 1, ...)"),
    ),
    (
        Column("included", "bool", "", "the stride passed the plausibility rules (only included strides count)"),
        FLAGS,
        *PROVENANCE,
    ),
)
EXERCISE_SETS = ResultTable(
    "exercise_set",
    "one row per exercise set (and calibration stand or walk): the exercise_set measurement",
    (
        Column("time_utc_us", "time", "µs UTC", "the set's start"),
        Column("exercise", "text", "", "the exercise (gaitsym.result/1 vocabulary; stand and walk are calibration)"),
        Column("side", "text", "", "the working leg: left, right, or none (bilateral)"),
    ),
    (
        Column("set", "int", "", "the set's number within the session"),
        _float("start_s", "the set's start, seconds from the analysed recording's first sample"),
        _float("end_s", "the set's end, as start_s"),
        Column("reps", "int", "", "complete repetitions (partial ones not counted; empty: not counted)"),
        Column("n_holds", "int", "", "holds found"),
        _float("hold_mean_s", "mean hold duration (empty: no hold)"),
        _float("pelvic_drop_mean_deg", "holds: mean drop of the hemipelvis opposite the side (+ downward)"),
        _float("pelvic_drop_peak_deg", "holds: peak drop of the hemipelvis opposite the side"),
        _float("time_level_pct", "holds: share of hold samples with |obliquity| <= 2 deg"),
        _float("obliquity_abs_mean_deg", "pelvic tilt: mean |obliquity| over the holds"),
        _float("obliquity_abs_peak_deg", "pelvic tilt: peak |obliquity| over the holds"),
        _float("thigh_rotation_amplitude_deg", "clam: mean peak tilt of the working thigh per repetition"),
        _float("pelvic_rollback_deg", "clam: mean peak rise of the pelvis's anterior axis per repetition"),
        _float("thigh_internal_rotation_deg", "lunge: mean peak internal rotation of the front thigh"),
        _float("pelvic_drop_deg", "lunge: mean peak drop of the hemipelvis opposite the front leg"),
        Column("end_unix_ms", "int", "ms UTC", "the set's end, ms since 1970-01-01 UTC"),
    ),
    (FLAGS, *PROVENANCE),
)
SESSION_SUMMARY = ResultTable(
    "session_summary",
    "per-side (left, right) and bilateral (none) summaries of the session",
    (
        Column("time_utc_us", "time", "µs UTC", "the analysed recording's first sample"),
        Column("side", "text", "", "left, right: that side's means; none: bilateral (asymmetry, flags, counts)"),
    ),
    (
        _float("duration_s", "the analysed recording's duration"),
        Column("n_strides", "int", "", "left/right: strides of the side"),
        _float("stance_time_s", "left/right: mean stance time"),
        _float("step_time_s", "left/right: mean step time"),
        _float("pelvic_drop_deg", "left/right: mean pelvic drop during the side's stance"),
        _float("stance_si_pct", "stance time symmetry index (empty: withheld, see stance_si_status)"),
        _float("stance_ratio", "stance time ratio left / right"),
        _float("stance_ga_pct", "stance time gait asymmetry 100 |ln(L / R)|"),
        *_asymmetry(),
        Column("stance_si_status", "text", "", "reported or withheld"),
        Column("stance_si_withheld_reason", "text", "", "why the stance SI was withheld (empty: reported)"),
        Column("stance_event_source", "text", "", "whose events the stance times rest on: thigh+pelvis, pelvis, "
               "mixed"),
        _float("cross_check_thigh_si_pct", "the stance SI from thigh events alone over the same walking"),
        _float("cross_check_pelvis_si_pct", "the stance SI from pelvis events alone over the same walking"),
        Column("n_sets", "int", "", "exercise sets of the session (calibration stands and walks not counted)"),
        Column("n_flags", "int", "", "distinct quality flag codes"),
        Column("n_warnings", "int", "", "distinct quality flag codes of severity warning or withheld"),
        Column("warning_flags", "text", "", "those codes, comma-separated"),
        Column("gaps", "text", "", "the known-missing samples the analysis ran across (placement, sequence range)"),
        Column("end_unix_ms", "int", "ms UTC", "the analysed recording's end, ms since 1970-01-01 UTC"),
    ),
    (FLAGS, *PROVENANCE, CLOCK),
)  # fmt: skip
RESULT_TABLES = {"strides": STRIDES, "exercise_sets": EXERCISE_SETS, "session_summary": SESSION_SUMMARY}
"""Result tables: every stored field a column (units as in analytics/stores/SCHEMA.md: s, deg, %), in the same
columns for every session of an export (empty where a session has no value: withheld, or not computed)."""

_STORED_SUBJECT_ID = Column("subject_id", "text", "", "the subject id as stored")
SUBJECTS_INDEX = (
    _STORED_SUBJECT_ID,
    Column("label", "text", "", "its label: the subject's folder name"),
)
SESSIONS_INDEX = (
    _STORED_SUBJECT_ID,
    Column("session_id", "text", "", "the session id as stored"),
    Column("subject_label", "text", "", "the subject's label (folder name)"),
    Column("session_label", "text", "", "the session's label (folder name)"),
    Column("first_sample_utc_us", "time", "µs UTC", "the session's first exported sample"),
    Column("folder", "text", "", "the session's folder"),
)


def arrow_type(column: Column) -> Any:
    import pyarrow as pa

    return {
        "int": pa.int64(),
        "float": pa.float64(),
        "text": pa.string(),
        "bool": pa.bool_(),
        "time": pa.int64(),
    }[column.kind]


def parquet_type(column: Column) -> Any:
    """As `arrow_type`, except times: a UTC timestamp in µs (the same integer, typed)."""
    import pyarrow as pa

    return pa.timestamp("us", tz="UTC") if column.kind == "time" else arrow_type(column)


def arrow_schema(columns: tuple[Column, ...] | list[Column], parquet: bool = False) -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field(
                c.name, parquet_type(c) if parquet else arrow_type(c), metadata={"unit": c.unit, "meaning": c.meaning}
            )
            for c in columns
        ]
    )


def table_doc(title: str, columns: tuple[Column, ...] | list[Column]) -> str:
    """Markdown table of columns for the export's README."""
    lines = [f"#### {title}", "", "| column | type | unit | meaning |", "|---|---|---|---|"]
    lines += [f"| `{c.name}` | {c.kind} | {c.unit} | {c.meaning} |" for c in columns]
    return "\n".join(lines) + "\n"
