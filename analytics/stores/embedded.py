"""Embedded store: the InfluxDB schema in one SQLite file, used when no InfluxDB is configured.

Same measurements, tags, fields and timestamps (µs) as the InfluxDB store (SCHEMA.md), and the same identity
rule: measurement + tags + timestamp; writing a point again merges its fields into the stored ones, as InfluxDB
does, except that a raw sample is never written over another sample, nor stored a second time at a moved time
(`write_raw_many`). Raw samples have their own typed table (``raw``: the hot path); the other measurements share
one ``points`` table (tags and fields as JSON). Retention: raw samples older than ``raw_retention_s`` (default 30
days, UTC timestamps only) are deleted by `enforce_retention` (called after each raw write at most once an hour).
Durable: WAL with synchronous=FULL; a write returns after its transaction committed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analytics.stores import embedded_reads
from analytics.stores.errors import StoreConfigError, StoreUnavailable
from analytics.stores.export_reads import DEFAULT_CHUNK_SAMPLES, BatchRecord, batch_record
from analytics.stores.model import (
    GAP,
    LIVE_MEASUREMENTS,
    RAW_BATCH,
    RAW_FIELDS,
    RESULT_MEASUREMENTS,
    SENSOR_SLOT_US,
    SESSION_SUMMARY,
    GapRecord,
    Point,
    RawIndex,
    RawProgress,
    RawSamples,
    RawSeries,
    RawSession,
    ResultRow,
    SampleId,
    SessionResults,
    WriteReport,
    batch_point,
    check_windows,
    gap_point,
    plan_raw_writes,
    quarantine_refused,
    raw_sessions_from_batches,
    require_utc_mapping,
    result_order,
    sensor_slot_start_us,
)
from analytics.stores.plans import ExercisePlan, read_embedded
from analytics.stores.quarantine import Quarantine
from analytics.stores.raw_remap import moved_index, record_point, remapped_batches
from gaitsym_common.private_files import prepare_private_sqlite
from gaitsym_common.uplink.envelope import ClockMapping

DEFAULT_RAW_RETENTION_S = 30 * 24 * 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS raw (
    subject TEXT NOT NULL, placement TEXT NOT NULL, time_us INTEGER NOT NULL,
    session TEXT, serial TEXT NOT NULL, boot_epoch INTEGER NOT NULL, seq INTEGER NOT NULL,
    t_sensor_us INTEGER NOT NULL,
    acc_x REAL NOT NULL, acc_y REAL NOT NULL, acc_z REAL NOT NULL,
    gyr_x REAL NOT NULL, gyr_y REAL NOT NULL, gyr_z REAL NOT NULL,
    PRIMARY KEY (subject, placement, time_us)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS points (
    measurement TEXT NOT NULL, series TEXT NOT NULL, time_us INTEGER NOT NULL,
    subject TEXT NOT NULL, tags TEXT NOT NULL, fields TEXT NOT NULL,
    PRIMARY KEY (measurement, series, time_us)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_subject ON points (subject, measurement, time_us);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class EmbeddedStore:
    """`analytics.stores.Store` in one SQLite file (a path, or ``:memory:`` for tests)."""

    def __init__(
        self,
        path: str | Path,
        raw_retention_s: float = DEFAULT_RAW_RETENTION_S,
        quarantine: Quarantine | None = None,
    ) -> None:
        if raw_retention_s <= 0:
            raise StoreConfigError(f"raw_retention_s: {raw_retention_s} is not a positive number of seconds")
        self.path = str(path)
        self.raw_retention_s = raw_retention_s
        self._lock = threading.Lock()
        try:
            if self.path != ":memory:":
                prepare_private_sqlite(self.path)  # raw samples and results: health data, owner-only
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreConfigError(f"{self.path}: cannot open the embedded store: {exc}") from exc
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('raw_retention_s', ?)", (repr(raw_retention_s),)
        )
        self._last_retention = 0.0
        self._quarantine = quarantine

    @property
    def quarantine(self) -> Quarantine:
        """Where refused raw samples are kept (`quarantine.sqlite` next to the store file), opened when first
        needed."""
        if self._quarantine is None:
            where = ":memory:" if self.path == ":memory:" else Path(self.path).parent / "quarantine.sqlite"
            self._quarantine = Quarantine(where)
        return self._quarantine

    def _tx(self, work: Any) -> Any:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    out = work(self._db)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return out
            except sqlite3.OperationalError as exc:  # locked / disk full: worth retrying later
                raise StoreUnavailable(f"{self.path}: {exc}") from exc

    # ------------------------------------------------------------------------------------------ points

    @staticmethod
    def _upsert_points(db: sqlite3.Connection, points: Iterable[Point]) -> int:
        n = 0
        for p in points:
            tags = dict(p.tags)
            db.execute(
                "INSERT INTO points (measurement, series, time_us, subject, tags, fields) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT (measurement, series, time_us) DO UPDATE SET fields = json_patch(fields, excluded.fields)",
                (p.measurement, p.series, p.time_us, tags["subject"], json.dumps(tags), json.dumps(dict(p.fields))),
            )
            n += 1
        return n

    @staticmethod
    def _raw_params(samples: RawSamples) -> list[tuple[Any, ...]]:
        times = samples.time_us().tolist()
        rows = np.column_stack([samples.acc_mps2, samples.gyr_dps]).tolist()
        seqs = samples.seq.tolist()
        ticks = samples.t_sensor_us.tolist()
        return [
            (samples.subject, samples.placement, t, samples.session, samples.serial, samples.boot_epoch, s, k, *r)
            for t, s, k, r in zip(times, seqs, ticks, rows, strict=True)
        ]

    def write_raw(self, samples: RawSamples) -> WriteReport:
        return self.write_raw_many([samples])

    def write_raw_many(self, batches: Sequence[RawSamples]) -> WriteReport:
        """One transaction: the points the batches would take, and their samples' identities nearby, are looked
        up; samples landing on a point that holds another sample are refused (quarantined, recorded as gaps),
        samples already stored at another time are not written again (`model.plan_raw_writes`), the rest is
        written with the batch index. Check and write are atomic, whatever the number of workers."""
        batches = [b for b in batches if len(b)]
        if not batches:
            return WriteReport()
        report: WriteReport = self._tx(lambda db: self._write_raw_tx(db, batches))
        if time.monotonic() - self._last_retention > 3600:
            self.enforce_retention()
        return report

    @staticmethod
    def _held(db: sqlite3.Connection, batches: Sequence[RawSamples]) -> dict[tuple[str, str], dict[int, SampleId]]:
        """Identities of the stored samples in each batch's time spans, and of the batch's own samples stored
        within `model.REPLAY_MOVE_US` of them (`model.check_windows`; usually none: new data). One primary-key
        range read per span, the identity filter applied by SQLite."""
        held: dict[tuple[str, str], dict[int, SampleId]] = {}
        for b in batches:
            first, last = int(b.seq[0]), int(b.seq[-1])
            for (lo, hi), (wide_lo, wide_hi) in check_windows(b):
                rows = db.execute(
                    "SELECT time_us, serial, boot_epoch, seq FROM raw WHERE subject = ? AND placement = ? "
                    "AND time_us BETWEEN ? AND ? AND (time_us BETWEEN ? AND ? "
                    "OR (serial = ? AND boot_epoch = ? AND seq BETWEEN ? AND ?))",
                    (b.subject, b.placement, wide_lo, wide_hi, lo, hi, b.serial, b.boot_epoch, first, last),
                ).fetchall()
                if rows:
                    points = held.setdefault((b.subject, b.placement), {})
                    points.update((int(t), (str(serial), int(boot), int(seq))) for t, serial, boot, seq in rows)
        return held

    def _write_raw_tx(self, db: sqlite3.Connection, batches: Sequence[RawSamples], index: bool = True) -> WriteReport:
        plan = plan_raw_writes(batches, self._held(db, batches))
        report = WriteReport(requests=1)
        report.quarantined.extend(quarantine_refused(plan, self.quarantine))  # kept before the transaction commits
        report.collisions.extend(plan.collisions)
        report.gaps.extend(plan.gaps)
        report.moved.extend(plan.moved)
        params = [row for b in plan.write for row in self._raw_params(b)]
        db.executemany("INSERT OR REPLACE INTO raw VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", params)
        points = [gap_point(g) for g in plan.gaps] + ([batch_point(b) for b in plan.write] if index else [])
        report.points_written = len(params) + self._upsert_points(db, points)
        return report

    def write_gap(self, gap: GapRecord) -> WriteReport:
        n = self._tx(lambda db: self._upsert_points(db, [gap_point(gap)]))
        return WriteReport(points_written=int(n), requests=1)

    def raw_index(
        self, subject: str, placement: str, serial: str, boot_epoch: int, seq_first: int | None, seq_last: int
    ) -> RawIndex:
        lo = -(1 << 62) if seq_first is None else seq_first
        with self._lock:
            batches = self._db.execute(
                "SELECT json_extract(fields, '$.seq_first'), json_extract(fields, '$.seq_last'), "
                "json_extract(fields, '$.n_samples') FROM points WHERE measurement = ? AND subject = ? "
                "AND json_extract(tags, '$.placement') = ? AND json_extract(fields, '$.serial') = ? "
                "AND json_extract(fields, '$.boot_epoch') = ? AND json_extract(fields, '$.seq_last') >= ? "
                "AND json_extract(fields, '$.seq_first') <= ?",
                (RAW_BATCH, subject, placement, serial, boot_epoch, lo, seq_last),
            ).fetchall()
            gaps = self._db.execute(
                "SELECT json_extract(fields, '$.seq_first_missing'), json_extract(fields, '$.seq_last_missing') "
                "FROM points WHERE measurement = ? AND subject = ? AND json_extract(tags, '$.placement') = ? "
                "AND json_extract(fields, '$.serial') = ? AND json_extract(fields, '$.boot_epoch') = ? "
                "AND json_extract(fields, '$.seq_last_missing') >= ? "
                "AND json_extract(fields, '$.seq_first_missing') <= ?",
                (GAP, subject, placement, serial, boot_epoch, lo, seq_last),
            ).fetchall()
        return RawIndex(
            tuple(sorted((int(a), int(b), int(n)) for a, b, n in batches)),
            tuple(sorted((int(a), int(b)) for a, b in gaps)),
        )

    def enforce_retention(self, now_s: float | None = None) -> int:
        """Delete UTC raw samples and batch-index points older than the retention; returns rows deleted."""
        self._last_retention = time.monotonic()
        cutoff = round(((time.time() if now_s is None else now_s) - self.raw_retention_s) * 1e6)

        def work(db: sqlite3.Connection) -> int:
            n = db.execute("DELETE FROM raw WHERE time_us >= 0 AND time_us < ?", (cutoff,)).rowcount
            n += db.execute(
                "DELETE FROM points WHERE measurement = ? AND time_us >= 0 AND time_us < ?", (RAW_BATCH, cutoff)
            ).rowcount
            return int(n)

        return int(self._tx(work))

    def read_raw(
        self,
        subject: str,
        placement: str,
        *,
        start_us: int | None = None,
        end_us: int | None = None,
        session: str | None = None,
    ) -> RawSeries:
        sql = (
            "SELECT time_us, seq, t_sensor_us, boot_epoch, serial, session, acc_x, acc_y, acc_z, gyr_x, gyr_y, gyr_z "
            "FROM raw WHERE subject = ? AND placement = ? AND time_us >= ? AND time_us <= ?"
        )
        args: list[Any] = [subject, placement, -(1 << 62) if start_us is None else start_us]
        args.append((1 << 62) if end_us is None else end_us)
        if session is not None:
            sql += " AND session = ?"
            args.append(session)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY time_us", args).fetchall()
        keys = ("time", "seq", "t_sensor_us", "boot_epoch", "serial", "session", *RAW_FIELDS)
        return RawSeries.from_rows(dict(zip(keys, r, strict=True)) for r in rows)

    def raw_progress(self, subject: str, placement: str, serial: str, boot_epoch: int) -> RawProgress:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*), SUM(json_extract(fields, '$.n_samples')), MIN(json_extract(fields, '$.seq_first')),"
                " MAX(json_extract(fields, '$.seq_last')) FROM points WHERE measurement = ? AND subject = ? "
                "AND json_extract(tags, '$.placement') = ? AND json_extract(fields, '$.serial') = ? "
                "AND json_extract(fields, '$.boot_epoch') = ?",
                (RAW_BATCH, subject, placement, serial, boot_epoch),
            ).fetchone()
        if not row[0]:
            return RawProgress(0, 0, None, None)
        return RawProgress(int(row[0]), int(row[1]), int(row[2]), int(row[3]))

    def count_raw(
        self, subject: str, placement: str, serial: str, boot_epoch: int, seq_first: int, seq_last: int
    ) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM raw WHERE subject = ? AND placement = ? AND serial = ? AND boot_epoch = ? "
                "AND seq BETWEEN ? AND ?",
                (subject, placement, serial, boot_epoch, seq_first, seq_last),
            ).fetchone()
        return int(row[0])

    def raw_sessions(
        self, start_us: int, end_us: int, *, subject: str | None = None, session: str | None = None
    ) -> list[RawSession]:
        sql = (
            "SELECT subject, json_extract(tags, '$.placement'), json_extract(fields, '$.session') AS s, "
            "json_extract(fields, '$.serial'), json_extract(fields, '$.boot_epoch'), "
            "MIN(json_extract(fields, '$.seq_first')), MAX(json_extract(fields, '$.seq_last')), MIN(time_us), "
            "MAX(json_extract(fields, '$.time_last_us')) FROM points WHERE measurement = ? AND time_us BETWEEN ? AND ? "
            "AND s IS NOT NULL"
        )
        args: list[Any] = [RAW_BATCH, start_us, end_us]
        if subject is not None:
            sql += " AND subject = ?"
            args.append(subject)
        if session is not None:
            sql += " AND s = ?"
            args.append(session)
        with self._lock:
            rows = self._db.execute(sql + " GROUP BY 1, 2, 3, 4, 5", args).fetchall()
        return raw_sessions_from_batches(
            (str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), int(r[5]), int(r[6]), int(r[7]), int(r[8]))
            for r in rows
        )

    def remap_raw(self, subject: str, placement: str, serial: str, boot_epoch: int, clock: ClockMapping) -> int:
        """Move a boot epoch's sensor-time samples and index to UTC (`raw_remap`; one transaction)."""
        require_utc_mapping(clock)
        slot = sensor_slot_start_us(boot_epoch)
        args = (subject, placement, serial, boot_epoch, slot, slot + SENSOR_SLOT_US - 1)
        where = "FROM raw WHERE subject = ? AND placement = ? AND serial = ? AND boot_epoch = ?"
        where += " AND time_us BETWEEN ? AND ?"
        where_index = (
            "FROM points WHERE measurement = ? AND subject = ? AND json_extract(tags, '$.placement') = ? AND "
            "json_extract(fields, '$.serial') = ? AND json_extract(fields, '$.boot_epoch') = ? AND "
            "time_us BETWEEN ? AND ?"
        )

        def work(db: sqlite3.Connection) -> int:
            columns = "SELECT session, seq, t_sensor_us, acc_x, acc_y, acc_z, gyr_x, gyr_y, gyr_z "
            rows = db.execute(columns + where, args).fetchall()
            if not rows:
                return 0
            points = db.execute("SELECT time_us, fields " + where_index, (RAW_BATCH, *args)).fetchall()
            move = remapped_batches(
                subject=subject,
                placement=placement,
                serial=serial,
                boot_epoch=boot_epoch,
                seq=[r[1] for r in rows],
                t_sensor_us=[r[2] for r in rows],
                session=[r[0] for r in rows],
                acc_mps2=[r[3:6] for r in rows],
                gyr_dps=[r[6:] for r in rows],
                index=[batch_record(placement, int(t), json.loads(f)) for t, f in points],
                clock=clock,
            )
            db.execute("DELETE " + where, args)
            db.execute("DELETE " + where_index, (RAW_BATCH, *args))
            # the UTC points are checked like any write: a sample landing on another's point is refused, not moved
            claimed = embedded_reads.utc_claims(db, subject, placement, serial, boot_epoch)
            moved = moved_index(move, self._write_raw_tx(db, move.batches, index=False), claimed)
            self._upsert_points(db, [*moved, *(record_point(subject, r) for r in move.stay)])
            return len(rows)

        return int(self._tx(work))

    # ------------------------------------------------------------------------------------------ results

    def replace_results(self, results: SessionResults) -> WriteReport:
        """One transaction: skip if a newer version is stored; delete old and new ranges; write the points."""

        def work(db: sqlite3.Connection) -> WriteReport:
            old = db.execute(
                "SELECT time_us, json_extract(fields, '$.result_version'), json_extract(fields, '$.duration_s') "
                "FROM points WHERE measurement = ? AND subject = ? AND json_extract(fields, '$.session') = ?",
                (SESSION_SUMMARY, results.subject, results.session),
            ).fetchall()
            if any(int(r[1] or 0) > results.result_version for r in old):
                return WriteReport(superseded=True)
            ranges = {(results.start_us, results.end_us)}
            ranges.update((int(r[0]), int(r[0]) + round(float(r[2] or 0.0) * 1e6)) for r in old)
            names = (*RESULT_MEASUREMENTS, *LIVE_MEASUREMENTS)
            marks = ",".join("?" * len(names))
            for start, end in ranges:
                db.execute(
                    f"DELETE FROM points WHERE subject = ? AND measurement IN ({marks}) AND time_us BETWEEN ? AND ?",
                    (results.subject, *names, start, end),
                )
            n = self._upsert_points(db, results.points)
            return WriteReport(points_written=n, requests=1)

        report: WriteReport = self._tx(work)
        return report

    def write_live(self, results: SessionResults) -> WriteReport:
        n = self._tx(lambda db: self._upsert_points(db, results.points))
        return WriteReport(points_written=int(n), requests=1)

    def delete_live(self, subject: str, start_us: int, end_us: int) -> None:
        marks = ",".join("?" * len(LIVE_MEASUREMENTS))
        self._tx(
            lambda db: (
                db.execute(
                    f"DELETE FROM points WHERE subject = ? AND measurement IN ({marks}) AND time_us BETWEEN ? AND ?",
                    (subject, *LIVE_MEASUREMENTS, start_us, end_us),
                ).rowcount
            )
        )

    def read_results(
        self,
        subject: str,
        *,
        session: str | None = None,
        start_us: int | None = None,
        end_us: int | None = None,
        live: bool = False,
    ) -> list[ResultRow]:
        names = LIVE_MEASUREMENTS if live else RESULT_MEASUREMENTS
        marks = ",".join("?" * len(names))
        sql = (
            f"SELECT measurement, time_us, tags, fields FROM points WHERE subject = ? AND measurement IN ({marks}) "
            "AND time_us BETWEEN ? AND ?"
        )
        args: list[Any] = [subject, *names]
        args += [-(1 << 62) if start_us is None else start_us, (1 << 62) if end_us is None else end_us]
        if session is not None:
            sql += " AND json_extract(fields, '$.session') = ?"
            args.append(session)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        out = []
        for m, t, tags, fields in rows:
            tag_map: dict[str, str] = json.loads(tags)
            tag_map.pop("subject", None)
            tag_map["subject"] = subject
            out.append(ResultRow(m, int(t), tag_map, json.loads(fields)))
        out.sort(key=result_order)
        return out

    def write_plan(self, plan: ExercisePlan) -> WriteReport:
        return WriteReport(points_written=int(self._tx(lambda db: self._upsert_points(db, [plan.point()]))), requests=1)

    def read_plans(self, subject: str) -> list[ExercisePlan]:
        return read_embedded(self._db, self._lock, subject)

    def points(self, measurement: str, subject: str) -> list[tuple[int, Mapping[str, str], Mapping[str, Any]]]:
        """Every stored point of a measurement for a subject (the read API behind raw_batch and results)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT time_us, tags, fields FROM points WHERE measurement = ? AND subject = ? ORDER BY time_us",
                (measurement, subject),
            ).fetchall()
        return [(int(t), json.loads(tags), json.loads(fields)) for t, tags, fields in rows]

    # ------------------------------------------------------------------------------------------ export reads

    def raw_chunks(
        self,
        subject: str,
        placement: str,
        *,
        start_us: int | None = None,
        end_us: int | None = None,
        session: str | None = None,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    ) -> Iterator[Any]:
        return embedded_reads.raw_chunks(
            self.path,
            self._db,
            self._lock,
            subject,
            placement,
            start_us=start_us,
            end_us=end_us,
            session=session,
            chunk_samples=chunk_samples,
        )

    def raw_batches(
        self, subject: str, *, start_us: int | None = None, end_us: int | None = None, session: str | None = None
    ) -> list[BatchRecord]:
        return embedded_reads.raw_batches(
            self._db, self._lock, subject, start_us=start_us, end_us=end_us, session=session
        )

    def gaps(self, subject: str, *, session: str | None = None) -> list[GapRecord]:
        return embedded_reads.gaps(self._db, self._lock, subject, session=session)

    def raw_kept_for_s(self) -> float | None:
        return self.raw_retention_s

    def retention(self) -> dict[str, Sequence[str] | float]:
        return {"raw_retention_s": self.raw_retention_s, "raw_measurements": ("raw", RAW_BATCH)}

    def close(self) -> None:
        with self._lock:
            self._db.close()
        if self._quarantine is not None:
            self._quarantine.close()
