"""Raw samples read from the real InfluxDB 1.6 as CSV are exactly what the JSON answer gives.

`InfluxStore.read_raw` asks /query for CSV (parsed by pandas: about a third of the JSON's CPU) and falls back to
JSON for a server that answers in another format (here: the v2 stand-in, which forwards /query without the
Accept header, as a server without CSV would answer). Both readers leave out a point read half-written."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from http_standin import StandIn  # noqa: E402
from stores.conftest import v1_store, v2_store  # noqa: E402
from stores.test_raw_hot_paths import assert_same_series  # noqa: E402

from analytics.stores.influx import InfluxStore  # noqa: E402
from analytics.stores.influx_codec import raw_series_from_csv  # noqa: E402
from analytics.stores.model import RAW, RawSamples, samples_from_arrays  # noqa: E402
from gaitsym_common.uplink import envelope as env  # noqa: E402
from testing.influxdb_server import InfluxDB  # noqa: E402

CLOCK = env.ClockMapping(True, 123_456, round(time.time()) - 3600.123456, 1.0000123, -12.3, 0.4)
"""An hour ago (inside the raw retention policy)."""
T0_US = round(CLOCK.ref_utc_s * 1e6)


def batches(rng: np.random.Generator, subject: str) -> list[RawSamples]:
    """Three sessions' batches of one placement: awkward strings, no session, values of every magnitude."""
    out = []
    for k, (session, serial) in enumerate(
        [("S1-1", "GS24-A0001"), ('we"ird, sess=ion', 'A B\\C,"q"'), (None, "GS24-A0001")]
    ):
        n = 250
        values = rng.normal(0, 3, (n, 6)) * 10.0 ** rng.integers(-5, 5, (n, 6))
        values[0] = (0.0, -0.0, 1 / 3, 1e-300, -1.7976931348623157e308, 100.0)
        out.append(
            samples_from_arrays(
                subject=subject,
                session=session,
                placement="pelvis",
                serial=serial,
                boot_epoch=7 + k,
                seq=np.arange(n) + 1000 * k + 2**33,
                t_sensor_us=(np.arange(n) + 1000 * k) * 10_000,
                acc_mps2=values[:, :3],
                gyr_dps=values[:, 3:],
                clock=CLOCK,
            )
        )
    return out


def test_csv_and_json_reads_give_the_same_series(influxdb: InfluxDB, tmp_path: Path) -> None:
    store = v1_store(influxdb, tmp_path)
    written = batches(np.random.default_rng(11), "S-1_x")
    store.write_raw_many(written)
    as_csv = store.read_raw("S-1_x", "pelvis")
    assert store.transport.csv_supported  # the real 1.6 answered CSV
    store.transport.csv_supported = False
    as_json = store.read_raw("S-1_x", "pelvis")
    assert len(as_csv) == sum(len(b.seq) for b in written) == 750
    assert_same_series(as_csv, as_json)
    assert set(as_csv.session) == {"S1-1", 'we"ird, sess=ion', None}
    assert set(as_csv.serial) == {"GS24-A0001", 'A B\\C,"q"'}
    for b in written:  # and both are exactly what was written
        idx = np.flatnonzero(as_csv.boot_epoch == b.boot_epoch)
        assert np.array_equal(as_csv.seq[idx], b.seq) and np.array_equal(as_csv.t_sensor_us[idx], b.t_sensor_us)
        assert np.array_equal(as_csv.acc_mps2[idx], b.acc_mps2) and np.array_equal(as_csv.gyr_dps[idx], b.gyr_dps)
        assert np.array_equal(as_csv.time_us[idx], b.time_us())
        assert {as_csv.session[i] for i in idx} == {b.session}
    assert len(store.read_raw("nobody", "pelvis")) == 0  # empty answers, both formats
    store.transport.csv_supported = True
    assert len(store.read_raw("nobody", "pelvis")) == 0


def test_a_point_read_half_written_is_left_out_by_both_readers(influxdb: InfluxDB, tmp_path: Path) -> None:
    store = v1_store(influxdb, tmp_path)
    written = batches(np.random.default_rng(12), "S-2_x")[:1]
    store.write_raw_many(written)
    # InfluxDB stores each field apart: a reader can see a point with only some of its fields
    half = f"{RAW},placement=pelvis,subject=S-2_x acc_x=1.5,seq=5i {T0_US + 123}"
    store._write_lines(store.config.raw_rp, [half], "half-written point")
    as_csv = store.read_raw("S-2_x", "pelvis")
    store.transport.csv_supported = False
    as_json = store.read_raw("S-2_x", "pelvis")
    assert len(as_csv) == len(written[0].seq) == 250
    assert_same_series(as_csv, as_json)
    assert T0_US + 123 not in set(as_csv.time_us.tolist())


def test_a_server_answering_json_is_read_as_json_from_then_on(
    influxdb: InfluxDB, standin: StandIn, tmp_path: Path
) -> None:
    reference = v1_store(influxdb, tmp_path / "v1")
    written = batches(np.random.default_rng(13), "S-3_x")
    reference.write_raw_many(written)
    store = v2_store(standin, tmp_path / "v2")
    assert isinstance(store, InfluxStore) and store.transport.csv_supported
    for _ in range(2):
        assert_same_series(store.read_raw("S-3_x", "pelvis"), reference.read_raw("S-3_x", "pelvis"))
        assert not store.transport.csv_supported
    accepts = [r.headers.get("accept", "") for r in standin.requests if r.path == "/query"]
    assert sum("csv" in a for a in accepts) == 1  # asked once, then JSON


def test_an_empty_csv_answer_is_an_empty_series() -> None:
    assert len(raw_series_from_csv(b"")) == 0
    assert len(raw_series_from_csv(b"\n")) == 0


def test_a_statement_error_csv_drops_is_reported_through_json(influxdb: InfluxDB, tmp_path: Path) -> None:
    """1.x's CSV writer drops a statement's error (a missing retention policy answers an empty 200): the store
    asks again as JSON, which names the error, instead of returning the other policy's rows as if complete."""
    from dataclasses import replace

    import pytest

    from analytics.stores.errors import StoreQueryError

    good = v1_store(influxdb, tmp_path)
    good.write_raw_many(batches(np.random.default_rng(14), "S-4_x")[:1])
    broken = InfluxStore(replace(good.config, sensor_time_rp="no_such_policy"), quarantine=good.quarantine)
    with pytest.raises(StoreQueryError, match="no_such_policy"):
        broken.read_raw("S-4_x", "pelvis")
    assert broken.transport.csv_supported  # an error is not a reason to stop asking for CSV
