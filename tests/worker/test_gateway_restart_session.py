"""A gateway killed mid-session and restarted 10 minutes later, end to end (production gateway core on the virtual
kit, real Mosquitto, a real `gaitsym worker` process, the embedded store).

The first gateway process streams a walk and is killed (no stop: only what its outbox committed survives);
meanwhile the worker wrote provisional strides of the session. The second process starts 10 virtual minutes
later (the patient put on the kit again): it first sends the old session's ``session_end`` (referring to the last
samples the first process committed, stamped with their time), then opens a new session. Every session ends with
final results and no provisional stride is left orphaned."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from analytics.stores import open_store
from gaitsym_common.mqtt import MqttSettings, PahoLink
from sensor_gateway.core import Gateway, GatewayConfig, run_for
from sensor_gateway.outbox import Outbox
from sensor_gateway.timing import VirtualHostClock
from simulator.virtual_kit_source import virtual_kit
from testing.servers import Mosquitto
from testing.worker.harness import UTC0, WorkerProcess

pytestmark = pytest.mark.slow
SUBJECT = "RS1"


def _gateway(tmp: Path, port: int, clock: VirtualHostClock, seed: int):  # type: ignore[no-untyped-def]
    kit = virtual_kit(clock, seed=seed, minutes=0.75, script="walk")
    link = PahoLink(MqttSettings(port=port, client_id=f"gw-{SUBJECT}", reconnect_max_s=1))
    config = GatewayConfig(subject=SUBJECT, window_s=2.0, ack_timeout_s=30.0)
    gw = Gateway(config, kit.transport, link, Outbox(tmp / "outbox.db", synchronous="NORMAL"), clock)
    gw.start()
    return kit, gw


def _sessions(url: str) -> tuple[dict[str, int], int]:
    """Final summaries (session -> result_version) and provisional strides of the subject."""
    store = open_store(url)
    try:
        final = {
            str(r.fields["session"]): int(r.fields["result_version"])  # type: ignore[call-overload]
            for r in store.read_results(SUBJECT)
            if r.measurement == "session_summary" and r.tags["side"] == "none"
        }
        live = len([r for r in store.read_results(SUBJECT, live=True) if r.measurement == "stride_live"])
    finally:
        store.close()
    return final, live


def test_a_gateway_killed_mid_session_and_restarted_10_min_later_leaves_every_session_final(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    url = str(tmp_path / "store.sqlite")
    worker = WorkerProcess(mosquitto.port, url, "worker-restart", tmp_path).start()
    try:
        time.sleep(1.5)  # the worker's session and shared subscription exist before data flows
        clock1 = VirtualHostClock(start_s=1000.0, utc_at_start_s=UTC0)
        kit1, gw1 = _gateway(tmp_path, mosquitto.port, clock1, seed=31)
        run_for(gw1, kit1.transport, clock1, 30.0, tick_s=0.05, speed=10.0)
        first = gw1.session.session
        assert first is not None and not kit1.transport.exhausted
        gw1.link.close()  # killed: no batch closed, no session_end, no goodbye
        gw1.outbox.close()
        deadline = time.monotonic() + 60.0
        while _sessions(url)[1] < 5:  # the worker analysed live windows of what was delivered
            assert time.monotonic() < deadline, worker.log()[-3000:]
            time.sleep(0.2)

        clock2 = VirtualHostClock(start_s=5000.0, utc_at_start_s=clock1.utc() + 600.0)
        kit2, gw2 = _gateway(tmp_path, mosquitto.port, clock2, seed=32)
        while not kit2.transport.exhausted:
            run_for(gw2, kit2.transport, clock2, 5.0, tick_s=0.05)
        second = gw2.session.session
        assert second is not None and second != first
        now = clock2.monotonic()
        for s in gw2.sensors.values():
            gw2._close_batch(s, now)
        gw2._close_session(now)  # the second session ends as after stillness
        deadline = time.monotonic() + 90.0
        while len(gw2.outbox) or set(_sessions(url)[0]) != {first, second}:
            assert time.monotonic() < deadline, (_sessions(url), len(gw2.outbox), worker.log()[-3000:])
            run_for(gw2, kit2.transport, clock2, 0.5, tick_s=0.05)
            time.sleep(0.1)
        gw2.stop(end_session=False)
        final, live = _sessions(url)
        assert final == {first: 2, second: 2}
        assert live == 0
    finally:
        worker.stop()
