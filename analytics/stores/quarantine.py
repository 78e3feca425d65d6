"""The quarantine: batches a server refused as bad data (HTTP 400/422, or one line over 413), kept aside.

A quarantined batch is never retried automatically; it is stored durably (SQLite, committed before the write
call returns, so the caller may acknowledge the message) with the server's answer and a description naming
it (subject, placement, sensor sample identity range, or the session for results), and logged at WARNING.
An operator reads it with `Quarantine.entries` and can re-import the lines once fixed (writes are idempotent).
Times: ``created_utc_s`` UTC seconds.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("gaitsym.stores")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantine (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    created_utc_s REAL NOT NULL,
    what          TEXT NOT NULL,
    status        INTEGER,
    reason        TEXT NOT NULL,
    server_message TEXT NOT NULL,
    n_lines       INTEGER NOT NULL,
    lines         TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class QuarantineEntry:
    id: int
    created_utc_s: float
    what: str
    status: int | None
    reason: str
    server_message: str
    lines: tuple[str, ...]


class Quarantine:
    """Durable store of refused batches (one SQLite file, WAL, synchronous=FULL)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)

    def put(self, what: str, status: int | None, reason: str, server_message: str, lines: list[str]) -> int:
        """Keep a refused batch; returns its quarantine id. Logs one WARNING line naming it."""
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO quarantine (created_utc_s, what, status, reason, server_message, n_lines, lines) "
                "VALUES (?,?,?,?,?,?,?)",
                (time.time(), what, status, reason, server_message[:4000], len(lines), "\n".join(lines)),
            )
            qid = int(cur.lastrowid or 0)
        log.warning(
            "quarantined %s (%d lines, quarantine id %d in %s): %s; server said: %s",
            what,
            len(lines),
            qid,
            self.path,
            reason,
            server_message.strip()[:500],
        )
        return qid

    def entries(self) -> list[QuarantineEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, created_utc_s, what, status, reason, server_message, lines FROM quarantine ORDER BY id"
            ).fetchall()
        return [QuarantineEntry(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6].split("\n"))) for r in rows]

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
