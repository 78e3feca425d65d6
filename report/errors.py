"""Errors of the report package: one root, typed subclasses, each naming what was wrong."""

from __future__ import annotations


class ReportError(Exception):
    """Root of every error raised by the report package."""


class StoreNotFound(ReportError):
    """The store named is not there, so nothing was ever stored in it: no embedded store file at the path, or no
    such InfluxDB database. The report never creates one."""


class UnknownSubject(ReportError):
    """The store holds no results for this subject."""


class UnknownSession(ReportError):
    """The subject has no stored session with this id."""


class NoFinalResults(ReportError):
    """The session has only provisional (live) results: its final analysis is not stored yet."""


class ReportStoreError(ReportError):
    """The store failed to answer (server away, query refused); the message names the store, secrets redacted."""


class InvalidReportInput(ReportError):
    """A subject id, session id or setting the report cannot use (names it)."""
