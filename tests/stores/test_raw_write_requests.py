"""How a worker turn's raw write is cut into InfluxDB requests: the probe, the samples in requests of at most
``batch_lines`` lines, and only once they are stored the index points (the index never claims what is not
stored). Counted in requests against the stand-in, outcomes read back from the real 1.6."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import v1_store, v2_store
from http_standin import StandIn

from analytics.stores.model import STORE_REFUSED
from gaitsym_common.uplink.envelope import ClockMapping
from testing.influxdb_server import InfluxDB
from testing.stores.storelib import batch, new_subject

PLACEMENTS = ("pelvis", "left_thigh", "right_thigh")


def test_a_small_call_stays_one_request_of_samples(standin: StandIn, tmp_path: Path) -> None:
    store = v2_store(standin, tmp_path)
    subject = new_subject()
    standin.requests.clear()
    store.write_raw_many([batch(subject, seq_first=0, placement=p, serial=f"GS-{p}") for p in PLACEMENTS])
    assert [r.path for r in standin.requests] == ["/query", "/api/v2/write", "/api/v2/write"]
    store.close()


def test_a_batch_refused_in_a_large_call_is_named_and_the_others_stored_and_indexed(
    influxdb: InfluxDB, tmp_path: Path
) -> None:
    """InfluxDB 1.6 writes the valid lines of a request it answers 400 (points beyond the raw policy's 30 days):
    the batches are then written one by one, the refused one quarantined and recorded missing, never indexed."""
    store = v1_store(influxdb, tmp_path)
    subjects = [new_subject() for _ in range(12)]
    batches = [batch(s, seq_first=0, placement=p, serial=f"GS-{s}-{p}") for s in subjects for p in PLACEMENTS]
    old = batch(new_subject(), clock=ClockMapping(True, 5_000_000, time.time() - 60 * 86_400, 1.0, 0.0, 0.8))
    report = store.write_raw_many([*batches[:18], old, *batches[18:]])
    assert report.quarantined == [old.describe()]
    assert [(g.subject, g.reason, g.seq_first, g.seq_last) for g in report.gaps] == [
        (old.subject, STORE_REFUSED, 0, 99)
    ]
    assert store.raw_index(old.subject, "pelvis", old.serial, 42, 0, 99).batches == ()
    for s in subjects:
        for p in PLACEMENTS:
            assert store.read_raw(s, p).seq.tolist() == list(range(100))
            assert store.raw_index(s, p, f"GS-{s}-{p}", 42, 0, 99).batches == ((0, 99, 100),)
    store.close()
