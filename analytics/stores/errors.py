"""Store errors (all derive from analytics.errors.AnalyticsError) and the pure rule sorting write failures.

`sort_write_error` decides, from what the server answered, what a store does with a batch it could not write:

| server answer                                   | action      | why                                                |
|-------------------------------------------------|-------------|----------------------------------------------------|
| 400, 422 (bad line, type conflict)              | quarantine  | bad data never becomes good: keep it aside, say so |
| 413 (body too large), more than one line        | split       | halves fit; each half is written on its own        |
| 413, a single line                              | quarantine  | one line that can never fit                        |
| 429, 5xx, no answer (reset, timeout)            | retry       | the server will come back; honour Retry-After      |
| connection refused (nothing listening)          | retry       | restarting: poll every ``refused_delay_s`` at most |
| 401, 403, 404, other 4xx, "database/retention   | retry       | configuration, not data: never drop data for it;   |
|   policy not found"                             |             |   the operator is told (log) and nothing is acked  |

Delays are seconds: exponential backoff ``base_delay_s * 2**(attempt-1)`` capped at ``max_delay_s``, never
shorter than the server's Retry-After (seconds, or an HTTP date read against ``now_s``, UTC seconds). While the
connection is *refused* the backoff is capped at ``refused_delay_s`` (1 s) instead: nothing is listening (the
server is restarting), a refused connection costs it nothing, and a 30 s backoff would delay the first write by
up to 30 s after it is back. A server that answers (429, 5xx) or accepts and then times out is busy: it keeps
the long backoff and its Retry-After.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from enum import Enum

from analytics.errors import AnalyticsError

CONFIGURATION_MESSAGES = ("database not found", "retention policy not found", "bucket not found")


class StoreError(AnalyticsError):
    """Root of the storage layer's errors."""


class StoreConfigError(StoreError):
    """A store URL, path or setting is invalid (names the setting)."""


class StoreUnavailable(StoreError):
    """The server did not accept a write or query in the allowed time; nothing was acknowledged.

    Retryable (see `analytics.stores.errors.is_retryable`): the caller keeps the data (the gateway's outbox
    replays it) and tries again after ``retry_after_s``.
    """

    def __init__(
        self, message: str, retry_after_s: float = 1.0, status: int | None = None, refused: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.status = status
        self.refused = refused
        """The connection was refused (server restarting): retry after ``retry_after_s``, no longer backoff."""


class StoreQueryError(StoreError):
    """The server rejected a query (names the query and the server's message)."""


class InvalidBatch(StoreError):
    """A batch handed to a store is inconsistent (array lengths, units, identity); names the field."""


class InvalidStoredPart(StoreError):
    """A packed raw part read back from the store is malformed (`raw_packed.unpack`); names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"stored raw part: {field}: {reason}")
        self.field = field


class InvalidLayoutMarker(StoreError):
    """The database's raw layout marker (`influx_layout`) names no known layout; names what it holds. Setting the
    marker again (`gaitsym store raw-layout points|packed`) writes over it."""

    def __init__(self, value: object) -> None:
        super().__init__(f"the raw_layout marker holds {value!r}, neither points nor packed")
        self.value = value


def connection_refused(exc: BaseException) -> bool:
    """True when a failed request never reached a server: the connection was refused (nothing listening)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        current = current.__cause__ or current.__context__
    return False


def is_retryable(exc: BaseException) -> bool:
    """True for failures worth retrying later (server away or overloaded), False for bad input."""
    if isinstance(exc, StoreUnavailable):
        return True
    if isinstance(exc, AnalyticsError):
        return False
    return isinstance(exc, OSError | TimeoutError | ConnectionError)


class WriteAction(Enum):
    RETRY = "retry"
    QUARANTINE = "quarantine"
    SPLIT = "split"


@dataclass(frozen=True)
class WriteVerdict:
    action: WriteAction
    delay_s: float
    """Seconds to wait before the retry (0 unless action is RETRY)."""
    reason: str


def retry_after_s(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date; ``now_s`` UTC seconds), None if absent."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None
    return None if now_s is None else max(0.0, when - now_s)


def sort_write_error(
    status: int | None,
    *,
    n_lines: int,
    attempt: int = 1,
    retry_after: str | None = None,
    message: str = "",
    now_s: float | None = None,
    base_delay_s: float = 0.5,
    max_delay_s: float = 30.0,
    refused: bool = False,
    refused_delay_s: float = 1.0,
) -> WriteVerdict:
    """Sort one failed write (``status`` None = no HTTP answer; ``refused``: the connection was refused) into
    retry / quarantine / split. Pure."""
    backoff = min(max_delay_s, base_delay_s * 2 ** max(0, attempt - 1))
    lowered = message.lower()
    if status is None and refused:
        return WriteVerdict(
            WriteAction.RETRY, min(backoff, refused_delay_s), "connection refused (server down or restarting)"
        )
    if status is None:
        return WriteVerdict(WriteAction.RETRY, backoff, "no answer from the server (reset or timed out)")
    if status in (400, 422) and any(text in lowered for text in CONFIGURATION_MESSAGES):
        return WriteVerdict(WriteAction.RETRY, backoff, f"HTTP {status}: server not configured ({message.strip()})")
    if status in (400, 422):
        return WriteVerdict(WriteAction.QUARANTINE, 0.0, f"HTTP {status}: the server rejected the data")
    if status == 413:
        if n_lines > 1:
            return WriteVerdict(WriteAction.SPLIT, 0.0, "HTTP 413: batch too large, splitting it")
        return WriteVerdict(WriteAction.QUARANTINE, 0.0, "HTTP 413: a single line larger than the server accepts")
    if status == 429 or 500 <= status <= 599:
        wait = retry_after_s(retry_after, now_s)
        delay = backoff if wait is None else max(backoff, wait)
        return WriteVerdict(WriteAction.RETRY, delay, f"HTTP {status}: server busy or failing")
    if 200 <= status <= 299:
        raise ValueError(f"HTTP {status} is a success, not a write error")
    return WriteVerdict(
        WriteAction.RETRY, backoff, f"HTTP {status}: not a data problem (credentials, permissions or configuration)"
    )
