"""An export from start to end: plan (sessions, raw retention), then per session its sensors' raw streams and its
tables through the chosen format's writer, then the export's indexes, README and manifest (written last: a folder
with a manifest.json is a complete export).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from analytics.stores import Store
from analytics.stores.export_reads import DEFAULT_CHUNK_SAMPLES
from analytics.stores.model import STORE_SCHEMA
from export.columns import RESULT_TABLES, Column
from export.errors import InvalidExportRequest
from export.files import Progress, prepare_out, write_text
from export.labels import check_unique
from export.plan import Range, SessionPlan, check_retention, export_range, iso, plan_subject, session_results
from export.session import SessionContext
from export.tables import StoredFields

FORMATS = ("csv", "parquet", "bids")
EXPORT_SCHEMA = "gaitsym.export/1"


@dataclass(frozen=True)
class ExportRequest:
    subjects: tuple[str, ...]
    fmt: str
    out: Path
    session: str | None = None
    since_us: int | None = None
    until_us: int | None = None
    with_serials: bool = False
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES
    now_us: int | None = None


class FormatWriter(Protocol):
    def write_session(self, ctx: SessionContext) -> list[Path]:
        """Write one session's files; returns them."""
        ...

    def finish(self, sessions: Sequence[SessionContext], subject_labels: dict[str, str]) -> list[Path]:
        """Write the export's own files (indexes, README); returns them."""
        ...


def writer_for(fmt: str, out: Path, with_serials: bool) -> FormatWriter:
    if fmt == "csv":
        from export.csv_writer import CsvWriter

        return CsvWriter(out, with_serials)
    if fmt == "parquet":
        from export.parquet_writer import ParquetExport

        return ParquetExport(out, with_serials)
    if fmt == "bids":
        from export.bids_writer import BidsWriter

        return BidsWriter(out, with_serials)
    raise InvalidExportRequest(f"--format {fmt!r}: not one of {', '.join(FORMATS)}")


@dataclass
class ExportOutcome:
    out: Path
    sessions: list[dict[str, Any]]
    files: list[Path]
    samples: int
    seconds: float


def run_export(store: Store, req: ExportRequest, progress_stream: Any = None) -> ExportOutcome:
    """Plan, check the raw retention, write every session, then the indexes, README and manifest."""
    t0 = time.monotonic()
    if not req.subjects:
        raise InvalidExportRequest("--subject: at least one subject")
    subject_labels = check_unique(req.subjects, "subject")
    rng: Range = export_range(store, req.since_us, req.until_us, req.now_us)
    if rng.since_us > rng.until_us:
        raise InvalidExportRequest(f"--since {iso(rng.since_us)} is after --until {iso(rng.until_us)}")
    check_retention(store, req.subjects, rng)
    plans = {s: plan_subject(store, s, rng, req.session) for s in req.subjects}  # every subject checked first
    session_labels = {s: check_unique([p.session for p in plans[s]], f"session of subject {s}") for s in plans}
    stored = StoredFields(req.with_serials)  # one set of result columns for every session (read again when written)
    for sessions in plans.values():
        for plan in sessions:
            stored.add(session_results(store, plan))
    result_columns = {name: stored.columns(name) for name in RESULT_TABLES}
    writer = writer_for(req.fmt, req.out, req.with_serials)
    prepare_out(req.out)
    progress = Progress(sum(p.n_samples for ps in plans.values() for p in ps), stream=progress_stream)
    files: list[Path] = []
    done: list[SessionContext] = []
    try:
        for subject, sessions in plans.items():
            for plan in sessions:
                labels = (subject_labels[subject], session_labels[subject][plan.session])
                ctx = _context(store, req, plan, labels, progress, result_columns)
                files += writer.write_session(ctx)
                done.append(ctx)
        files += writer.finish(done, subject_labels)
    finally:
        progress.close()
    entries = [c.manifest_entry() for c in done]
    seconds = time.monotonic() - t0
    samples = sum(s["samples"] for e in entries for s in e["sensors"].values())
    manifest = {
        "schema": EXPORT_SCHEMA,
        "store_schema": STORE_SCHEMA,
        "format": req.fmt,
        "exported_at": iso(round(time.time() * 1e6)),
        "subjects": list(req.subjects),
        "session": req.session,
        "range": {"since": iso(rng.since_us), "until": iso(rng.until_us)},
        "raw_retention_days": None if rng.kept_for_s is None else rng.kept_for_s / 86400.0,
        "with_serials": req.with_serials,
        "sessions": entries,
        "files": sorted(str(f.relative_to(req.out)) for f in files),
    }
    write_text(req.out / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return ExportOutcome(req.out, entries, files, samples, seconds)


def _context(
    store: Store,
    req: ExportRequest,
    plan: SessionPlan,
    labels: tuple[str, str],
    progress: Progress,
    result_columns: dict[str, list[Column]],
) -> SessionContext:
    ctx = SessionContext(
        store,
        plan,
        labels[0],
        labels[1],
        req.out,
        req.with_serials,
        req.chunk_samples,
        progress,
        store.gaps(plan.subject, session=plan.session),
        session_results(store, plan),
        result_columns,
    )
    ctx.batch_keys = {id(b): k for k, b in enumerate(plan.batches)}
    return ctx
