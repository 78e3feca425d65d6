"""One sensor's stream bookkeeping: unwrap u32 sequence and timestamp, follow boot epochs, feed the fit.

Pure (no IO, no clock reads). Per packet the caller gives the raw u32 ``sequence`` and ``timestamp_us`` and
the host arrival (monotonic s); `SensorStream.observe` returns a `PacketTiming` with the 64-bit sequence of
the first sample, the 64-bit sensor time (µs), how many samples were lost before it, whether the packet
is a repeat (already seen: drop it), and whether the sensor's clock jumped (a new mapping segment began).

Wraps: the sequence uses `firmware_protocol.wire.unwrap_u32` (wraps after 2**32 samples). The timestamp
wraps every 71.6 min and a BLE outage can last longer than the 35.8 min `unwrap_u32` tolerates, so it is
unwrapped against the host clock: the candidate ``raw + k * 2**32`` nearest to the time the host saw pass
since the previous packet is taken (right as long as the sensor clock and the host disagree by < 35 min).

Identity and clock are kept apart. The sequence is the samples' identity (serial, boot_epoch, sequence): it
is reset only by a new boot epoch (`new_boot_epoch`, read from the sensor info), never by the clock, so a
sample is never given a second identity and samples lost around a clock jump are still counted.

Clock discontinuities. Between two packets the sensor's clock must have advanced by at least the samples
between them (half a period for the previous packet's last sample, then each lost sample at the nominal rate
within ``sample_rate_tolerance``) and by about what the host saw pass (within ``max_delay_s``, the longest a
notification waits on the way, and the fit's largest drift). A timestamp outside those bounds (a clock that
restarted or jumped without a new boot epoch: a firmware fault; SPEC.md section 5 says the clock restarts
only with a new boot) cannot be mapped by the same line as the samples before it: the packet opens a new
mapping segment (``clock_restarted``; the fit starts again from it, and ``ended_fit`` is the fit of the
segment that ended, for the samples still waiting to be published). Its unwrapped time is the first
``raw + k * 2**32`` after the previous sample that the sequence allows, so unwrapped sensor times keep
increasing within a boot epoch and a stored sample never lands on an earlier one's sensor time.
A TIME_SYNC reading further than ``max_delay_s`` from what the stream expects is dropped (counted).
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
    """The sensor's clock jumped in a way neither its sequence nor the host's clock explains (no new boot
    epoch): this packet opens a new mapping segment (the fit starts again from it; the sequence goes on)."""
    ended_fit: ClockFit | None = None
    """With ``clock_restarted``: the fit of the segment that ended, which maps the samples taken before the
    jump (None when that segment had no fit yet)."""
    out_of_range: bool = False
    """The packet's unwrapped sequence or time would pass ``max_counter``: not taken (the stream is unchanged)."""


class SensorStream:
    def __init__(
        self,
        boot_epoch: int,
        sample_rate_hz: float,
        fit_settings: EnvelopeFitSettings | None = None,
        max_delay_s: float = 10.0,
        sample_rate_tolerance: float = 0.05,
        max_counter: int | None = None,
    ) -> None:
        if not (sample_rate_hz > 0 and max_delay_s >= 0 and 0 <= sample_rate_tolerance < 1):
            raise TimingError(
                f"sample_rate_hz={sample_rate_hz!r}, max_delay_s={max_delay_s!r} or "
                f"sample_rate_tolerance={sample_rate_tolerance!r} out of range"
            )
        self.sample_rate_hz = sample_rate_hz
        self.estimator = ClockEstimator(fit_settings)
        self.max_delay_s = max_delay_s
        """Longest a sample can wait between the sensor taking it and the host stamping its arrival, s (the
        gateway recycles a link silent for 10 s); beyond it a timestamp is a clock jump, not a late packet."""
        self.sample_rate_tolerance = sample_rate_tolerance
        """How far the sensor's sampling may run from its nominal rate against its own clock (an IMU's
        oscillator is within a few %), when samples were lost between two packets."""
        self.max_counter = max_counter
        """Largest unwrapped sequence or time the caller can carry (the uplink's 2**53 - 1); None: no limit."""
        self.boot_epoch = boot_epoch
        self._next_seq: int | None = None  # unwrapped sequence expected next
        self._last_t_us: int | None = None  # unwrapped sensor time of the last sample seen
        self._last_arrival: float | None = None
        self.samples = 0
        self.lost = 0
        self.duplicates = 0
        self.clock_restarts = 0
        """Clock discontinuities without a new boot epoch (new mapping segments) in this boot epoch."""
        self.syncs_refused = 0
        """TIME_SYNC readings too far from the stream's clock to be one of its readings."""
        self.out_of_range = 0

    def new_boot_epoch(self, boot_epoch: int) -> None:
        """The sensor rebooted (or a different boot epoch was read): restart unwrapping and the fit."""
        self.boot_epoch = boot_epoch
        self._next_seq = self._last_t_us = self._last_arrival = None
        self.estimator.reset()

    def resume(self, next_seq: int, last_t_us: int, seconds_ago: float, now_s: float) -> None:
        """Continue a stream seen by an earlier gateway process: the next sequence expected, the unwrapped time
        of the last sample it saw (a cursor holding the last packet's first sample instead gives a looser bound,
        as good) and how long ago it arrived."""
        self._next_seq = next_seq
        self._last_t_us = last_t_us
        self._last_arrival = now_s - max(0.0, seconds_ago)

    @property
    def last_t_us(self) -> int | None:
        """Unwrapped sensor time of the last sample seen, µs."""
        return self._last_t_us

    @property
    def _max_drift(self) -> float:
        return self.estimator.settings.max_abs_drift_ppm * 1e-6

    def observe_sync(self, timestamp_us: int, sent_s: float, received_s: float) -> int | None:
        """A TIME_SYNC round trip; returns the unwrapped sensor µs, or None when not used (before the first
        packet, further than ``max_delay_s`` from the stream's clock, out of order with an earlier one)."""
        if self._last_t_us is None or self._last_arrival is None:
            return None
        elapsed_s = received_s - self._last_arrival
        expected = self._last_t_us + elapsed_s * 1e6
        t_us = timestamp_us + round((expected - timestamp_us) / U32_MODULUS) * U32_MODULUS
        if abs(t_us - expected) > (self.max_delay_s + abs(elapsed_s) * self._max_drift) * 1e6:
            self.syncs_refused += 1  # not a reading of the clock the packets carry (a stale or corrupt reply)
            return None
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
        if self._next_seq is None:
            seq, lost = sequence, 0
        else:
            seq = unwrap_u32(self._next_seq, sequence)
            lost = seq - self._next_seq
        if lost < 0:  # repeat / reordered (or a sequence restarted without a new boot epoch): already seen
            self.duplicates += 1
            return PacketTiming(seq, timestamp_us, 0, True, False)
        period_us = 1e6 / self.sample_rate_hz
        restarted = False
        if self._last_t_us is None or self._last_arrival is None:
            t_us = timestamp_us  # the stream's first packet is the unwrapping's origin
        else:
            elapsed_s = max(0.0, arrival_s - self._last_arrival)
            expected = self._last_t_us + elapsed_s * 1e6
            t_us = timestamp_us + round((expected - timestamp_us) / U32_MODULUS) * U32_MODULUS
            advance = t_us - self._last_t_us
            # the sequence: the previous packet's last sample, then the lost samples, were taken before this one
            by_sequence = (0.5 + lost * (1.0 - self.sample_rate_tolerance)) * period_us
            slack_us = (self.max_delay_s + elapsed_s * self._max_drift) * 1e6
            if not max(by_sequence, elapsed_s * 1e6 - slack_us) <= advance <= elapsed_s * 1e6 + slack_us:
                restarted = True
                need = self._last_t_us + int(by_sequence) + 1
                t_us = timestamp_us + -((timestamp_us - need) // U32_MODULUS) * U32_MODULUS
        last_sample_us = t_us + round((n_samples - 1) * period_us)
        if self.max_counter is not None and max(seq + n_samples - 1, last_sample_us) > self.max_counter:
            self.out_of_range += 1
            return PacketTiming(seq, t_us, 0, False, False, out_of_range=True)
        ended: ClockFit | None = None
        if restarted:
            if self.estimator.ready:
                ended = self.estimator.fit()
                self.clock_restarts += 1
            else:  # no line yet (a resumed stream): nothing to restart, only the unwrapping took a new origin
                restarted = False
            self.estimator.reset()
        self._next_seq = seq + n_samples
        self._last_t_us = last_sample_us
        self._last_arrival = arrival_s
        self.samples += n_samples
        self.lost += lost
        # the packet's *last* sample is the one closest to the notification that carried it
        self.estimator.add(last_sample_us, arrival_s)
        return PacketTiming(seq, t_us, lost, False, restarted, ended)

    def fit(self) -> ClockFit:
        return self.estimator.fit()
