"""The carry: admitted deliveries waiting for a turn (`worker.Worker`), and the bound on what it holds.

Why the carry needs a bound of its own: the worker asks the broker for at most ``RECEIVE_MAXIMUM`` unacknowledged
deliveries (`link`), which would keep a worker that falls behind (a store outage, more subjects than it can serve)
from holding more than that. Debian's Mosquitto 2.0.11 keeps to it only until acknowledgements flow, then sends
everything it holds for the worker (measured, `link`; upstream fixed its in-flight quota accounting in 2.0.13,
eclipse-mosquitto issue 2306). Without a bound of its own, such a worker's memory would grow until the kernel
killed it, and every subject with it.

The bound (`admits`, on samples of work and on payload bytes alike): up to ``bound`` every delivery is admitted;
past it, only a subject that holds, with the new delivery, at most an equal share of the bound (``bound`` /
subjects in the carry, the newcomer counted) adds to it, so that a subject catching up a backlog, not the ones
streaming in real time, gives way first; past twice the bound, none (an empty carry takes any one delivery). What
is not admitted is shed (`worker.Worker._shed`): acknowledged to the broker, not end to end, so the gateway's
outbox sends it again after its ack timeout; that subject's live results pause for a while
(`WorkerConfig.live_pause_after_shed_s`: its windows would wait for what was shed). Nothing already admitted is dropped:
deliveries of turns whose store write failed go back to the front (`put_back`) whatever the bound, so after a store
failure the carry may hold twice the bound plus the turns that were being written (``raw_writes_in_flight`` x
``turn_max_work`` at most), and sheds everything new until it is back under twice the bound.

Units: work in the budget's units (samples; gaps and markers count as several, `budget`), bytes of payload.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass

from analytics.worker.link import Delivery
from analytics.worker.raw_ingest import StreamKey, stream_key
from gaitsym_common.uplink import envelope as env


@dataclass(frozen=True, slots=True)
class Admitted:
    """A delivery within its subject's budget, decoded, waiting in the carry for a turn."""

    delivery: Delivery
    message: env.Message
    subject: str
    work: int
    at_s: float
    """When it was admitted (the turn gathers deliveries for up to ``turn_gather_s`` from the oldest)."""


def admits(total: int, held: int, amount: int, subjects: int, bound: int) -> bool:
    """Whether a delivery of ``amount`` joins a carry holding ``total`` in all and ``held`` of its subject's, with
    ``subjects`` subjects holding something once it joins (module docstring). An empty carry takes anything."""
    if total == 0 or total + amount <= bound:
        return True
    if total + amount > 2 * bound:
        return False
    return held + amount <= bound // max(1, subjects)


class Carry:
    """The deliveries waiting for a turn, in arrival order, with what each subject holds of them."""

    def __init__(self, max_work: int, max_bytes: int) -> None:
        if max_work < 1 or max_bytes < 1:
            raise ValueError(
                f"the carry's bounds must be positive: max_carry_work {max_work}, max_carry_bytes {max_bytes}"
            )
        self.max_work = max_work
        self.max_bytes = max_bytes
        self._items: list[Admitted] = []
        self.work = 0
        self.bytes = 0
        self._held: dict[str, list[int]] = {}
        """Per subject in the carry: [work, bytes]."""
        self.peak_work = 0
        self.peak_bytes = 0
        self._ranges: dict[StreamKey, list[tuple[int, int]]] | None = None
        self._in_order: dict[str, int] | None = None
        self._served_at: dict[str, int] = {}
        """Per subject with deliveries in the carry (or served last turn): when it was last served (in
        ``_serves``), for the round robin across turns."""
        self._serves = 0

    def __bool__(self) -> bool:
        return bool(self._items)

    @property
    def full(self) -> bool:
        """Past its bound (work or bytes): subjects add only up to an equal share."""
        return self.work > self.max_work or self.bytes > self.max_bytes

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Admitted]:
        return iter(self._items)

    def admits(self, subject: str, work: int, size: int) -> bool:
        """Whether a delivery of ``subject`` (``work`` units, ``size`` payload bytes) may join (`admits`)."""
        held = self._held.get(subject, [0, 0])
        subjects = len(self._held) + (subject not in self._held)
        return admits(self.work, held[0], work, subjects, self.max_work) and admits(
            self.bytes, held[1], size, subjects, self.max_bytes
        )

    def append(self, a: Admitted) -> None:
        self._items.append(a)
        self._count(a)
        # kept up to date, not rebuilt: a worker catching up holds tens of thousands of deliveries, and a rebuild
        # on every window marker's admission made admitting quadratic in them
        if isinstance(a.message, env.RawBatch):
            if self._ranges is not None:
                self._ranges.setdefault(stream_key(a.message), []).append((a.message.seq_first, a.message.seq_last))
        elif self._in_order is not None:
            self._in_order[a.subject] += 1

    def oldest_at_s(self) -> float:
        return min(a.at_s for a in self._items)

    def put_back(self, keep: list[Admitted]) -> None:
        """Deliveries a turn could not handle, ahead of the others (admitted once: never shed now)."""
        self._replace(list(keep) + self._items)

    def clear(self) -> None:
        self._replace([])

    def take_turn(self, max_work: int, max_work_per_subject: int) -> list[Admitted]:
        """This turn's share: round robin across subjects, each subject's deliveries in order, until ``max_work``
        in all or ``max_work_per_subject`` for a subject (at least one delivery of each); the rest stays."""
        by_subject: dict[str, deque[Admitted]] = {}
        for a in self._items:
            by_subject.setdefault(a.subject, deque()).append(a)
        # least recently served first (never served: first of all), so the ``max_work`` cut falls on different
        # subjects each turn and every backlogged subject is served within a bounded number of turns
        order = sorted(by_subject, key=lambda s: self._served_at.get(s, -1))
        queues = {s: by_subject[s] for s in order}
        turn: list[Admitted] = []
        work = 0
        spent: dict[str, int] = defaultdict(int)
        left: dict[str, deque[Admitted]] = {}
        while queues and (not turn or work < max_work):
            for subject in list(queues):
                if turn and work >= max_work:
                    break
                queue = queues[subject]
                a = queue.popleft()
                turn.append(a)
                work += a.work
                spent[subject] += a.work
                self._served_at[subject] = self._serves
                self._serves += 1
                if queue and spent[subject] >= max_work_per_subject:
                    left[subject] = queue  # its share of this turn is taken
                if not queue or subject in left:
                    del queues[subject]
        self._replace([a for queue in (*left.values(), *queues.values()) for a in queue])
        self._served_at = {s: n for s, n in self._served_at.items() if s in self._held or s in spent}
        return turn

    def in_order(self) -> dict[str, int]:
        """Per subject, the markers and gaps waiting here: a window marker behind one of them keeps its place in
        the subject's order (a gap names samples the window needs: known missing once stored). The carry's own
        mapping, kept up to date (a subject with none: absent; ask with ``get``)."""
        if self._in_order is None:
            counts: dict[str, int] = defaultdict(int)
            for a in self._items:
                if not isinstance(a.message, env.RawBatch):
                    counts[a.subject] += 1
            self._in_order = counts
        return self._in_order

    def ranges(self, key: StreamKey) -> list[tuple[int, int]]:
        """The sequence ranges of the raw batches here of one sensor boot: samples this worker will store (a live
        window waiting for them asks no store meanwhile, `RawIngest.awaiting_own_write`). The list is the carry's
        own, kept up to date as batches come: read it, or copy it to keep it."""
        if self._ranges is None:
            ranges: dict[StreamKey, list[tuple[int, int]]] = {}
            for a in self._items:
                if isinstance(a.message, env.RawBatch):
                    ranges.setdefault(stream_key(a.message), []).append((a.message.seq_first, a.message.seq_last))
            self._ranges = ranges
        return self._ranges.get(key, [])

    def _count(self, a: Admitted) -> None:
        size = len(a.delivery.payload)
        self.work += a.work
        self.bytes += size
        held = self._held.setdefault(a.subject, [0, 0])
        held[0] += a.work
        held[1] += size
        self.peak_work = max(self.peak_work, self.work)
        self.peak_bytes = max(self.peak_bytes, self.bytes)

    def _replace(self, items: list[Admitted]) -> None:
        self._items = []
        self.work = self.bytes = 0
        self._held = {}
        for a in items:
            self._items.append(a)
            self._count(a)
        self._ranges = None
        self._in_order = None
