"""Re-analysis from stored raw data after an algorithm change: the dashboards see only the new results.

A simulated walking session is stored as raw batches (embedded store and a real InfluxDB 1.6), analysed as the
worker does at the session end, then re-analysed with an analysis whose stride boundaries differ (initial
contacts moved by 137 ms, as an event-detector change would). What stays visible must equal a fresh analysis
with the new algorithm, at the next result_version, with no stride of the old analysis left."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from analytics.recording.io import Recording
from analytics.stores import Store, open_store
from analytics.stores.model import STRIDE, Provenance, results_from_document
from analytics.worker.reanalyze import reanalyze
from analytics.worker.results import segment_results
from analytics.worker.segments import FINAL_VERSION, Segment, algorithm_name, default_analyzer, load_segment
from gaitsym.cli import main
from gaitsym_common.uplink.envelope import SensorPosition
from simulator import simulate_session
from testing.stores.storelib import recording_batches
from testing.worker.scenario import fresh_database

T0_UTC_S = float(int(time.time()) // 86400 * 86400 - 2 * 86400 + 3600)  # two days ago, 01:00 UTC
SHIFT_S = 0.137
SESSION = "S-reanalysis-1"


@pytest.fixture(scope="module")
def recording() -> Recording:
    return simulate_session(script="walk", minutes=1.0, seed=5).recording


@pytest.fixture(params=["embedded", "influx_v1"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv("GAITSYM_STATE_DIR", str(tmp_path / "state"))
    if request.param == "embedded":
        s = open_store(str(tmp_path / "store.sqlite"))
    else:
        s = open_store(fresh_database(request.getfixturevalue("influxdb")))
    try:
        yield s
    finally:
        s.close()


def _store_raw(store: Store, subject: str, rec: Recording) -> dict[str, SensorPosition]:
    def serial_of(placement: str) -> str:
        return f"GS24-{placement[:4].upper()}"

    positions = {}
    for placement, batches in recording_batches(rec, subject, SESSION, T0_UTC_S, serial_of, batch_len=1000).items():
        for batch in batches:
            store.write_raw(batch)
        positions[placement] = SensorPosition(serial_of(placement), 7, len(rec.time_s) - 1)
    return positions


def _shifted(rec: Recording) -> dict[str, Any]:
    """The 'new algorithm': every initial contact, hence every stride boundary, 137 ms later."""
    doc = default_analyzer("session")(rec)
    for stride in doc["gait"]["strides"]:
        stride["start_s"] += SHIFT_S
        stride["end_s"] += SHIFT_S
    return doc


def _strides(store: Store, subject: str) -> list[tuple[int, str, float, float]]:
    return [
        (r.time_us, r.tags["side"], float(r.fields["start_s"]), float(r.fields.get("stance_time_s", -1.0)))  # type: ignore[arg-type]
        for r in store.read_results(subject)
        if r.measurement == STRIDE
    ]


@pytest.mark.slow
def test_reanalysis_moves_stride_boundaries_and_leaves_no_stale_result(store: Store, recording: Recording) -> None:
    subject = "R001"
    positions = _store_raw(store, subject, recording)
    end_s = T0_UTC_S + float(recording.time_s[-1])
    final = Segment(subject, SESSION, "session", "marker:gw:end", positions, t_utc_s=end_s)
    loaded = load_segment(store, final)
    assert loaded is not None
    doc = default_analyzer("session")(loaded.recording)
    store.replace_results(segment_results(final, loaded, doc, FINAL_VERSION, algorithm_name()))
    old = _strides(store, subject)
    assert len(old) > 40

    since = datetime.fromtimestamp(T0_UTC_S - 3600, UTC).isoformat()
    done = reanalyze(store, subject, round((T0_UTC_S - 3600) * 1e6), analyzer=_shifted, algorithm="shifted 2")
    assert [(d.session, d.old_version, d.new_version) for d in done] == [(SESSION, 2, 3)], since

    rows = store.read_results(subject)
    assert rows and all(r.fields["result_version"] == 3 and r.fields["algorithm"] == "shifted 2" for r in rows)
    new = _strides(store, subject)
    fresh = results_from_document(
        _shifted(loaded.recording),
        subject=subject,
        session=SESSION,
        t0_us=loaded.t0_us,
        provenance=Provenance("x", 3, "shifted 2"),
    )
    expected = sorted(
        (p.time_us, dict(p.tags)["side"], float(p.fields["start_s"]), float(p.fields.get("stance_time_s", -1.0)))  # type: ignore[arg-type]
        for p in fresh.points
        if p.measurement == STRIDE
    )
    assert new == expected
    assert {t for t, *_ in old}.isdisjoint({t for t, *_ in new})  # no stride of the old analysis is visible
    summaries = [r for r in rows if r.measurement == "session_summary"]
    assert sorted(r.tags["side"] for r in summaries) == ["left", "none", "right"]


@pytest.mark.slow
def test_reanalyze_command_bumps_the_version_and_says_what_it_did(
    tmp_path: Path, recording: Recording, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAITSYM_STATE_DIR", str(tmp_path / "state"))
    path = str(tmp_path / "store.sqlite")
    store = open_store(path)
    subject = "R002"
    positions = _store_raw(store, subject, recording)
    final = Segment(subject, SESSION, "session", "marker:gw:end", positions, t_utc_s=T0_UTC_S + 60.0)
    loaded = load_segment(store, final)
    assert loaded is not None
    doc = default_analyzer("session")(loaded.recording)
    store.replace_results(segment_results(final, loaded, doc, FINAL_VERSION, algorithm_name()))
    before = _strides(store, subject)
    store.close()
    day = datetime.fromtimestamp(T0_UTC_S, UTC).date().isoformat()
    assert main(["reanalyze", "--subject", subject, "--since", day, "--store", path]) == 0
    out = capsys.readouterr().out
    assert f"{SESSION}: version 2 -> 3" in out and "re-analysed 1 session(s)" in out
    store = open_store(path)
    try:
        assert _strides(store, subject) == before  # same algorithm: same strides, next version
        assert {r.fields["result_version"] for r in store.read_results(subject)} == {3}
    finally:
        store.close()
    assert main(["reanalyze", "--subject", subject, "--since", "not-a-date", "--store", path]) == 2
    assert "is not a date" in capsys.readouterr().err
