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
    for suffix, layout in (("", "auto"), ("&raw_layout=packed", "packed"), ("&raw_layout=points", "points")):
        store = open_store(url + suffix)
        assert isinstance(store, InfluxStore) and store.config.raw_layout == layout
        store.close()
    with pytest.raises(StoreConfigError, match="raw_layout='rows'"):
        open_store(url + "&raw_layout=rows")


def test_a_points_writer_checks_against_packed_samples(influxdb: InfluxDB, tmp_path: Path) -> None:
    """A writer set to points (a clinic switching back, workers not switched together) still sees packed samples:
    another sensor on their times is refused as a collision, a replay of them moved by 30 ms is not stored again."""
    points, packed = _stores(influxdb, tmp_path)
    subject = new_subject()
    try:
        stored = batch(subject, clock=synced_clock())
        packed.write_raw(stored)
        other = points.write_raw(batch(subject, boot_epoch=43, clock=synced_clock()))
        assert len(other.collisions) == 100 and other.quarantined
        moved = points.write_raw(batch(subject, clock=synced_clock(ref_sensor_us=5_000_000 - 30_000)))
        assert moved.moved_samples == 100
        got = points.read_raw(subject, "pelvis")
        assert got.boot_epoch.tolist() == [42] * 100 and got.time_us.tolist() == stored.time_us().tolist()
        assert points.count_raw(subject, "pelvis", "GS24-0001", 42, 0, 99) == 100
    finally:
        points.close()
        packed.close()


@pytest.mark.parametrize("layout", ["points", "packed"])
def test_a_replay_writes_a_lost_index_point_again(influxdb: InfluxDB, tmp_path: Path, layout: str) -> None:
    """The samples were stored and the index point after them was not (the worker stopped in between): the
    replay of the batch writes the index point, though its samples are stored already."""
    store = v1_store(influxdb, tmp_path, raw_layout=layout)
    subject = new_subject()
    try:
        sent = batch(subject, clock=synced_clock())
        lines = store._sample_lines(sent, sent, layout == "packed")
        store._write_lines(store.config.raw_rp, lines, "samples only", subject)
        assert store.raw_progress(subject, "pelvis", "GS24-0001", 42).n_batches == 0
        store.write_raw(sent)
        progress = store.raw_progress(subject, "pelvis", "GS24-0001", 42)
        assert (progress.n_batches, progress.n_samples) == (1, 100)
        assert store.count_raw(subject, "pelvis", "GS24-0001", 42, 0, 99) == 100
    finally:
        store.close()


def test_a_sample_on_the_time_of_a_part_that_does_not_unpack_is_refused(influxdb: InfluxDB, tmp_path: Path) -> None:
    """A stored part the check cannot unpack (another version's, perhaps) occupies its first time: a new sample
    there is refused as a collision, not written over it."""
    _, packed = _stores(influxdb, tmp_path)
    subject = new_subject()
    try:
        sent = batch(subject, clock=synced_clock())
        t = int(sent.time_us()[40])
        fields = f'enc="x9",n=1i,samples="",serial="GS-NEW",time_last_us={t}i'
        line = f"{RAW_PACKED},placement=pelvis,subject={subject} {fields} {t}"
        packed.transport.write_lines(packed.config.raw_rp, [line], "another version's part", packed.quarantine, subject)
        report = packed.write_raw(sent)
        assert [c.time_us for c in report.collisions] == [t]
        rows = list(
            packed.rows(
                f"SELECT enc FROM {from_clause(packed.config.database, 'raw', RAW_PACKED)} WHERE time = {t * 1000}"
            )
        )
        assert [r["enc"] for r in rows] == ["x9"]  # still there
        assert len(packed.read_raw(subject, "pelvis")) == 99
    finally:
        packed.close()


def test_export_pages_of_a_range_starting_and_ending_inside_parts(influxdb: InfluxDB, tmp_path: Path) -> None:
    points, packed = _stores(influxdb, tmp_path)
    subject = new_subject()
    try:
        sent = [batch(subject, seq_first=q, n=10, clock=synced_clock()) for q in range(0, 3000, 10)]
        points.write_raw_many([b for i, b in enumerate(sent) if i % 3 == 0])
        packed.write_raw_many([b for i, b in enumerate(sent) if i % 3 != 0])
        whole = packed.read_raw(subject, "pelvis")
        assert whole.seq.tolist() == list(range(3000))
        lo, hi = int(whole.time_us[15]), int(whole.time_us[2994])
        for chunk_samples in (7, 1000):
            chunks = packed.raw_chunks(
                subject, "pelvis", start_us=lo, end_us=hi, session="S1", chunk_samples=chunk_samples
            )
            assert pa.Table.from_batches(list(chunks)).column("seq").to_pylist() == list(range(15, 2995))
    finally:
        points.close()
        packed.close()
