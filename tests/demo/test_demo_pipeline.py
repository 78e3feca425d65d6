"""`gaitsym demo` end to end, as `make demo` runs it: broker, worker, gateway with the virtual kit, store, report.

Short session, faster than real time; the assertions compare the printed report with the stored results.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.stores import open_store
from gaitsym.cli import main
from gaitsym.demo import SUBJECT, session_report


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline_and_reports_what_is_stored(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code = main(["demo", "--out", str(tmp_path), "--minutes", "3", "--speed", "20"])
    out = capsys.readouterr().out
    assert code == 0, out
    for step in ("[1/4]", "[2/4]", "[3/4]", "[4/4]"):
        assert step in out
    (run,) = tmp_path.iterdir()
    store = open_store(str(run / "store.sqlite"))
    try:
        rows = store.read_results(SUBJECT)
        raw = {p: store.read_raw(SUBJECT, p) for p in ("pelvis", "left_thigh", "right_thigh")}
    finally:
        store.close()
    summaries = [r for r in rows if r.measurement == "session_summary"]
    assert {r.tags["side"] for r in summaries} == {"left", "right", "none"}
    strides = [r for r in rows if r.measurement == "stride"]
    assert len(strides) > 100  # three minutes of mostly walking
    # every sample of the session reached the store, once, in sequence (no gap: nothing was lost)
    for placement, series in raw.items():
        seq = series.seq
        assert len(seq) > 3 * 60 * 100 * 0.9, placement
        assert (seq[1:] - seq[:-1] == 1).all(), placement
    # the printed report is the stored results, rendered
    assert session_report(list(rows)) in out
    left = next(r for r in summaries if r.tags["side"] == "left").fields
    assert f"{left['stance_time_s']:.3f}" in out
    assert "gaitsym results --subject demo-001 --store" in out
    # it ends with the clinician's session report, written into the run folder, its path printed last
    report = (run / f"report-{SUBJECT}.html").resolve()
    assert out.rstrip().splitlines()[-1].endswith(f": {report}")
    assert f"Patient <b>{SUBJECT}</b>" in report.read_text()
