"""After an InfluxDB restart, writes resume within about a second of the server answering again: while the
connection is refused the store polls at most ``refused_delay_s`` apart (a refused connection costs the server
nothing) instead of backing off to 30 s; a server that answers 429/503 keeps the long backoff and its Retry-After.
The schedule is asserted as the pure rule computes it, the restart on the real InfluxDB 1.6 by its outcome."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from conftest import v1_store

from analytics.stores.embedded import EmbeddedStore
from analytics.stores.errors import StoreUnavailable, sort_write_error
from analytics.stores.influx import InfluxStore
from analytics.stores.quarantine import Quarantine
from testing.influxdb_server import InfluxDB
from testing.stores.storelib import batch, new_subject


def test_refused_connections_are_polled_about_once_a_second_busy_servers_keep_their_backoff() -> None:
    refused = [sort_write_error(None, n_lines=9, attempt=a, refused=True).delay_s for a in range(1, 40)]
    assert refused[:3] == [0.5, 1.0, 1.0] and max(refused) == 1.0
    assert sort_write_error(None, n_lines=9, attempt=5, refused=True, refused_delay_s=2.0).delay_s == 2.0
    # an answer, or a connection that times out, is a busy server: exponential to 30 s, never under Retry-After
    timed_out = [sort_write_error(None, n_lines=9, attempt=a).delay_s for a in range(1, 10)]
    assert timed_out == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert sort_write_error(503, n_lines=9, attempt=1, retry_after="7").delay_s == 7.0
    assert sort_write_error(429, n_lines=9, attempt=8, retry_after="7").delay_s == 30.0


def test_a_write_goes_through_about_a_second_after_a_restarted_server_answers(
    influxdb: InfluxDB, tmp_path: Path
) -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    config = v1_store(influxdb, tmp_path, retry_for_s=120.0).config  # the default delays: 0.5 s doubling to 30 s
    assert config.max_delay_s == 30.0 and config.refused_delay_s == 1.0
    store = InfluxStore(config, Quarantine(tmp_path / "restart-quarantine.sqlite"), sleep=sleep)
    subject = new_subject()
    done: list[object] = []
    influxdb.stop()
    try:
        writer = threading.Thread(target=lambda: done.append(store.write_raw(batch(subject, n=200))))
        writer.start()
        give_up = time.monotonic() + 60.0
        while len(slept) < 4 and time.monotonic() < give_up:  # down long enough for a backoff to pass 2 s
            time.sleep(0.05)
    finally:
        influxdb.start()
    writer.join(timeout=60.0)
    assert done, "the write did not go through after the restart"
    assert store.read_raw(subject, "pelvis").seq.tolist() == list(range(200))
    # every wait, the one spanning the restart included, was at most refused_delay_s (+20 % jitter)
    assert len(slept) >= 4 and max(slept) <= config.refused_delay_s * 1.2
    store.close()


def test_the_worker_retries_a_refused_store_after_its_hint_not_its_own_backoff(tmp_path: Path) -> None:
    """Past the store's own polling (``retry_for_s``) the worker keeps the turn and tries again after the store's
    hint (1 s) while the connection is refused; other outages keep the worker's growing backoff."""
    from analytics.worker.worker import Worker, WorkerConfig
    from testing.worker.hostile import ScriptedLink

    config = WorkerConfig(quarantine_path=str(tmp_path / "q.sqlite"))
    worker = Worker(config, ScriptedLink(), EmbeddedStore(":memory:"), clock=lambda: 0.0)  # nothing arrives
    for _ in range(8):
        worker._failed(StoreUnavailable("refused", retry_after_s=1.0, refused=True), [])
        assert worker._retry_at == 1.0
    worker._failed(StoreUnavailable("timed out", retry_after_s=1.0), [])
    assert worker._retry_at >= 30.0
    worker.close()
