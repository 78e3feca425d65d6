"""The quarantine: batches a server refused as bad data (HTTP 400/422, or one line over 413), kept aside.

A quarantined batch is never retried automatically; it is stored durably (SQLite, committed before the write
call returns, so the caller may acknowledge the message) with the server's answer and a description naming
it (subject, placement, sensor sample identity range, or the session for results), and logged at WARNING.
An operator reads it with `Quarantine.entries` and can re-import the lines once fixed (writes are idempotent).
The analytics worker keeps malformed MQTT payloads in one too (its own file).

Bounded per subject: what one subject's data (or one hostile gateway) puts here must not fill the disk. Each
subject keeps at most ``max_entries_per_subject`` entries and ``max_bytes_per_subject`` bytes, and the whole file
``max_bytes_total`` (shared; its last quarter is kept for subjects holding at most 1/16 of their own byte cap,
so a few subjects at their caps never take every subject's room); past a cap the *excess* is dropped (the first
entries, usually the most telling, stay),
counted per subject (`Quarantine.dropped`, saved at most every ``DROPPED_SAVE_EVERY_S`` and on close) and logged
once a minute per subject. Dropping costs no disk write, so a flood of bad data costs no flood of fsyncs.
Times: ``created_utc_s`` UTC seconds.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gaitsym_common.private_files import prepare_private_sqlite

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
    lines         TEXT NOT NULL,
    subject       TEXT NOT NULL DEFAULT ''
)
"""
_DROPPED_SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantine_dropped (
    subject       TEXT PRIMARY KEY,
    dropped       INTEGER NOT NULL,
    last_utc_s    REAL NOT NULL
)
"""
MAX_ENTRIES_PER_SUBJECT = 1000
MAX_BYTES_PER_SUBJECT = 64 * 1024 * 1024
MAX_BYTES_TOTAL = 1024 * 1024 * 1024
DROPPED_SAVE_EVERY_S = 10.0
DROP_LOG_EVERY_S = 60.0
_SUBJECT_IN_WHAT = re.compile(r"\bsubject=([A-Za-z0-9][A-Za-z0-9_-]{0,63})(?![A-Za-z0-9_-])")
"""The whole subject id or nothing: ``subject=victim-`` is never read as ``victim``."""


@dataclass(frozen=True)
class QuarantineEntry:
    id: int
    created_utc_s: float
    what: str
    status: int | None
    reason: str
    server_message: str
    lines: tuple[str, ...]
    subject: str = ""


OPEN_WAIT_S = 30.0
"""How long opening the file waits for another process opening it at the same moment, s."""


def _while_locked(step: Callable[[], object], wait_s: float = OPEN_WAIT_S) -> None:
    """Run ``step`` again while another process holds the file's lock. Workers started together on one machine
    share the file, and switching a new file to WAL answers "database is locked" at once, without waiting on the
    busy timeout, while another connection does the same."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Quarantine:
    """Durable store of refused batches (one SQLite file, WAL, synchronous=FULL), capped per subject."""

    def __init__(
        self,
        path: str | Path,
        max_entries_per_subject: int = MAX_ENTRIES_PER_SUBJECT,
        max_bytes_per_subject: int = MAX_BYTES_PER_SUBJECT,
        max_bytes_total: int = MAX_BYTES_TOTAL,
    ) -> None:
        self.max_entries_per_subject = max_entries_per_subject
        self.max_bytes_per_subject = max_bytes_per_subject
        self._small_use = max_bytes_per_subject // 16
        """The last quarter of ``max_bytes_total`` takes only entries of subjects holding at most this much: the
        largest users cannot fill the file for everyone."""
        self.max_bytes_total = max_bytes_total
        self.path = Path(path)
        if str(path) != ":memory:":
            prepare_private_sqlite(self.path)  # refused raw payloads: health data, owner-only
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        _while_locked(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
        self._db.execute("PRAGMA synchronous=FULL")
        _while_locked(lambda: self._db.execute(_SCHEMA))
        _while_locked(lambda: self._db.execute(_DROPPED_SCHEMA))
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(quarantine)")}
        if "subject" not in columns:  # a file written before the per-subject caps
            self._db.execute("ALTER TABLE quarantine ADD COLUMN subject TEXT NOT NULL DEFAULT ''")
        self._usage: dict[str, list[int]] = {
            str(subject): [int(n), int(size or 0)]
            for subject, n, size in self._db.execute(
                "SELECT subject, COUNT(*), SUM(LENGTH(lines) + LENGTH(server_message)) FROM quarantine GROUP BY subject"
            )
        }
        """subject -> [entries, bytes] kept: the caps are checked without a query."""
        self._total = sum(size for _, size in self._usage.values())
        self._unsaved_drops: defaultdict[str, int] = defaultdict(int)
        self._drops_saved_s = time.monotonic()
        self._drop_logged_s: dict[str, float] = {}

    def put(
        self,
        what: str,
        status: int | None,
        reason: str,
        server_message: str,
        lines: list[str],
        subject: str | None = None,
        log_line: bool = True,
    ) -> int:
        """Keep a refused batch; returns its quarantine id, or 0 when a cap dropped it (counted, see the module
        docstring). ``subject`` defaults to the ``subject=...`` named in ``what`` ("" if none). Logs one WARNING
        line naming it unless ``log_line`` is False (a caller that logs, rate-limited, itself)."""
        if subject is None:
            found = _SUBJECT_IN_WHAT.search(what)
            subject = found.group(1) if found else ""
        message = server_message[:4000]
        text = "\n".join(lines)
        size = len(text) + len(message)
        with self._lock:
            used = self._usage.setdefault(subject, [0, 0])
            if (
                used[0] >= self.max_entries_per_subject
                or used[1] + size > self.max_bytes_per_subject
                or self._total + size > self.max_bytes_total
                or (self._total + size > self.max_bytes_total * 3 // 4 and used[1] + size > self._small_use)
            ):
                self._drop(subject, what)
                return 0
            cur = self._db.execute(
                "INSERT INTO quarantine (created_utc_s, what, status, reason, server_message, n_lines, lines, subject) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (time.time(), what, status, reason, message, len(lines), text, subject),
            )
            qid = int(cur.lastrowid or 0)
            used[0] += 1
            used[1] += size
            self._total += size
        if log_line:
            log.warning(
                "quarantined %s (%d lines, quarantine id %d in %s): %s; server said: %s",
                what,
                len(lines),
                qid,
                self.path,
                reason[:500],
                server_message.strip()[:500],
            )
        return qid

    def _drop(self, subject: str, what: str) -> None:
        """Count one entry dropped past a cap (lock held); save the counts and log, each at most so often."""
        self._unsaved_drops[subject] += 1
        now = time.monotonic()
        if now - self._drops_saved_s >= DROPPED_SAVE_EVERY_S:
            self._save_drops()
        if now - self._drop_logged_s.get(subject, -DROP_LOG_EVERY_S) >= DROP_LOG_EVERY_S:
            self._drop_logged_s[subject] = now
            used = self._usage.get(subject, [0, 0])
            log.warning(
                "quarantine %s full for subject %r (%d entries, %d bytes; caps %d entries, %d bytes per subject, "
                "%d bytes in all): %s dropped, %d dropped so far",
                self.path,
                subject,
                used[0],
                used[1],
                self.max_entries_per_subject,
                self.max_bytes_per_subject,
                self.max_bytes_total,
                what[:200],
                self._dropped_locked().get(subject, 0),
            )

    def _save_drops(self) -> None:
        """Add the unsaved drop counts to the file (lock held)."""
        self._drops_saved_s = time.monotonic()
        if not self._unsaved_drops:
            return
        now = time.time()
        self._db.executemany(
            "INSERT INTO quarantine_dropped (subject, dropped, last_utc_s) VALUES (?,?,?) "
            "ON CONFLICT(subject) DO UPDATE SET dropped = dropped + excluded.dropped, last_utc_s = excluded.last_utc_s",
            [(subject, n, now) for subject, n in self._unsaved_drops.items()],
        )
        self._unsaved_drops.clear()

    def _dropped_locked(self) -> dict[str, int]:
        counts = {str(s): int(n) for s, n in self._db.execute("SELECT subject, dropped FROM quarantine_dropped")}
        for subject, n in self._unsaved_drops.items():
            counts[subject] = counts.get(subject, 0) + n
        return counts

    def dropped(self) -> dict[str, int]:
        """Entries dropped past the caps, per subject (since the file was created)."""
        with self._lock:
            return self._dropped_locked()

    def entries(self) -> list[QuarantineEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, created_utc_s, what, status, reason, server_message, lines, subject "
                "FROM quarantine ORDER BY id"
            ).fetchall()
        return [QuarantineEntry(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6].split("\n")), r[7]) for r in rows]

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._save_drops()
            self._db.close()
