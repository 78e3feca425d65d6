"""End to end on real servers: simulated home sessions (3 subjects at once) through the production gateway
core, a real Mosquitto (the project's conf) and `gaitsym worker` processes into a real InfluxDB 1.6.

The reference is one worker; every other scenario must store exactly the same points (every result point,
every field, provenance included) and every raw sample exactly once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.influxdb_server import InfluxDB
from testing.servers import Mosquitto
from testing.worker.harness import HomeSession, WorkerProcess, stream
from testing.worker.scenario import Outcome, check_complete_and_unique, fresh_database, run_scenario

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, influxdb: InfluxDB) -> Iterator[Outcome]:
    tmp = tmp_path_factory.mktemp("reference")
    broker = Mosquitto(tmp / "mosquitto").start()
    try:
        yield run_scenario(tmp, broker.port, fresh_database(influxdb), n_workers=1)
    finally:
        broker.kill()


def _same_as_reference(outcome: Outcome, reference: Outcome) -> None:
    check_complete_and_unique(outcome)
    assert outcome.raw == reference.raw
    for subject, rows in reference.results.items():
        kinds = {r[0] for r in rows}
        assert {"stride", "session_summary"} <= kinds, subject
        assert all(r[3]["result_version"] == 2 for r in rows), subject  # final results only, no provisional left
        assert outcome.results[subject] == rows, subject


def test_one_worker_stores_every_sample_and_final_results_with_provenance(reference: Outcome) -> None:
    check_complete_and_unique(reference)
    for subject, rows in reference.results.items():
        strides = [r for r in rows if r[0] == "stride"]
        assert len(strides) > 40, subject
        for _, _, tags, fields in rows:
            assert fields["algorithm"].startswith("gaitsym.analysis ")
            assert fields["result_schema"] == "gaitsym.result/1"
            assert fields["store_schema"] == "gaitsym.store/1"
            assert set(tags) >= {"subject", "side"}
            assert '"pelvis"' in fields["clock"] and '"t_sensor_us_first"' in fields["clock"]
        summary = [r for r in rows if r[0] == "session_summary" and r[2]["side"] == "left"]
        assert summary and summary[0][3]["n_strides"] > 10


def test_three_workers_store_exactly_what_one_worker_stores(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, reference: Outcome
) -> None:
    outcome = run_scenario(tmp_path, mosquitto.port, fresh_database(influxdb), n_workers=3)
    _same_as_reference(outcome, reference)
    assert outcome.worker_logs.count("MQTT connected") >= 3


def test_worker_killed_with_sigkill_mid_session_loses_and_duplicates_nothing(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, reference: Outcome
) -> None:
    def kill_and_restart(workers: list[WorkerProcess], sessions: list[HomeSession]) -> None:
        for pause_s in (0.3, 1.1, 2.3):  # killed at different moments of its work, then restarted
            stream(sessions, 4.0)
            time.sleep(pause_s)
            workers[0].kill()
            stream(sessions, 6.0)
            workers[0].start()

    outcome = run_scenario(tmp_path, mosquitto.port, fresh_database(influxdb), n_workers=2, during=kill_and_restart)
    _same_as_reference(outcome, reference)


def test_influxdb_stopped_mid_session_then_restarted_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, reference: Outcome
) -> None:
    def outage(workers: list[WorkerProcess], sessions: list[HomeSession]) -> None:
        influxdb.stop()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 12.0:  # several store retries (0.5, 1, 2, 4 s ...) while data keeps coming
            stream(sessions, 1.0)
            time.sleep(0.5)
        influxdb.start()

    outcome = run_scenario(tmp_path, mosquitto.port, fresh_database(influxdb), n_workers=1, during=outage)
    _same_as_reference(outcome, reference)
    assert "StoreUnavailable" in outcome.worker_logs or "retry" in outcome.worker_logs


def test_malformed_payloads_are_quarantined_counted_and_the_worker_keeps_going(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, reference: Outcome
) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from analytics.stores.quarantine import Quarantine

    def publish_garbage(workers: list[WorkerProcess], sessions: list[HomeSession]) -> None:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id="vandal")
        c.connect("127.0.0.1", mosquitto.port)
        c.loop_start()
        sent = [
            c.publish("gaitsym/v1/S001/raw/pelvis", b"\xff not json", qos=1),
            c.publish("gaitsym/v1/S002/marker", b'{"v":1,"kind":"marker","subject":"S002"}', qos=1),
        ]
        for info in sent:  # on a loaded machine a publish can take seconds: never disconnect before it is out
            info.wait_for_publish(60)
            assert info.is_published()
        c.loop_stop()
        c.disconnect()

    outcome = run_scenario(tmp_path, mosquitto.port, fresh_database(influxdb), n_workers=1, during=publish_garbage)
    _same_as_reference(outcome, reference)
    assert outcome.worker_logs.count("quarantined a malformed message") == 2
    assert "malformed=2" in outcome.worker_logs
    entries = Quarantine(tmp_path / "state" / "worker-quarantine-worker-1.sqlite").entries()
    assert sorted(e.what for e in entries) == [
        "mqtt topic=gaitsym/v1/S001/raw/pelvis",
        "mqtt topic=gaitsym/v1/S002/marker",
    ]
