"""The simulated sensors' radio output: firmware_protocol IMU packets with each sensor's own clock, as they
arrive at the host. This is what the gateway consumes to prove its drift-corrected timestamps.

Per sensor (`simulated_sensors`):
- sensor info (firmware_protocol.SensorInfo): serial, boot epoch, rate (Hz, integer), ranges +-16 g and
  +-2000 deg/s, samples per packet (default 10), placement.
- clock: the sensor counts microseconds since boot: timestamp_us = (boot_age_s + t) * (1 + drift_ppm 1e-6) * 1e6
  mod 2**32, t = true time from the recording's first sample (s); drift_ppm from --drift-ppm (default drawn in
  +-20 ppm: crystals drift 10-20 ppm). boot_age_s (s since boot at the first sample) is drawn
  in 20..600 s unless given (give ~4290 s to see the u32 microsecond counter wrap 5 s later).
- sequence: samples since boot of the packet's first sample, mod 2**32 (sequence_start overrides).
- samples: the recording's acc/gyr scaled to int16 counts (acc / 9.80665 / 16 * 32768, gyr / 2000 * 32768),
  clipped, with the packet's ACC_SATURATED / GYR_SATURATED flag set when a value was clipped.

Link (`iter_packets`): each sensor has its own BLE connection, interval drawn in 30-50 ms (BlueZ default), a
random phase, and 40 % of connection events missed (interference, Wi-Fi coexistence); a packet is ready
1-3 ms after its last sample and leaves at the next successful connection event with up to 6 others
(BLE stacks send 4-6 notifications per connection event), 0.6-2 ms apart, so arrivals come in bursts with
60+ ms gaps. --packet-loss drops packets independently (the sequence numbers show the gap). Arrival times
are host seconds on the recording's timeline (true time; the host clock is the reference).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from firmware_protocol.packet import ImuPacket, PacketFlags, encode_packet
from firmware_protocol.sensor_info import PLACEMENTS, Placement, SensorInfo
from firmware_protocol.wire import STANDARD_GRAVITY_MPS2, U32_MODULUS
from sensor_gateway.errors import SimulationError

from .session import SimulatedSession, random_streams

ACC_RANGE_G = 16
GYR_RANGE_DPS = 2000
SAMPLES_PER_PACKET = 10
MAX_PACKETS_PER_EVENT = 6
MISSED_EVENT_PROBABILITY = 0.4
FIRMWARE_VERSION = (1, 0, 0)


@dataclass(frozen=True)
class SimulatedSensor:
    """One sensor as the gateway meets it: its info, and the clock truth (for tests of the gateway)."""

    info: SensorInfo
    drift_ppm: float
    boot_age_s: float
    sequence_start: int
    connection_interval_s: float

    def timestamp_us(self, t_s: np.ndarray) -> np.ndarray:
        """The sensor clock (u32 us, wrapping) at true times t_s (s from the recording's first sample)."""
        ticks = np.round((self.boot_age_s + np.asarray(t_s)) * (1.0 + self.drift_ppm * 1e-6) * 1e6)
        return np.mod(ticks, U32_MODULUS).astype(np.int64)


def simulated_sensors(
    session: SimulatedSession,
    samples_per_packet: int = SAMPLES_PER_PACKET,
    boot_age_s: float | None = None,
    sequence_start: int | None = None,
) -> dict[str, SimulatedSensor]:
    """Sensor info and clock of each placement (drawn from the session's own 'packets' random stream)."""
    cfg = session.config
    rate = session.recording.sampling_rate_hz
    if rate != int(rate):
        raise SimulationError(f"rate_hz (--rate): the packet stream needs a whole number of Hz, got {rate:g}")
    if not 1 <= samples_per_packet <= 19:
        raise SimulationError(f"samples_per_packet: must be 1..19, got {samples_per_packet}")
    rng = random_streams(cfg.seed)["packets"]
    out = {}
    # Drawn in PLACEMENTS order (drift_ppm[i] is the i-th placement's): a seed's sensors depend on that order.
    for i, placement in enumerate(PLACEMENTS):
        drift = float(rng.uniform(-20.0, 20.0)) if cfg.drift_ppm is None else float(cfg.drift_ppm[i])
        age = float(rng.uniform(20.0, 600.0)) if boot_age_s is None else float(boot_age_s)
        seq0 = round(age * rate) % U32_MODULUS if sequence_start is None else int(sequence_start) % U32_MODULUS
        info = SensorInfo(
            placement=Placement(placement),
            sample_rate_hz=int(rate),
            acc_range_g=ACC_RANGE_G,
            gyr_range_dps=GYR_RANGE_DPS,
            samples_per_packet=samples_per_packet,
            firmware_version=FIRMWARE_VERSION,
            boot_epoch=int(rng.integers(1, 5000)),
            serial=f"GS{cfg.seed % 10000:04d}{i}{int(rng.integers(0, 16**4)):04X}",
        )
        out[placement] = SimulatedSensor(info, drift, age, seq0, float(rng.uniform(0.030, 0.050)))
    return out


def quantise(acc_mps2: np.ndarray, gyr_dps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int16 counts (n, 6) at +-16 g / +-2000 deg/s, and per-sample acc / gyr saturation (n,) booleans."""
    acc = np.round(acc_mps2 / STANDARD_GRAVITY_MPS2 / ACC_RANGE_G * 32768.0)
    gyr = np.round(gyr_dps / GYR_RANGE_DPS * 32768.0)
    acc_sat = ((acc < -32768) | (acc > 32767)).any(axis=1)
    gyr_sat = ((gyr < -32768) | (gyr > 32767)).any(axis=1)
    counts = np.clip(np.column_stack([acc, gyr]), -32768, 32767).astype(np.int64)
    return counts, np.asarray(acc_sat), np.asarray(gyr_sat)


def _arrivals(ready_s: np.ndarray, sensor: SimulatedSensor, rng: np.random.Generator) -> np.ndarray:
    """Host arrival time of each packet (ready times sorted): bursts at successful connection events."""
    ci = sensor.connection_interval_s
    n_events = int(np.ceil((ready_s[-1] + 1.0) / ci)) + 2
    events = rng.uniform(0, ci) + ci * np.arange(n_events)
    ok = events[rng.random(n_events) >= MISSED_EVENT_PROBABILITY]
    arrival = np.empty_like(ready_s)
    first_event = np.searchsorted(ok, ready_s)
    e, last_event, count = 0, -1, 0
    for j in range(ready_s.size):  # per packet (not per sample): ~10 a second
        e = max(e, int(first_event[j]))  # first in, first out
        if e == last_event and count >= MAX_PACKETS_PER_EVENT:
            e += 1
        if e != last_event:
            arrival[j] = ok[e] + rng.uniform(0.0, 0.001)
            last_event, count = e, 0
        else:
            arrival[j] = arrival[j - 1] + rng.uniform(0.0006, 0.002)
        count += 1
    return arrival


def sensor_packets(
    session: SimulatedSession, placement: str, sensor: SimulatedSensor, rng: np.random.Generator
) -> Iterator[tuple[float, str, bytes]]:
    """One sensor's packets in arrival order: (arrival_time_s, placement, packet bytes)."""
    data = session.recording.sensors[placement]
    counts, acc_sat, gyr_sat = quantise(data.acc_mps2, data.gyr_dps)
    n = counts.shape[0]
    spp = sensor.info.samples_per_packet
    starts = np.arange(0, n, spp)
    t = session.recording.time_s
    last = np.minimum(starts + spp, n) - 1
    ready = t[last] + rng.uniform(0.001, 0.003, starts.size)
    kept = rng.random(starts.size) >= session.config.packet_loss
    arrival = _arrivals(ready, sensor, rng)
    stamps = sensor.timestamp_us(t[starts])
    for j in np.flatnonzero(kept):
        a, b = int(starts[j]), int(min(starts[j] + spp, n))
        flags = PacketFlags(0)
        if acc_sat[a:b].any():
            flags |= PacketFlags.ACC_SATURATED
        if gyr_sat[a:b].any():
            flags |= PacketFlags.GYR_SATURATED
        packet = ImuPacket(
            flags=flags,
            sequence=(sensor.sequence_start + a) % U32_MODULUS,
            timestamp_us=int(stamps[j]),
            acc_range_g=ACC_RANGE_G,
            gyr_range_dps=GYR_RANGE_DPS,
            samples=tuple(map(tuple, counts[a:b].tolist())),  # type: ignore[arg-type]
        )
        yield float(arrival[j]), placement, encode_packet(packet)


def iter_packets(
    session: SimulatedSession,
    sensors: dict[str, SimulatedSensor] | None = None,
    placements: tuple[str, ...] | None = None,
) -> Iterator[tuple[float, str, bytes]]:
    """All sensors' packets merged in arrival order: (arrival_time_s, placement, packet bytes).

    Deterministic for a session (seeded from its seed); `sensors` from `simulated_sensors` (default: drawn).
    """
    sensors = sensors or simulated_sensors(session)
    streams = random_streams(session.config.seed)["packets"].spawn(len(PLACEMENTS))
    chosen = placements or tuple(p for p in PLACEMENTS if p in session.recording.sensors)
    generators = [sensor_packets(session, p, sensors[p], streams[PLACEMENTS.index(p)]) for p in chosen]
    yield from heapq.merge(*generators, key=lambda item: item[0])
