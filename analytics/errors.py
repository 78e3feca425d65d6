"""Errors of the analytics package: one root, typed subclasses, and the retry-or-drop decision.

Every error names what was wrong (the file, column, field or value) so that a clinician or researcher
can fix the input; none is raised after data already accepted has been altered.
"""

from __future__ import annotations


class AnalyticsError(Exception):
    """Root of every error raised by the analytics package."""


class RecordingError(AnalyticsError):
    """A recording folder is missing, incomplete or malformed (names the file and what is wrong)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class InvalidSignal(AnalyticsError):
    """An array handed to an algorithm has the wrong shape, units, rate or contains NaN."""


class InsufficientData(AnalyticsError):
    """There is not enough of the needed activity (standing, walking) to compute a number."""


class ResultSchemaError(AnalyticsError):
    """A result document does not follow the frozen result schema."""


def is_retryable(exc: BaseException) -> bool:
    """Decide retry vs drop for an analytics failure.

    Bad input (a malformed recording, signal or result) never becomes good by retrying: drop it and say
    so. Only errors from outside the package (I/O, OS) are worth retrying.
    """
    if isinstance(exc, AnalyticsError):
        return False
    return isinstance(exc, OSError | TimeoutError | ConnectionError)
