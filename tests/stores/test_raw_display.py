"""The packed layout's display series (`raw_display`, what the dashboards' raw panels plot): sums and counts over
each 0.1 s of the 1970 grid, at each run's first sample's time; written beside the parts by the packed writer only
(again on a replay, which repairs a lost one), and moved with them to UTC, another sensor's display in the moved
range written back."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from stores.conftest import v1_store  # noqa: E402

from analytics.stores.influx import InfluxStore  # noqa: E402
from analytics.stores.influx_codec import from_clause  # noqa: E402
from analytics.stores.raw_display import DISPLAY_PERIOD_US, FIELDS, display_lines, display_sums  # noqa: E402
from analytics.stores.raw_model import RawSamples, raw_time_us  # noqa: E402
from testing.influxdb_server import InfluxDB  # noqa: E402
from testing.stores.storelib import batch, new_subject, synced_clock, unsynced_clock  # noqa: E402


def test_sums_are_taken_over_runs_within_one_period_of_the_grid() -> None:
    times = np.array([0, 40_000, 99_999, 100_000, 150_000, 350_000, 360_000, 90_000])  # the last one back in time
    values = np.arange(48, dtype=np.float64).reshape(8, 6)
    starts, sums, counts = display_sums(times, values)
    assert starts.tolist() == [0, 3, 5, 7]
    assert counts.tolist() == [3, 2, 2, 1]
    for a, n, m in zip(starts, counts, sums, strict=True):
        assert np.array_equal(m, values[a : a + n].sum(axis=0))


def test_display_lines_name_the_series_and_round_to_four_decimals() -> None:
    times = np.array([1_000_000, 1_010_000, 1_100_000, 1_200_000])
    values = np.array(
        [[1.00001, 2, 3, 4, 5, 6], [1.00003, 2, 3, 4, 5, 6], [-0.123456, 0, 0, 0, 0, 1e-9], [1e308, 0, 0, 0, 0, 0]]
    )
    lines = display_lines("p 1", "left_thigh", 'se"ss', times, values)
    assert lines == [  # the last run's sum is beyond float64 once rounded: no point for it
        "raw_display,placement=left_thigh,subject=p\\ 1 acc_x_sum=2.0,acc_y_sum=4.0,acc_z_sum=6.0,gyr_x_sum=8.0,"
        'gyr_y_sum=10.0,gyr_z_sum=12.0,n=2i,session="se\\"ss" 1000000',
        "raw_display,placement=left_thigh,subject=p\\ 1 acc_x_sum=-0.1235,acc_y_sum=0.0,acc_z_sum=0.0,gyr_x_sum=0.0,"
        'gyr_y_sum=0.0,gyr_z_sum=0.0,n=1i,session="se\\"ss" 1100000',
    ]
    assert display_lines("p", "pelvis", None, times[:0], values[:0]) == []
    assert "session" not in display_lines("p", "pelvis", None, times, values)[0]
    only = display_lines("p", "pelvis", None, times, values, only=[(1_050_000, 1_150_000)])
    assert [line.rsplit(" ", 1)[1] for line in only] == ["1100000"]


def _display(store: InfluxStore, rp: str, subject: str) -> dict[int, dict[str, Any]]:
    q = f"SELECT * FROM {from_clause(store.config.database, rp, 'raw_display')} WHERE subject = '{subject}'"
    out = {}
    for s in store.query(q):
        for row in s.get("values") or []:
            fields = dict(zip(s["columns"], row, strict=True))
            out[int(fields.pop("time"))] = fields
    return out


def _expected(batches: list[RawSamples], times_of: Any = None) -> dict[int, tuple[int, list[float]]]:
    out = {}
    for b in batches:
        times = b.time_us() if times_of is None else times_of(b)
        starts, sums, counts = display_sums(times, np.hstack([b.acc_mps2, b.gyr_dps]))
        for a, m, n in zip(starts, sums, counts, strict=True):
            out[int(times[a])] = (int(n), np.round(m, 4).tolist())
    return out


def _check(stored: dict[int, dict[str, Any]], expected: dict[int, tuple[int, list[float]]]) -> None:
    assert sorted(stored) == sorted(expected)
    for t, (n, sums) in expected.items():
        assert stored[t]["n"] == n and stored[t]["session"] == "S1"
        assert [stored[t][f] for f in FIELDS] == pytest.approx(sums, abs=1e-12)


def test_the_packed_writer_stores_the_display_and_the_points_writer_does_not(
    influxdb: InfluxDB, tmp_path: Path
) -> None:
    points = v1_store(influxdb, tmp_path / "points")
    packed = v1_store(influxdb, tmp_path / "packed", raw_layout="packed")
    subject = new_subject()
    try:
        first = [batch(subject, seq_first=q, n=137, clock=synced_clock()) for q in (0, 137)]
        points.write_raw_many([first[0]])
        packed.write_raw_many(first)  # the first one stored already: no part and no display for it
        rp = packed.config.raw_rp
        stored = _display(packed, rp, subject)
        _check(stored, _expected([first[1]]))  # the one stored as points before: plotted from them, not again
        assert sum(r["n"] for r in stored.values()) == 137
        assert len(stored) >= 137 * 10_000 // DISPLAY_PERIOD_US  # 1.37 s of samples over 0.1-s periods
    finally:
        points.close()
        packed.close()


def test_a_replay_writes_a_lost_display_again(influxdb: InfluxDB, tmp_path: Path) -> None:
    """The parts were stored and the display after them was not (the request carrying it failed, or the worker
    stopped): the replay of the batch writes the display, though its samples are stored already."""
    packed = v1_store(influxdb, tmp_path, raw_layout="packed")
    subject = new_subject()
    try:
        sent = batch(subject, n=250, clock=synced_clock())
        lines = packed._sample_lines(sent, None, True)
        packed._write_lines(packed.config.raw_rp, lines, "parts only", subject)
        assert _display(packed, packed.config.raw_rp, subject) == {}
        again = packed.write_raw(sent)
        assert again.quarantined == [] and again.moved == []
        _check(_display(packed, packed.config.raw_rp, subject), _expected([sent]))
        assert packed.read_raw(subject, "pelvis").seq.tolist() == list(range(250))
    finally:
        packed.close()


def test_a_move_to_utc_moves_the_display_and_writes_another_sensors_back(influxdb: InfluxDB, tmp_path: Path) -> None:
    packed = v1_store(influxdb, tmp_path / "packed", raw_layout="packed")
    subject = new_subject()
    try:
        ours = [batch(subject, seq_first=q, boot_epoch=7, clock=unsynced_clock()) for q in (0, 100)]
        # another sensor boot on the same placement, its samples between ours in sensor time (a boot epoch equal
        # mod 4096 shares the slot): its part starts before the moved range and runs into it
        theirs = batch(
            subject, seq_first=0, n=100, boot_epoch=7 + 4096, clock=unsynced_clock(), t_sensor_first_us=4_505_000
        )
        packed.write_raw_many([*ours, theirs])
        slot = packed.config.sensor_time_rp
        assert len(_display(packed, slot, subject)) > 0
        assert packed.remap_raw(subject, "pelvis", "GS24-0001", 7, synced_clock()) == 200
        moved = packed.read_raw(subject, "pelvis", start_us=0)
        assert moved.seq.tolist() == list(range(200))
        clock = synced_clock()
        in_utc = _expected(ours, lambda b: raw_time_us(b.t_sensor_us, clock, b.boot_epoch))
        _check(_display(packed, packed.config.raw_rp, subject), in_utc)
        _check(_display(packed, slot, subject), _expected([theirs]))  # ours gone, theirs whole
    finally:
        packed.close()
