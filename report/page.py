"""The report as one self-contained HTML page: inline CSS (screen and A4 print), inline SVG plots, no script, no
request to anywhere. Pure: a `SessionReport` in, a string out. Every text goes through `report.markup` (escaped).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from analytics.results.reading import Verdict
from report.markup import Markup, el, join
from report.model import Asymmetry, ExerciseLine, SessionReport
from report.plots import LEFT_COLOUR, RIGHT_COLOUR, VERDICT_COLOURS, drop_trend_svg, si_trend_svg
from report.wording import (
    EVENT_SOURCES,
    METRIC_WORDS,
    SESSION_FLAGS,
    SET_FLAGS,
    SI_DEFINITION,
    SIDE_WORDS,
    STRIDE_FLAG_MEANINGS,
    VERDICT_LABELS,
    band_note,
    difference_text,
    flag_meaning,
    interval_pct,
    num,
    reading_sentence,
    set_metric_text,
    signed_pct,
    week_text,
    withheld_reason_text,
)

CSS = f"""
:root {{ --ink: #222; --muted: #5f5f5f; --rule: #cfcfcf; }}
* {{ box-sizing: border-box; }}
body {{ font-family: system-ui, "DejaVu Sans", Arial, sans-serif; color: var(--ink); margin: 0 auto; max-width: 760px;
  padding: 16px 20px 32px; font-size: 14px; line-height: 1.45; }}
h1 {{ font-size: 22px; margin: 0 0 2px; }}
h2 {{ font-size: 17px; margin: 22px 0 8px; border-bottom: 2px solid var(--ink); padding-bottom: 2px; }}
h3 {{ font-size: 14px; margin: 14px 0 6px; }}
p {{ margin: 6px 0; }}
.who {{ color: var(--muted); margin: 0 0 10px; }}
.who b {{ color: var(--ink); }}
table {{ border-collapse: collapse; width: 100%; margin: 6px 0 10px; }}
th, td {{ border-bottom: 1px solid var(--rule); padding: 4px 6px; text-align: left; vertical-align: top; }}
th {{ font-weight: 600; background: #f3f3f3; }}
td.num, th.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
td.num {{ white-space: nowrap; }}
.nowrap, .badge {{ white-space: nowrap; }}
td.quality {{ min-width: 13em; }}
table.exercises td, table.flags td {{ font-size: 13px; }}
table.flags td:nth-child(3) {{ width: 42%; }}
.reading {{ border-left: 5px solid var(--muted); padding: 6px 10px; margin: 8px 0; background: #fafafa; }}
.reading.within {{ border-color: {VERDICT_COLOURS["within"]}; }}
.reading.outside {{ border-color: {VERDICT_COLOURS["outside"]}; }}
.reading.uncertain {{ border-color: {VERDICT_COLOURS["uncertain"]}; }}
.reading.withheld {{ border-color: {VERDICT_COLOURS["withheld"]}; background: #f1f1f1; }}
.badge {{ display: inline-block; font-size: 11px; font-weight: 700; text-transform: uppercase; letter-spacing: .03em;
  padding: 0 5px; border-radius: 3px; color: #fff; background: {VERDICT_COLOURS["withheld"]}; margin-right: 6px; }}
.badge.within {{ background: {VERDICT_COLOURS["within"]}; }}
.badge.outside {{ background: {VERDICT_COLOURS["outside"]}; }}
.badge.uncertain {{ background: {VERDICT_COLOURS["uncertain"]}; }}
.kind {{ font-size: 11px; text-transform: uppercase; color: var(--muted); white-space: nowrap; }}
.kind.withheld {{ color: {VERDICT_COLOURS["outside"]}; font-weight: 700; }}
.note {{ color: var(--muted); font-size: 12.5px; }}
figure {{ margin: 8px 0 12px; }}
figcaption {{ color: var(--muted); font-size: 12.5px; }}
svg.plot {{ display: block; max-width: 100%; height: auto; border: 1px solid var(--rule); background: #fff; }}
.key-left {{ color: {LEFT_COLOUR}; font-weight: 600; }}
.key-right {{ color: {RIGHT_COLOUR}; font-weight: 600; }}
code {{ font-size: 12px; background: #f1f1f1; padding: 0 3px; border-radius: 2px; }}
ul.where {{ margin: 0; padding-left: 1.1em; }}
footer {{ margin-top: 24px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--rule);
  padding-top: 6px; }}
@page {{ size: A4; margin: 14mm 12mm; }}
@media print {{
  body {{ max-width: none; padding: 0; font-size: 10pt; }}
  table.exercises td, table.flags td, .note {{ font-size: 8.5pt; }}
  * {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }}
  h2 {{ break-after: avoid; }}
  figure, .reading, tr, .keep {{ break-inside: avoid; }}
  svg.plot {{ width: 100%; }}
}}
"""


def when(time_us: int) -> str:
    """A stored time as a UTC date and time; sensor time (unsynchronised clock) said as such."""
    if time_us < 0:
        return "unknown date (the gateway's clock was not synchronised)"
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=time_us)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


_WBR = Markup("<wbr>")


def _code(code: str) -> Markup:
    """A flag code that may break after its underscores in a narrow column."""
    parts = code.split("_")
    pieces: list[Markup | str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        pieces += [part] if last else [part + "_", _WBR]
    return el("code", pieces)


def short_when(time_us: int) -> str:
    if time_us < 0:
        return "clock not set"
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=time_us)
    return moment.strftime("%Y-%m-%d %H:%M")


def _badge(verdict: Verdict) -> Markup:
    return el("span", VERDICT_LABELS[verdict], class_=f"badge {verdict}")


def _reading_block(asym: Asymmetry) -> Markup:
    verdict = asym.reading.verdict
    sides = difference_text(asym.metric, asym.left, asym.right)
    return el(
        "p",
        _badge(verdict),
        reading_sentence(asym.metric, asym.reading),
        el("span", " ", sides, class_="note") if sides else None,
        class_=f"reading {verdict}",
    )


def _asymmetry_cell(asym: Asymmetry) -> Markup:
    reading = asym.reading
    if reading.si_pct is None:
        return el("td", "withheld", class_="num")
    interval = "no interval" if reading.ci95_pct is None else interval_pct(reading.ci95_pct)
    return el("td", f"SI {signed_pct(reading.si_pct)} %", el("div", interval, class_="note"), class_="num")


def _table(headings: list[Markup], rows: list[Markup], *, class_: str | None = None) -> Markup:
    """A table: one row of ``th`` headings, then ``rows``."""
    return el("table", el("thead", el("tr", headings)), el("tbody", rows), class_=class_)


def _session_section(report: SessionReport) -> Markup:
    stance = report.asymmetry("stance_time_s")
    others = [a for a in report.asymmetries if a.metric != "stance_time_s"]
    rows = [
        el(
            "tr",
            el("td", "strides summarised"),
            el("td", num(report.n_strides[0], 0) if report.n_strides[0] is not None else "\u2013", class_="num"),
            el("td", num(report.n_strides[1], 0) if report.n_strides[1] is not None else "\u2013", class_="num"),
            el("td", ""),
            el("td", ""),
        )
    ]
    for asym in report.asymmetries:
        words = METRIC_WORDS[asym.metric]
        digits = 3 if words.unit == "s" else 2
        unit = "s" if words.unit == "s" else "deg"
        rows.append(
            el(
                "tr",
                el("td", f"{words.name}, {unit}"),
                el("td", num(asym.left, digits), class_="num"),
                el("td", num(asym.right, digits), class_="num"),
                _asymmetry_cell(asym),
                el("td", _badge(asym.reading.verdict)),
            )
        )
    table = _table(
        [
            el("th", "measure"),
            el("th", "left", class_="num"),
            el("th", "right", class_="num"),
            el("th", "asymmetry (95 % interval)", class_="num"),
            el("th", "reading"),
        ],
        rows,
        class_="keep",
    )
    evidence = report.stance_evidence
    basis: list[str] = []
    if evidence.status == "unknown":
        basis.append(
            "These results were stored before the stance asymmetry's status and interval were kept: without an "
            "interval it is never called normal."
        )
    if evidence.event_source:
        basis.append(f"Steps timed from {EVENT_SOURCES.get(evidence.event_source, evidence.event_source)}.")
    if evidence.cross_check_thigh_si_pct is not None and evidence.cross_check_pelvis_si_pct is not None:
        basis.append(
            f"Cross-check over the same walking: thigh sensors {signed_pct(evidence.cross_check_thigh_si_pct)} %, "
            f"pelvis sensor alone {signed_pct(evidence.cross_check_pelvis_si_pct)} %."
        )
    return join(
        [
            el("h2", "This session: left and right"),
            _reading_block(stance),
            join(_reading_block(a) for a in others),
            table,
            el("p", " ".join(basis), class_="note") if basis else None,
            el(
                "p",
                SI_DEFINITION,
                " Pelvic drop: the opposite hip's drop during each side's stance, relative to "
                "quiet standing (a weak hip abductor on the stance side lets the other side drop).",
                class_="note",
            ),
        ]
    )


def _trend_section(report: SessionReport) -> Markup:
    weeks = f"{report.trend_weeks:g}"
    rows = []
    for p in reversed(report.trend):
        si = p.stance
        value = "withheld" if si.si_pct is None else f"{signed_pct(si.si_pct)} %"
        ci = None
        if si.si_pct is not None:
            ci = el("div", "no interval" if si.ci95_pct is None else interval_pct(si.ci95_pct), class_="note")
        rows.append(
            el(
                "tr",
                el("td", short_when(p.time_us), class_="nowrap"),
                el("td", p.session, el("div", "this report", class_="note") if p.session == report.session else None),
                el("td", value, ci, class_="num"),
                el("td", _badge(si.verdict)),
                el("td", num(p.drop_left_deg, 2), class_="num"),
                el("td", num(p.drop_right_deg, 2), class_="num"),
            )
        )
    n = len(report.trend)
    intro = (
        f"{n} session{'s' if n != 1 else ''} with final results in the {weeks} weeks up to this one."
        if n > 1
        else f"No earlier session with final results in the {weeks} weeks before this one: the trend starts here."
    )
    return join(
        [
            el("h2", "Trend over the previous sessions"),
            el("p", intro),
            el(
                "figure",
                si_trend_svg(report.trend, report.band_pct, report.session),
                el(
                    "figcaption",
                    "Stance-time symmetry index per session with its 95 % interval; the shaded band is the normal "
                    "range. Filled: an interval is stored; hollow: no interval (never read as normal); a cross in "
                    "the bottom strip: withheld. The ringed point is this report's session.",
                ),
            ),
            el(
                "figure",
                drop_trend_svg(report.trend, report.session),
                el(
                    "figcaption",
                    el("span", "Circles", class_="key-left"),
                    ": pelvic drop during left stance; ",
                    el("span", "squares", class_="key-right"),
                    ": during right stance (degrees, relative to quiet standing). The dotted line marks this "
                    "report's session.",
                ),
            ),
            _table(
                [
                    el("th", "date (UTC)"),
                    el("th", "session"),
                    el("th", "stance SI (95 % interval)", class_="num"),
                    el("th", "reading"),
                    el("th", "drop L, deg", class_="num"),
                    el("th", "drop R, deg", class_="num"),
                ],
                rows,
            ),
        ]
    )


def _exercise_row(line: ExerciseLine) -> Markup:
    amount = []
    if line.reps is not None:
        amount.append(f"{line.reps} repetitions")
    if line.hold_mean_s is not None:
        amount.append(f"holds {num(line.hold_mean_s, 1)} s on average")
    quality = [el("div", ", ".join(amount), class_="note")] if amount else []
    quality += [el("div", set_metric_text(name, value)) for name, value in line.metrics]
    codes = sorted({f.code for f in line.flags})
    return el(
        "tr",
        el("td", line.label),
        el("td", SIDE_WORDS.get(line.side, line.side)),
        el("td", str(line.sets_done), class_="num"),
        el("td", week_text(line.sets_week, line.planned_per_week, line.planned_reps_per_set)),
        el("td", join(quality) if quality else "\u2013", class_="quality"),
        el("td", join(el("div", _code(c)) for c in codes) if codes else "none"),
    )


def _exercise_section(report: SessionReport) -> Markup:
    heading = el("h2", "Exercises: quality per side")
    if not report.exercises:
        return join([heading, el("p", "No exercise set was recorded in this session.")])
    plan_note = (
        "Sets in 7 days: the sets done in the week up to this session against the plan in force "
        "(sets a week, set with the command gaitsym plan)."
        if report.has_plan
        else "Sets in 7 days: counts only (no exercise plan is set for this patient; gaitsym plan sets one)."
    )
    table = _table(
        [
            el("th", "exercise"),
            el("th", "side"),
            el("th", "sets", class_="num"),
            el("th", "sets in 7 days"),
            el("th", "quality (mean over the sets)"),
            el("th", "flags"),
        ],
        [_exercise_row(line) for line in report.exercises],
        class_="exercises",
    )
    return join(
        [
            heading,
            table,
            el(
                "p",
                plan_note,
                " Side: the working leg (the supporting leg in the bridge and single-leg stance, the top leg in the "
                "clam, the front leg in the lunge). Exercise measures are validated on simulated movements only, "
                "until real exercise recordings exist.",
                class_="note",
            ),
        ]
    )


def _quality_section(report: SessionReport) -> Markup:
    found: dict[str, tuple[str, str, list[str]]] = {}

    def add(code: str, meaning_kind: str, meaning: str, where: str) -> None:
        found.setdefault(code, (meaning_kind, meaning, []))[2].append(where)

    for code in report.session_flags:
        meaning = flag_meaning(code, SESSION_FLAGS)
        add(code, meaning.kind, meaning.meaning, "this session")
    for line in report.exercises:
        for note in line.flags:
            meaning = flag_meaning(note.code, SET_FLAGS)
            add(
                note.code,
                meaning.kind,
                meaning.meaning,
                f"{line.label}, {SIDE_WORDS.get(line.side, line.side)}: {note.detail}",
            )
    for code, count in report.excluded_strides:
        meaning = flag_meaning(code, STRIDE_FLAG_MEANINGS)
        add(code, meaning.kind, meaning.meaning, f"{count} stride{'s' if count != 1 else ''}")
    order = {"withheld": 0, "quality": 1, "info": 2}
    rows = [
        el(
            "tr",
            el("td", _code(code)),
            el("td", el("span", kind, class_=f"kind {kind}")),
            el("td", meaning),
            el("td", el("ul", [el("li", w) for w in where], class_="where")),
        )
        for code, (kind, meaning, where) in sorted(found.items(), key=lambda item: (order[item[1][0]], item[0]))
    ]
    withheld = [a for a in report.asymmetries if a.reading.verdict == "withheld"]
    parts: list[Markup] = [el("h2", "Data quality and withheld values")]
    if withheld:
        parts.append(
            el(
                "p",
                el("b", "Withheld: "),
                "; ".join(
                    f"{METRIC_WORDS[a.metric].name} asymmetry ({withheld_reason_text(a.reading.withheld_reason)})"
                    for a in withheld
                ),
                " A withheld value is not a normal one: the session cannot say.",
            )
        )
    else:
        parts.append(el("p", "No asymmetry of this session is withheld."))
    if report.gaps:
        parts.append(el("p", el("b", "Samples that never arrived: "), report.gaps))
    if rows:
        parts.append(
            _table(
                [el("th", "flag"), el("th", "kind"), el("th", "what it means"), el("th", "where")],
                rows,
                class_="flags",
            )
        )
        parts.append(
            el(
                "p",
                "Kinds: withheld = a number is held back; quality = a number rests on less or poorer data; info = "
                "context for reading the numbers.",
                class_="note",
            )
        )
    else:
        parts.append(el("p", "No flag was raised for this session."))
    return join(parts)


def render(report: SessionReport) -> str:
    """The whole page (UTF-8 HTML5)."""
    duration = "" if report.duration_s is None else f", {report.duration_s / 60:.1f} min analysed"
    version = "" if report.result_version is None else f", analysis version {report.result_version}"
    head = el(
        "head",
        el("meta", charset="utf-8"),
        el("meta", name="viewport", content="width=device-width, initial-scale=1"),
        el("meta", http_equiv="Content-Security-Policy", content="default-src 'none'; style-src 'unsafe-inline'"),
        el("title", f"gaitsym session report: {report.subject}, session {report.session}"),
        el("style", Markup(CSS)),
    )
    body = el(
        "body",
        el("h1", "Session report: pelvic control"),
        el(
            "p",
            "Patient ",
            el("b", report.subject),
            " \u00b7 session ",
            el("b", report.session),
            " \u00b7 ",
            when(report.time_us),
            duration,
            version,
            class_="who",
        ),
        _session_section(report),
        _trend_section(report),
        _exercise_section(report),
        _quality_section(report),
        el("h2", "How to read this report"),
        el("p", band_note(report.band_pct)),
        el(
            "p",
            "Pelvic angles are dynamic and relative to the patient's own quiet standing at the start of each "
            "session: a fixed sideways tilt of the pelvis cannot be separated from how the sensor sits on the body. "
            "Every number is measured by body-worn sensors at home; none is a diagnosis.",
        ),
        el(
            "footer",
            f"Generated by gaitsym on {when(report.generated_us)} from the stored final results"
            + (f" ({report.algorithm})" if report.algorithm else "")
            + ". Provisional (live) results are never shown.",
        ),
    )
    return "<!DOCTYPE html>\n" + el("html", head, body, lang="en") + "\n"
