"""Time-sync error of the production gateway on the virtual kit's packet stream (shared by the tests and
bench/gateway_timesync.py).

The gateway (decode, clock fit with TIME_SYNC round trips, batching, outbox) runs on a virtual clock over a
`virtual_kit` transport; an in-memory link collects the raw batches. For each published batch the error is
its clock mapping applied to its first sample minus the true UTC of that sample (the simulator's truth:
sample k of a sensor is taken at simulation time k / rate). At each whole second T from ``from_s`` on, each
sensor contributes the error of the batch holding T; "pairwise" is the worst disagreement of the three.
"""

from __future__ import annotations

import itertools
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gaitsym_common.uplink import envelope as env
from sensor_gateway.core import Gateway, GatewayConfig, run_for
from sensor_gateway.outbox import Outbox
from sensor_gateway.timing import VirtualHostClock
from simulator.virtual_kit_source import virtual_kit
from testing.gateway.loopback import LoopbackLink

UTC0 = 1_767_225_600.0


@dataclass
class TimingResult:
    pairwise_at_ms: float
    """Worst pairwise misalignment at exactly ``from_s``, ms."""
    pairwise_max_ms: float
    """Worst pairwise misalignment over every second from ``from_s`` to the end, ms."""
    abs_max_ms: float
    drift_err_max_ppm: float
    drifts_ppm: tuple[float, ...]


def drifts_for(seed: int) -> tuple[float, float, float]:
    rng = random.Random(seed)
    return tuple(rng.choice([-1, 1]) * rng.uniform(20.0, 50.0) for _ in range(3))  # type: ignore[return-value]


def run_timing(
    seed: int, spp: int, duration_s: float = 120.0, from_s: float = 60.0, time_sync_every_s: float = 0.25
) -> TimingResult:
    drifts = drifts_for(seed)
    clock = VirtualHostClock(start_s=1000.0, utc_at_start_s=UTC0)
    kit = virtual_kit(clock, seed=seed, minutes=duration_s / 60 + 0.05, samples_per_packet=spp, drift_ppm=drifts)
    link = LoopbackLink("bench")
    with tempfile.TemporaryDirectory() as d:
        config = GatewayConfig(subject="bench", time_sync_every_s=time_sync_every_s)
        gw = Gateway(config, kit.transport, link, Outbox(Path(d) / "o.db", synchronous="NORMAL"), clock)
        gw.start()
        run_for(gw, kit.transport, clock, duration_s, tick_s=0.01)
        fits = {p: s.stream.fit() for p, s in gw.sensors.items() if s.stream is not None}
        gw.stop()
    errors: dict[str, list[tuple[float, float, float]]] = {p: [] for p in kit.sensors}  # (t0, t1, error ms)
    for m in link.messages:
        if not isinstance(m, env.RawBatch):
            continue
        t_first = kit.true_sim_s(m.placement, m.seq_first)
        t_last = kit.true_sim_s(m.placement, m.seq_last)
        mapped = m.clock.to_utc_s(m.t_sensor_us_first)
        assert mapped is not None
        errors[m.placement].append((t_first, t_last, (mapped - (UTC0 + t_first)) * 1e3))
    pair_at, pair_max, abs_max = 0.0, 0.0, 0.0
    for second in range(int(from_s), int(duration_s) - 1):
        at = {}
        for p, rows in errors.items():
            hits = [e for t0, t1, e in rows if t0 <= second + 1e-9 and second < t1 + 0.011]
            if hits:
                at[p] = hits[0]
        if len(at) < 3:
            continue
        worst = max(abs(a - b) for a, b in itertools.combinations(at.values(), 2))
        if second == int(from_s):
            pair_at = worst
        pair_max = max(pair_max, worst)
        abs_max = max(abs_max, *map(abs, at.values()))
    drift_err = max(abs(fits[p].drift_ppm - kit.sensors[p].drift_ppm) for p in fits)
    return TimingResult(pair_at, pair_max, abs_max, drift_err, drifts)
