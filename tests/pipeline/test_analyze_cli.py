"""`gaitsym analyze DIR [--json]` on a written simulated recording, and on a bad folder."""

from __future__ import annotations

import json

from analysis_testlib import walk

from analytics.recording.io import write_recording
from analytics.results import validate_result
from gaitsym.cli import main


def test_analyze_prints_a_summary_and_json(tmp_path, capsys):
    folder = write_recording(tmp_path / "rec", walk().recording)
    assert main(["analyze", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "stance SI" in text and "95% CI" in text and "pelvic drop" in text and "dynamic_calibration_relative" in text
    assert main(["analyze", str(folder), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    validate_result(doc)
    assert doc["source"] == "analysis" and doc["gait"]["summary"]["stance_si_pct"] is not None


def test_analyze_names_what_is_wrong(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "missing")]) == 2
    assert "not a recording folder" in capsys.readouterr().err
