"""`gaitsym results` against the embedded store and the real InfluxDB 1.6."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics.stores import open_store
from analytics.stores.model import Provenance, results_from_document
from gaitsym.cli import main
from testing.influxdb_server import InfluxDB
from testing.stores.storelib import T0_UTC_S, new_subject, result_doc


def _fill(location: str, subject: str) -> None:
    store = open_store(location)
    prov = Provenance(analysis_id="a1", result_version=1, algorithm="gaitsym-analytics 0.1.0")
    store.replace_results(
        results_from_document(result_doc(), subject=subject, session="S1", t0_us=round(T0_UTC_S * 1e6), provenance=prov)
    )
    store.close()


@pytest.mark.parametrize("kind", ["embedded", "influx"])
def test_results_table_and_json(
    kind: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.chdir(tmp_path)  # the InfluxDB store's quarantine file lands here
    location = str(tmp_path / "store.sqlite") if kind == "embedded" else request.getfixturevalue("influxdb").store_url()
    subject = new_subject()
    _fill(location, subject)
    assert main(["results", "--subject", subject, "--store", location]) == 0
    table = capsys.readouterr().out
    assert "stance 0.660 s, drop 4.00 deg" in table and "single_leg_bridge" in table and "stance SI 6.25 %" in table
    assert main(["results", "--subject", subject, "--session", "S1", "--store", location, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc) == 6 + 1 + 3 and {d["measurement"] for d in doc} == {"stride", "exercise_set", "session_summary"}
    assert main(["results", "--subject", subject, "--session", "nope", "--store", location]) == 0
    assert "no results" in capsys.readouterr().out


def test_results_bad_store_says_so(capsys: pytest.CaptureFixture[str], influxdb: InfluxDB) -> None:
    assert main(["results", "--subject", "P1", "--store", "mysql://x"]) == 2
    assert "unknown store scheme" in capsys.readouterr().err
