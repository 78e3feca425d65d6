"""Re-analysis: recompute a subject's stored sessions from stored raw data (after an algorithm change), and give
sessions that never got their final analysis one.

For every session summary of the subject stored since a date: read back which samples the stored analysis
used (its ``clock`` provenance names, per placement, the sensor, boot epoch and last sequence), analyse them
again with the current algorithm, and replace the session's results with ``result_version`` = stored + 1.
`Store.replace_results` deletes the session's old strides, sets and summaries (old and new time ranges)
before writing the new ones, so no stale result stays visible to the dashboards.

Then every session of the subject with raw data since the date but no final summary at all (no ``session_end``
ever came: a gateway that died for good, or a gateway version that did not end, when restarted, the session it
had left open) gets the final analysis a ``session_end`` at its last samples would have run
(`idle_sessions.close_session`, ``result_version`` 2), which also removes its provisional (live) results.

Split sessions (such a gateway, restarted more than ``still_timeout_s`` after its session opened, started a new
session and left the first part without a ``session_end``): each part is analysed on its own and keeps its own
session id, not merged. The parts' samples carry their own session ids in the store, the later part may already
have final results the clinic has seen, and a stride across the restart was lost with the gateway's dead time
anyway. The command says which parts look like one split visit (the next session of the subject began less than
``split_gap_s`` after the part's last sample).

Times: ``since_us`` µs UTC.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from analytics.errors import InsufficientData
from analytics.stores import Store
from analytics.stores.model import RawSession
from analytics.worker.idle_sessions import close_session, final_stored, session_extent
from analytics.worker.results import segment_results
from analytics.worker.segments import FINAL_VERSION, Analyzer, Segment, algorithm_name, default_analyzer, load_segment
from gaitsym_common.uplink.envelope import SensorPosition

log = logging.getLogger("gaitsym.worker")
SPLIT_GAP_S = 120.0
"""A session that began less than this after the previous one's last sample may be the same visit split by a
gateway restart: the gateway's stillness timeout (`GatewayConfig.still_timeout_s`)."""


@dataclass(frozen=True)
class Reanalysed:
    session: str
    old_version: int
    """0: the session had no final results."""
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
    until_us: int | None = None,
    split_gap_s: float = SPLIT_GAP_S,
) -> list[Reanalysed]:
    """Re-analyse each session of ``subject`` whose summary starts at or after ``since_us``, then give each
    session with raw data from ``since_us`` to ``until_us`` (default now) and no final results its final
    analysis (see the module docstring)."""
    analyze = analyzer or default_analyzer("session")
    algorithm = algorithm or algorithm_name()
    found = store.raw_sessions(since_us, round(time.time() * 1e6) if until_us is None else until_us, subject=subject)
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
    done.extend(_close_unfinished(store, found, set(sessions), analyze, algorithm, progress, split_gap_s))
    return done


def _close_unfinished(
    store: Store,
    found: list[RawSession],
    summarised: set[str],
    analyze: Analyzer,
    algorithm: str,
    progress: Callable[[str], None] | None,
    split_gap_s: float,
) -> list[Reanalysed]:
    """The final analysis of each session in ``found`` (sorted by first sample) that has no final summary."""
    done = []
    for i, part in enumerate(found):
        if part.session in summarised:
            continue
        whole = session_extent(store, part.subject, part.session, part.last_us)
        if whole is None or final_stored(store, whole):
            continue
        try:
            closed = close_session(store, whole, analyze, algorithm)
        except InsufficientData as exc:
            closed = None
            log.warning("%s %s: no final results: %s", part.subject, part.session, exc)
        if closed is None:
            if progress is not None:
                progress(f"{part.session}: no final results and too little data for them")
            continue
        results, report = closed
        done.append(Reanalysed(part.session, 0, results.result_version, report.points_written))
        note = ""
        later = [n for n in found[i + 1 :] if n.session != part.session and n.first_us >= part.last_us]
        if later and later[0].first_us - part.last_us < split_gap_s * 1e6:
            note = (
                f" (followed {(later[0].first_us - part.last_us) / 1e6:.0f} s later by {later[0].session}: one visit"
                " split by a gateway restart, each part keeps its own results)"
            )
        if progress is not None:
            progress(
                f"{part.session}: no final results (no session_end came) -> version {FINAL_VERSION}, "
                f"{report.points_written} points{note}"
            )
    return done
