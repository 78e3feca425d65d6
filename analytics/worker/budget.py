"""Per-subject budgets: how much work one subject's gateway may make a worker do, so that one subject flooding
its own topics cannot delay the others.

Why shedding is safe: the gateway keeps every durable message (raw batch, gap, marker) in its on-disk outbox
until the worker's END-TO-END ack, and re-sends what stays unacknowledged after its ack timeout
(sensor_gateway/GATEWAY.md). So a worker may acknowledge a delivery to the broker (MQTT PUBACK) WITHOUT storing
it and without the end-to-end ack: it is *shed*, nothing is lost, the gateway sends it again later. Shedding
matters because Mosquitto hands one client its messages in order, at most ``max_inflight_messages`` (100)
unacknowledged: an honest subject's message queued behind a flooder's is reached only once the flooder's are
acknowledged, so they must be acknowledged cheaply, before anything is decoded.

Each subject has two token buckets (`TokenBucket`: ``rate`` per second, at most ``burst`` saved up):

- **bytes**: every delivery's payload, charged from its topic alone, before the payload is parsed;
- **work**: charged once the envelope is parsed, before the sensor packets are decoded or anything is stored:
  one unit per sample of a raw batch (at least ``MIN_WORK_PER_BATCH``: a batch costs an index point and a check
  statement however small it is), ``WORK_PER_REMAP`` when a batch makes the worker move a sensor boot's samples
  to UTC (one store query; charged when it runs), ``WORK_PER_GAP`` for a gap (one store request),
  ``WORK_PER_MARKER`` for a marker (an analysis, coalescing with its neighbours), ``WORK_PER_MALFORMED`` for a
  malformed payload (one quarantine write of up to 64 kB, synchronous to disk: a subject sending nothing but
  garbage gets 32 of them at once and 1.6 per second after, the rest shed unread).

The numbers (`BudgetConfig`): an honest subject is 3 sensors x 100 Hz = 300 samples/s in real time, in 3 raw
batches of about 1 s (2.2 kB each with 19 samples per packet, 4.5 kB with one sample per packet, the smallest BLE
MTU), plus up to 4 window markers/s (0.5 kB each) and rare gaps: about 400 work units and 9-16 kB per second.
The rates are 20-25x that (8,000 units/s, 384 kB/s), so a gateway catching up after an outage sends at 20x real
time or more (a one-hour backlog in 3 minutes), and the bursts (160,000 units, 8 MB: about 6 minutes of one
subject's real-time data) pass without any throttling at all. A flooder at its budget costs a worker and its
InfluxDB about 8,000 stored samples/s (a small fraction of what one worker core stores); what it sends beyond
is shed at the cost of a topic split and a PUBACK.

Also here: `LogLimiter`, at most one log line per subject and kind of event per interval.

Times: seconds of the worker's monotonic clock.
"""

from __future__ import annotations

from dataclasses import dataclass

WORK_PER_GAP = 200
MIN_WORK_PER_BATCH = 50
WORK_PER_REMAP = 200
WORK_PER_MARKER = 25
WORK_PER_MALFORMED = 5_000


@dataclass(frozen=True)
class BudgetConfig:
    """Per-subject token-bucket rates (per second) and bursts; see the module docstring for the numbers."""

    bytes_per_s: float = 384 * 1024
    bytes_burst: float = 8 * 1024 * 1024
    work_per_s: float = 8_000.0
    work_burst: float = 160_000.0


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved; starts full."""

    __slots__ = ("burst", "rate", "t", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.t = rate, burst, burst, now

    def refill(self, now: float) -> None:
        if now > self.t:
            self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
            self.t = now

    def take(self, amount: float, now: float) -> bool:
        """Take ``amount`` tokens if there are that many (a request larger than the burst is admitted from a full
        bucket, leaving it in debt, so nothing is refused forever); False leaves the bucket unchanged."""
        self.refill(now)
        if self.tokens >= min(amount, self.burst):
            self.tokens -= amount
            return True
        return False

    def charge(self, amount: float, now: float) -> None:
        """Take ``amount`` tokens for work already decided on (the bucket may go into debt)."""
        self.refill(now)
        self.tokens -= amount

    @property
    def full(self) -> bool:
        return self.tokens >= self.burst


class SubjectBudgets:
    """The two buckets of every subject seen recently (a subject whose buckets are full again is forgotten: a
    new full bucket is the same thing)."""

    def __init__(self, config: BudgetConfig | None = None) -> None:
        self.config = config or BudgetConfig()
        self._bytes: dict[str, TokenBucket] = {}
        self._work: dict[str, TokenBucket] = {}
        self._forgot_s = 0.0

    def take_bytes(self, subject: str, n: int, now: float) -> bool:
        bucket = self._bytes.get(subject)
        if bucket is None:
            bucket = self._bytes[subject] = TokenBucket(self.config.bytes_per_s, self.config.bytes_burst, now)
        return bucket.take(n, now)

    def take_work(self, subject: str, n: int, now: float) -> bool:
        bucket = self._work.get(subject)
        if bucket is None:
            bucket = self._work[subject] = TokenBucket(self.config.work_per_s, self.config.work_burst, now)
        return bucket.take(n, now)

    def charge_work(self, subject: str, n: int, now: float) -> None:
        """Work the worker does for the subject beyond what its delivery was charged (a remap): always taken, so
        the subject's next deliveries are shed sooner."""
        bucket = self._work.get(subject)
        if bucket is None:
            bucket = self._work[subject] = TokenBucket(self.config.work_per_s, self.config.work_burst, now)
        bucket.charge(n, now)

    def forget_idle(self, now: float, every_s: float = 60.0) -> None:
        """Drop the buckets that have refilled (memory bounded by the subjects active in the last minutes)."""
        if now - self._forgot_s < every_s:
            return
        self._forgot_s = now
        for buckets in (self._bytes, self._work):
            for bucket in buckets.values():
                bucket.refill(now)
            for subject in [s for s, b in buckets.items() if b.full]:
                del buckets[subject]

    def __len__(self) -> int:
        return len(self._bytes.keys() | self._work.keys())


class LogLimiter:
    """At most one log line per key (subject, kind of event) every ``interval_s``; counts the events between."""

    def __init__(self, interval_s: float = 10.0, max_keys: int = 10_000) -> None:
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def allow(self, key: tuple[str, str], now: float) -> int | None:
        """The number of events of ``key`` held back since its last line (log this one, mentioning them), or None
        (hold this one back)."""
        last = self._last.get(key)
        if last is not None and now - last[0] < self.interval_s:
            self._last[key] = (last[0], last[1] + 1)
            return None
        if len(self._last) >= self.max_keys:
            self._last = {k: v for k, v in self._last.items() if now - v[0] < self.interval_s}
            if len(self._last) >= self.max_keys:
                self._last.clear()
        self._last[key] = (now, 0)
        return 0 if last is None else last[1]
