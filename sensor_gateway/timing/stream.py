"""One sensor's stream bookkeeping: unwrap u32 sequence and timestamp, follow boot epochs, feed the fit.

Pure (no IO, no clock reads). Per packet the caller gives the raw u32 ``sequence`` and ``timestamp_us`` and
the host arrival (monotonic s); `SensorStream.observe` returns a `PacketTiming` with the 64-bit sequence of
the first sample, the 64-bit sensor time (µs), how many samples were lost before it, and whether the packet
is a repeat (already seen: drop it).

Wraps: the sequence uses `firmware_protocol.wire.unwrap_u32` (wraps after 2**32 samples). The timestamp
wraps every 71.6 min and a BLE outage can last longer than the 35.8 min `unwrap_u32` tolerates, so it is
unwrapped against the host clock: the candidate ``raw + k * 2**32`` nearest to the time the host saw pass
since the previous packet is taken (right as long as the sensor clock and the host disagree by < 35 min).

Reboots: a sensor that reboots increments its boot epoch (sensor info) and restarts sequence and clock at 0.
`new_boot_epoch` resets unwrapping and the clock fit. A timestamp that jumps backwards by more than
``reboot_jump_s`` without a new epoch is flagged ``clock_restarted`` and also resets: the caller should
re-read the sensor info.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_protocol.wire import U32_MODULUS, unwrap_u32
from sensor_gateway.timing.clock_fit import ClockEstimator, ClockFit, EnvelopeFitSettings
from sensor_gateway.timing.errors import TimingError


@dataclass(frozen=True)
class PacketTiming:
    seq: int
    """Unwrapped sequence of the packet's first sample (samples since boot)."""
    t_sensor_us: int
    """Unwrapped sensor time of the packet's first sample, µs."""
    lost_before: int
    """Samples missing between the previous packet and this one (0 when contiguous)."""
    duplicate: bool
    """The packet's samples were already seen (repeat or reordering): drop it."""
    clock_restarted: bool
    """The sensor's clock went backwards without a new boot epoch: fit and unwrapping were reset."""


class SensorStream:
    def __init__(
        self,
        boot_epoch: int,
        sample_rate_hz: float,
        fit_settings: EnvelopeFitSettings | None = None,
        reboot_jump_s: float = 1.0,
    ) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.estimator = ClockEstimator(fit_settings)
        self.reboot_jump_s = reboot_jump_s
        self.boot_epoch = boot_epoch
        self._next_seq: int | None = None  # unwrapped sequence expected next
        self._last_t_us: int | None = None
        self._last_arrival: float | None = None
        self.samples = 0
        self.lost = 0
        self.duplicates = 0

    def new_boot_epoch(self, boot_epoch: int) -> None:
        """The sensor rebooted (or a different boot epoch was read): restart unwrapping and the fit."""
        self.boot_epoch = boot_epoch
        self._next_seq = self._last_t_us = self._last_arrival = None
        self.estimator.reset()

    def resume(self, next_seq: int, last_t_us: int, seconds_ago: float, now_s: float) -> None:
        """Continue a stream seen by an earlier gateway process (see the module docstring)."""
        self._next_seq = next_seq
        self._last_t_us = last_t_us
        self._last_arrival = now_s - max(0.0, seconds_ago)

    @property
    def last_t_us(self) -> int | None:
        """Unwrapped sensor time of the last packet's first sample, µs."""
        return self._last_t_us

    def observe_sync(self, timestamp_us: int, sent_s: float, received_s: float) -> int | None:
        """A TIME_SYNC round trip; returns the unwrapped sensor µs (None before the first packet: ignored)."""
        if self._last_t_us is None or self._last_arrival is None:
            return None
        expected = self._last_t_us + (received_s - self._last_arrival) * 1e6
        t_us = timestamp_us + round((expected - timestamp_us) / U32_MODULUS) * U32_MODULUS
        try:
            self.estimator.add_sync(t_us, sent_s, received_s)
        except TimingError:
            return None  # out of order with an earlier round trip (a late reply): drop it
        return t_us

    @property
    def last_seq(self) -> int | None:
        """Unwrapped sequence of the last sample seen, None before the first packet."""
        return None if self._next_seq is None else self._next_seq - 1

    def observe(self, sequence: int, timestamp_us: int, n_samples: int, arrival_s: float) -> PacketTiming:
        restarted = False
        if self._last_t_us is not None and self._last_arrival is not None:
            expected = self._last_t_us + (arrival_s - self._last_arrival) * 1e6
            k = round((expected - timestamp_us) / U32_MODULUS)
            t_us = timestamp_us + k * U32_MODULUS
            if t_us < self._last_t_us - self.reboot_jump_s * 1e6:
                restarted = True
        if restarted:
            self.new_boot_epoch(self.boot_epoch)
        if self._last_t_us is None:
            t_us = timestamp_us
        if self._next_seq is None:
            seq = sequence
            lost = 0
        else:
            seq = unwrap_u32(self._next_seq, sequence)
            lost = seq - self._next_seq
        if lost < 0:  # repeat / reordered: nothing new in it unless it overlaps the future
            self.duplicates += 1
            return PacketTiming(seq, t_us, 0, True, restarted)
        self._next_seq = seq + n_samples
        self._last_t_us = t_us
        self._last_arrival = arrival_s
        self.samples += n_samples
        self.lost += lost
        # the packet's *last* sample is the one closest to the notification that carried it
        last_sample_us = t_us + round((n_samples - 1) * 1e6 / self.sample_rate_hz)
        self.estimator.add(last_sample_us, arrival_s)
        return PacketTiming(seq, t_us, lost, False, restarted)

    def fit(self) -> ClockFit:
        return self.estimator.fit()
