"""Storage of raw samples and results behind one small interface, `Store`; see SCHEMA.md.

Two implementations with the same schema: `InfluxStore` (InfluxDB 1.x/2.x through the v1 or v2 write API,
InfluxQL reads) and `EmbeddedStore` (one SQLite file, when no InfluxDB is configured). `open_store` picks one
from a URL or a path. Units everywhere: timestamps in integer µs (UTC, or sensor time before 1970 while the
gateway clock is not synchronised), acc m/s², gyr deg/s, result values in the units of gaitsym.result/1.

Writes are idempotent (a point is measurement + tags + timestamp; a replay overwrites the same points) and
durable (they return only once the server, or SQLite, committed them: then the worker may acknowledge).
Importing this package imports neither numpy-heavy code paths nor influxdb-client; `open_store` does.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from analytics.stores.errors import StoreConfigError
from gaitsym_common.redaction import redact_url

if TYPE_CHECKING:
    from analytics.stores.export_reads import BatchRecord
    from analytics.stores.model import (
        GapRecord,
        RawIndex,
        RawProgress,
        RawSamples,
        RawSeries,
        RawSession,
        ResultRow,
        SessionResults,
        WriteReport,
    )
    from analytics.stores.plans import ExercisePlan
    from gaitsym_common.uplink.envelope import ClockMapping


@runtime_checkable
class Store(Protocol):
    """What the analytics worker needs from storage. Every write is idempotent and durable on return."""

    def write_raw(self, samples: RawSamples) -> WriteReport:
        """Store one sensor's decoded samples (keyed by subject, placement, timestamp from the sample's ticks). A
        sample whose point holds another sample is refused and reported (quarantined, recorded as a gap:
        ``WriteReport.collisions``, ``gaps``), never written over it (SCHEMA.md)."""
        ...

    def write_raw_many(self, batches: Sequence[RawSamples]) -> WriteReport:
        """`write_raw` of several batches in as few requests (or one transaction) as possible; durable on return.
        A batch refused as bad data is quarantined alone (the others are stored)."""
        ...

    def write_gap(self, gap: GapRecord) -> WriteReport:
        """Record samples known to be missing (idempotent: a replayed gap overwrites itself)."""
        ...

    def raw_index(
        self, subject: str, placement: str, serial: str, boot_epoch: int, seq_first: int | None, seq_last: int
    ) -> RawIndex:
        """Stored batches and recorded gaps of one boot epoch overlapping [seq_first (None: any), seq_last]."""
        ...

    def read_raw(
        self,
        subject: str,
        placement: str,
        *,
        start_us: int | None = None,
        end_us: int | None = None,
        session: str | None = None,
    ) -> RawSeries:
        """Raw samples of one placement, time range inclusive (µs), optionally one session only."""
        ...

    def raw_progress(self, subject: str, placement: str, serial: str, boot_epoch: int) -> RawProgress:
        """How far one sensor boot epoch has arrived (batches, samples, first and last sequence)."""
        ...

    def count_raw(
        self, subject: str, placement: str, serial: str, boot_epoch: int, seq_first: int, seq_last: int
    ) -> int:
        """Samples stored with sequence in [seq_first, seq_last]: complete when it equals the range length."""
        ...

    def raw_sessions(
        self, start_us: int, end_us: int, *, subject: str | None = None, session: str | None = None
    ) -> list[RawSession]:
        """Sessions with raw batches timestamped in [start_us, end_us] (from the batch index; batches of no
        session left out), optionally of one subject or one session: each session's first and last sample time
        in the range and, per placement, the sensor boot of its newest batch (`model.RawSession`). Reads the
        index rows of the range (about one per sensor-second): callers keep the range short."""
        ...

    def remap_raw(self, subject: str, placement: str, serial: str, boot_epoch: int, clock: ClockMapping) -> int:
        """Move a boot epoch's sensor-time samples and their batch index to UTC with a synchronised mapping
        (`raw_remap`: each batch indexed once, at its UTC time, ``moved_to_utc``); returns samples moved."""
        ...

    def replace_results(self, results: SessionResults) -> WriteReport:
        """Replace a session's results unless a newer result_version is stored (then ``superseded``); also
        removes the provisional (live) results in the replaced time ranges."""
        ...

    def write_live(self, results: SessionResults) -> WriteReport:
        """Append provisional results (points of the live measurements): no delete, never touches final results."""
        ...

    def delete_live(self, subject: str, start_us: int, end_us: int) -> None:
        """Remove a subject's provisional (live) points in [start_us, end_us] (the worker's sweep after a
        session's final analysis: a late live window of another worker may have written there)."""
        ...

    def read_results(
        self,
        subject: str,
        *,
        session: str | None = None,
        start_us: int | None = None,
        end_us: int | None = None,
        live: bool = False,
    ) -> list[ResultRow]:
        """Stride, exercise-set and session-summary points of a subject, sorted by time (``live``: the
        provisional stride_live and exercise_set_live points instead)."""
        ...

    def raw_chunks(
        self,
        subject: str,
        placement: str,
        *,
        start_us: int | None = None,
        end_us: int | None = None,
        session: str | None = None,
        chunk_samples: int = ...,
    ) -> Iterator[Any]:
        """Raw samples of one placement in time order, range inclusive (µs), optionally one session, as Arrow record
        batches of at most ``chunk_samples`` rows (`export_reads.raw_chunk_schema`): bounded memory for any range."""
        ...

    def raw_batches(
        self, subject: str, *, start_us: int | None = None, end_us: int | None = None, session: str | None = None
    ) -> list[BatchRecord]:
        """The subject's batch-index points (UTC and sensor time) timestamped in the range, optionally of one
        session, read back with their clock mapping and the sensor's declared rate, ranges and firmware."""
        ...

    def gaps(self, subject: str, *, session: str | None = None) -> list[GapRecord]:
        """The subject's recorded gaps (samples known to be missing), optionally of one session."""
        ...

    def raw_kept_for_s(self) -> float | None:
        """How long raw samples are kept (s): the raw retention; None when kept forever or unknown."""
        ...

    def write_plan(self, plan: ExercisePlan) -> WriteReport:
        """Store one exercise-plan point (`analytics.stores.plans`: a new plan, or the end of one)."""
        ...

    def read_plans(self, subject: str) -> list[ExercisePlan]:
        """Every exercise-plan point of a subject, oldest first (`plans.in_force` keeps the plans in force)."""
        ...

    def close(self) -> None: ...


def default_embedded_path() -> str:
    from analytics.stores.paths import state_dir

    return str(state_dir() / "store.sqlite")


def open_store(location: str | None = None) -> Store:
    """Open a store from a URL or a path (None: ``GAITSYM_STORE``, else the embedded store in the state folder,
    ``$GAITSYM_STATE_DIR`` or ``~/.local/state/gaitsym``: the same file whatever the current directory).

    - ``influx://[user[:password]@]host[:port]/database[?api=v1|v2&org=ORG&raw_retention=30d&...]``
      (``influxs://`` for HTTPS). Password from ``GAITSYM_INFLUX_PASSWORD``, token from
      ``GAITSYM_INFLUX_TOKEN`` when not in the URL; ``api`` defaults to v2 with a token, v1 without.
    - anything else: the path of the embedded SQLite store.
    """
    location = location or os.environ.get("GAITSYM_STORE") or default_embedded_path()
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme in ("influx", "influxs"):
        from analytics.stores.influx import InfluxConfig, InfluxStore

        params = dict(urllib.parse.parse_qsl(parsed.query))
        token = params.pop("token", None) or os.environ.get("GAITSYM_INFLUX_TOKEN")
        password = urllib.parse.unquote(parsed.password) if parsed.password else None
        password = password or os.environ.get("GAITSYM_INFLUX_PASSWORD")
        api = params.pop("api", "v2" if token else "v1")
        if api not in ("v1", "v2"):
            raise StoreConfigError(f"{redact_url(location)}: api={api!r} is neither v1 nor v2")
        http = "https" if parsed.scheme == "influxs" else "http"
        database = parsed.path.strip("/") or "gaitsym"
        allowed = {"org", "raw_rp", "results_rp", "raw_retention", "quarantine_path", "raw_layout"}
        unknown = set(params) - allowed
        if unknown:
            raise StoreConfigError(f"{redact_url(location)}: unknown setting(s) {', '.join(sorted(unknown))}")
        if params.get("raw_layout", "auto") not in ("auto", "points", "packed"):
            raise StoreConfigError(
                f"{redact_url(location)}: raw_layout={params['raw_layout']!r} is none of auto, points, packed"
            )
        config = InfluxConfig(
            url=f"{http}://{parsed.hostname or '127.0.0.1'}:{parsed.port or 8086}",
            database=database,
            api=api,  # type: ignore[arg-type]
            username=urllib.parse.unquote(parsed.username) if parsed.username else None,
            password=password,
            token=token,
            **params,  # type: ignore[arg-type]
        )
        return InfluxStore(config)
    if parsed.scheme not in ("", "file"):
        raise StoreConfigError(
            f"{redact_url(location)}: unknown store scheme {parsed.scheme!r} (influx://, influxs:// or a path)"
        )
    from analytics.stores.embedded import EmbeddedStore

    return EmbeddedStore(Path(parsed.path if parsed.scheme == "file" else location))
