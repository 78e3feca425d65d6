"""End-to-end acknowledgements to the gateways: the msg_ids a worker stored (or settled), per subject, published in
messages well under the uplink's payload limit, once the oldest waiting one is ``every_s`` old (one message per
subject for several turns: a gateway's outbox keeps a message for ``ack_timeout_s``, a minute, so a fraction of a
second costs nothing).

Times: seconds of the worker's clock (`time.monotonic` in production).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from analytics.worker.config import WorkerStats
from analytics.worker.link import WorkerLink
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import topic

MAX_IDS_PER_ACK = 500
"""msg_ids in one ack message at most (and half the payload limit in bytes)."""


class EndToEndAcks:
    """The acks waiting to be published (``pending``: per subject, msg_ids, appended to by the consumer and its
    segment jobs) and their publishing (`send_due`)."""

    def __init__(
        self, worker_id: str, every_s: float, link: WorkerLink, stats: WorkerStats, clock: Callable[[], float]
    ) -> None:
        self.worker_id = worker_id
        self.every_s = every_s
        self.link = link
        self.stats = stats
        self.clock = clock
        self.pending: dict[str, list[str]] = defaultdict(list)
        self._since: float | None = None
        """When the oldest ack not yet published was first seen waiting."""

    def send_due(self, force: bool = False) -> None:
        """Publish the waiting acks once the oldest is ``every_s`` old (``force``: now)."""
        if not self.pending:
            return
        now = self.clock()
        if self._since is None:
            self._since = now
        if not force and now - self._since < self.every_s:
            return
        self._since = None
        budget = env.MAX_PAYLOAD_BYTES // 2
        for subject, ids in self.pending.items():
            chunk: list[str] = []
            size = 0
            for i, msg_id in enumerate(ids):
                chunk.append(msg_id)
                size += len(msg_id) + 3
                if len(chunk) < MAX_IDS_PER_ACK and size < budget and i < len(ids) - 1:
                    continue
                ack = env.Ack("ack", subject, tuple(chunk), self.worker_id)
                if self.link.publish(topic(subject, "ack"), env.encode(ack)):
                    self.stats.acks_sent += 1
                chunk, size = [], 0
        self.pending.clear()


__all__ = ["MAX_IDS_PER_ACK", "EndToEndAcks"]
