"""`gaitsym report` end to end: demo-like results (simulated sessions analysed for real, written through the store
at earlier dates, with an exercise plan) in the embedded store and in a real InfluxDB 1.6 started here; the same
report from both; the page opened in Debian's headless Chromium (Playwright driving /usr/bin/chromium, never a
downloaded browser): screenshot, no console error, no request, plots present and sized, printed to PDF on A4; a
hostile subject id stays text; bad input gets an error naming what was wrong.
"""

from __future__ import annotations

import re
import stat
import struct
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from analytics.results.reading import read_si
from analytics.stores import open_store
from analytics.stores.model import LIVE_OF, Provenance, results_from_document
from gaitsym.cli import main
from report.build import render_report
from report.errors import (
    InvalidReportInput,
    NoFinalResults,
    ReportStoreError,
    StoreNotFound,
    UnknownSession,
    UnknownSubject,
)
from report.gather import gather_report
from report.markup import esc
from report.page import render
from report.wording import reading_sentence
from testing.influxdb_server import ADMIN_PASSWORD, ADMIN_USER, InfluxDB
from testing.report_data import demo_like_documents, seed_subject, write_session

CHROMIUM = Path("/usr/bin/chromium")
SUBJECT = "demo-like-001"
HOSTILE = 'P<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
HOUR_US = 3600 * 1_000_000
NOW_US = int(time.time() * 1e6)
CURRENT_T0_US = NOW_US - 2 * HOUR_US
A4_PT = (595.28, 841.89)


@pytest.fixture(scope="module")
def documents() -> list[tuple[float, dict[str, Any]]]:
    return demo_like_documents()


@pytest.fixture(scope="module")
def stores(
    tmp_path_factory: pytest.TempPathFactory, influxdb: InfluxDB, documents: list[tuple[float, dict[str, Any]]]
) -> dict[str, str]:
    """Where each store is (path or URL), seeded alike."""
    locations = {
        "embedded": str(tmp_path_factory.mktemp("embedded") / "store.sqlite"),
        "influxdb": influxdb.store_url(),
    }
    for location in locations.values():
        store = open_store(location)
        try:
            seed_subject(store, SUBJECT, current_t0_us=CURRENT_T0_US, documents=documents)
            write_session(store, HOSTILE, "S1", documents[-1][1], CURRENT_T0_US)
        finally:
            store.close()
    return locations


def _report_html(location: str, subject: str = SUBJECT) -> str:
    store = open_store(location)
    try:
        return render(gather_report(store, subject, now_us=NOW_US))
    finally:
        store.close()


def test_the_same_report_from_influxdb_and_the_embedded_store(
    stores: dict[str, str], documents: list[tuple[float, dict[str, Any]]]
) -> None:
    store = open_store(stores["embedded"])
    try:
        report = gather_report(store, SUBJECT, now_us=NOW_US)
    finally:
        store.close()
    assert report.session == "S07"  # the latest session
    assert [p.session for p in report.trend] == [f"S{i:02d}" for i in range(1, 8)]
    # each session read by the one band rule from what its analysis stored (the analysis decides the numbers)
    for point, (_, doc) in zip(report.trend, documents, strict=True):
        evidence = doc["gait"]["summary"]["stance_asymmetry_evidence"]
        ci = evidence["si_ci95_pct"]
        expected = read_si(doc["gait"]["summary"]["stance_si_pct"], None if ci is None else tuple(ci))
        assert point.stance.verdict == ("withheld" if evidence["status"] == "withheld" else expected.verdict)
    assert report.trend[2].stance.verdict == "withheld"
    assert report.trend[2].stance.withheld_reason == "side_labels_untrusted"  # thighs on the wrong legs
    assert report.trend[0].stance.si_pct is not None and report.trend[0].stance.si_pct > 10.0
    assert report.stance_evidence.status == "reported"  # the session summary's evidence fields are read
    assert report.stance_evidence.event_source == "thigh+pelvis"
    lines = {(line.exercise, line.side): line for line in report.exercises}
    assert lines[("single_leg_bridge", "left")].planned_per_week == 5
    assert lines[("single_leg_bridge", "left")].sets_week == 1
    assert lines[("lunge", "right")].planned_per_week is None
    assert dict(lines[("lunge", "right")].metrics)["thigh_internal_rotation_deg"] is not None
    assert _report_html(stores["embedded"]) == _report_html(stores["influxdb"])


def test_gaitsym_report_writes_one_owner_only_page(stores: dict[str, str], tmp_path: Path, capsys) -> None:
    store = open_store(stores["embedded"])
    try:
        stance = gather_report(store, SUBJECT).asymmetry("stance_time_s").reading
    finally:
        store.close()
    for name, location in stores.items():
        out = tmp_path / f"{name}.html"
        assert main(["report", "--subject", SUBJECT, "--store", location, "--out", str(out)]) == 0
        assert str(out) in capsys.readouterr().out
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        assert esc(reading_sentence("stance_time_s", stance)) in out.read_text()
    code = main(["report", "--subject", SUBJECT, "--session", "S03", "--store", stores["influxdb"], "--out", str(out)])
    assert code == 0
    assert "stance time asymmetry withheld" in out.read_text()


def test_bad_input_is_named(stores: dict[str, str], influxdb: InfluxDB, tmp_path: Path, capsys) -> None:
    embedded = stores["embedded"]
    with pytest.raises(UnknownSubject, match="'nobody'"):
        render_report(embedded, "nobody")
    with pytest.raises(UnknownSession, match=r"no stored session 'S99' \(7 stored; the latest: .*'S07'"):
        render_report(stores["influxdb"], SUBJECT, session="S99")
    missing = tmp_path / "typo.sqlite"
    with pytest.raises(StoreNotFound, match=r"typo\.sqlite"):
        render_report(str(missing), SUBJECT)
    assert not missing.exists()  # a report never creates a store
    admin = f"influx://{ADMIN_USER}:{ADMIN_PASSWORD}@127.0.0.1:{influxdb.port}/no_such_db"
    with pytest.raises(StoreNotFound, match="no such database"):
        render_report(admin, SUBJECT)
    with pytest.raises(ReportStoreError, match="may not read this database") as refused:
        render_report(influxdb.store_url("no_such_db"), SUBJECT)  # the worker user: no READ there
    assert "worker-test-pw" not in str(refused.value)
    with pytest.raises(InvalidReportInput, match="control characters"):
        render_report(embedded, "P1\n")
    out = tmp_path / "r.html"
    assert main(["report", "--subject", "nobody", "--store", embedded, "--out", str(out)]) == 2
    assert "no results for subject 'nobody'" in capsys.readouterr().err
    assert not out.exists()
    assert main(["report", "--subject", SUBJECT, "--store", embedded, "--out", str(tmp_path / "no" / "r.html")]) == 2
    assert "folder" in capsys.readouterr().err


def test_a_session_with_only_live_results_is_not_final_yet(stores: dict[str, str], documents) -> None:
    store = open_store(stores["embedded"])
    try:
        provenance = Provenance(analysis_id="live-1", result_version=1, algorithm="gaitsym.analysis 0.1.0")
        final = results_from_document(
            documents[0][1], subject="live-only", session="L1", t0_us=CURRENT_T0_US, provenance=provenance
        )
        # as the worker writes a live window: strides and sets only, in the live measurements
        points = tuple(replace(p, measurement=LIVE_OF[p.measurement]) for p in final.points if p.measurement in LIVE_OF)
        store.write_live(replace(final, points=points))
    finally:
        store.close()
    with pytest.raises(NoFinalResults, match="provisional"):
        render_report(stores["embedded"], "live-only")


# ------------------------------------------------------------------------------------------------ the browser


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _pdf_pages(data: bytes) -> list[tuple[float, float]]:
    assert data[:5] == b"%PDF-"
    boxes = re.findall(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]", data)
    return [(float(x1) - float(x0), float(y1) - float(y0)) for x0, y0, x1, y1 in boxes]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: `apt-get install -y chromium` (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.mark.parametrize("store_name", ["embedded", "influxdb"])
def test_the_report_renders_prints_on_a4_and_fetches_nothing(
    stores: dict[str, str], browser: Any, tmp_path: Path, store_name: str
) -> None:
    out = tmp_path / "report.html"
    assert main(["report", "--subject", SUBJECT, "--store", stores[store_name], "--out", str(out)]) == 0
    page = browser.new_page(viewport={"width": 900, "height": 1200})
    problems: list[str] = []
    requests: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(out.as_uri())
    page.wait_for_load_state("load")
    assert problems == []
    assert requests == [out.as_uri()]  # the page itself, nothing else: self-contained

    plots = page.locator("svg.plot")
    assert plots.count() == 2
    for i in range(2):
        box = plots.nth(i).bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
    # every session of the trend has its tick on the SI plot, the withheld one a cross in its own strip
    assert page.locator("svg.plot-si circle.pt").count() == 6
    assert "withheld" in (page.locator("svg.plot-si").text_content() or "")

    shot = page.screenshot(full_page=True, path=str(tmp_path / "report.png"))
    width, height = _png_size(shot)
    assert width == 900 and height > 1200  # the whole page, longer than one screen

    pdf = page.pdf(prefer_css_page_size=True, print_background=True)
    pages = _pdf_pages(pdf)
    assert pages, "no page in the PDF"
    for w, h in pages:
        assert abs(w - A4_PT[0]) < 1.5 and abs(h - A4_PT[1]) < 1.5, pages
    page.close()


def test_a_hostile_subject_id_stays_text_in_the_browser(stores: dict[str, str], browser: Any, tmp_path: Path) -> None:
    out = tmp_path / "hostile.html"
    assert main(["report", "--subject", HOSTILE, "--store", stores["influxdb"], "--out", str(out)]) == 0
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(out.as_uri())
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img, script").count() == 0
    assert HOSTILE in page.locator("p.who").inner_text()  # shown exactly as stored
    assert requests == [out.as_uri()]
    page.close()
