"""The plots and the page (pure): well-formed SVG with units and the band, withheld values never drawn on the
band, every text escaped (ids are untrusted), nothing fetched from anywhere."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from report_samples import sample_report

from analytics.results.reading import read_si
from report.markup import Markup, el, esc, join
from report.model import TrendPoint
from report.page import render
from report.plots import drop_trend_svg, nice_ticks, si_trend_svg

SVG = "{http://www.w3.org/2000/svg}"
DAY_US = 86400 * 1_000_000
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>&amp;'


def _points() -> list[TrendPoint]:
    t0 = 1_780_000_000 * 1_000_000
    return [
        TrendPoint("S1", t0, read_si(14.0, (12.0, 16.0)), "reported", 6.0, 3.0),
        TrendPoint(
            "S2", t0 + 7 * DAY_US, read_si(None, None, withheld_reason="side_labels_untrusted"), "withheld", None, None
        ),
        TrendPoint("S3", t0 + 14 * DAY_US, read_si(3.0, None), "unknown", 4.0, 3.1),
        TrendPoint(HOSTILE, t0 + 21 * DAY_US, read_si(1.0, (-0.5, 2.5)), "reported", 3.2, 3.0),
    ]


def test_nice_ticks_cover_the_range_with_round_steps() -> None:
    assert nice_ticks(-15.0, 15.0) == [-20.0, -10.0, 0.0, 10.0, 20.0]
    assert nice_ticks(-12.0, 14.4, max_ticks=8) == [-15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 15.0]
    ticks = nice_ticks(0.0, 6.22)
    assert ticks[0] <= 0.0 and ticks[-1] >= 6.22 and len(ticks) <= 7
    with pytest.raises(ValueError, match="finite"):
        nice_ticks(0.0, float("nan"))


def test_si_plot_has_units_the_band_and_withheld_off_the_band() -> None:
    svg = si_trend_svg(_points(), 10.0, "S3")
    root = ET.fromstring(svg)  # well-formed XML, escaped ids included
    assert root.get("width") == "680" and root.get("height") == "250"
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "stance-time SI (%)" in texts and "session date (UTC)" in texts
    assert "normal range \u00b110 %" in texts
    band = next(r for r in root.iter(f"{SVG}rect") if r.get("class") == "band")
    band_bottom = float(band.get("y", "0")) + float(band.get("height", "0"))
    titles = [t.text or "" for t in root.iter(f"{SVG}title")]
    assert any(HOSTILE in t for t in titles)  # the id came back out as text, not markup
    # the withheld session is a cross in the strip under the axis, below the band
    withheld = [g for g in root.iter(f"{SVG}g") if "withheld" in (g.findtext(f"{SVG}title") or "")]
    assert len(withheld) == 1
    ys = [float(line.get("y1", "0")) for line in withheld[0].iter(f"{SVG}line")]
    assert min(ys) > band_bottom
    # no interval: drawn hollow; the ringed current session is S3
    points = [c for c in root.iter(f"{SVG}circle") if "pt" in (c.get("class") or "")]
    assert len(points) == 3
    assert [c.get("fill") for c in points].count("#ffffff") == 1


def test_drop_plot_draws_both_sides_and_says_which_is_which() -> None:
    root = ET.fromstring(drop_trend_svg(_points(), "S3"))
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "pelvic drop (deg)" in texts and "left stance" in texts and "right stance" in texts
    assert len([c for c in root.iter(f"{SVG}circle") if c.get("class") == "pt"]) == 3  # left, S2 withheld
    assert len([r for r in root.iter(f"{SVG}rect") if r.get("class") == "pt"]) == 3


def test_markup_escapes_text_and_attributes_but_keeps_markup() -> None:
    assert el("td", "<b>", title='"x"') == '<td title="&quot;x&quot;">&lt;b&gt;</td>'
    assert join([el("b", "a"), "<i>"]) == "<b>a</b>&lt;i&gt;"
    assert esc(Markup("<br>")) == "<br>"
    with pytest.raises(ValueError, match="attribute name"):
        el("td", "x", **{"onclick=alert(1) x": "y"})


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_a_hostile_subject_id_is_text_everywhere_and_nothing_is_fetched() -> None:
    page = render(sample_report(subject=HOSTILE, session=HOSTILE))
    parser = _Tags()
    parser.feed(page)
    names = [tag for tag, _ in parser.tags]
    assert "script" not in names and "img" not in names and "iframe" not in names
    assert not any(key.startswith("on") for _, attrs in parser.tags for key in attrs)
    assert not any(key in ("src", "href") for _, attrs in parser.tags for key in attrs)
    assert HOSTILE in "".join(parser.text)  # shown to the reader exactly as stored
    assert not re.search(r"url\(|@import|https?://(?!www\.w3\.org/2000/svg)", page)
    policy = next(a for t, a in parser.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert (policy.get("content") or "").startswith("default-src 'none'")  # the browser is told to fetch nothing
    assert names.count("svg") == 2


def test_page_states_the_band_and_its_readings() -> None:
    page = render(sample_report())
    assert "within the normal range (\u00b110 %; 95 % interval" in page
    assert "Robinson et al. 1987" in page
    assert "@page { size: A4" in page


def test_sessions_on_sensor_time_are_spaced_evenly_and_said_to_have_no_date() -> None:
    points = [
        TrendPoint("S1", -(2**50), read_si(2.0, (1.0, 3.0)), "reported", 3.0, 3.0),
        TrendPoint("S2", -(2**50) + 10**9, read_si(3.0, (1.0, 5.0)), "reported", 3.1, 3.0),
    ]
    root = ET.fromstring(si_trend_svg(points, 10.0, "S2"))
    assert "clock?" in [t.text for t in root.iter(f"{SVG}text")]
    xs = [float(c.get("cx", "0")) for c in root.iter(f"{SVG}circle") if "pt" in (c.get("class") or "")]
    assert len(xs) == 2 and xs[1] - xs[0] > 400  # evenly across the plot, not stacked on one instant
