"""The database's raw layout marker (`analytics.stores.influx_layout`): a database `setup_v1` creates is marked
packed, an existing one keeps its marker (or none: points); a store following the marker (``raw_layout=auto``, the
default) writes what it says, read again every ``layout_recheck_s``, keeping what it had when the marker cannot be
read; ``gaitsym store raw-layout`` shows and sets it."""

from __future__ import annotations

import base64
import itertools
import logging
import sys
import time
import urllib.request
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from stores.conftest import v1_store  # noqa: E402

from analytics.stores.errors import InvalidLayoutMarker  # noqa: E402
from analytics.stores.influx import InfluxStore  # noqa: E402
from analytics.stores.influx_codec import from_clause  # noqa: E402
from analytics.stores.influx_layout import RawLayout, marker_line  # noqa: E402
from analytics.stores.influx_setup import setup_v1  # noqa: E402
from analytics.stores.influx_transport import InfluxConfig, InfluxTransport  # noqa: E402
from gaitsym.cli import main  # noqa: E402
from testing.influxdb_server import ADMIN_PASSWORD, ADMIN_USER, WORKER_PASSWORD, WORKER_USER, InfluxDB  # noqa: E402
from testing.stores.storelib import batch, new_subject, synced_clock  # noqa: E402

_names = itertools.count()


def _set_up(influxdb: InfluxDB, name: str) -> None:
    """The clinic's InfluxDB setup of database ``name``, its worker user granted."""
    setup_v1(
        influxdb.url,
        ADMIN_USER,
        ADMIN_PASSWORD,
        database=name,
        worker_user=WORKER_USER,
        worker_password=WORKER_PASSWORD,
    )


def _database(influxdb: InfluxDB, existing: bool = False) -> str:
    """A database set up as a clinic's is; ``existing``: created and written to before this release's setup ran
    (a clinic from before the marker)."""
    name = f"marker_{next(_names)}"
    if existing:  # and written to, by a worker of its day
        influxdb.admin_query(f'CREATE DATABASE "{name}"')
        token = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
        line = b"gap,placement=pelvis,subject=S0 seq_first_missing=1i,seq_last_missing=2i -1000"
        request = urllib.request.Request(f"{influxdb.url}/write?db={name}&precision=u", data=line)
        request.add_header("Authorization", f"Basic {token}")
        urllib.request.urlopen(request, timeout=10).close()
    _set_up(influxdb, name)
    return name


def _written(store: InfluxStore, subject: str) -> tuple[int, int]:
    """(points in ``raw``, parts in ``raw_packed``) of the subject."""
    out = []
    for measurement, field in (("raw", "seq"), ("raw_packed", "n")):
        q = f'SELECT count("{field}") FROM {from_clause(store.config.database, store.config.raw_rp, measurement)} '
        out.append(sum(int(v[1]) for s in store.query(q + f"WHERE subject = '{subject}'") for v in s["values"]))
    return out[0], out[1]


def test_a_new_database_is_marked_packed_and_setup_again_keeps_a_clinics_marker(
    influxdb: InfluxDB, tmp_path: Path
) -> None:
    name = _database(influxdb)
    store = v1_store(influxdb, tmp_path, database=name, raw_layout="auto")
    try:
        assert store.layout.marker() is not None and store.layout.marker()[0] == "packed"  # type: ignore[index]
        assert store.layout.writes() == "packed"
        subject = new_subject()
        store.write_raw(batch(subject, clock=synced_clock()))
        assert _written(store, subject) == (0, 1)
        store.layout.mark("points")
        setup_v1(influxdb.url, ADMIN_USER, ADMIN_PASSWORD, database=name)  # a clinic's setup run again
        assert store.layout.marker()[0] == "points"  # type: ignore[index]
    finally:
        store.close()


def test_a_setup_that_failed_before_marking_marks_the_database_when_run_again(
    influxdb: InfluxDB, tmp_path: Path
) -> None:
    name = f"marker_{next(_names)}"
    influxdb.admin_query(f'CREATE DATABASE "{name}"')  # a first setup stopped after creating the database
    _set_up(influxdb, name)
    store = v1_store(influxdb, tmp_path, database=name, raw_layout="auto")
    try:
        assert store.layout.writes() == "packed"
    finally:
        store.close()


def test_a_database_from_before_the_marker_is_written_one_point_per_sample(influxdb: InfluxDB, tmp_path: Path) -> None:
    name = _database(influxdb, existing=True)
    store = v1_store(influxdb, tmp_path, database=name, raw_layout="auto")
    try:
        assert store.layout.marker() is None
        subject = new_subject()
        store.write_raw(batch(subject, clock=synced_clock()))
        assert _written(store, subject) == (100, 0)
    finally:
        store.close()


def test_a_store_following_the_marker_switches_at_its_next_recheck(influxdb: InfluxDB, tmp_path: Path) -> None:
    name = _database(influxdb, existing=True)
    admin = v1_store(influxdb, tmp_path / "admin", database=name)
    now = [0.0]
    worker = v1_store(influxdb, tmp_path / "worker", database=name, raw_layout="auto", layout_recheck_s=60.0)
    worker.layout = RawLayout(worker.config, worker.transport, clock=lambda: now[0])
    try:
        first, second, third = (batch(new_subject(), clock=synced_clock()) for _ in range(3))
        worker.write_raw(first)  # unmarked: points; the marker read now
        admin.layout.mark("packed")
        now[0] = 59.0
        worker.write_raw(second)  # not read again yet
        now[0] = 60.0
        worker.write_raw(third)
        assert [_written(admin, b.subject) for b in (first, second, third)] == [(100, 0), (100, 0), (0, 1)]
        for b in (first, second, third):  # whatever layout each went in, read back whole
            assert admin.read_raw(b.subject, "pelvis").seq.tolist() == list(range(100))
    finally:
        admin.close()
        worker.close()


def test_a_marker_that_cannot_be_read_keeps_the_layout_written_so_far(
    influxdb: InfluxDB, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = _database(influxdb)
    store = v1_store(influxdb, tmp_path, database=name, raw_layout="auto", layout_recheck_s=0.0)
    try:
        assert store.layout.writes() == "packed"
        store._write_lines(store.config.results_rp, [marker_line("packed", 1)], "test")
        store.transport.write_lines(
            store.config.results_rp, ['raw_layout layout="zipped"'], "hand-made marker", store.quarantine
        )
        with pytest.raises(InvalidLayoutMarker, match="holds 'zipped', neither points nor packed"):
            store.layout.marker()
        with caplog.at_level(logging.WARNING, logger="gaitsym.stores"):
            assert store.layout.writes() == "packed"
        assert "raw layout marker not read (writing packed meanwhile)" in caplog.text
    finally:
        store.close()
    closed = InfluxConfig(url="http://127.0.0.1:9", retry_for_s=0.0, raw_layout="auto")
    unreachable = RawLayout(closed, InfluxTransport(closed, lambda s: None))
    assert unreachable.writes() == "points"  # never read: a database without a marker's layout


def test_setting_the_marker_takes_effect_at_the_next_write_whatever_the_recheck(
    influxdb: InfluxDB, tmp_path: Path
) -> None:
    name = _database(influxdb)
    store = v1_store(influxdb, tmp_path, database=name, raw_layout="auto", layout_recheck_s=3600.0)
    try:
        assert store.layout.writes() == "packed"
        store.layout.mark("points")  # this store's own change: read again at once, not in an hour
        assert store.layout.writes() == "points"
    finally:
        store.close()


def test_gaitsym_store_raw_layout_shows_and_sets_the_marker(
    influxdb: InfluxDB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _database(influxdb, existing=True)
    url = f"{influxdb.store_url(name)}?quarantine_path={tmp_path / 'q.sqlite'}"
    assert main(["store", "raw-layout", "--store", url]) == 0
    shown = capsys.readouterr().out
    assert "marker: none" in shown and "this store URL writes: points (follows the marker)" in shown
    assert main(["store", "raw-layout", "packed", "--store", url]) == 0
    shown = capsys.readouterr().out
    assert "marker: packed (set 20" in shown and "marker write packed within 60 s" in shown
    assert "ahead of this machine's clock" not in shown
    assert main(["store", "raw-layout", "--store", url + "&raw_layout=points"]) == 0
    assert "this store URL writes: points (names its layout, the marker aside)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["store", "raw-layout", "zipped", "--store", url])


def test_a_marker_dated_ahead_or_holding_garbage_is_set_again_by_the_command(
    influxdb: InfluxDB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _database(influxdb)
    store = v1_store(influxdb, tmp_path, database=name, raw_layout="auto", layout_recheck_s=0.0)
    url = f"{influxdb.store_url(name)}?quarantine_path={tmp_path / 'q.sqlite'}"
    ahead_us = time.time_ns() // 1000 + 86_400_000_000  # a clock a day ahead set the database's marker
    try:
        store._write_lines(store.config.results_rp, [marker_line("packed", ahead_us)], "marker from a day ahead")
        assert main(["store", "raw-layout", "points", "--store", url]) == 0
        shown = capsys.readouterr().out
        assert "marker: points" in shown and "s ahead of this machine's clock" in shown
        assert store.layout.writes() == "points"
        store._write_lines(store.config.results_rp, [f'raw_layout layout="zipped" {ahead_us + 10}'], "garbage")
        assert main(["store", "raw-layout", "--store", url]) == 1
        err = capsys.readouterr().err
        assert "holds 'zipped'" in err and "`gaitsym store raw-layout points|packed` sets it again" in err
        assert store.layout.writes() == "points"  # a worker keeps writing what it wrote
        assert main(["store", "raw-layout", "packed", "--store", url]) == 0
        assert store.layout.writes() == "packed"
    finally:
        store.close()


def test_gaitsym_store_raw_layout_refuses_an_embedded_store_and_names_an_unreachable_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAITSYM_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("GAITSYM_STORE", raising=False)
    assert main(["store", "raw-layout", "packed"]) == 2  # the default store: embedded
    assert "is an embedded store" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no empty store file left behind
    secret = "s3cret-Marker-pw"
    url = f"influx://worker:{secret}@127.0.0.1:9/gaitsym?quarantine_path={tmp_path / 'q.sqlite'}"
    assert main(["store", "raw-layout", "packed", "--store", url]) == 1
    captured = capsys.readouterr()
    assert "gaitsym store:" in captured.err and secret not in captured.err + captured.out
