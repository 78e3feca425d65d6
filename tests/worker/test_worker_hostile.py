"""Hostile and unlucky neighbours, end to end on a real Mosquitto (the project's conf) and the embedded store:

- poison payloads on one subject's raw topic (deep nesting, a 5,000-digit integer, seq_first
  2**70, ref_utc_s 1e300, boot_epoch 2**64) are quarantined once and acknowledged; the worker keeps storing the
  other subject's batches, and a worker killed with SIGKILL and restarted gets none of them again; deliveries
  published at QoS 0 are dropped unread and never acknowledged (a PUBACK of packet id 0 makes the broker drop the
  worker's connection, every subject's deliveries with it);
- two subjects whose kits share serials (same seed: same serials, boots, sequences, msg_ids) both get every
  sample stored and their outboxes emptied, while a third subject catching up far faster than its budget is shed
  and its shed batches are stored when its gateway re-sends them; the honest subjects are never shed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from analytics.stores import open_store
from analytics.stores.quarantine import Quarantine
from analytics.worker.budget import BudgetConfig
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import topic
from testing.servers import Mosquitto
from testing.worker.harness import WorkerProcess, finish, stop_gateways, stream
from testing.worker.hostile import (
    Publisher,
    assert_every_sample_stored,
    kit_session,
    poison,
    raw_batch,
    raw_topic,
    worker_thread,
)

pytestmark = pytest.mark.slow


def _wait_for(what: str, check: object, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_poison_on_one_subjects_topic_is_quarantined_once_and_never_stops_the_others(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    store_path = tmp_path / "store.sqlite"
    worker = WorkerProcess(mosquitto.port, str(store_path), "worker-1", tmp_path).start()
    publisher = Publisher(mosquitto.port, "neighbours", subscribe=(topic("S-OK", "ack"),))
    try:
        _wait_for("the worker to connect", lambda: "MQTT connected" in worker.log())
        time.sleep(0.5)  # subscribed
        bad = poison("S-BAD")
        for payload in bad.values():
            publisher.publish(raw_topic("S-BAD"), payload)
        for i in range(3):  # QoS 0 (no gateway does it): no packet id to acknowledge, dropped unread
            publisher.publish(raw_topic("S-QOS0"), env.encode(raw_batch("S-QOS0", 100 * i)), qos=0)
        good = [raw_batch("S-OK", 100 * i) for i in range(5)]
        for b in good:  # queued behind the poison
            publisher.publish(raw_topic("S-OK"), env.encode(b))
        _wait_for("S-OK's batches acknowledged", lambda: {b.msg_id for b in good} <= publisher.acked_ids("S-OK"))
        assert "MQTT disconnected" not in worker.log()  # a PUBACK of packet id 0 would make the broker drop it
        # a crash and a restart: the broker has nothing of S-BAD to hand out again (each poison was acknowledged)
        worker.kill()
        worker.start()
        _wait_for("the restarted worker", lambda: worker.log().count("MQTT connected") >= 2)
        last = raw_batch("S-OK", 500)
        publisher.publish(raw_topic("S-OK"), env.encode(last))
        _wait_for("the last batch acknowledged", lambda: last.msg_id in publisher.acked_ids("S-OK"))
    finally:
        publisher.close()
        worker.stop()
    log = worker.log()
    assert "Traceback" not in log
    assert "malformed=0" in log  # the restarted worker saw no poison again
    entries = Quarantine(tmp_path / "state" / "worker-quarantine-worker-1.sqlite").entries()
    assert len(entries) == len(bad) and {e.subject for e in entries} == {"S-BAD"}
    store = open_store(str(store_path))
    try:
        for b in [*good, last]:
            assert store.count_raw("S-OK", "pelvis", "GS-SYN-1", 7, b.seq_first, b.seq_last) == 100
        assert store.raw_progress("S-BAD", "pelvis", "GS-SYN-1", 7).seq_first is None
    finally:
        store.close()


def test_shared_serials_both_stored_and_a_flooder_shed_then_stored_when_it_resends(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """KIT-A and KIT-B wear kits of the same seed. FLOOD's gateway recorded 72 s while no worker ran (21,600
    samples in its outbox) and re-sends it all at once, far past its (test-sized) budget: its first 200 in-flight
    batches alone are 20,000 samples against a burst of 14,000, so some are shed whatever the timing. The honest
    sessions (11,700 samples and a few markers each) fit in the burst, so none of theirs ever is."""
    flood = kit_session(tmp_path, mosquitto.port, "FLOOD", seed=6, minutes=1.2, ack_timeout_s=2.0)
    sessions = [flood]
    try:
        stream(sessions, 80.0)  # published to nobody: it stays in the outbox, re-sent every 2 s
        budget = BudgetConfig(work_per_s=1_000.0, work_burst=14_000.0)
        with worker_thread(mosquitto.port, tmp_path / "store.sqlite", tmp_path / "q.sqlite", budget=budget) as worker:
            sessions += [
                kit_session(tmp_path, mosquitto.port, "KIT-A", seed=5, minutes=0.65),
                kit_session(tmp_path, mosquitto.port, "KIT-B", seed=5, minutes=0.65),
            ]
            finish(sessions, timeout_s=120.0)  # every outbox emptied: everything acknowledged end to end
            shed = dict(worker.shed_by_subject)
    finally:
        stop_gateways(sessions)
    serials = {s.subject: {p: x.info.serial for p, x in s.gateway.sensors.items() if x.info} for s in sessions}
    assert serials["KIT-A"] == serials["KIT-B"]
    assert shed.get("FLOOD", 0) > 0 and shed.get("KIT-A", 0) == 0 and shed.get("KIT-B", 0) == 0, shed
    assert_every_sample_stored(tmp_path / "store.sqlite", sessions)
