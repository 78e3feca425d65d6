"""The production gateway with 0.5-s batches on the virtual kit: the sample times the worker stores (each batch's
own clock mapping applied to its samples, `analytics.worker.decode.batch_samples(...).time_us()`) are in time
order across batches for every sensor, while the mappings still converge to the clock fit.

Before the continuity rule (`sensor_gateway.timing.continuity`), the fit moving back by 5-30 ms between two
batches early in a stream gave a batch's first samples times before the previous batch's last ones (out of
order in the store, or overwriting them when the times coincide)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from analytics.worker.decode import batch_samples
from gaitsym_common.uplink import envelope as env
from sensor_gateway.core import Gateway, GatewayConfig, run_for
from sensor_gateway.outbox import Outbox
from sensor_gateway.timing import VirtualHostClock
from simulator.virtual_kit_source import virtual_kit
from testing.gateway.kit_timing import UTC0, drifts_for
from testing.gateway.loopback import LoopbackLink


def _run(seed: int, batch_s: float, duration_s: float, state: Path) -> tuple[Gateway, LoopbackLink, object]:
    clock = VirtualHostClock(start_s=1000.0, utc_at_start_s=UTC0)
    kit = virtual_kit(clock, seed=seed, minutes=duration_s / 60 + 0.05, drift_ppm=drifts_for(seed))
    link = LoopbackLink("cont")
    gw = Gateway(GatewayConfig(subject="cont", batch_s=batch_s), kit.transport, link, Outbox(state / "o.db"), clock)
    gw._rng.seed(seed)  # when the time-sync requests go: reproducible
    gw.start()
    run_for(gw, kit.transport, clock, duration_s, tick_s=0.01)
    gw.stop()
    return gw, link, kit


@pytest.mark.parametrize(("seed", "batch_s"), [(1, 0.5), (3, 0.5), (4, 0.5), (3, 1.0)])
def test_stored_sample_times_are_strictly_increasing_across_batches(seed: int, batch_s: float) -> None:
    with tempfile.TemporaryDirectory() as d:
        _, link, kit = _run(seed, batch_s, 75.0, Path(d))
    for placement in ("pelvis", "left_thigh", "right_thigh"):
        batches = sorted(
            (m for m in link.messages if isinstance(m, env.RawBatch) and m.placement == placement),
            key=lambda m: m.seq_first,
        )
        assert len(batches) > 60 / batch_s * 0.8
        for m in batches:  # each published mapping is self-consistent (rate and drift_ppm as the contract says)
            assert m.clock.utc_synced and m.clock.ref_utc_s is not None
            assert abs(m.clock.rate - 1 / (1 + m.clock.drift_ppm * 1e-6)) < 1e-12
        samples = [batch_samples(m) for m in batches]
        seq = np.concatenate([s.seq for s in samples])
        time_us = np.concatenate([s.time_us() for s in samples])  # what the store keys the samples by
        assert (np.diff(seq) == 1).all(), placement
        steps = np.diff(time_us)
        # 100 Hz: 10 ms apart, at least half a period at a batch boundary while a step back is absorbed
        assert steps.min() >= 5_000 - 1, (placement, int(steps.min()), int(seq[1:][np.argmin(steps)]))
        true_us = np.array([UTC0 * 1e6 + kit.true_sim_s(placement, int(q)) * 1e6 for q in seq])  # type: ignore[attr-defined]
        err_ms = (time_us - true_us) / 1e3
        t_s = (true_us - UTC0 * 1e6) / 1e6
        # converged to the fit: from 20 s on every sample within the 2-ms goal (tests/gateway/test_timing.py)
        assert np.abs(err_ms[t_s >= 20.0]).max() < 2.0, placement


def test_the_continuity_floor_survives_a_gateway_restart() -> None:
    """The last mapped sample of each placement is committed with its batch (the cursor), and a gateway
    started on the same outbox continues from it."""
    with tempfile.TemporaryDirectory() as d:
        gw, _, _ = _run(2, 0.5, 40.0, Path(d))
        floors = {p: s.continuity.last_s for p, s in gw.sensors.items()}
        assert all(v is not None for v in floors.values())
        clock = VirtualHostClock(start_s=2000.0, utc_at_start_s=UTC0 + 1000.0)
        kit = virtual_kit(clock, seed=2, minutes=0.7)
        again = Gateway(
            GatewayConfig(subject="cont"), kit.transport, LoopbackLink("cont"), Outbox(Path(d) / "o.db"), clock
        )
        try:
            assert {p: s.continuity.last_s for p, s in again.sensors.items()} == floors
        finally:
            again.outbox.close()
