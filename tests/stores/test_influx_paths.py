"""InfluxDB specifics on the real 1.6 (auth on): retention policies, auth, error sorting end to end, and what
influxdb-client's v2 path sends (checked by the stand-in, forwarded to the real server)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace as dc_replace
from pathlib import Path

import pytest
from conftest import v1_store, v2_store
from http_standin import StandIn

from analytics.errors import AnalyticsError
from analytics.stores import open_store
from analytics.stores.errors import StoreUnavailable, is_retryable
from analytics.stores.influx import InfluxStore
from analytics.stores.influx_setup import setup_v1
from analytics.worker.worker import Worker
from gaitsym_common.uplink import envelope as env
from testing.influxdb_server import ADMIN_PASSWORD, ADMIN_USER, InfluxDB
from testing.stores.storelib import batch, new_subject
from testing.worker.hostile import ScriptedLink, raw_batch, raw_topic, turn_config


def test_retention_policies_present(influxdb: InfluxDB, tmp_path: Path) -> None:
    store = v1_store(influxdb, tmp_path)
    policies = store.retention_policies()
    assert policies["raw"] == "720h0m0s"  # 30 days, the stated default
    assert policies["results"] == "0s" and policies["raw_unsynced"] == "0s"  # 0s = kept forever
    default = {r["name"]: r["default"] for r in store.rows('SHOW RETENTION POLICIES ON "gaitsym"')}
    assert default["results"] is True


def test_authentication_is_enforced(influxdb: InfluxDB, tmp_path: Path) -> None:
    store = v1_store(influxdb, tmp_path, password="wrong", retry_for_s=0.0)
    with pytest.raises(StoreUnavailable, match="401") as info:
        store.write_raw(batch(new_subject()))
    assert is_retryable(info.value) and isinstance(info.value, AnalyticsError)
    assert len(store.quarantine) == 0  # a credentials problem never throws data away


def test_bad_data_is_quarantined_and_named_not_retried(
    influxdb: InfluxDB, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a field type conflict (seq once stored as a float) -> the real server answers 400. 1.x keeps field types
    # per measurement and shard, so this happens in a database of its own, not to poison the other tests. The
    # float goes just after the batch's last sample, never before its first: the batch starts on a whole hour,
    # which at midnight UTC is a shard (day) boundary, and a float in the day before conflicts with nothing.
    setup_v1(influxdb.url, ADMIN_USER, ADMIN_PASSWORD, database="conflict", worker_user="worker")
    store = v1_store(influxdb, tmp_path, database="conflict")
    subject = new_subject()
    b = batch(subject, n=50)
    store._write_lines("raw", [f"raw,placement=pelvis,subject={subject} seq=1.5 {int(b.time_us()[-1]) + 10}"], "x")
    with caplog.at_level(logging.WARNING, logger="gaitsym.stores"):
        report = store.write_raw(b)
    assert report.quarantined == [b.describe()] and report.retries == 0
    (entry,) = store.quarantine.entries()
    assert entry.status == 400 and "conflict" in entry.server_message and len(entry.lines) == 50
    assert f"quarantined raw subject={subject} placement=pelvis serial=GS24-0001 boot_epoch=42 seq=0..49" in caplog.text


def test_server_stopped_write_retries_until_it_is_back_nothing_lost(influxdb: InfluxDB, tmp_path: Path) -> None:
    subject = new_subject()
    store = v1_store(influxdb, tmp_path, retry_for_s=60.0, base_delay_s=0.1, max_delay_s=0.5)
    influxdb.stop()
    try:
        # within a short budget: StoreUnavailable, retryable, nothing acknowledged
        short = store.with_config(retry_for_s=0.3)
        with pytest.raises(StoreUnavailable) as info:
            short.write_raw(batch(subject, seq_first=0, n=500))
        assert is_retryable(info.value)
        # with the normal budget the write waits for the server
        done: list[object] = []
        writer = threading.Thread(target=lambda: done.append(store.write_raw(batch(subject, seq_first=500, n=500))))
        writer.start()
        writer.join(timeout=1.0)
        assert writer.is_alive() and not done  # still retrying: not returned, so not acknowledgeable
    finally:
        influxdb.start()
    writer.join(timeout=60)
    assert done and done[0].retries >= 1  # type: ignore[attr-defined]
    store.write_raw(batch(subject, seq_first=0, n=500))  # the gateway replays what was not acknowledged
    got = store.read_raw(subject, "pelvis")
    assert got.seq.tolist() == list(range(1000))


def test_413_splits_the_batch_on_a_server_with_a_small_body_limit(tmp_path: Path) -> None:
    server = InfluxDB(tmp_path / "small", http_overrides={"max-body-size": "20000"}).start()
    try:
        store = v1_store(server, tmp_path)
        subject = new_subject()
        report = store.write_raw(batch(subject, n=2000))
        assert report.splits >= 1 and report.quarantined == []
        assert store.read_raw(subject, "pelvis").seq.tolist() == list(range(2000))
    finally:
        server.kill()


def test_v2_client_sends_token_org_bucket_precision_gzip_and_lands(
    influxdb: InfluxDB, standin: StandIn, tmp_path: Path
) -> None:
    subject = new_subject()
    store = v2_store(standin, tmp_path)
    store.write_raw(batch(subject, n=300))
    writes = [r for r in standin.requests if r.path == "/api/v2/write"]
    assert len(writes) == 2  # samples, then the batch index
    first = writes[0]
    assert first.query["org"] == "gaitsym-org" and first.query["bucket"] == "gaitsym/raw"
    assert first.query["precision"] == "us" and first.headers["content-encoding"] == "gzip"
    assert first.headers["authorization"] == "Token test-token"
    assert first.body.count(b"\n") >= 299 and first.body.startswith(b"raw,placement=pelvis,subject=" + subject.encode())
    assert standin.problems == []
    # what the v2 client wrote is on the real 1.6, read back by a v1 store straight from it
    direct = v1_store(influxdb, tmp_path)
    assert direct.read_raw(subject, "pelvis").seq.tolist() == list(range(300))


@pytest.mark.parametrize("status", [429, 503])
def test_busy_server_retry_honours_retry_after(standin: StandIn, tmp_path: Path, status: int) -> None:
    slept: list[float] = []
    config = v2_store(standin, tmp_path, base_delay_s=0.01, retry_for_s=60.0).config
    store = InfluxStore(config, sleep=slept.append)
    standin.script.append((status, {"Retry-After": "7"}, b'{"message":"busy"}'))
    subject = new_subject()
    report = store.write_raw(batch(subject, n=100))
    assert report.retries == 1 and slept and slept[0] >= 7.0
    assert store.read_raw(subject, "pelvis").seq.tolist() == list(range(100))


def test_413_from_a_v2_server_splits(standin: StandIn, tmp_path: Path) -> None:
    store = v2_store(standin, tmp_path)
    standin.script.append((413, {}, b'{"message":"too large"}'))
    subject = new_subject()
    report = store.write_raw(batch(subject, n=64))
    assert report.splits == 1 and report.quarantined == []
    assert store.read_raw(subject, "pelvis").seq.tolist() == list(range(64))


def test_open_store_reads_urls(influxdb: InfluxDB, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store(influxdb.store_url() + "?raw_retention=30d")
    assert isinstance(store, InfluxStore) and store.config.api == "v1" and store.config.username == "worker"
    monkeypatch.setenv("GAITSYM_INFLUX_TOKEN", "t")
    v2 = open_store(f"influx://127.0.0.1:{influxdb.port}/gaitsym?org=o")
    assert isinstance(v2, InfluxStore) and v2.config.api == "v2" and v2.config.org == "o"
    v2.close()
    store.close()


def test_a_batch_the_server_refuses_is_recorded_as_a_gap_and_acknowledged_not_cached(
    influxdb: InfluxDB, tmp_path: Path
) -> None:
    """Points beyond the raw retention policy: the real server answers 400 ("points beyond retention policy
    dropped"). The worker acknowledges the batch (a re-send would be refused the same way), records its samples
    as missing (reason store_refused, so the session's analysis proceeds flagged data_gap instead of waiting
    forever) and never caches them as stored."""
    store = v1_store(influxdb, tmp_path)
    link = ScriptedLink()
    worker = Worker(turn_config(str(tmp_path / "wq.sqlite")), link, store)  # type: ignore[arg-type]
    subject = new_subject()
    old = raw_batch(subject, 0)
    old = dc_replace(old, clock=dc_replace(old.clock, ref_utc_s=time.time() - 60 * 86_400))  # raw keeps 30 days
    token = link.deliver(raw_topic(subject), env.encode(old))
    worker.step(0)
    assert token in link.acked and link.acked_ids(subject) == [old.msg_id]
    index = store.raw_index(subject, "pelvis", old.sensor.serial, old.sensor.boot_epoch, None, old.seq_last)
    assert index.batches == () and index.gaps == ((0, 99),)
    assert len(store.quarantine) == 1
    cached = worker.ingest.streams[(subject, "pelvis", old.sensor.serial, old.sensor.boot_epoch)]
    assert not cached.chunks and cached.gaps == [(0, 99)]
    worker.close()
