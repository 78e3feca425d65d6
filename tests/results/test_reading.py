"""The band rule: a value is "within" only when its whole interval is inside the band."""

import pytest

from analytics.results.reading import DEFAULT_SI_BAND_PCT, read_si


def test_whole_interval_inside_the_band_reads_within() -> None:
    reading = read_si(4.0, (1.5, 6.0))
    assert reading.verdict == "within"
    assert reading.longer_side == "left"
    assert reading.band_pct == DEFAULT_SI_BAND_PCT


def test_interval_crossing_the_edge_is_never_called_normal() -> None:
    assert read_si(4.0, (-2.0, 12.5)).verdict == "uncertain"
    assert read_si(-9.0, (-14.0, -4.0)).verdict == "uncertain"


def test_no_interval_is_uncertain_not_within() -> None:
    reading = read_si(1.0, None)
    assert reading.verdict == "uncertain"


def test_whole_interval_beyond_an_edge_reads_outside_on_the_longer_side() -> None:
    reading = read_si(-18.0, (-24.0, -12.0))
    assert reading.verdict == "outside"
    assert reading.longer_side == "right"


def test_withheld_keeps_its_reason_and_has_no_value() -> None:
    reading = read_si(None, None, withheld_reason="too_few_strides")
    assert reading.verdict == "withheld"
    assert reading.si_pct is None
    assert reading.withheld_reason == "too_few_strides"
    # a value with a withheld reason is still withheld: the reason wins
    assert read_si(3.0, (1.0, 5.0), withheld_reason="sources_disagree").verdict == "withheld"


def test_band_is_configurable_and_must_be_positive() -> None:
    assert read_si(4.0, (1.5, 6.0), band_pct=5.0).verdict == "uncertain"
    assert read_si(4.0, (1.5, 6.0), band_pct=20.0).verdict == "within"
    with pytest.raises(ValueError, match="band_pct"):
        read_si(4.0, (1.5, 6.0), band_pct=0.0)
