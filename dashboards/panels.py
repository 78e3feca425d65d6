"""Panel and variable helpers shared by the three dashboards: every panel gets its queries from `queries`, a unit on
every value axis (and on every table column that holds a number), and the words a clinician reads for the band
reading and the stance SI's status. Units are Grafana unit ids: percent, degree, s (seconds), d (days), accMS2
(m/s²), rotdegs (deg/s), ``suffix: ...`` for counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import statushistory, table, text, timeseries
from grafana_foundation_sdk.models import common, dashboard
from grafana_foundation_sdk.models import text as text_model

from dashboards.influxql import InfluxQL, ResultFormat, datasource
from dashboards.queries import DEFAULT_BAND, OUTSIDE, UNCERTAIN, WITHIN, query

PERCENT, DEGREE, SECONDS, DAYS, ACC, GYR = "percent", "degree", "s", "d", "accMS2", "rotdegs"

BAND_NOTE = (
    f"Band: ±$band % (default {DEFAULT_BAND:g} %, analytics.results.reading.DEFAULT_SI_BAND_PCT). A cut-off near "
    "10 % SI is common in gait studies and arbitrary (Robinson et al. 1987; Patterson et al. 2010): set the band your "
    "clinic uses. A value is called within the band only when its whole 95 % interval is inside; a withheld value, a "
    "value without an interval, or one whose interval crosses the band is never called normal."
)


BAND_READINGS = ("stance_reading", "pelvic_drop_reading")
"""The band-reading columns of the session-summary queries (`queries.STANCE_READING`, `queries.DROP_READING`)."""
STANCE_STATUS = ("stance_si_status",)
SESSION_RESULT_UNITS = {
    "duration_s": SECONDS,
    "stance_si_pct": PERCENT,
    "stance_si_ci95_low_pct": PERCENT,
    "stance_si_ci95_high_pct": PERCENT,
    "cross_check_thigh_si_pct": PERCENT,
    "cross_check_pelvis_si_pct": PERCENT,
    "pelvic_drop_deg_diff": DEGREE,
    "pelvic_drop_deg_si_pct": PERCENT,
    "pelvic_drop_deg_si_ci95_low_pct": PERCENT,
    "pelvic_drop_deg_si_ci95_high_pct": PERCENT,
    "n_warnings": "suffix: warnings",
    "end_unix_ms": "dateTimeAsIso",
}
"""Units of `queries.SESSION_RESULT_FIELDS`: one session's results as a table row."""


def gaitsym_dashboard(title: str, uid: str, description: str, since: str) -> dash_b.Dashboard:
    """A read-only gaitsym dashboard in the browser's time zone, its range from ``since`` to now."""
    return (
        dash_b.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["gaitsym"])
        .time(since, "now")
        .timezone("browser")
        .readonly()
    )


def _text(value: str, color: str) -> dashboard.ValueMappingResult:
    return dashboard.ValueMappingResult(text=value, color=color)


READING_MAPPINGS: list[dashboard.ValueMapping] = [
    dashboard.ValueMap(
        options={
            str(WITHIN): _text("within the band", "green"),
            str(UNCERTAIN): _text("uncertain: interval crosses the band", "orange"),
            str(OUTSIDE): _text("outside the band", "red"),
        }
    ),
    dashboard.SpecialValueMap(
        options=dashboard.DashboardSpecialValueMapOptions(
            match=dashboard.SpecialValueMatch.NULL,
            result=_text("not read: withheld, no interval, or not recorded", "purple"),
        )
    ),
]
STATUS_MAPPINGS: list[dashboard.ValueMapping] = [
    dashboard.ValueMap(
        options={"reported": _text("reported", "blue"), "withheld": _text("withheld", "orange")},
    ),
    dashboard.SpecialValueMap(
        options=dashboard.DashboardSpecialValueMapOptions(
            match=dashboard.SpecialValueMatch.NULL,
            result=_text("unknown: analysed before the status was stored", "purple"),
        )
    ),
]


def targets(panel: timeseries.Panel | table.Panel | statushistory.Panel, keys: Sequence[str]) -> None:
    for i, key in enumerate(keys):
        q = query(key)
        fmt: ResultFormat = "table" if q.result_format == "table" else "time_series"
        panel.with_target(InfluxQL(q.query, ref_id=chr(ord("A") + i), result_format=fmt, alias=q.alias))


def series_panel(
    title: str,
    description: str,
    keys: Sequence[str],
    unit: str,
    axis_label: str,
    *,
    width: int = 12,
    height: int = 8,
    bars: bool = False,
) -> timeseries.Panel:
    """A time series panel (points per session or set, joined by lines; bars for counts)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .unit(unit)
        .axis_label(axis_label)
        .span(width)
        .height(height)
        .legend(common_b.VizLegendOptions().display_mode(common.LegendDisplayMode.LIST).show_legend(True))
    )
    if bars:
        panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(60)
    else:
        panel.show_points(common.VisibilityMode.ALWAYS).point_size(6).span_nulls(False)
    targets(panel, keys)
    return panel


def interval_overrides(panel: timeseries.Panel, value: str) -> None:
    """The 95 % interval drawn as a band around its value, the ±band edges dashed and unfilled."""
    panel.override_by_name(
        "95 % interval high",
        [
            dashboard.DynamicConfigValue("custom.fillBelowTo", "95 % interval low"),
            dashboard.DynamicConfigValue("custom.fillOpacity", 20),
            dashboard.DynamicConfigValue("custom.showPoints", "never"),
        ],
    )
    panel.override_by_name("95 % interval low", [dashboard.DynamicConfigValue("custom.showPoints", "never")])
    panel.override_by_regexp(
        "^band [+-]$",
        [
            dashboard.DynamicConfigValue("custom.lineStyle", {"fill": "dash", "dash": [10, 10]}),
            dashboard.DynamicConfigValue("custom.showPoints", "never"),
            dashboard.DynamicConfigValue("color", {"mode": "fixed", "fixedColor": "red"}),
        ],
    )
    panel.override_by_name(value, [dashboard.DynamicConfigValue("custom.lineWidth", 2)])


def table_panel(
    title: str,
    description: str,
    keys: Sequence[str],
    units: dict[str, str],
    *,
    width: int = 24,
    height: int = 8,
    readings: Sequence[str] = (),
    statuses: Sequence[str] = (),
    hidden: Sequence[str] = (),
) -> table.Panel:
    """A table; ``units`` per numeric column (column name -> unit), reading and status columns in words."""
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .span(width)
        .height(height)
        .filterable(True)
        .no_value("none")
    )
    targets(panel, keys)
    for name, unit in units.items():
        panel.override_by_name(name, [dashboard.DynamicConfigValue("unit", unit)])
    for name in readings:
        panel.override_by_name(name, [dashboard.DynamicConfigValue("mappings", READING_MAPPINGS)])
    for name in statuses:
        panel.override_by_name(name, [dashboard.DynamicConfigValue("mappings", STATUS_MAPPINGS)])
    for name in hidden:
        panel.override_by_name(name, [dashboard.DynamicConfigValue("custom.hidden", True)])
    return panel


def reading_panel(title: str, description: str, key: str, *, width: int = 24, height: int = 5) -> statushistory.Panel:
    """One cell per session and asymmetry: within, uncertain, outside the band, or not read."""
    panel = (
        statushistory.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .span(width)
        .height(height)
        .mappings(READING_MAPPINGS)
        .unit("none")
        .show_value(common.VisibilityMode.NEVER)
        .line_width(1)
        .fill_opacity(70)
    )
    panel.override_by_name("duration_s", [dashboard.DynamicConfigValue("custom.hideFrom", HIDE_ALL)])
    targets(panel, [key])
    return panel


HIDE_ALL = {"legend": True, "tooltip": True, "viz": True}


def note(title: str, content: str, *, width: int = 24, height: int = 4) -> text.Panel:
    return text.Panel().title(title).content(content).mode(text_model.TextMode.MARKDOWN).span(width).height(height)


def query_variable(
    name: str, label: str, key: str, refresh: dashboard.VariableRefresh, sort: dashboard.VariableSort
) -> dash_b.QueryVariable:
    """A variable whose values come from the query ``key``."""
    return (
        dash_b.QueryVariable(name)
        .label(label)
        .datasource(datasource())
        .query(query(key).query)
        .refresh(refresh)
        .sort(sort)
    )


V = TypeVar("V", dash_b.QueryVariable, dash_b.CustomVariable)


def any_of(var: V) -> V:
    """Several values may be chosen; all of them (a regex matching any) when none is picked."""
    return (
        var.multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dashboard.VariableOption(selected=True, text="All", value="$__all"))
    )


def subject_variable(*, multi: bool) -> dash_b.QueryVariable:
    var = query_variable(
        "subject",
        "Subject",
        "var.subject",
        dashboard.VariableRefresh.ON_DASHBOARD_LOAD,
        dashboard.VariableSort.ALPHABETICAL_ASC,
    )
    return any_of(var) if multi else var


def exercise_variable() -> dash_b.QueryVariable:
    return any_of(
        query_variable(
            "exercise",
            "Exercise",
            "var.exercise",
            dashboard.VariableRefresh.ON_DASHBOARD_LOAD,
            dashboard.VariableSort.ALPHABETICAL_ASC,
        )
    )


def side_variable() -> dash_b.CustomVariable:
    return any_of(dash_b.CustomVariable("side").label("Side (working leg)").values("left,right,none"))


def choice_variable(
    name: str, label: str, values: Sequence[str], default: str, description: str
) -> dash_b.CustomVariable:
    if default not in values:
        raise ValueError(f"{name}: default {default!r} is not one of {values}")
    return (
        dash_b.CustomVariable(name)
        .label(label)
        .description(description)
        .values(",".join(values))
        .current(dashboard.VariableOption(selected=True, text=default, value=default))
    )


def band_variable() -> dash_b.CustomVariable:
    default = f"{DEFAULT_BAND:g}"
    return choice_variable("band", "Band ± (% SI)", ["5", "7.5", default, "15", "20"], default, BAND_NOTE)
