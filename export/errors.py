"""Errors of the export package: one root, typed subclasses, each naming what was wrong."""

from __future__ import annotations


class ExportError(Exception):
    """Root of every error raised by the export package."""


class InvalidExportRequest(ExportError):
    """An option the export cannot use: a date, a subject id, a format, an output folder (names it)."""


class StoreNotFound(ExportError):
    """The store named is not there (no embedded store file at the path): the export never creates one."""


class NothingToExport(ExportError):
    """The store holds no raw samples for what was asked (names the subject, session or range)."""


class RawSamplesGone(ExportError):
    """Raw samples of the range asked for were deleted by the store's raw retention; names the range, the
    retention, and the sessions whose raw samples are gone (their results are still stored)."""


class LabelCollision(ExportError):
    """Two different subject (or session) ids would get the same BIDS label (names both)."""


class UnknownPlacement(ExportError):
    """The store names a sensor placement that is not one of the protocol's (names it, the subject and session):
    placements become file names, so only the known ones are used."""


class StoreChangedDuringExport(ExportError):
    """A session's stored results changed while it was being exported (a re-analysis): names the session."""


class ExportStoreError(ExportError):
    """The store failed to answer (server away, query refused); the message names the store, secrets redacted."""
