"""Malformed deliveries set aside: each kept once in the worker quarantine with its topic and the reason (a copy
seen again is only counted), and logged at most once per subject per ``log_every_s``. The consumer acknowledges
them to the broker (never redelivered) and never end to end (they never become good)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from analytics.stores.quarantine import Quarantine
from analytics.worker.config import SubjectLog, WorkerStats
from analytics.worker.link import Delivery
from gaitsym_common.uplink import envelope as env

SEEN_CAPACITY = 10_000
"""Digests of the malformed payloads kept aside recently (a copy seen again is not written again)."""


class MalformedMessages:
    """See the module docstring."""

    def __init__(self, quarantine: Quarantine, stats: WorkerStats, log_limited: SubjectLog) -> None:
        self.quarantine = quarantine
        self.stats = stats
        self.log_limited = log_limited
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def set_aside(self, d: Delivery, exc: BaseException, subject: str) -> None:
        """Count, keep (once) and log one malformed delivery; never raises for want of room to keep it."""
        self.stats.malformed += 1
        digest = hashlib.blake2b(d.topic.encode("utf-8", errors="replace") + b"\0" + d.payload, digest_size=16)
        key = digest.digest()
        if key in self._seen:
            self.stats.malformed_repeats += 1
            self._seen.move_to_end(key)
        else:
            text = d.payload[: env.MAX_PAYLOAD_BYTES].decode("utf-8", errors="replace")
            what = f"mqtt topic={d.topic[:200]}"
            try:
                self.quarantine.put(what, None, "malformed message", str(exc)[:4000], [text], subject, log_line=False)
            except Exception as failure:  # no room to keep a copy: the message is still bad data, never retried
                self.log_limited(subject, "quarantine", "could not keep a malformed message aside: %s", failure)
            self._seen[key] = None
            if len(self._seen) > SEEN_CAPACITY:
                self._seen.popitem(last=False)
        self.log_limited(
            subject,
            "malformed",
            "quarantined a malformed message on %s: %s (%d malformed in all)",
            d.topic[:200],
            str(exc)[:500],
            self.stats.malformed,
        )


__all__ = ["SEEN_CAPACITY", "MalformedMessages"]
