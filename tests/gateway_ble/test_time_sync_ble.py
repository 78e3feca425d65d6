"""Time sync over BLE: the gateway core's TIME_SYNC round trips run through the real bleak transport against
the emulated kit on bluezoo, and the three sensors' clocks map onto the gateway's clock consistently.

Truth: an emulated sensor's clock reads (host_ns - boot_ns) / 1000 + offset µs on the host's CLOCK_MONOTONIC
(the kit reports boot_ns), so the true host time of any sensor reading is known. No assertion on how long
anything took: the assertions are on the mapping (truth inside the feasible band the round trips and arrivals
allow, round trips consistent with the fitted line, the three sensors agreeing within what their own round
trips can resolve).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from pathlib import Path

from gaitsym.gateway_runner import build_ble_gateway, serve
from gaitsym_common.uplink import envelope as env
from sensor_gateway.ble import BleConfig, pair
from sensor_gateway.core import GatewayConfig
from sensor_gateway.transport.base import TimeSyncEvent
from testing.ble_harness import BleStack
from testing.ble_harness.standin import kit_call
from testing.gateway.loopback import LoopbackLink

SUBJECT = "P-sync"


def test_time_sync_round_trips_over_ble_map_the_three_sensors_consistently(ble_stack: BleStack, tmp_path: Path) -> None:
    ble_config = BleConfig(state_dir=tmp_path / "ble", adapter="hci0", scan_timeout_s=3.0)
    asyncio.run(pair(ble_config, scan_s=1.0))
    link = LoopbackLink(SUBJECT)
    gw = build_ble_gateway(GatewayConfig(subject=SUBJECT), link, tmp_path, ble_config)
    syncs: list[TimeSyncEvent] = []
    on_time_sync = gw._on_time_sync

    def record(event: TimeSyncEvent) -> None:
        syncs.append(event)
        on_time_sync(event)

    gw._on_time_sync = record  # type: ignore[method-assign]
    gw.start()
    try:
        assert serve(gw, threading.Event(), duration_s=12.0, drain_timeout_s=10.0)
        fits = {p: s.stream.fit() for p, s in gw.sensors.items() if s.stream is not None}
    finally:
        gw.stop()
    truth = {p: kit_call(ble_stack, "state", p) for p in fits}
    assert sorted(fits) == ["left_thigh", "pelvis", "right_thigh"]

    def true_host_s(placement: str, t_sensor_us: int) -> float:
        state = truth[placement]
        return (state["boot_ns"] + (t_sensor_us - state["clock_offset_us"]) * 1000) / 1e9

    ids = [e.request_id for e in syncs]
    assert len(ids) == len(set(ids)), "every TimeSyncEvent answers its own request"
    errors_ms: dict[str, float] = {}
    for p, fit in fits.items():
        answered = [e for e in syncs if e.placement == p and e.timestamp_us is not None]
        assert answered, f"{p}: no TIME_SYNC round trip came back over BLE"
        assert all(e.sent_s <= e.received_s for e in answered)
        # the fit used the round trips (lower bounds) and fitted the rate
        assert fit.n_sync >= 5 and fit.rate_fitted and fit.band_ms is not None, fit
        band_s = fit.band_ms / 1e3
        # the sensor read its clock between sent and received: the true line lies in the feasible band, and
        # the gateway's line is clipped into it, so they differ by at most the band's width
        errors_ms[p] = (fit.host_s(fit.sensor_ref_us) - true_host_s(p, fit.sensor_ref_us)) * 1e3
        assert abs(errors_ms[p]) <= fit.band_ms, (p, errors_ms[p], fit)
        # residuals: every round trip's reading maps inside its own [sent, received] (within the band)
        for e in answered:
            assert e.timestamp_us is not None
            mapped = fit.host_s(e.timestamp_us)
            assert e.sent_s - band_s <= mapped <= e.received_s + band_s, (p, e, mapped)
    # the three sensors' mapped times agree within what their round trips resolve
    for (a, ea), (b, eb) in itertools.combinations(errors_ms.items(), 2):
        assert abs(ea - eb) <= 0.5 * (fits[a].band_ms + fits[b].band_ms), (a, b, errors_ms)  # type: ignore[operator]
    raw = [m for m in link.messages if isinstance(m, env.RawBatch)]
    assert {m.placement for m in raw} == set(fits)
