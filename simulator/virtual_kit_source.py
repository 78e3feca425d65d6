"""The virtual kit as a transport: a simulated session's packet stream (`virtual_kit.packets.iter_packets`)
behind `VirtualKitTransport`, with each sensor's clock and connection interval wired in for time-sync round
trips. Imports numpy and the simulator: only `gaitsym gateway --virtual-kit`, tests and benches load it.

Units: minutes of simulated session, simulation seconds from the recording's first sample, ppm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensor_gateway.timing.host_clock import HostClock
from sensor_gateway.transport.virtual import SyncLink, VirtualKitTransport
from simulator import packets
from simulator.session import SimulatedSession, simulate_session

HOME_SCRIPT_MIN_MINUTES = 12.0


@dataclass
class VirtualKit:
    session: SimulatedSession
    sensors: dict[str, packets.SimulatedSensor]
    transport: VirtualKitTransport

    @property
    def duration_s(self) -> float:
        return float(self.session.recording.time_s[-1])

    def true_sim_s(self, placement: str, seq: int) -> float:
        """Simulation time (s) at which sample ``seq`` (unwrapped, boot-relative) of a sensor was taken."""
        sensor = self.sensors[placement]
        return (seq - sensor.sequence_start) / sensor.info.sample_rate_hz


def virtual_kit(
    clock: HostClock,
    seed: int = 1,
    minutes: float = 2.0,
    samples_per_packet: int = 10,
    start_sim_s: float = 0.0,
    drift_ppm: tuple[float, float, float] | None = None,
    script: str | None = None,
    packet_loss: float = 0.0,
) -> VirtualKit:
    """Simulate a session and wrap its packet stream as a transport on ``clock`` (see the module docstring).
    ``script`` None: the home script (standing, walking, exercises) when ``minutes`` allows it, else walking."""
    chosen = script or ("home" if minutes >= HOME_SCRIPT_MIN_MINUTES else "walk")
    session = simulate_session(seed=seed, minutes=minutes, script=chosen, drift_ppm=drift_ppm, packet_loss=packet_loss)
    sensors = packets.simulated_sensors(session, samples_per_packet=samples_per_packet)
    links = {p: SyncLink(s.connection_interval_s, _clock_of(s)) for p, s in sensors.items()}
    transport = VirtualKitTransport(
        packets.iter_packets(session, sensors),
        {p: s.info for p, s in sensors.items()},
        clock,
        sync_links=links,
        start_sim_s=start_sim_s,
        seed=seed,
    )
    return VirtualKit(session, sensors, transport)


def _clock_of(sensor: packets.SimulatedSensor):  # type: ignore[no-untyped-def]
    def clock_us(t_s: float) -> int:
        return int(sensor.timestamp_us(np.array([t_s]))[0])

    return clock_us
