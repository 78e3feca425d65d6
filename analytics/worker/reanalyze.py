"""Re-analysis: recompute a subject's stored sessions from stored raw data (after an algorithm change).

For every session summary of the subject stored since a date: read back which samples the stored analysis
used (its ``clock`` provenance names, per placement, the sensor, boot epoch and last sequence), analyse them
again with the current algorithm, and replace the session's results with ``result_version`` = stored + 1.
`Store.replace_results` deletes the session's old strides, sets and summaries (old and new time ranges)
before writing the new ones, so no stale result stays visible to the dashboards.

Times: ``since_us`` µs UTC.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from analytics.stores import Store
from analytics.worker.segments import (
    Analyzer,
    Segment,
    algorithm_name,
    default_analyzer,
    load_segment,
    segment_results,
)
from sensor_gateway.uplink.envelope import SensorPosition

log = logging.getLogger("gaitsym.worker")


@dataclass(frozen=True)
class Reanalysed:
    session: str
    old_version: int
    new_version: int
    points_written: int


def reanalyze(
    store: Store,
    subject: str,
    since_us: int,
    *,
    analyzer: Analyzer | None = None,
    algorithm: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Reanalysed]:
    """Re-analyse each session of ``subject`` whose summary starts at or after ``since_us``."""
    analyze = analyzer or default_analyzer("session")
    algorithm = algorithm or algorithm_name()
    sessions: dict[str, tuple[int, float, int, dict[str, dict[str, object]]]] = {}
    for row in store.read_results(subject, start_us=since_us):
        if row.measurement != "session_summary" or row.tags.get("side") != "none":
            continue
        session = str(row.fields["session"])
        clock = json.loads(str(row.fields.get("clock", "{}")))
        sessions[session] = (
            row.time_us,
            float(row.fields.get("duration_s", 0.0)),
            int(row.fields.get("result_version", 0)),
            clock,
        )
    done = []
    for session, (t0_us, duration_s, version, clock) in sorted(sessions.items(), key=lambda kv: kv[1][0]):
        positions = {
            p: SensorPosition(str(c["serial"]), int(c["boot_epoch"]), int(c["seq_last"]))  # type: ignore[call-overload]
            for p, c in clock.items()
        }
        end_s = (t0_us + duration_s * 1e6) / 1e6
        segment = Segment(subject, session, "session", f"reanalysis:{version + 1}", positions, t_utc_s=end_s)
        loaded = load_segment(store, segment)
        if loaded is None:
            log.warning("%s %s: raw data no longer in the store (retention?): not re-analysed", subject, session)
            continue
        results = segment_results(segment, loaded, analyze(loaded.recording), version + 1, algorithm)
        report = store.replace_results(results)
        done.append(Reanalysed(session, version, version + 1, report.points_written))
        if progress is not None:
            progress(f"{session}: version {version} -> {version + 1}, {report.points_written} points")
    return done
