"""The packed layout's display series (`raw_display`, what the dashboards' raw panels plot): means over 0.1 s of the
1970 grid, at each run's first sample's time; written beside the parts by the packed writer only, and moved with
them to UTC, another sensor's display in the moved range written back."""

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
from analytics.stores.raw_display import DISPLAY_PERIOD_US, FIELDS, display_lines, display_means  # noqa: E402
from analytics.stores.raw_model import RawSamples, raw_time_us  # noqa: E402
from testing.influxdb_server import InfluxDB  # noqa: E402
from testing.stores.storelib import batch, new_subject, synced_clock, unsynced_clock  # noqa: E402


def test_means_are_taken_over_runs_within_one_period_of_the_grid() -> None:
    times = np.array([0, 40_000, 99_999, 100_000, 150_000, 350_000, 360_000, 90_000])  # the last one back in time
    values = np.arange(48, dtype=np.float64).reshape(8, 6)
    starts, means, counts = display_means(times, values)
    assert starts.tolist() == [0, 3, 5, 7]
    assert counts.tolist() == [3, 2, 2, 1]
    for a, n, m in zip(starts, counts, means, strict=True):
        assert np.array_equal(m, values[a : a + n].mean(axis=0))


def test_display_lines_name_the_series_and_round_to_four_decimals() -> None:
    times = np.array([1_000_000, 1_010_000, 1_100_000])
    values = np.array([[1.00001, 2, 3, 4, 5, 6], [1.00003, 2, 3, 4, 5, 6], [-0.123456, 0, 0, 0, 0, 1e-9]])
    lines = display_lines("p 1", "left_thigh", 'se"ss', times, values)
    assert lines == [
        "raw_display,placement=left_thigh,subject=p\\ 1 acc_x=1.0,acc_y=2.0,acc_z=3.0,gyr_x=4.0,gyr_y=5.0,gyr_z=6.0,"
        'n=2i,session="se\\"ss" 1000000',
        "raw_display,placement=left_thigh,subject=p\\ 1 acc_x=-0.1235,acc_y=0.0,acc_z=0.0,gyr_x=0.0,gyr_y=0.0,"
        'gyr_z=0.0,n=1i,session="se\\"ss" 1100000',
    ]
    assert display_lines("p", "pelvis", None, times[:0], values[:0]) == []
    assert "session" not in display_lines("p", "pelvis", None, times, values)[0]


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
        starts, means, counts = display_means(times, np.hstack([b.acc_mps2, b.gyr_dps]))
        for a, m, n in zip(starts, means, counts, strict=True):
            out[int(times[a])] = (int(n), np.round(m, 4).tolist())
    return out


def _check(stored: dict[int, dict[str, Any]], expected: dict[int, tuple[int, list[float]]]) -> None:
    assert sorted(stored) == sorted(expected)
    for t, (n, means) in expected.items():
        assert stored[t]["n"] == n and stored[t]["session"] == "S1"
        assert [stored[t][f] for f in FIELDS] == pytest.approx(means, abs=1e-12)


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
        _check(stored, _expected([first[1]]))
        assert sum(r["n"] for r in stored.values()) == 137
        assert len(stored) >= 137 * 10_000 // DISPLAY_PERIOD_US  # 1.37 s of samples over 0.1-s periods
    finally:
        points.close()
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
