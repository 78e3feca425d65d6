"""What the report says: every verdict from the one band rule, in words a clinician reads; every flag code the
analysis can raise has a plain meaning."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analytics.results.reading import read_si
from report.wording import (
    SESSION_FLAGS,
    SET_FLAGS,
    STRIDE_FLAG_MEANINGS,
    WITHHELD_REASONS,
    difference_text,
    reading_sentence,
    withheld_reason_text,
)

ROOT = Path(__file__).resolve().parents[2]


def test_within_reads_as_the_issue_says() -> None:
    sentence = reading_sentence("stance_time_s", read_si(4.0, (1.5, 6.0)))
    assert sentence == (
        "stance time 4.0 % longer on the left, within the normal range (\u00b110 %; 95 % interval +1.5 to +6.0 %)"
    )


def test_right_side_and_outside() -> None:
    sentence = reading_sentence("stance_time_s", read_si(-18.0, (-24.0, -12.0)))
    assert sentence.startswith("stance time 18.0 % longer on the right, outside the normal range (\u00b110 %)")
    assert "\u221224.0 to \u221212.0 %" in sentence


@pytest.mark.parametrize(
    ("si", "ci"),
    [(4.0, (-2.0, 12.5)), (9.9, (9.5, 10.3)), (1.0, None), (-9.0, (-14.0, -4.0))],
)
def test_never_called_normal_when_the_interval_crosses_or_is_missing(si: float, ci: tuple[float, float] | None) -> None:
    sentence = reading_sentence("stance_time_s", read_si(si, ci))
    assert "within" not in sentence
    assert "not called normal" in sentence or "neither called normal" in sentence


def test_an_interval_just_beyond_the_edge_is_not_rounded_onto_it() -> None:
    # 10.04 shown as "+10" would read as touching the band; one decimal keeps it visibly outside
    sentence = reading_sentence("stance_time_s", read_si(11.5, (10.04, 12.6)))
    assert "+10.0 to +12.6 %" in sentence and "outside" in sentence


def test_withheld_says_why_and_that_it_is_not_normal() -> None:
    sentence = reading_sentence("stance_time_s", read_si(None, None, withheld_reason="asymmetry_too_few_strides"))
    assert "withheld" in sentence
    assert "10 usable strides" in sentence
    assert "not a normal result" in sentence
    assert "within" not in sentence


def test_unknown_reasons_are_said_plainly() -> None:
    assert "unknown" in withheld_reason_text(None)
    assert "does not know (brand_new_code)" in withheld_reason_text("brand_new_code")
    assert withheld_reason_text("side_labels_untrusted") == WITHHELD_REASONS["side_labels_untrusted"]


def test_equal_sides_and_a_clinic_band() -> None:
    assert reading_sentence("step_time_s", read_si(0.0, (-0.5, 0.5))).startswith("step time the same on both sides")
    sentence = reading_sentence("pelvic_drop_deg", read_si(6.0, (5.0, 7.0), band_pct=7.5))
    assert "during left stance" in sentence and "\u00b17.5 %" in sentence


def test_difference_in_the_metrics_unit() -> None:
    assert difference_text("pelvic_drop_deg", 3.14, 2.99) == (
        "Left 3.14\u00b0, right 2.99\u00b0: difference left \u2212 right +0.15\u00b0."
    )
    assert difference_text("stance_time_s", 0.6, None) is None


def _codes_raised_in_analytics() -> tuple[set[str], set[str]]:
    """Session flag codes (``flags.add("code", ...)`` and ``"code": "..."`` flag dicts) and exercise-set codes
    (``"code: message"`` strings) in the analytics source."""
    session: set[str] = set()
    sets: set[str] = set()
    for path in (ROOT / "analytics").rglob("*.py"):
        text = path.read_text()
        session |= set(re.findall(r'flags\.add\(\s*"([a-z][a-z0-9_]*)"', text))
        session |= set(re.findall(r'"code":\s*"([a-z][a-z0-9_]*)"', text))
        if "exercise" in path.name:
            sets |= set(re.findall(r'append\(\s*f?"([a-z][a-z0-9_]*):', text))
    return session, sets


def test_every_flag_code_the_analysis_raises_has_a_plain_meaning() -> None:
    session, sets = _codes_raised_in_analytics()
    assert {"no_walking", "wrong_segment", "data_gap", "thigh_sides_swapped"} <= session  # the scan works
    assert {"partial_repetitions", "time_level_uncertain", "no_repetitions"} <= sets
    assert session - set(SESSION_FLAGS) == set()
    assert sets - set(SET_FLAGS) == set()
    # the gate's codes are raised through a variable: named in stride_checks, read from there
    assert {"asymmetry_too_few_strides", "asymmetry_sources_disagree"} <= set(SESSION_FLAGS)
    assert {"off_rhythm", "stance_implausible", "side_untrusted", "data_gap"} <= set(STRIDE_FLAG_MEANINGS)
