"""Every InfluxQL query the dashboards run, defined once: the dashboards are built from these, the tests run each
on a real InfluxDB (variables substituted as Grafana does) and the bench times them.

What the queries rest on (SCHEMA.md): result points in the ``results`` retention policy, raw samples in ``raw``;
tags ``subject``, ``side``, ``exercise``, ``placement``; the session summary's side ``none`` point carries the
asymmetries, their 95 % intervals and what they rest on. Rules the queries keep:

- **Absent is unknown, never normal.** A withheld value is an absent field; results stored before a field existed
  lack it too. No query fills a gap with a value, and the band reading below is null (shown "not read") when a value
  or its interval is missing.
- **The latest session is a row, not a set of last values.** ``LAST(field)`` picks each field's last non-null value
  on its own, so a withheld stance SI would be replaced by an older session's. "Latest" is therefore
  ``ORDER BY time DESC LIMIT 1`` per subject, selecting ``duration_s`` (always written) so that a session whose
  asymmetries are all withheld still gives its row.
- **A subquery's LIMIT holds only under the same grouping.** InfluxDB 1.6 ignores ``LIMIT`` inside a subquery
  when the outer query aggregates or groups by other tags (measured): a "latest row" subquery is filtered by an
  outer ``SELECT *`` grouped by the same tags; a sum over plans uses ``LAST(sets_per_week)``, a field every plan
  point carries (a cleared plan writes 0), so the last value is the latest plan's.
- **A query over subqueries runs each subquery again for every field it reads from it** (measured: four fields
  over two 14-day subqueries cost 370 ms on 500 subjects, one field 50 ms): such queries read one or two fields.
- **A union of aggregating subqueries takes its fields from the first one** (InfluxDB 1.6, measured: a field only
  the second names comes back null): the first subquery names every field.
- **Cost.** InfluxDB pays per series, field and shard a query touches: the clinic overview reads the session
  summaries (one series per subject) rather than the sets (one per subject, exercise and side), few fields, and
  aggregates in subqueries before combining them (a union of raw rows costs ten times more); the results policy
  keeps 52-week shards (`analytics.stores.influx_setup.RESULTS_SHARD_DURATION`). bench/dashboard_queries.py.
- **Raw samples of both layouts.** Each one-session raw panel has two queries: ``raw`` (one point per sample,
  ``MEAN`` per bucket) and ``raw_display`` (the packed layout's sums over each 0.1 s, ``SUM(sum) / SUM(n)`` per
  bucket: the mean of the bucket's samples, however batches split the periods). A session stored in one layout
  answers one of them; one written across a clinic's switch of layout answers both, each over its own stretch.
- **Final results only.** Nothing reads ``stride_live`` or ``exercise_set_live`` (provisional live results).
- **Time.** ``$timeFilter`` is the dashboard's range; windows relative to its end ("last 7 days", "worsening over 4
  weeks") use ``${__to}`` (its end in ms), so that a dashboard looking at the past reads the past consistently.

The band: a session's symmetry index is read against ±``$band`` % with the one rule of
`analytics.results.reading.read_si` (DEFAULT_SI_BAND_PCT, its default, and why a 10 % cut-off is a convention,
not a physiological limit): "within" only when the whole 95 % interval lies inside the band, "outside" when the
whole interval lies beyond one edge, "uncertain" otherwise. `band_reading` writes that rule in InfluxQL arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics.results.reading import DEFAULT_SI_BAND_PCT

SS = '"results"."session_summary"'
ES = '"results"."exercise_set"'
STRIDE = '"results"."stride"'
PLAN = '"results"."exercise_plan"'
GAP = '"results"."gap"'
RAW = '"raw"."raw"'
RAW_DISPLAY = '"raw"."raw_display"'
"""Sums and counts of the packed raw layout's samples over each 0.1 s (InfluxQL cannot unpack a packed part:
SCHEMA.md, `analytics/stores/raw_display.py`)."""
DISPLAY_ALIAS = "$col (0.1-s means)"
"""The display series' traces are named so: a clinician sees that they are means, and a session stored across a
switch of layout shows its two stretches apart."""

BAND = "$band"
DEFAULT_BAND = DEFAULT_SI_BAND_PCT
WITHIN, UNCERTAIN, OUTSIDE = 0, 1, 2
"""Codes of `band_reading` (value mappings turn them into words; null: withheld, no interval, or unknown)."""
EDGE_PP = 1e-9
"""Within this many percentage points of the band's edge a reading is "uncertain" (floating-point arithmetic on the
server must never turn an edge case into "within")."""
NOT_SETS = "^(stand|walk)$"
"""exercise_set points of calibration stands and walks: measured, never counted as exercise sets."""
LEVEL_EXERCISES = "^(single_leg_bridge|single_leg_stance)$"

SESSION_RESULT_FIELDS = (
    '"session", "duration_s", "stance_si_pct", "stance_si_ci95_low_pct", "stance_si_ci95_high_pct", '
    '"stance_si_status", "stance_si_withheld_reason", "stance_event_source", '
    '"cross_check_thigh_si_pct", "cross_check_pelvis_si_pct", '
    '"pelvic_drop_deg_diff", "pelvic_drop_deg_si_pct", "pelvic_drop_deg_si_ci95_low_pct", '
    '"pelvic_drop_deg_si_ci95_high_pct", "n_warnings", "warning_flags", "gaps", "end_unix_ms"'
)


def _at_least_one(x: str) -> str:
    """min(1, ceil(max(0, x))): 1 when x > 0, 0 when x <= 0, null when x is null (InfluxQL has no CASE)."""
    positive = f"CEIL(({x} + ABS({x})) / 2)"
    return f"((1 + {positive} - ABS(1 - {positive})) / 2)"


def band_reading(low: str, high: str, band: str = BAND) -> str:
    """InfluxQL for `read_si`'s verdict of an interval [low, high] (field names) against ±band: 0 within, 1 uncertain,
    2 outside, null when either bound is missing.

    With centre c and half-width w of the interval: within iff |c| + w <= band (the farthest bound inside), outside
    iff |c| - w > band (the nearest bound beyond an edge). Each test is 0 or 1 (`_at_least_one`); the sum is the
    code. ``EDGE_PP`` moves both tests toward "uncertain"."""
    edge = f"{EDGE_PP:.9f}"  # InfluxQL reads 1e-09 as a malformed duration
    centre = f'ABS(("{low}" + "{high}") / 2)'
    half = f'(("{high}" - "{low}") / 2)'
    beyond_within = _at_least_one(f"({centre} + {half} - {band} + {edge})")
    beyond_edge = _at_least_one(f"({centre} - {half} - {band} - {edge})")
    return f"({beyond_within} + {beyond_edge})"


STANCE_READING = band_reading("stance_si_ci95_low_pct", "stance_si_ci95_high_pct")
DROP_READING = band_reading("pelvic_drop_deg_si_ci95_low_pct", "pelvic_drop_deg_si_ci95_high_pct")


def _outside(low: str, high: str) -> str:
    return f'("{low}" > {BAND} OR "{high}" < -{BAND})'


def _latest(fields: str, where: str) -> str:
    """The latest session-summary row per subject in the range (see the module's rule)."""
    return (
        f'SELECT {fields} FROM {SS} WHERE "side" = \'none\' AND "subject" =~ /^$subject$/ AND {where} '
        'GROUP BY "subject" ORDER BY time DESC LIMIT 1'
    )


@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel (or variable, or annotation)."""

    key: str
    """Unique id, ``dashboard.panel[.target]``."""
    query: str
    result_format: str = "time_series"
    alias: str | None = None
    """A time series' display name (Grafana's alias patterns: ``$col`` the column, ``$tag_side`` a tag); the panels'
    overrides match these names."""


Q: dict[str, PanelQuery] = {}


def _q(key: str, query: str, result_format: str = "time_series", alias: str | None = None) -> PanelQuery:
    if key in Q:
        raise ValueError(f"query {key} defined twice")
    if alias is None and result_format == "time_series":
        alias = "$col"  # without it Grafana names a series "measurement.column"
    pq = PanelQuery(key, " ".join(query.split()), result_format, alias)
    Q[key] = pq
    return pq


# ------------------------------------------------------------------------------------------ variables

_q("var.subject", 'SHOW TAG VALUES FROM "results"."session_summary" WITH KEY = "subject"')
_q(
    "var.exercise",
    'SHOW TAG VALUES FROM "results"."exercise_set" WITH KEY = "exercise" WHERE "subject" =~ /^$subject$/ '
    f'AND "exercise" !~ /{NOT_SETS}/',
)
_q(
    "var.session",
    f'SELECT "session" FROM {SS} WHERE "subject" = \'$subject\' AND "side" = \'none\' AND $timeFilter',
)

# ------------------------------------------------------------------------------------------ clinic overview

_FLAGGED = '"stance_si_status", "stance_si_withheld_reason", "n_warnings", "warning_flags", "duration_s"'
_q(
    "clinic.withheld_or_flagged",
    f"""SELECT * FROM ({_latest(_FLAGGED, "$timeFilter")}) WHERE "stance_si_status" = 'withheld' OR "n_warnings" > 0
    GROUP BY "subject" ORDER BY time DESC""",
    "table",
)
_INTERVALS = (
    '"stance_si_pct", "stance_si_ci95_low_pct", "stance_si_ci95_high_pct", "pelvic_drop_deg_si_pct", '
    '"pelvic_drop_deg_si_ci95_low_pct", "pelvic_drop_deg_si_ci95_high_pct", "pelvic_drop_deg_diff"'
)
_q(
    "clinic.outside_band",
    f"""SELECT {_INTERVALS}, {STANCE_READING} AS "stance_reading", {DROP_READING} AS "pelvic_drop_reading"
    FROM ({_latest(_INTERVALS + ', "duration_s"', "$timeFilter")})
    WHERE {_outside("stance_si_ci95_low_pct", "stance_si_ci95_high_pct")}
    OR {_outside("pelvic_drop_deg_si_ci95_low_pct", "pelvic_drop_deg_si_ci95_high_pct")}
    GROUP BY "subject" ORDER BY time DESC""",
    "table",
)
_RECENT = "time > ${__to}ms - 14d AND time <= ${__to}ms"
_BEFORE = "time > ${__to}ms - 28d AND time <= ${__to}ms - 14d"
_LAST_7_DAYS = "time > ${__to}ms - 7d"
_EVERY_SUBJECT = '"side" = \'none\' AND "subject" =~ /^$subject$/'


def _worsening(field: str, change: str, threshold: str) -> str:
    """Mean |field| of the last 2 weeks of the range minus that of the 2 weeks before, listed above ``threshold``
    (null, so never listed, when either window has no value). One comparison per query: a query over subqueries
    pays each subquery again for every field it reads from them."""
    recent = f'SELECT ABS("{field}") AS "recent" FROM {SS} WHERE {_EVERY_SUBJECT} AND {_RECENT} GROUP BY "subject"'
    before = f'SELECT ABS("{field}") AS "before" FROM {SS} WHERE {_EVERY_SUBJECT} AND {_BEFORE} GROUP BY "subject"'
    return f"""SELECT * FROM (SELECT MEAN("recent") - MEAN("before") AS "{change}" FROM ({recent}), ({before})
    GROUP BY "subject") WHERE "{change}" > {threshold} GROUP BY "subject" """


_q("clinic.worsening.stance", _worsening("stance_si_pct", "stance_si_change_pp", "$worse_pp"), "table")
_q("clinic.worsening.drop", _worsening("pelvic_drop_deg_diff", "pelvic_drop_diff_change_deg", "$worse_deg"), "table")
_q(
    "clinic.no_recent_session",
    f"""SELECT * FROM (SELECT SUM("recent") AS "sessions_last_7_days", SUM("sessions") AS "sessions_in_range" FROM
    (SELECT COUNT("duration_s") * 0 AS "recent", COUNT("duration_s") AS "sessions"
     FROM {SS} WHERE {_EVERY_SUBJECT} AND $timeFilter GROUP BY "subject"),
    (SELECT COUNT("duration_s") AS "recent" FROM {SS}
     WHERE {_EVERY_SUBJECT} AND $timeFilter AND {_LAST_7_DAYS} GROUP BY "subject")
    GROUP BY "subject") WHERE "sessions_last_7_days" = 0 GROUP BY "subject" """,
    "table",
)
_q(
    "clinic.latest",
    _latest(
        f'"stance_si_pct", "stance_si_ci95_low_pct", "stance_si_ci95_high_pct", {STANCE_READING} AS "stance_reading", '
        '"stance_si_status", "stance_si_withheld_reason", "stance_event_source", "pelvic_drop_deg_diff", '
        f'"pelvic_drop_deg_si_pct", "pelvic_drop_deg_si_ci95_low_pct", "pelvic_drop_deg_si_ci95_high_pct", '
        f'{DROP_READING} AS "pelvic_drop_reading", "n_warnings", "warning_flags", "gaps", "duration_s"',
        "$timeFilter",
    ),
    "table",
)
_q(
    "clinic.adherence.sessions",
    f"""SELECT COUNT("duration_s") / 4 AS "sessions_per_week" FROM {SS} WHERE "side" = 'none'
    AND "subject" =~ /^$subject$/ AND time > ${{__to}}ms - 28d AND time <= ${{__to}}ms GROUP BY "subject" """,
    "table",
)
_q(
    "clinic.adherence.sets",
    f"""SELECT SUM("n_sets") AS "sets_last_7_days", COUNT("n_sets") AS "sessions_with_set_count",
    COUNT("duration_s") AS "sessions_last_7_days" FROM {SS}
    WHERE {_EVERY_SUBJECT} AND time > ${{__to}}ms - 7d AND time <= ${{__to}}ms GROUP BY "subject" """,
    "table",
)
_q(
    "clinic.adherence.plan",
    f"""SELECT SUM("in_force") AS "planned_sets_per_week" FROM (SELECT LAST("sets_per_week") AS "in_force"
    FROM {PLAN} WHERE "subject" =~ /^$subject$/ AND time <= ${{__to}}ms GROUP BY "subject", "exercise", "side")
    GROUP BY "subject" """,
    "table",
)

# ------------------------------------------------------------------------------------------ one patient

_PATIENT = "\"side\" = 'none' AND \"subject\" = '$subject' AND $timeFilter"


def _si_over_sessions(si: str, name: str) -> str:
    """A symmetry index (fields ``{si}_pct`` and its interval's) per session as ``name``, with the ±band edges."""
    return f"""SELECT "{si}_pct" AS "{name}", "{si}_ci95_low_pct" AS "95 % interval low",
    "{si}_ci95_high_pct" AS "95 % interval high", "duration_s" * 0 + {BAND} AS "band +",
    "duration_s" * 0 - {BAND} AS "band -" FROM {SS} WHERE {_PATIENT}"""


def _per_side_over_sessions(field: str) -> str:
    """A per-side session-summary field, one series per side."""
    return f"""SELECT "{field}" FROM {SS} WHERE "side" != 'none' AND "subject" = '$subject' AND $timeFilter
    GROUP BY "side" """


_q("patient.stance_si", _si_over_sessions("stance_si", "stance SI"))
_q(
    "patient.reading",
    f"""SELECT {STANCE_READING} AS "stance SI", {DROP_READING} AS "pelvic drop SI", "duration_s" FROM {SS}
    WHERE {_PATIENT}""",
)
_q("patient.pelvic_drop", _per_side_over_sessions("pelvic_drop_deg"), alias="pelvic drop $tag_side stance")
_q("patient.pelvic_drop_si", _si_over_sessions("pelvic_drop_deg_si", "pelvic drop SI"))
_q("patient.stance_time", _per_side_over_sessions("stance_time_s"), alias="stance time $tag_side")
_q(
    "patient.sessions",
    f"""SELECT {SESSION_RESULT_FIELDS}, {STANCE_READING} AS "stance_reading", {DROP_READING} AS "pelvic_drop_reading"
    FROM {SS} WHERE {_PATIENT} ORDER BY time DESC""",
    "table",
)
_EX = (
    '"subject" = \'$subject\' AND "exercise" =~ /^$exercise$/ AND "side" =~ /^$side$/ AND $timeFilter '
    'GROUP BY "exercise", "side"'
)
_q(
    "patient.level.time_level",
    f'SELECT "time_level_pct" FROM {ES} WHERE "exercise" =~ /{LEVEL_EXERCISES}/ AND {_EX}',
    alias="$tag_exercise $tag_side",
)
_q(
    "patient.level.drop",
    f'SELECT "pelvic_drop_mean_deg" FROM {ES} WHERE "exercise" =~ /{LEVEL_EXERCISES}/ AND {_EX}',
    alias="$tag_exercise $tag_side",
)
_q(
    "patient.clam.amplitude",
    f'SELECT "thigh_rotation_amplitude_deg" FROM {ES} WHERE "exercise" = \'clam\' AND {_EX}',
    alias="amplitude $tag_side",
)
_q(
    "patient.clam.rollback",
    f'SELECT "pelvic_rollback_deg" FROM {ES} WHERE "exercise" = \'clam\' AND {_EX}',
    alias="pelvic rollback $tag_side",
)
_q(
    "patient.lunge.rotation",
    f'SELECT "thigh_internal_rotation_deg" FROM {ES} WHERE "exercise" = \'lunge\' AND {_EX}',
    alias="thigh internal rotation $tag_side",
)
_q(
    "patient.sessions_per_week",
    f'SELECT COUNT("duration_s") AS "sessions" FROM {SS} WHERE {_PATIENT} GROUP BY time(7d, 4d) FILL(0)',
)
_q(
    "patient.days_between",
    f'SELECT ELAPSED("duration_s", 1h) / 24 AS "days since the previous session" FROM {SS} WHERE {_PATIENT}',
)
_q(
    "patient.sets_per_week",
    f"""SELECT COUNT("set") AS "sets" FROM {ES} WHERE "subject" = '$subject' AND "exercise" !~ /{NOT_SETS}/
    AND "exercise" =~ /^$exercise$/ AND "side" =~ /^$side$/ AND $timeFilter
    GROUP BY time(7d, 4d), "exercise", "side" FILL(0)""",
    alias="$tag_exercise $tag_side",
)
_q(
    "patient.plan",
    f"""SELECT "sets_per_week", "reps_per_set", "cleared" FROM {PLAN} WHERE "subject" = '$subject'
    AND "exercise" =~ /^$exercise$/ AND "side" =~ /^$side$/ AND time <= ${{__to}}ms
    GROUP BY "exercise", "side" ORDER BY time DESC LIMIT 1""",
    "table",
)
_q(
    "patient.annotation.flags",
    f"""SELECT "warning_flags", "session" FROM {SS} WHERE "side" = 'none' AND "subject" =~ /^$subject$/
    AND "n_warnings" > 0 AND $timeFilter""",
)
_q(
    "patient.annotation.withheld",
    f"""SELECT "stance_si_withheld_reason", "session" FROM {SS} WHERE "side" = 'none' AND "subject" =~ /^$subject$/
    AND "stance_si_status" = 'withheld' AND $timeFilter""",
)

# ------------------------------------------------------------------------------------------ one session

_SESSION = "\"subject\" = '$subject' AND \"session\" = '$session'"
_q(
    "session.summary",
    f'SELECT {SESSION_RESULT_FIELDS}, {STANCE_READING} AS "stance_reading", {DROP_READING} AS "pelvic_drop_reading" '
    f"FROM {SS} WHERE \"side\" = 'none' AND {_SESSION}",
    "table",
)
_q(
    "session.sides",
    f"""SELECT "n_strides", "stance_time_s", "step_time_s", "pelvic_drop_deg" FROM {SS} WHERE "side" != 'none'
    AND {_SESSION} GROUP BY "side" """,
    "table",
)
_RAW_COLUMNS = ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
for _placement in ("pelvis", "left_thigh", "right_thigh"):
    _q(
        f"session.raw.{_placement}",
        f"""SELECT MEAN("acc_x") AS "acc_x", MEAN("acc_y") AS "acc_y", MEAN("acc_z") AS "acc_z",
        MEAN("gyr_x") AS "gyr_x", MEAN("gyr_y") AS "gyr_y", MEAN("gyr_z") AS "gyr_z" FROM {RAW}
        WHERE "subject" = '$subject' AND "placement" = '{_placement}' AND "session" = '$session' AND $timeFilter
        GROUP BY time($__interval)""",
    )
    _q(
        f"session.raw_display.{_placement}",
        "SELECT "
        + ", ".join(f'SUM("{c}_sum") / SUM("n") AS "{c}"' for c in _RAW_COLUMNS)
        + f""" FROM {RAW_DISPLAY} WHERE "subject" = '$subject' AND "placement" = '{_placement}'
        AND "session" = '$session' AND $timeFilter GROUP BY time($__interval)""",
        alias=DISPLAY_ALIAS,
    )
_q(
    "session.strides",
    f"""SELECT "stance_time_s" FROM {STRIDE} WHERE {_SESSION} AND "included" = true AND $timeFilter
    GROUP BY "side" """,
    alias="stance time $tag_side",
)
_q(
    "session.sets",
    f"""SELECT "set", "reps", "n_holds", "hold_mean_s", "time_level_pct", "pelvic_drop_mean_deg",
    "thigh_rotation_amplitude_deg", "pelvic_rollback_deg", "thigh_internal_rotation_deg", "flags" FROM {ES}
    WHERE {_SESSION} AND "exercise" !~ /{NOT_SETS}/ AND "exercise" =~ /^$exercise$/ AND "side" =~ /^$side$/
    GROUP BY "exercise", "side" """,
    "table",
)
_q(
    "session.gaps",
    f"""SELECT "serial", "boot_epoch", "seq_first_missing", "seq_last_missing", "duration_s", "reason" FROM {GAP}
    WHERE {_SESSION} GROUP BY "placement" """,
    "table",
)
_q(
    "session.annotation.contacts",
    f"""SELECT "side", "stance_time_s" FROM {STRIDE} WHERE "subject" =~ /^$subject$/ AND "session" =~ /^$session$/
    AND $timeFilter""",
)
_q(
    "session.annotation.sets",
    f"""SELECT "exercise", "side", "set", "end_unix_ms" FROM {ES} WHERE "subject" =~ /^$subject$/
    AND "session" =~ /^$session$/ AND "exercise" !~ /{NOT_SETS}/ AND $timeFilter""",
)


def query(key: str) -> PanelQuery:
    return Q[key]
