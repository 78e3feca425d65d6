"""Round trip for real: a simulated home session streamed through the production gateway core, a real Mosquitto and
a real `gaitsym worker` process into each store (the embedded SQLite file; a real InfluxDB 1.6), 1 % of its
packets lost on the air (gaps), then exported as CSV, Parquet and Motion-BIDS and read back with pandas and
pyarrow: every exported sample equals, bit for bit, what the simulator sent and what the store holds; the gaps
are listed where the packets were lost and appear as n/a rows in Motion-BIDS; the BIDS export passes the official
validator with zero errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from analytics.stores import open_store
from analytics.stores.influx import InfluxStore
from export.columns import RESULT_TABLES
from export.run import ExportOutcome, ExportRequest, run_export
from firmware_protocol.packet import decode_packet
from firmware_protocol.packet_arrays import decode_packets
from simulator import packets as sim_packets
from testing.servers import Mosquitto
from testing.worker.scenario import Outcome, fresh_database, run_scenario
from tests.export.bids_check import check_beyond_validator, motion_files, validate

pytestmark = pytest.mark.slow

SUBJECT = "S001"


@dataclass
class Sent:
    """What the simulator sent for one sensor: samples by sequence number (lost packets not included)."""

    seq: np.ndarray
    ticks: np.ndarray
    values: np.ndarray


def simulator_sent(outcome: Outcome) -> dict[str, Sent]:
    kit = outcome.sessions[0].kit
    by_placement: dict[str, list[bytes]] = {}
    for _, placement, data in sim_packets.iter_packets(kit.session, kit.sensors):
        by_placement.setdefault(placement, []).append(data)
    out = {}
    for placement, sent in by_placement.items():
        head = decode_packet(sent[0])
        arrays = decode_packets(
            sent,
            seq_first=head.sequence,
            timestamp_us_first=head.timestamp_us,
            sample_rate_hz=kit.sensors[placement].info.sample_rate_hz,
        )
        out[placement] = Sent(arrays.seq, arrays.t_sensor_us, np.column_stack([arrays.acc_mps2, arrays.gyr_dps]))
    return out


FORMATS = ("csv", "parquet", "bids")


@dataclass
class Streamed:
    """One store filled by the pipeline, and its export in every format."""

    url: str
    outcome: Outcome
    tmp: Path
    exports: dict[str, ExportOutcome]


@pytest.fixture(scope="module", params=["embedded", "influx", "influx_points"])
def streamed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Streamed:
    tmp = tmp_path_factory.mktemp(f"pipeline-{request.param}")
    if request.param == "embedded":
        url = str(tmp / "store.sqlite")
    else:
        url = fresh_database(request.getfixturevalue("influxdb"))
        # "influx": the worker follows a new database's marker, raw samples one point per batch part
        # (docs/raw-layout-packed.md); "influx_points": the store URL names one point per sample
        if request.param == "influx_points":
            url += ("&" if "?" in url else "?") + "raw_layout=points"
    # the broker lives only while the scenario streams (a module's fixture cannot use the per-test `mosquitto`)
    broker = Mosquitto(tmp / "mosquitto").start()
    try:
        outcome = run_scenario(
            tmp, broker.port, url, n_workers=1, n_subjects=1, minutes=0.7, options={SUBJECT: {"packet_loss": 0.01}}
        )
    finally:
        broker.kill()
    store = open_store(url)
    try:
        if isinstance(store, InfluxStore):  # the layout under test is the one the worker wrote
            counts = {m: _points(store, m) for m in ("raw", "raw_packed")}
            assert (counts["raw"] == 0) == (counts["raw_packed"] > 0) == (request.param == "influx"), counts
        exports = {fmt: run_export(store, ExportRequest((SUBJECT,), fmt, tmp / fmt)) for fmt in FORMATS}
    finally:
        store.close()
    return Streamed(url, outcome, tmp, exports)


def _points(store: InfluxStore, measurement: str) -> int:
    db = store.config.database
    q = f'SELECT count("boot_epoch") FROM "{db}"."{store.config.raw_rp}"."{measurement}"'
    return sum(int(v[1]) for series in store.query(q) for v in series.get("values") or [])


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


VALUES = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]


def test_every_format_round_trips_sample_by_sample_with_gaps(streamed: Streamed) -> None:
    tmp, exports = streamed.tmp, streamed.exports
    sent = simulator_sent(streamed.outcome)
    store = open_store(streamed.url)
    try:
        session = exports["csv"].sessions[0]["session_id"]
        stored = {p: store.read_raw(SUBJECT, p, session=session) for p in sent}
    finally:
        store.close()
    assert all(len(e.sessions) == 1 for e in exports.values())
    csv_dir = next((tmp / "csv").glob("*/*/"))
    parquet = ds.dataset(tmp / "parquet" / "raw", partitioning="hive").to_table().to_pandas()
    n_lost = 0
    for placement, s in sent.items():
        st = stored[placement]
        assert len(st) > 2000, placement
        # the store holds exactly what the simulator sent in the session's sequence range, nothing else
        lo, hi = int(st.seq[0]), int(st.seq[-1])
        in_range = (s.seq >= lo) & (s.seq <= hi)
        assert np.array_equal(st.seq, s.seq[in_range]), placement
        assert np.array_equal(st.t_sensor_us, s.ticks[in_range])
        sent_values = s.values[in_range]
        assert np.array_equal(_bits(np.hstack([st.acc_mps2, st.gyr_dps])), _bits(sent_values))
        # CSV read back by pandas: bit for bit
        csv = pd.read_csv(csv_dir / f"raw_{placement}.csv")
        assert np.array_equal(csv["seq"].to_numpy(), st.seq)
        assert np.array_equal(csv["t_sensor_us"].to_numpy(), st.t_sensor_us)
        assert np.array_equal(csv["time_utc_us"].to_numpy(), st.time_us)
        assert np.array_equal(_bits(csv[VALUES].to_numpy()), _bits(sent_values))
        # Parquet read back by pyarrow: typed, bit for bit
        pq = parquet[parquet["placement"] == placement].sort_values("time_utc_us")
        assert np.array_equal(pq["seq"].to_numpy(), st.seq)
        assert np.array_equal(_us(pq), st.time_us)
        assert np.array_equal(_bits(pq[VALUES].to_numpy()), _bits(sent_values))
        # gaps: where the packets were lost, by sequence number
        holes = np.flatnonzero(np.diff(st.seq) > 1)
        expected_gaps = [(int(st.seq[i]) + 1, int(st.seq[i + 1]) - 1) for i in holes]
        n_lost += len(expected_gaps)
        gaps = pd.read_csv(csv_dir / "gaps.csv")
        mine = gaps[gaps["placement"] == placement]
        listed = sorted(zip(mine["seq_first_missing"].astype(int), mine["seq_last_missing"].astype(int), strict=True))
        assert listed == expected_gaps, placement
        assert (mine["reason"] != "not_recorded").all()  # each one recorded by the gateway, reason kept
        # Motion-BIDS: the same values, one n/a row per missing sample at its place
        tsv = pd.read_csv(motion_files(tmp / "bids", placement)[0], sep="\t", header=None, na_values="n/a")
        rows = tsv.to_numpy()
        present = ~np.isnan(rows[:, 0])
        assert np.array_equal(_bits(rows[present, :6]), _bits(sent_values))
        assert int((~present).sum()) == int(hi - lo + 1 - len(st))
        positions = np.flatnonzero(present)
        assert np.array_equal(positions, st.seq - lo)  # each sample sits at its sequence number's row
        latency = rows[present, 6]
        assert np.allclose(latency, (st.time_us - st.time_us[0]) / 1e6, rtol=0, atol=1e-9)
    assert n_lost > 0  # the scenario did lose packets
    report = validate(tmp / "bids")
    assert report.errors == [] and report.exit_code == 0, report.errors
    assert check_beyond_validator(tmp / "bids") == []


def _us(frame: pd.DataFrame) -> np.ndarray:
    return frame["time_utc_us"].astype("datetime64[us, UTC]").astype("int64").to_numpy()


def test_events_and_results_come_with_their_provenance(streamed: Streamed) -> None:
    outcome = streamed.outcome
    csv_dir = next((streamed.tmp / "csv").glob("*/*/"))
    strides = pd.read_csv(csv_dir / "strides.csv")
    events = pd.read_csv(csv_dir / "events.csv")
    summary = pd.read_csv(csv_dir / "session_summary.csv")
    stored = [r for r in outcome.results[SUBJECT] if r[0] == "stride"]
    assert len(strides) == len(stored) > 20
    assert (events["event"] == "initial_contact").sum() == len(strides)
    assert set(events["side"]) == {"left", "right"}
    for frame in (strides, events, summary):
        assert frame["algorithm"].str.startswith("gaitsym.analysis ").all()
        assert frame["analysis_id"].notna().all() and (frame["result_version"] == 2).all()
    assert "serial" not in " ".join(summary["clock"])  # pseudonymous: the clock provenance without serials
    for name, table in RESULT_TABLES.items():  # what the worker stores is what the README declares, nothing more
        assert list(pd.read_csv(csv_dir / f"{name}.csv").columns) == [c.name for c in table.declared], name
