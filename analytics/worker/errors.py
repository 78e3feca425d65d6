"""Worker errors (all derive from analytics.errors.AnalyticsError) and the pure retry-vs-drop rule.

`sort_failure(exc)` decides what the consumer does with a message whose handling raised:

| failure                                              | verdict     | MQTT PUBACK | end-to-end ack to gateway |
|------------------------------------------------------|-------------|-------------|---------------------------|
| MalformedMessage (not uplink v1, bad packet bytes)   | QUARANTINE  | yes         | no (never becomes good)   |
| stores.InvalidBatch, other AnalyticsError (bad data) | QUARANTINE  | yes         | no                        |
| SegmentIncomplete (samples not yet in the store)     | DEFER       | yes         | no, after the analysis    |
| StoreUnavailable, OSError, timeouts                  | RETRY       | no          | no (the gateway replays)  |
| anything else (a bug)                                | RETRY       | no          | no (never drop on a bug)  |

Reading untrusted MQTT bytes (`decode.decode_message`, `decode.batch_samples`) turns every failure, whatever
raised it, into a MalformedMessage: a payload that trips a bug is still bad input, never a reason to crash or to
retry forever. Likewise, when storing a turn's batches fails for another reason than the store being unavailable
(StoreUnavailable, OSError, timeouts), the worker writes them one by one and quarantines the one that fails, so
one batch never holds back the others (`raw_ingest.RawIngest._write_raw`). Not a failure: a subject past its budget
(`budget`) is *shed*, PUBACK without storing and without the end-to-end ack (the gateway re-sends it).
"""

from __future__ import annotations

from enum import Enum

from analytics.errors import AnalyticsError
from analytics.stores.errors import StoreUnavailable


class WorkerError(AnalyticsError):
    """Root of the analytics worker's errors."""


class MalformedMessage(WorkerError):
    """An MQTT payload is not a valid uplink v1 message, or its sensor packets do not decode (names the field)."""

    def __init__(self, topic: str, message: str) -> None:
        super().__init__(f"{topic}: {message}")
        self.topic = topic


class SegmentIncomplete(WorkerError):
    """The store does not yet hold every sample a closing marker refers to (names the placement and count)."""

    def __init__(self, message: str, missing: int) -> None:
        super().__init__(message)
        self.missing = missing


class Verdict(Enum):
    RETRY = "retry"
    """Keep the message unacknowledged; try again after a backoff (the server will come back)."""
    QUARANTINE = "quarantine"
    """Bad data: keep a copy aside, log it, acknowledge the MQTT delivery so it is not redelivered forever."""
    DEFER = "defer"
    """A segment not yet complete in the store: retry the analysis later, bounded."""


def sort_failure(exc: BaseException) -> Verdict:
    """Retry vs drop for one failed message. Pure: depends only on the exception's type."""
    if isinstance(exc, SegmentIncomplete):
        return Verdict.DEFER
    if isinstance(exc, StoreUnavailable):
        return Verdict.RETRY
    if isinstance(exc, AnalyticsError):
        return Verdict.QUARANTINE
    return Verdict.RETRY


def backoff_s(attempt: int, base_s: float = 0.5, max_s: float = 30.0) -> float:
    """Delay before retry ``attempt`` (1, 2, ...): base doubling to max, seconds. Pure (jitter added by caller)."""
    return float(min(max_s, base_s * 2 ** max(0, attempt - 1)))
