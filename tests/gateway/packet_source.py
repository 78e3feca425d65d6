"""A tiny local packet source for gateway tests (until/besides the virtual kit): drifting sensor clocks,
bursty BLE arrival, u32 wraps and reboots, producing real firmware_protocol packet bytes.

Truth: a sample stamped ``ts`` µs (unwrapped) by a sensor is taken at host time
``boot_host_s + (ts - ts0_us) * 1e-6 / (1 + drift_ppm * 1e-6)`` (drift_ppm > 0: the sensor's clock runs
fast). Arrival adds the BLE delay: packets wait
for the link's next connection event (``interval_ms``), at most ``per_event`` packets go per event, and some
events are skipped (60+ ms gaps).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from firmware_protocol.packet import ImuPacket, encode_packet
from firmware_protocol.sensor_info import PLACEMENTS, Placement, SensorInfo


@dataclass
class SimSensor:
    serial: str
    placement: str
    drift_ppm: float = 0.0
    ts0_us: int = 0
    """Sensor counter at boot (use e.g. 2**32 - 5_000_000 to wrap 5 s in)."""
    seq0: int = 0
    boot_host_s: float = 1000.0
    boot_epoch: int = 1
    rate_hz: int = 100
    spp: int = 5
    interval_ms: float = 48.75
    """BLE connection interval (1.25 ms units). Note: when the packet period and the interval are
    commensurate (e.g. 50 ms vs 45 ms), arrival delays sit on a lattice of I/q ms that drifts with the
    sensor clock, and no arrival-only fit can beat that spacing in a window shorter than its beat period."""
    per_event: int = 4
    skip_prob: float = 0.15
    seed: int = 0
    moving: bool = True
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def info(self) -> SensorInfo:
        return SensorInfo(
            placement=Placement(self.placement),
            sample_rate_hz=self.rate_hz,
            acc_range_g=8,
            gyr_range_dps=1000,
            samples_per_packet=self.spp,
            firmware_version=(1, 0, 0),
            boot_epoch=self.boot_epoch,
            serial=self.serial,
        )

    def true_host_s(self, ts_unwrapped_us: int) -> float:
        return self.boot_host_s + (ts_unwrapped_us - self.ts0_us) * 1e-6 / (1 + self.drift_ppm * 1e-6)

    def sample(self, seq: int) -> tuple[int, int, int, int, int, int]:
        if not self.moving:
            return (0, 0, 4096, 0, 0, 0)
        phase = 2 * math.pi * seq / self.rate_hz
        return (int(2000 * math.sin(phase)), 0, 4096, int(3000 * math.cos(phase)), 0, 0)

    def packets(self, duration_s: float) -> Iterator[tuple[float, str, bytes, int, int]]:
        """(arrival host s, placement, bytes, unwrapped seq, unwrapped ts µs), in arrival order."""
        period_us = 1_000_000 // self.rate_hz
        n_packets = int(duration_s * self.rate_hz / self.spp)
        phase = self._rng.uniform(0, self.interval_ms * 1e-3)
        next_event = self.boot_host_s + phase
        queue: list[tuple[int, float, bytes, int]] = []
        sent_in_event = 0
        for k in range(n_packets):
            seq = self.seq0 + k * self.spp
            ts = self.ts0_us + k * self.spp * period_us
            ready = self.true_host_s(ts + (self.spp - 1) * period_us)
            pkt = ImuPacket(
                sequence=seq % 2**32,
                timestamp_us=ts % 2**32,
                acc_range_g=8,
                gyr_range_dps=1000,
                samples=tuple(self.sample(seq + i) for i in range(self.spp)),
            )
            queue.append((seq, ready, encode_packet(pkt), ts))
            # deliver every queued packet whose connection event comes before the next packet is ready
            next_ready = self.true_host_s(ts + (2 * self.spp - 1) * period_us)
            while queue and next_event <= next_ready:
                if next_event >= queue[0][1]:
                    if self._rng.random() < self.skip_prob:
                        sent_in_event = self.per_event  # skipped event: nothing goes
                    while queue and sent_in_event < self.per_event and queue[0][1] <= next_event:
                        s, _, data, t = queue.pop(0)
                        yield next_event + self._rng.expovariate(1 / 0.0007), self.placement, data, s, t
                        sent_in_event += 1
                next_event += self.interval_ms * 1e-3
                sent_in_event = 0
        for s, _, data, t in queue:
            next_event += self.interval_ms * 1e-3
            yield next_event, self.placement, data, s, t


def merge(*streams: Iterator[tuple[float, str, bytes, int, int]]) -> Iterator[tuple[float, str, bytes, int, int]]:
    """Merge several sensors' packet streams by arrival time."""
    return heapq.merge(*streams, key=lambda item: item[0])


def kit(drifts_ppm: tuple[float, float, float] = (20.0, -35.0, 50.0), **kw: object) -> list[SimSensor]:
    return [
        SimSensor(serial=f"GS-{i:04d}", placement=p, drift_ppm=d, seed=i, **kw)  # type: ignore[arg-type]
        for i, (p, d) in enumerate(zip(PLACEMENTS, drifts_ppm, strict=True))
    ]


def placement_info(placement: str, boot_epoch: int, samples_per_packet: int) -> SensorInfo:
    """What a test kit's sensor at ``placement`` reports: 100 Hz, ±16 g, ±2000 deg/s, serial GS-<PLA>."""
    return SensorInfo(
        placement=Placement(placement),
        sample_rate_hz=100,
        acc_range_g=16,
        gyr_range_dps=2000,
        samples_per_packet=samples_per_packet,
        firmware_version=(1, 0, 0),
        boot_epoch=boot_epoch,
        serial=f"GS-{placement[:3].upper()}",
    )
