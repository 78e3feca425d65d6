"""Durable outbox: every message the gateway accepted waits on disk until the worker says it is stored.

Guarantees
- `put` returns only after the row is committed. The database is SQLite in WAL mode with
  ``synchronous=FULL``: each commit fsyncs the WAL, so an accepted batch survives ``kill -9`` of the gateway
  *and* a power cut (a Raspberry Pi gets unplugged). ``NORMAL`` would survive kill -9 but could lose the
  last commits on power loss; the price of FULL is one fsync per commit, and the gateway commits a few
  times a second (one ~1 s batch per sensor), so it is affordable even on an SD card.
- `put` is idempotent on ``msg_id`` (the uplink msg_id is the same on every replay): a repeat is ignored.
- Rows leave only through `ack` (the worker's acknowledgement topic), never because the broker took them.
- Order: `pending` yields rows in insertion order (per sensor this is sequence order).
- In flight is a property of this process's connection, kept in memory: after a restart every
  unacknowledged row is pending again and is re-sent (the worker de-duplicates by msg_id and by
  (serial, boot epoch, seq)).

Full policy (``budget_bytes`` of payload): when a *raw* batch would take the outbox over its budget it is
refused with `OutboxFull` and counted (``refused``, ``refused_bytes``); nothing already accepted is ever
evicted, because an accepted batch is a promise and the oldest data is usually the most valuable (it is
what the clinician has not seen yet). Control kinds (gap, marker) may use a further ``reserve_fraction``
of the budget, so the gateway can still record *that* samples were refused (a Gap with reason
"outbox_full") and where sessions begin and end. The status message shows ``outbox.full`` and the counts,
so a full outbox is visible in the clinic, never silent.

Gateway state (`state` / `put(..., state=...)`): a small key -> JSON table in the same database, written
in the *same transaction* as the message it belongs to. The gateway keeps there each sensor's cursor
(serial, boot epoch, next sequence, last sensor time) and the open session, so after a crash the cursor is
exactly the last sample the outbox holds: whatever the sensor sent after it (in memory at the crash, or
while the gateway was down) is reported as a gap, never silently missing.

Units: bytes, seconds (host monotonic or wall clock as given by the caller; only used for ages).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gaitsym_common.private_files import prepare_private_sqlite
from sensor_gateway.errors import GatewayError

CONTROL_KINDS = ("gap", "marker")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id     TEXT NOT NULL UNIQUE,
    topic      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    payload    BLOB NOT NULL,
    created_s  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS gateway_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL
);
"""


class OutboxError(GatewayError):
    """Root of the outbox's errors."""


class OutboxFull(OutboxError):
    """The byte budget is used up: the message was refused (and counted)."""


class OutboxCorrupt(OutboxError):
    """The database file failed SQLite's integrity check."""


def is_retryable(exc: BaseException) -> bool:
    """Pure retry-or-drop rule: a full outbox frees space only when acks arrive (retry later); a locked or
    busy database is transient; a corrupt one is not."""
    if isinstance(exc, OutboxCorrupt):
        return False
    if isinstance(exc, OutboxFull):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return "locked" in str(exc) or "busy" in str(exc)
    return isinstance(exc, OSError)


@dataclass(frozen=True)
class OutboxItem:
    seq: int
    msg_id: str
    topic: str
    kind: str
    payload: bytes
    created_s: float


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    inflight: int
    bytes: int
    budget_bytes: int
    full: bool
    accepted: int
    duplicates: int
    refused: int
    refused_bytes: int
    acked: int
    oldest_created_s: float | None

    def as_status(self) -> dict[str, float]:
        """The ``outbox`` block of the uplink status message (numbers only)."""
        return {
            "pending": float(self.pending),
            "inflight": float(self.inflight),
            "bytes": float(self.bytes),
            "budget_bytes": float(self.budget_bytes),
            "full": 1.0 if self.full else 0.0,
            "refused": float(self.refused),
            "acked": float(self.acked),
        }


class Outbox:
    def __init__(
        self,
        path: str | Path,
        budget_bytes: int = 2 * 1024**3,
        reserve_fraction: float = 0.02,
        synchronous: str = "FULL",
        clock: object = time.time,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise OutboxError(f"synchronous: {synchronous!r} is not FULL, NORMAL or EXTRA")
        self.path = Path(path)
        self.budget_bytes = budget_bytes
        self.reserve_fraction = reserve_fraction
        self._now = clock
        self._lock = threading.RLock()
        try:
            prepare_private_sqlite(self.path)  # raw sensor payloads: health data, owner-only
        except OSError as exc:
            raise OutboxError(f"{self.path}: cannot create the outbox: {exc}") from exc
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        ok = self._db.execute("PRAGMA quick_check").fetchone()[0]
        if ok != "ok":
            raise OutboxCorrupt(f"{self.path}: {ok}")
        self._bytes = int(self._db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox").fetchone()[0])
        self._inflight: dict[int, float] = {}
        self.accepted = self.duplicates = self.refused = self.refused_bytes = self.acked = 0

    # ------------------------------------------------------------------------------------------- writing

    def put(
        self, msg_id: str, topic: str, payload: bytes, kind: str = "raw", state: Mapping[str, object] | None = None
    ) -> bool:
        """Commit one message (and ``state`` entries, atomically); True if new, False if that msg_id is already
        waiting. OutboxFull if refused (the state is then still written)."""
        return self.put_many([(msg_id, topic, payload, kind)], state) == 1

    def put_many(self, items: Iterable[tuple[str, str, bytes, str]], state: Mapping[str, object] | None = None) -> int:
        """Commit several messages in one transaction (one fsync); returns how many were new.

        Raw messages over the budget are refused: the others are still committed, then OutboxFull is raised
        naming how many were refused. ``state`` (key -> JSON-able value) is written in the same transaction.
        """
        now = float(self._now())  # type: ignore[operator]
        new = 0
        refused: list[str] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                added = 0
                for msg_id, topic, payload, kind in items:
                    size = len(payload)
                    limit = self.budget_bytes * (1 + self.reserve_fraction if kind in CONTROL_KINDS else 1)
                    if self._bytes + added + size > limit:
                        refused.append(msg_id)
                        self.refused_bytes += size
                        continue
                    cur = self._db.execute(
                        "INSERT OR IGNORE INTO outbox (msg_id, topic, kind, payload, created_s) VALUES (?,?,?,?,?)",
                        (msg_id, topic, kind, payload, now),
                    )
                    if cur.rowcount == 1:
                        new += 1
                        added += size
                    else:
                        self.duplicates += 1
                for key, value in (state or {}).items():
                    self._db.execute(
                        "INSERT OR REPLACE INTO gateway_state (key, value) VALUES (?, ?)", (key, json.dumps(value))
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._bytes += added
            self.accepted += new
            self.refused += len(refused)
        if refused:
            raise OutboxFull(
                f"{len(refused)} message(s) refused ({refused[0]}...): outbox holds {self._bytes} of "
                f"{self.budget_bytes} budget bytes; nothing accepted is evicted"
            )
        return new

    def ack(self, msg_ids: Iterable[str]) -> int:
        """The worker stored these: delete them (unknown ids are ignored). Returns how many were removed."""
        ids = list(msg_ids)
        if not ids:
            return 0
        with self._lock:
            removed = 0
            freed = 0
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for msg_id in ids:
                    row = self._db.execute(
                        "DELETE FROM outbox WHERE msg_id = ? RETURNING seq, LENGTH(payload)", (msg_id,)
                    ).fetchone()
                    if row is not None:
                        removed += 1
                        freed += int(row[1])
                        self._inflight.pop(int(row[0]), None)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._bytes -= freed
            self.acked += removed
        return removed

    # ------------------------------------------------------------------------------------------- sending

    def pending(self, limit: int = 100, include_inflight: bool = False) -> list[OutboxItem]:
        """The oldest waiting messages in insertion order, skipping those in flight (unless asked)."""
        with self._lock:
            out: list[OutboxItem] = []
            after = 0
            while len(out) < limit:
                rows = self._db.execute(
                    "SELECT seq, msg_id, topic, kind, payload, created_s FROM outbox WHERE seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (after, limit * 2),
                ).fetchall()
                if not rows:
                    break
                for row in rows:
                    after = row[0]
                    if include_inflight or row[0] not in self._inflight:
                        out.append(OutboxItem(row[0], row[1], row[2], row[3], bytes(row[4]), row[5]))
                        if len(out) == limit:
                            break
            return out

    def mark_inflight(self, items: Iterable[OutboxItem], sent_s: float) -> None:
        with self._lock:
            for item in items:
                self._inflight[item.seq] = sent_s

    def requeue(self, older_than_s: float | None = None) -> int:
        """Make in-flight messages pending again: all of them (reconnect), or those sent before
        ``older_than_s`` (no ack in time: the broker may have lost them). Returns how many."""
        with self._lock:
            if older_than_s is None:
                n = len(self._inflight)
                self._inflight.clear()
                return n
            stale = [seq for seq, sent in self._inflight.items() if sent < older_than_s]
            for seq in stale:
                del self._inflight[seq]
            return len(stale)

    # ------------------------------------------------------------------------------------------- state

    def state(self) -> dict[str, object]:
        """The gateway state entries (key -> value) as last committed."""
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM gateway_state").fetchall()
        return {str(k): json.loads(v) for k, v in rows}

    def save_state(self, state: Mapping[str, object]) -> None:
        """Commit state entries on their own (one transaction)."""
        self.put_many([], state)

    def stats(self) -> OutboxStats:
        with self._lock:
            count, oldest = self._db.execute("SELECT COUNT(*), MIN(created_s) FROM outbox").fetchone()
            return OutboxStats(
                pending=int(count) - len(self._inflight),
                inflight=len(self._inflight),
                bytes=self._bytes,
                budget_bytes=self.budget_bytes,
                full=self._bytes >= self.budget_bytes,
                accepted=self.accepted,
                duplicates=self.duplicates,
                refused=self.refused,
                refused_bytes=self.refused_bytes,
                acked=self.acked,
                oldest_created_s=oldest,
            )

    @property
    def inflight_count(self) -> int:
        """Messages handed to MQTT and not yet acknowledged (in memory, this process)."""
        return len(self._inflight)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
