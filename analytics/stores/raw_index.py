"""What the batch index and the gaps tell of the raw data stored: per sensor boot epoch, per session."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RawIndex:
    """What the store knows of a sensor boot epoch's samples in a sequence range: stored batches
    ``(seq_first, seq_last, n_samples)`` and known-missing ranges ``(seq_first, seq_last)`` from gaps."""

    batches: tuple[tuple[int, int, int], ...]
    gaps: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class SessionSensor:
    """One placement's sensor in a session's raw data: the boot epoch of its newest batch there, with the first
    and last sequence of that boot's batches in the session."""

    serial: str
    boot_epoch: int
    seq_first: int
    seq_last: int


@dataclass(frozen=True)
class RawSession:
    """What the batch index holds of one session's raw data within a time range (`Store.raw_sessions`)."""

    subject: str
    session: str
    first_us: int
    """Timestamp of the first sample of its first batch, µs."""
    last_us: int
    """Timestamp of the last sample of its newest batch, µs."""
    sensors: Mapping[str, SessionSensor]
    """Per placement."""


def raw_sessions_from_batches(
    rows: Iterable[tuple[str, str, str | None, str, int, int, int, int, int]],
) -> list[RawSession]:
    """Fold batch-index rows ``(subject, placement, session, serial, boot_epoch, seq_first, seq_last, first_us,
    last_us)`` (single batches, or groups of one sensor boot's batches) into sessions, sorted by first sample.
    Rows of no session are left out. Pure function (shared by the stores)."""
    spans: dict[tuple[str, str], list[int]] = {}
    boots: dict[tuple[str, str, str], dict[tuple[str, int], list[int]]] = {}
    for subject, placement, session, serial, boot, seq_first, seq_last, first_us, last_us in rows:
        if not session:
            continue
        span = spans.setdefault((subject, session), [first_us, last_us])
        span[0], span[1] = min(span[0], first_us), max(span[1], last_us)
        got = boots.setdefault((subject, session, placement), {}).setdefault((serial, boot), [seq_first, seq_last, 0])
        got[0], got[1], got[2] = min(got[0], seq_first), max(got[1], seq_last), max(got[2], last_us)
    out = []
    for (subject, session), (first_us, last_us) in spans.items():
        sensors = {}
        for (subj, sess, placement), by_boot in boots.items():
            if (subj, sess) != (subject, session):
                continue
            (serial, boot), (lo, hi, _) = max(by_boot.items(), key=lambda kv: kv[1][2])  # the newest boot
            sensors[placement] = SessionSensor(serial, boot, lo, hi)
        out.append(RawSession(subject, session, first_us, last_us, dict(sorted(sensors.items()))))
    out.sort(key=lambda s: (s.first_us, s.subject, s.session))
    return out


@dataclass(frozen=True)
class RawProgress:
    """How far one sensor boot epoch has arrived in the store (from the batch index)."""

    n_batches: int
    n_samples: int
    seq_first: int | None
    seq_last: int | None
