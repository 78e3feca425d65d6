"""Both raw layouts in one InfluxDB (a clinic that switched `raw_layout` from points to packed mid-session, or a
batch re-sent after the switch): every read, count, export and move sees each sample once; a stored part that does
not unpack is left out by name, never stopping the read of the others; the layout's store URL setting."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from stores.conftest import v1_store  # noqa: E402

from analytics.stores import open_store  # noqa: E402
from analytics.stores.errors import StoreConfigError  # noqa: E402
from analytics.stores.influx import InfluxStore  # noqa: E402
from analytics.stores.influx_codec import from_clause  # noqa: E402
from analytics.stores.raw_packed import RAW_PACKED  # noqa: E402
from testing.influxdb_server import InfluxDB  # noqa: E402
from testing.stores.storelib import batch, new_subject, synced_clock, unsynced_clock  # noqa: E402


def _stores(influxdb: InfluxDB, tmp_path: Path) -> tuple[InfluxStore, InfluxStore]:
    return v1_store(influxdb, tmp_path / "points"), v1_store(influxdb, tmp_path / "packed", raw_layout="packed")


def _stored(store: InfluxStore, measurement: str, subject: str) -> int:
    q = f'SELECT count("boot_epoch") FROM {from_clause(store.config.database, store.config.raw_rp, measurement)} '
    q += f"WHERE subject = '{subject}'"
    return sum(int(v[1]) for s in store.query(q) for v in s.get("values") or [])


def test_a_session_written_half_as_points_half_packed_reads_counts_and_exports_each_sample_once(
    influxdb: InfluxDB, tmp_path: Path
) -> None:
    points, packed = _stores(influxdb, tmp_path)
    subject = new_subject()
    try:
        first = [batch(subject, seq_first=q, clock=synced_clock()) for q in (0, 100)]
        later = [batch(subject, seq_first=q, clock=synced_clock()) for q in (200, 300)]
        points.write_raw_many(first)
        packed.write_raw_many(later)
        again = packed.write_raw(first[1])  # re-sent after the switch: stored already, as points
        assert again.quarantined == [] and again.moved == []
        assert _stored(points, "raw", subject) == 200  # points per sample
        assert _stored(points, RAW_PACKED, subject) == 2  # a part per batch, none for the re-sent one
        for store in (points, packed):  # whatever a reader's own layout
            got = store.read_raw(subject, "pelvis")
            assert got.seq.tolist() == list(range(400))
            assert (np.diff(got.time_us) > 0).all()
            assert store.count_raw(subject, "pelvis", "GS24-0001", 42, 0, 399) == 400
            assert store.count_raw(subject, "pelvis", "GS24-0001", 42, 150, 249) == 100
            lo, hi = int(first[1].time_us()[50]), int(later[0].time_us()[49])
            window = store.read_raw(subject, "pelvis", start_us=lo, end_us=hi)
            assert window.seq.tolist() == list(range(150, 250))
            sent = np.vstack([b.acc_mps2 for b in (*first, *later)])
            assert np.array_equal(got.acc_mps2, sent)
            for chunk_samples in (7, 150, 1000):  # pages across the layouts' seam
                chunks = list(store.raw_chunks(subject, "pelvis", session="S1", chunk_samples=chunk_samples))
                table = pa.Table.from_batches(chunks)
                assert table.column("seq").to_pylist() == list(range(400))
                assert max(c.num_rows for c in chunks) <= chunk_samples
                acc = np.column_stack([table.column(k).to_numpy() for k in ("acc_x", "acc_y", "acc_z")])
                assert np.array_equal(acc, sent)
    finally:
        points.close()
        packed.close()


def test_a_boot_in_sensor_time_half_points_half_packed_moves_to_utc_once(influxdb: InfluxDB, tmp_path: Path) -> None:
    points, packed = _stores(influxdb, tmp_path)
    subject = new_subject()
    try:
        points.write_raw(batch(subject, seq_first=0, boot_epoch=7, clock=unsynced_clock()))
        packed.write_raw(batch(subject, seq_first=100, boot_epoch=7, clock=unsynced_clock()))
        assert packed.remap_raw(subject, "pelvis", "GS24-0001", 7, synced_clock()) == 200
        got = packed.read_raw(subject, "pelvis")
        assert got.seq.tolist() == list(range(200)) and (got.time_us > 0).all()  # all in UTC, none left behind
        assert packed.count_raw(subject, "pelvis", "GS24-0001", 7, 0, 199) == 200
    finally:
        points.close()
        packed.close()


def test_a_stored_part_that_does_not_unpack_is_left_out_by_name(
    influxdb: InfluxDB, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, packed = _stores(influxdb, tmp_path)
    subject = new_subject()
    try:
        good = [batch(subject, seq_first=q, clock=synced_clock()) for q in (0, 100)]
        packed.write_raw_many(good)
        t = int(good[1].time_us()[0])
        # another writer's part at the second batch's time: its samples text cut short
        line = f'{RAW_PACKED},placement=pelvis,subject={subject} enc="i2",n=100i,samples="AAAA",serial="X" {t}'
        packed.transport.write_lines(packed.config.raw_rp, [line], "a hand-made part", packed.quarantine, subject)
        with caplog.at_level(logging.WARNING):
            got = packed.read_raw(subject, "pelvis")
        assert got.seq.tolist() == list(range(100))  # the first batch; the overwritten part's samples are gone
        assert any(f"{t} us left out" in r.getMessage() and "stored raw part" in r.getMessage() for r in caplog.records)
    finally:
        packed.close()


def test_the_store_url_names_the_raw_layout(influxdb: InfluxDB, tmp_path: Path) -> None:
    url = f"{influxdb.store_url()}?quarantine_path={tmp_path / 'q.sqlite'}"
    for suffix, layout in (("", "points"), ("&raw_layout=packed", "packed"), ("&raw_layout=points", "points")):
        store = open_store(url + suffix)
        assert isinstance(store, InfluxStore) and store.config.raw_layout == layout
        store.close()
    with pytest.raises(StoreConfigError, match="raw_layout='rows'"):
        open_store(url + "&raw_layout=rows")
