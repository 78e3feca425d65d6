"""End to end over BLE: the production gateway (runner wiring, outbox, paho) on the real bleak transport
against the emulated kit on bluezoo, which serves a simulated walking session in real time, and a real
Mosquitto with an acknowledging worker. About 20 s of streaming with one forced link drop: every sample each
sensor took is delivered exactly once (after de-duplication) or reported as a gap, never both."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from firmware_protocol.sensor_info import PLACEMENTS
from gaitsym.gateway_runner import build_ble_gateway, serve
from gaitsym_common.mqtt import MqttSettings
from gaitsym_common.uplink import envelope as env
from sensor_gateway.ble import BleConfig, BleTransport, pair
from sensor_gateway.core import GatewayConfig
from testing.ble_harness import BleStack
from testing.ble_harness.standin import kit_call
from testing.gateway.worker_stub import AckingWorker
from testing.servers import Mosquitto

SUBJECT = "P-ble"


def _wait(predicate, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_gateway_over_ble_delivers_every_sample_once_or_as_a_gap_across_a_link_drop(
    ble_stack: BleStack, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    ble_config = BleConfig(state_dir=tmp_path / "ble", adapter="hci0", scan_timeout_s=3.0, silence_timeout_s=1.0)
    asyncio.run(pair(ble_config, scan_s=1.0))
    worker = AckingWorker(mosquitto.port, SUBJECT)
    mqtt = MqttSettings(port=mosquitto.port, client_id=f"gw-{SUBJECT}", reconnect_max_s=1)
    config = GatewayConfig(subject=SUBJECT, ack_timeout_s=5.0, status_every_s=2.0)
    gw = build_ble_gateway(config, mqtt, tmp_path / "state", ble_config)
    transport = gw.transport
    assert isinstance(transport, BleTransport)
    stop = threading.Event()
    outcome: list[bool] = []
    gw.start()
    runner = threading.Thread(target=lambda: outcome.append(serve(gw, stop, duration_s=20.0, drain_timeout_s=30.0)))
    runner.start()
    try:
        # mid-stream (the worker has stored samples of every sensor), drop the pelvis link
        assert _wait(lambda: len(worker.unique_samples()) == 3, 30.0), worker.unique_samples().keys()
        assert kit_call(ble_stack, "drop_link", "pelvis") >= 1
        runner.join(120.0)
        assert not runner.is_alive()
        assert outcome == [True], "the worker did not acknowledge everything"
        stats = transport.stats()
        taken = {p: kit_call(ble_stack, "state", p) for p in PLACEMENTS}  # streaming stopped: final counts
    finally:
        stop.set()
        runner.join(30.0)
        gw.stop()
        time.sleep(0.3)
        worker.close()

    assert stats["pelvis"].losses >= 1 and stats["pelvis"].connects >= 2, stats["pelvis"]
    got = worker.unique_samples()
    gaps = [m for m in worker.messages if isinstance(m, env.Gap)]
    for p in PLACEMENTS:
        state = taken[p]
        key = (state["serial"], state["boot_epoch"])
        delivered = set(got[key])
        missing: set[int] = set()
        for g in gaps:
            if (g.serial, g.boot_epoch) == key:
                span = set(range(g.seq_first_missing, g.seq_last_missing + 1))
                assert not span & missing, f"{p}: a gap reported twice"
                missing |= span
        assert not delivered & missing, f"{p}: samples both delivered and reported missing"
        # every sample the sensor took (sequence = samples since boot) is accounted for, exactly once
        assert delivered | missing == set(range(state["sequence"])), (p, len(delivered), len(missing))
        assert len(delivered) >= 100 * 10, f"{p}: only {len(delivered)} samples streamed"
    # a raw message may arrive twice (at least once), a sample is stored once after de-duplication
    assert len({m.msg_id for m in worker.messages}) <= len(worker.messages)
    markers = [m.type for m in worker.messages if isinstance(m, env.Marker)]
    assert "session_start" in markers and "session_end" in markers
    assert any(s.sensors and s.sensors["pelvis"].link == "connected" for s in worker.statuses)
