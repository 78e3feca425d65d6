"""End to end with a real Mosquitto (the project's conf): every sample the kit sent is delivered exactly
once after de-duplication, in sequence order per sensor, whatever the broker does. The gateway runs on a
virtual clock (sped up); broker outages happen in real time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gaitsym_common.mqtt import MqttSettings, PahoLink
from gaitsym_common.uplink import envelope as env
from gateway.packet_source import kit, merge
from sensor_gateway.core import Gateway, GatewayConfig, run_for
from sensor_gateway.outbox import Outbox
from sensor_gateway.timing import VirtualHostClock
from sensor_gateway.transport import VirtualKitTransport
from testing.gateway.worker_stub import AckingWorker
from testing.servers import Mosquitto

SUBJECT = "P001"


def _setup(tmp_path: Path, broker: Mosquitto, duration_s: float):  # type: ignore[no-untyped-def]
    sensors = kit(spp=5)
    clock = VirtualHostClock(start_s=1000.0)
    source = ((a - 1000.0, p, d) for a, p, d, _, _ in merge(*(s.packets(duration_s) for s in sensors)))
    transport = VirtualKitTransport(source, {s.placement: s.info() for s in sensors}, clock)
    link = PahoLink(MqttSettings(port=broker.port, client_id=f"gw-{SUBJECT}", reconnect_max_s=1))
    outbox = Outbox(tmp_path / "outbox.db")
    config = GatewayConfig(subject=SUBJECT, ack_timeout_s=5.0, status_every_s=2.0, still_timeout_s=20.0)
    gw = Gateway(config, transport, link, outbox, clock)
    return sensors, clock, transport, gw


def _drain(gw: Gateway, transport: VirtualKitTransport, clock: VirtualHostClock, timeout_s: float = 40.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run_for(gw, transport, clock, 0.5, speed=10.0)
        if transport.exhausted and len(gw.outbox) == 0 and not any(s.packets for s in gw.sensors.values()):
            return
    raise AssertionError(f"outbox not drained: {gw.outbox.stats()}")


def _check_exactly_once(worker: AckingWorker, sensors, duration_s: float) -> None:  # type: ignore[no-untyped-def]
    got = worker.unique_samples()
    n = int(duration_s * 100) // 5 * 5
    for s in sensors:
        assert got[(s.serial, s.boot_epoch)] == list(range(n)), s.placement
    assert not [m for m in worker.messages if isinstance(m, env.Gap)]


def _scenario(tmp_path: Path, mosquitto: Mosquitto, outage: str, down_s: float) -> None:
    duration = 40.0
    worker = AckingWorker(mosquitto.port, SUBJECT)
    sensors, clock, transport, gw = _setup(tmp_path, mosquitto, duration)
    gw.start()
    try:
        run_for(gw, transport, clock, 10.0, speed=10.0)
        if outage == "stop":
            mosquitto.stop()
        else:
            mosquitto.kill()
        t_down = time.monotonic()
        while time.monotonic() - t_down < down_s:
            run_for(gw, transport, clock, 0.5, speed=10.0)
        mosquitto.start()
        _drain(gw, transport, clock)
        time.sleep(0.5)
        _check_exactly_once(worker, sensors, duration)
        markers = [m for m in worker.messages if isinstance(m, env.Marker)]
        assert any(m.type == "session_start" for m in markers)
        assert any(m.type == "window" for m in markers)
        assert any(s.state == "online" and s.sensors["pelvis"].link == "connected" for s in worker.statuses)
    finally:
        gw.stop()
        worker.close()


def test_broker_stopped_and_restarted_mid_stream(tmp_path: Path, mosquitto: Mosquitto) -> None:
    _scenario(tmp_path, mosquitto, "stop", down_s=3.0)


def test_broker_killed_with_sigkill(tmp_path: Path, mosquitto: Mosquitto) -> None:
    _scenario(tmp_path, mosquitto, "kill", down_s=2.0)


@pytest.mark.slow
def test_broker_stopped_30s(tmp_path: Path, mosquitto: Mosquitto) -> None:
    _scenario(tmp_path, mosquitto, "stop", down_s=30.0)
