"""What the stores hold: raw sample batches, result points, their timestamps and line-protocol form.

One name space for the stores and the worker; each part lives in its own module:
- `points`: measurement names, `Point` and the InfluxDB line protocol;
- `raw_model`: raw samples (`RawSamples`), their timestamps, lines and batch-index points, gaps, `RawSeries`;
- `raw_plan`: which of a call's raw samples are written, refused (time collisions) or already stored elsewhere
  (moved replays), and the gaps recording refused samples;
- `raw_index`: what the batch index tells of stored raw data (per sensor boot epoch, per session);
- `write_report`: what a write did;
- `results_model`: result points from a gaitsym.result/1 document, with their provenance.

SCHEMA.md describes every measurement, tag and field.
"""

from __future__ import annotations

from analytics.stores.points import (
    _FLOAT_TEXT,
    EXERCISE_SET,
    EXERCISE_SET_LIVE,
    GAP,
    LIVE_MEASUREMENTS,
    LIVE_OF,
    MEASUREMENTS,
    RAW,
    RAW_BATCH,
    RESULT_MEASUREMENTS,
    SESSION_SUMMARY,
    STORE_SCHEMA,
    STRIDE,
    STRIDE_LIVE,
    FieldValue,
    Point,
    _escape_key,
    _escape_string,
    float_texts,
    format_field,
    point_line,
)
from analytics.stores.raw_index import RawIndex, RawProgress, RawSession, SessionSensor, raw_sessions_from_batches
from analytics.stores.raw_model import (
    RAW_FIELDS,
    SENSOR_SLOT_US,
    SENSOR_SLOTS,
    FloatArray,
    GapRecord,
    Int64Array,
    RawSamples,
    RawSeries,
    batch_point,
    gap_point,
    maps_to_utc,
    raw_lines,
    raw_time_us,
    require_utc_mapping,
    samples_from_arrays,
    sensor_slot_start_us,
)
from analytics.stores.raw_plan import (
    REPLAY_MOVE_US,
    SPAN_JOIN_US,
    STORE_REFUSED,
    TIME_COLLISION,
    MovedReplay,
    RawPlan,
    SampleId,
    TimeCollision,
    check_windows,
    collision_reason,
    missing_gaps,
    not_stored_yet,
    plan_raw_writes,
    quarantine_refused,
    time_spans,
)
from analytics.stores.results_model import Provenance, ResultRow, SessionResults, result_order, results_from_document
from analytics.stores.write_report import WriteReport

__all__ = [
    "EXERCISE_SET",
    "EXERCISE_SET_LIVE",
    "GAP",
    "LIVE_MEASUREMENTS",
    "LIVE_OF",
    "MEASUREMENTS",
    "RAW",
    "RAW_BATCH",
    "RAW_FIELDS",
    "REPLAY_MOVE_US",
    "RESULT_MEASUREMENTS",
    "SENSOR_SLOTS",
    "SENSOR_SLOT_US",
    "SESSION_SUMMARY",
    "SPAN_JOIN_US",
    "STORE_REFUSED",
    "STORE_SCHEMA",
    "STRIDE",
    "STRIDE_LIVE",
    "TIME_COLLISION",
    "_FLOAT_TEXT",
    "FieldValue",
    "FloatArray",
    "GapRecord",
    "Int64Array",
    "MovedReplay",
    "Point",
    "Provenance",
    "RawIndex",
    "RawPlan",
    "RawProgress",
    "RawSamples",
    "RawSeries",
    "RawSession",
    "ResultRow",
    "SampleId",
    "SessionResults",
    "SessionSensor",
    "TimeCollision",
    "WriteReport",
    "_escape_key",
    "_escape_string",
    "batch_point",
    "check_windows",
    "collision_reason",
    "float_texts",
    "format_field",
    "gap_point",
    "maps_to_utc",
    "missing_gaps",
    "not_stored_yet",
    "plan_raw_writes",
    "point_line",
    "quarantine_refused",
    "raw_lines",
    "raw_sessions_from_batches",
    "raw_time_us",
    "require_utc_mapping",
    "result_order",
    "results_from_document",
    "samples_from_arrays",
    "sensor_slot_start_us",
    "time_spans",
]
