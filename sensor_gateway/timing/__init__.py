"""Time for the gateway: sensor clock -> host clock -> UTC, and the host clock itself.

- `clock_fit`: `ClockEstimator`, a pure running lower-envelope fit of (sensor µs, host arrival s) pairs that
  yields the uplink `ClockMapping` (rate, drift ppm, jitter ms); robust to bursty BLE arrival.
- `continuity`: `MappingContinuity`, keeps the mappings of a sensor's consecutive batches in time order (the
  first sample of a batch never maps at or before the last one of the previous batch) while following the fit.
- `stream`: `SensorStream`, unwraps a sensor's u32 sequence and timestamp, follows boot epochs and resets
  the fit on a reboot, and starts a new mapping segment when the clock jumps without one (the sequence goes on).
- `host_clock`: `HostClock` protocol with `RealHostClock` (monotonic + wall clock + NTP-synchronised state)
  and `VirtualHostClock` (tests and accelerated scenarios).
"""

from sensor_gateway.timing.clock_fit import ClockEstimator, ClockFit, EnvelopeFitSettings
from sensor_gateway.timing.continuity import ContinuityStep, MappingContinuity
from sensor_gateway.timing.errors import TimingError
from sensor_gateway.timing.host_clock import HostClock, RealHostClock, VirtualHostClock, kernel_utc_synced
from sensor_gateway.timing.stream import PacketTiming, SensorStream

__all__ = [
    "ClockEstimator",
    "ClockFit",
    "ContinuityStep",
    "EnvelopeFitSettings",
    "HostClock",
    "MappingContinuity",
    "PacketTiming",
    "RealHostClock",
    "SensorStream",
    "TimingError",
    "VirtualHostClock",
    "kernel_utc_synced",
]
