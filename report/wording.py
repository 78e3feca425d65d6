"""What the report says, in a clinic's words: readings of asymmetries, flag codes, exercise metrics. Pure.

Every verdict comes from `analytics.results.reading.read_si` (the one band rule shared with the dashboards): a
value is called "within the normal range" only when its whole 95 % interval lies inside the band; a withheld
value, a value without an interval, or one whose interval crosses the band's edge is never called normal.
Numbers: SI in % (positive when the left value is larger), times in s, angles in degrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from analytics.algorithms.stride_checks import (
    MIN_STRIDES_PER_SIDE,
    SOURCES_DISAGREE_PP,
    STRIDE_FLAGS,
    WITHHELD_SOURCES_DISAGREE,
    WITHHELD_TOO_FEW_STRIDES,
)
from analytics.results.reading import SiReading, Verdict

MINUS = "\u2212"
PLUS_MINUS = "\u00b1"

FlagKind = Literal["withheld", "quality", "info"]


@dataclass(frozen=True)
class FlagMeaning:
    kind: FlagKind
    """withheld: a number is held back; quality: a number rests on less or poorer data; info: context."""
    meaning: str


SESSION_FLAGS: dict[str, FlagMeaning] = {
    "dynamic_calibration_relative": FlagMeaning(
        "info",
        "Pelvic angles are measured relative to the patient's own quiet standing at the start of this session. "
        "A fixed sideways tilt of the pelvis cannot be told apart from how the sensor sits on the body.",
    ),
    "saturation": FlagMeaning(
        "quality",
        "A sensor reached the end of its measuring range (a knock or a very fast movement); strides during it "
        "were left out.",
    ),
    "sensor_dropout": FlagMeaning(
        "quality", "A sensor stopped sending new values for a while; no steps were timed from it then."
    ),
    "no_walking": FlagMeaning(
        "quality", "No walking was found in this session: there are no gait numbers (stance time, pelvic drop)."
    ),
    "no_standing_reference": FlagMeaning(
        "withheld",
        "No usable quiet standing to measure from: pelvic drop is withheld, because it is measured relative to "
        "the patient's standing posture.",
    ),
    "no_standing": FlagMeaning(
        "quality",
        "Less than 2 s of quiet standing: the pelvis sensor's orientation on the body is less certain.",
    ),
    "wrong_segment": FlagMeaning(
        "withheld",
        "A sensor moved like another body part than its label says (for example the pelvis sensor swings like a "
        "thigh): check where the sensors were worn. Numbers that depend on it are withheld or not used.",
    ),
    "low_alignment_confidence": FlagMeaning(
        "quality", "A sensor's orientation on the body was found with low confidence: its angles are less certain."
    ),
    "thigh_missing": FlagMeaning(
        "quality", "A thigh sensor was missing: steps were timed from the pelvis sensor alone, which is less accurate."
    ),
    "thigh_unusable": FlagMeaning(
        "quality", "A thigh sensor's data could not be used: steps were timed from the pelvis sensor."
    ),
    "thigh_sides_swapped": FlagMeaning(
        "withheld",
        "The thigh sensors appear to be on the opposite legs to their labels: every left/right number is withheld.",
    ),
    "thigh_sides_unconfirmed": FlagMeaning(
        "quality", "It could not be confirmed that the thigh sensors were worn on the legs their labels say."
    ),
    "sides_from_pelvis": FlagMeaning(
        "quality", "No usable thigh sensor: left and right steps were told apart from the pelvis sensor alone."
    ),
    "sides_uncertain": FlagMeaning(
        "withheld", "Left and right steps could not be told apart reliably: every left/right number is withheld."
    ),
    "implausible_strides": FlagMeaning(
        "info",
        "Some strides broke a rule of walking (a missed or extra step, a turn, a start or a stop) and were left "
        "out of the averages; their values are kept.",
    ),
    WITHHELD_TOO_FEW_STRIDES: FlagMeaning(
        "withheld",
        f"Fewer than {MIN_STRIDES_PER_SIDE} usable strides on a side: stance- and step-time asymmetry are withheld, "
        "because so few strides cannot give an honest confidence interval.",
    ),
    WITHHELD_SOURCES_DISAGREE: FlagMeaning(
        "withheld",
        f"The thigh sensors and the pelvis sensor gave stance-time asymmetries more than {SOURCES_DISAGREE_PP:g} "
        "points apart for the same walking: neither is shown, because the difference could change the reading.",
    ),
    "pelvis_only_events": FlagMeaning(
        "info", "Some walking was timed from the pelvis sensor alone (a thigh sensor missing, silent or unusable)."
    ),
    "thigh_contacts_unconfirmed": FlagMeaning(
        "info",
        "Some foot contacts seen by a thigh sensor had no matching contact at the pelvis and were dropped.",
    ),
    "pelvis_contacts_stand_in": FlagMeaning(
        "info",
        "Some foot contacts the thigh sensors missed were taken from the pelvis sensor; the strides around them "
        "are left out of the averages.",
    ),
    "exercises_not_analysed": FlagMeaning("info", "Exercise analysis is not installed in this build."),
    "exercises_failed": FlagMeaning("quality", "The exercise analysis failed: no exercise numbers for this session."),
    "data_gap": FlagMeaning(
        "quality",
        "Some sensor samples never arrived (Bluetooth link lost, gateway off): the analysis ran across the gap, "
        "so the numbers rest on less data.",
    ),
}
"""Codes of a session's ``quality.flags`` (stored in the session summary's ``flags``)."""

SET_FLAGS: dict[str, FlagMeaning] = {
    "set_too_short": FlagMeaning("withheld", "The set was too short to hold a repetition: no numbers."),
    "no_standing_reference": FlagMeaning(
        "withheld", "No quiet standing in the session to measure a standing exercise from: its numbers are withheld."
    ),
    "rest_not_still": FlagMeaning(
        "quality", "The patient moved in the set's first second, the posture it is measured from: less certain."
    ),
    "partial_repetitions": FlagMeaning(
        "info", "Some repetitions were smaller than half the typical movement and were not counted."
    ),
    "hold_interrupted": FlagMeaning("info", "A hold was interrupted; its time includes the interruption."),
    "no_repetitions": FlagMeaning("withheld", "No complete repetition was found: the set's numbers are withheld."),
    "few_repetitions": FlagMeaning("quality", "Fewer than 2 complete repetitions: the numbers rest on too little."),
    "no_pelvis_axes": FlagMeaning(
        "withheld", "No walking in the session to find the pelvis's axes: pelvic angles of the set are withheld."
    ),
    "gyro_bias_unknown": FlagMeaning(
        "withheld", "The thigh sensor was never still for 5 s: thigh rotation of the lunge is withheld."
    ),
    "time_level_uncertain": FlagMeaning(
        "quality",
        "Many hold samples lie near the 2\u00b0 limit for 'level', within the measurement's tolerance: the time "
        "level may be off by that share.",
    ),
    "unassigned_partial_movements": FlagMeaning(
        "info", "Small movements next to the set were not counted as repetitions."
    ),
}
"""Codes at the start of an exercise set's flags (stored as ``code: message``, comma-separated)."""

STRIDE_FLAG_MEANINGS: dict[str, FlagMeaning] = {
    **{code: FlagMeaning("info", f"Left out of the averages: {text}.") for code, text in STRIDE_FLAGS.items()},
    "saturation": FlagMeaning("info", "Left out of the averages: a sensor was at the end of its range."),
    "data_gap": FlagMeaning("info", "Overlaps samples that never arrived (the stride is kept, flagged)."),
    "side_untrusted": FlagMeaning("info", "Its side label could not be trusted (see the session's flags)."),
}
"""Codes of a stride's flags (``analytics.algorithms.stride_checks.STRIDE_FLAGS`` and the pipeline's own)."""

WITHHELD_REASONS: dict[str, str] = {
    WITHHELD_TOO_FEW_STRIDES: SESSION_FLAGS[WITHHELD_TOO_FEW_STRIDES].meaning,
    WITHHELD_SOURCES_DISAGREE: SESSION_FLAGS[WITHHELD_SOURCES_DISAGREE].meaning,
    "side_labels_untrusted": "Left and right could not be trusted in this session (see the flags below), so no "
    "left/right comparison is shown.",
    "no_walking": SESSION_FLAGS["no_walking"].meaning,
    "no_standing_reference": SESSION_FLAGS["no_standing_reference"].meaning,
    "no_value": "No value was stored for this session.",
    "unknown": "No value was stored, and the results predate the stored reason: the reason is unknown.",
    "asymmetry_undefined": "The asymmetry index is not defined here: a side's value is zero or negative.",
}
"""Why an asymmetry is withheld (``stance_si_withheld_reason`` and what the report infers), in plain words."""

_FALLBACK_MEANING = "A code this version of the report does not know; see the message stored with it."


def flag_meaning(code: str, glossary: dict[str, FlagMeaning]) -> FlagMeaning:
    """The meaning of a code, or a plain 'unknown code' meaning (never an error: newer analyses add codes)."""
    return glossary.get(code) or FlagMeaning("info", _FALLBACK_MEANING)


def withheld_reason_text(reason: str | None) -> str:
    if reason is None:
        return WITHHELD_REASONS["unknown"]
    if reason in WITHHELD_REASONS:
        return WITHHELD_REASONS[reason]
    if reason in SESSION_FLAGS:
        return SESSION_FLAGS[reason].meaning
    return f"Withheld for a reason this version of the report does not know ({reason})."


# ----------------------------------------------------------------------------------------------------- numbers


def num(value: float | None, digits: int = 2) -> str:
    """A number with ``digits`` decimals and a true minus sign; an en dash for no value."""
    if value is None:
        return "\u2013"
    text = f"{value:.{digits}f}"
    if text.startswith("-"):
        text = MINUS + text[1:]
    return text


def magnitude_pct(value: float) -> str:
    """|value| in % with one decimal ("4.3", "12.0"): intervals near the band's edge must not look like it."""
    return f"{abs(value):.1f}"


def signed_pct(value: float) -> str:
    """A signed percentage: "+4.3", "\u221212.0", "0.0"."""
    text = magnitude_pct(value)
    if text == "0.0":
        return text
    return ("+" if value > 0 else MINUS) + text


def interval_pct(ci: tuple[float, float]) -> str:
    return f"{signed_pct(ci[0])} to {signed_pct(ci[1])} %"


def band_text(band_pct: float) -> str:
    """The band as set: "\u00b110 %", "\u00b17.5 %"."""
    return f"{PLUS_MINUS}{band_pct:g} %"


# ------------------------------------------------------------------------------------------------ asymmetries


@dataclass(frozen=True)
class MetricWords:
    name: str
    """What it is, in words ("stance time")."""
    larger: str
    """How the larger side is said ("longer")."""
    side_words: tuple[str, str]
    """How the left and right side are said ("on the left", "during left stance")."""
    unit: str


METRIC_WORDS: dict[str, MetricWords] = {
    "stance_time_s": MetricWords("stance time", "longer", ("on the left", "on the right"), "s"),
    "step_time_s": MetricWords("step time", "longer", ("on the left", "on the right"), "s"),
    "pelvic_drop_deg": MetricWords(
        "pelvic drop", "larger", ("during left stance (right hip drops)", "during right stance (left hip drops)"), "deg"
    ),
}

VERDICT_LABELS: dict[Verdict, str] = {
    "within": "within range",
    "outside": "outside range",
    "uncertain": "not conclusive",
    "withheld": "withheld",
}
"""Short labels of the verdicts (badges); the sentences say them in full."""


def reading_sentence(metric: str, reading: SiReading) -> str:
    """One plain sentence for an asymmetry read against the band, e.g. "stance time 4 % longer on the left,
    within the normal range (\u00b110 %; 95 % interval +1.5 to +6 %)"."""
    words = METRIC_WORDS[metric]
    band = band_text(reading.band_pct)
    if reading.verdict == "withheld" or reading.si_pct is None:
        return (
            f"{words.name} asymmetry withheld: {withheld_reason_text(reading.withheld_reason)} "
            "This is not a normal result: this session cannot say."
        )
    if reading.longer_side is None:
        head = f"{words.name} the same on both sides"
    else:
        side = words.side_words[0 if reading.longer_side == "left" else 1]
        head = f"{words.name} {magnitude_pct(reading.si_pct)} % {words.larger} {side}"
    ci = reading.ci95_pct
    if reading.verdict == "within":
        assert ci is not None  # read_si calls a value within only with its interval
        return f"{head}, within the normal range ({band}; 95 % interval {interval_pct(ci)})"
    if reading.verdict == "outside":
        assert ci is not None
        return f"{head}, outside the normal range ({band}): its whole 95 % interval ({interval_pct(ci)}) lies beyond it"
    if ci is None:
        return (
            f"{head}; not called normal: no 95 % interval is stored for this session, so it cannot be placed "
            f"against the normal range ({band})"
        )
    return (
        f"{head}; not conclusive: its 95 % interval ({interval_pct(ci)}) crosses the edge of the normal range "
        f"({band}), so it is neither called normal nor abnormal"
    )


def difference_text(metric: str, left: float | None, right: float | None) -> str | None:
    """The two sides and their difference in the metric's own unit (what an SI hides when values are small)."""
    if left is None or right is None:
        return None
    unit = "\u00b0" if METRIC_WORDS[metric].unit == "deg" else " s"
    digits = 2 if unit == "\u00b0" else 3
    return (
        f"Left {num(left, digits)}{unit}, right {num(right, digits)}{unit}: difference left \u2212 right "
        f"{'+' if left - right > 0 else ''}{num(left - right, digits)}{unit}."
    )


def band_note(band_pct: float) -> str:
    return (
        f"Normal range: a symmetry index within {band_text(band_pct)}. This cut-off is common and arbitrary "
        "(Robinson et al. 1987; Patterson et al. 2010 show such thresholds differ between studies); a clinic may "
        "set its own. A value is called within it only when its whole 95 % interval is; a withheld value, a "
        "value without an interval, or one whose interval crosses the edge is never called normal."
    )


SI_DEFINITION = (
    "Symmetry index SI = 100 \u00d7 (left \u2212 right) / mean of both, in %: positive when the left value is larger. "
    "Strides at the start and end of each walking bout are left out."
)

EVENT_SOURCES = {
    "thigh+pelvis": "foot contacts from the thigh sensors, confirmed by the pelvis sensor",
    "pelvis": "foot contacts from the pelvis sensor alone (less accurate)",
    "mixed": "foot contacts from the thigh sensors in some walking, the pelvis alone in the rest",
}


# -------------------------------------------------------------------------------------------------- exercises


@dataclass(frozen=True)
class SetMetricWords:
    name: str
    unit: str
    better: str
    """What a better value looks like, in words."""


SET_METRICS: dict[str, SetMetricWords] = {
    "time_level_pct": SetMetricWords(
        "time with the pelvis level (within 2\u00b0)", "%", "higher: the pelvis stays level"
    ),
    "pelvic_drop_mean_deg": SetMetricWords("pelvic drop, mean", "\u00b0", "lower: less drop of the free side"),
    "pelvic_drop_peak_deg": SetMetricWords("pelvic drop, peak", "\u00b0", "lower"),
    "obliquity_abs_mean_deg": SetMetricWords("sideways pelvic tilt, mean", "\u00b0", "lower: the pelvis stays level"),
    "obliquity_abs_peak_deg": SetMetricWords("sideways pelvic tilt, peak", "\u00b0", "lower"),
    "thigh_rotation_amplitude_deg": SetMetricWords("thigh opening", "\u00b0", "larger: a fuller movement"),
    "pelvic_rollback_deg": SetMetricWords("pelvis rolling back", "\u00b0", "lower: the pelvis stays still"),
    "thigh_internal_rotation_deg": SetMetricWords(
        "thigh turning inwards", "\u00b0", "lower: the knee stays in line with the foot"
    ),
    "pelvic_drop_deg": SetMetricWords("pelvic drop, peak per repetition", "\u00b0", "lower: the pelvis stays level"),
}
"""The exercise-set metrics of gaitsym.result/1 (analytics.algorithms.exercise_sets), in a clinic's words."""

SET_METRIC_ORDER = tuple(SET_METRICS)

SIDE_WORDS = {"left": "left", "right": "right", "none": "both"}


def set_metric_text(name: str, value: float | None) -> str:
    words = SET_METRICS.get(name)
    if words is None:
        return f"{name.replace('_', ' ')} {num(value, 1)}"
    digits = 0 if words.unit == "%" else 1
    sep = " " if words.unit == "%" else ""
    return f"{words.name} {num(value, digits)}{sep}{words.unit}"


def week_text(sets_week: int, planned_per_week: int | None, planned_reps: int | None) -> str:
    """Sets in the 7 days up to the session against the plan: "3 of 5 planned", or the count alone."""
    if planned_per_week is None:
        return f"{sets_week} (no plan)"
    reps = f" \u00d7 {planned_reps} reps" if planned_reps is not None else ""
    return f"{sets_week} of {planned_per_week} planned{reps}"
