"""`write_report`: open a store, gather one session's report, write the page. What `gaitsym report` and the
demo call.

The report only reads: an embedded store path that does not exist is an error, never a new empty store. The
page holds health data: it is written owner-only (0600), whole or not at all (a temporary file renamed).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from analytics.results.reading import DEFAULT_SI_BAND_PCT
from analytics.stores import open_store
from analytics.stores.errors import StoreConfigError, StoreError
from analytics.stores.location import EmbeddedStoreMissing, existing_store, store_location
from gaitsym_common.redaction import redact_url
from report.errors import InvalidReportInput, ReportStoreError, StoreNotFound
from report.gather import DEFAULT_TREND_WEEKS, gather_report
from report.page import render


def _check_embedded(location: str) -> None:
    try:
        existing_store(location)
    except EmbeddedStoreMissing as exc:
        raise StoreNotFound(f"{exc} (give --store, or set GAITSYM_STORE, to the store the worker writes to)") from exc


def render_report(
    location: str | None,
    subject: str,
    *,
    session: str | None = None,
    band_pct: float = DEFAULT_SI_BAND_PCT,
    trend_weeks: float = DEFAULT_TREND_WEEKS,
) -> str:
    """The report page of ``subject``'s ``session`` (None: the latest) from the store at ``location``."""
    location = store_location(location)
    where = redact_url(location)
    _check_embedded(location)
    try:
        store = open_store(location)
    except StoreConfigError as exc:
        raise InvalidReportInput(f"store: {redact_url(str(exc))}") from exc
    try:
        report = gather_report(store, subject, session=session, band_pct=band_pct, trend_weeks=trend_weeks)
    except StoreError as exc:
        text = redact_url(str(exc))
        if "database not found" in text.lower():
            raise StoreNotFound(f"{where}: no such database: nothing has been stored there") from exc
        if "HTTP 401" in text or "HTTP 403" in text:
            raise ReportStoreError(
                f"{where}: the store refused to answer: the user may not read this database (or it does not "
                f"exist), or the password or token is wrong. The server said: {text}"
            ) from exc
        raise ReportStoreError(f"{where}: the store did not answer: {text}") from exc
    finally:
        store.close()
    return render(report)


def write_page(text: str, out: str | Path) -> Path:
    """Write the page to ``out`` (owner-only, atomically); the folder must exist."""
    path = Path(out)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidReportInput(f"out: folder {folder} does not exist")
    if path.is_dir():
        raise InvalidReportInput(f"out: {path} is a folder; name the report file, e.g. {path / 'report.html'}")
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.resolve()


def write_report(
    location: str | None,
    subject: str,
    out: str | Path,
    *,
    session: str | None = None,
    band_pct: float = DEFAULT_SI_BAND_PCT,
    trend_weeks: float = DEFAULT_TREND_WEEKS,
) -> Path:
    """Gather, render and write one report; returns the file's absolute path."""
    text = render_report(location, subject, session=session, band_pct=band_pct, trend_weeks=trend_weeks)
    return write_page(text, out)
