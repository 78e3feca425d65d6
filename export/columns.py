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
    Column("acc_x", "float", "m/s²", "acceleration, sensor x axis, gravity included"),
    Column("acc_y", "float", "m/s²", "acceleration, sensor y axis, gravity included"),
    Column("acc_z", "float", "m/s²", "acceleration, sensor z axis, gravity included"),
    Column("gyr_x", "float", "deg/s", "angular rate, sensor x axis"),
    Column("gyr_y", "float", "deg/s", "angular rate, sensor y axis"),
    Column("gyr_z", "float", "deg/s", "angular rate, sensor z axis"),
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
           "the same sensor boot when their time_utc_us is set: that mapping is in the results' clock provenance)"),
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

RESULT_TABLES = {
    "strides": "one row per stride (initial contact to the next of the same side): the stride measurement",
    "exercise_sets": "one row per exercise set: the exercise_set measurement",
    "session_summary": "per-side (left, right) and bilateral (none) summaries of the session",
}
"""Result tables keep every stored field as a column (the fields of analytics/stores/SCHEMA.md, units there:
s, deg, %), plus time_utc_us, the tags (side, exercise) and the provenance fields."""


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
