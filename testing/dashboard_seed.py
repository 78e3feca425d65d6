"""Stores seeded for the dashboards' tests and bench: simulated sessions analysed for real, their results written
through the store at other dates and for other subjects, raw samples of a session, gaps, exercise plans.

- `analysed`: three real analyses, cached per process: ``home`` (the home script: walking and every exercise,
  stance SI about 3 %, pelvic drop even), ``asymmetric`` (a 1-minute walk, stance SI about 12 %, pelvic drop 5 deg
  left and 2.5 deg right: a pelvic-drop SI near 70 %, outside any band),
  ``withheld`` (a 22-second walk: too few strides, the stance SI withheld).
- `write_session`: a document's results as one session of a subject at a date (``Store.replace_results``), with
  the ``data_gap`` flag the worker adds when asked, or stripped of the fields added to gaitsym.store/1 for the
  dashboards (`NEW_SUMMARY_FIELDS`), as results stored before them are.
- `write_raw`: a simulated recording's samples as raw points of a session (the sensors' clocks mapped to UTC).
- `Seeded`: what a seeded store holds, for the tests' checks.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analytics.pipeline import analyze_recording
from analytics.recording.io import Recording, SensorData
from analytics.stores import Store
from analytics.stores.model import (
    GapRecord,
    Provenance,
    SessionResults,
    results_from_document,
    samples_from_arrays,
)
from gaitsym_common.uplink.envelope import ClockMapping
from simulator import simulate_session
from testing.grafana_queries import GrafanaInflux
from testing.influxdb_server import InfluxDB

DAY_US = 86_400 * 1_000_000
NEW_SUMMARY_FIELDS = frozenset(
    {
        "stance_si_status",
        "stance_si_withheld_reason",
        "stance_event_source",
        "stance_si_ci95_low_pct",
        "stance_si_ci95_high_pct",
        "stance_time_s_si_ci95_low_pct",
        "stance_time_s_si_ci95_high_pct",
        "step_time_s_si_ci95_low_pct",
        "step_time_s_si_ci95_high_pct",
        "pelvic_drop_deg_si_ci95_low_pct",
        "pelvic_drop_deg_si_ci95_high_pct",
        "cross_check_thigh_si_pct",
        "cross_check_pelvis_si_pct",
        "n_warnings",
        "warning_flags",
        "end_unix_ms",
        "n_sets",
    }
)
"""The fields gaitsym.store/1 gained for the dashboards and the report: absent from results stored before."""
SERIAL = {"pelvis": "GS-P-0001", "left_thigh": "GS-L-0001", "right_thigh": "GS-R-0001"}


@dataclass(frozen=True)
class Analysed:
    doc: dict[str, Any]
    recording: Recording


def _trimmed(recording: Recording, seconds: float) -> Recording:
    n = int(seconds * recording.sampling_rate_hz)
    sensors = {p: SensorData(p, d.acc_mps2[:n], d.gyr_dps[:n]) for p, d in recording.sensors.items()}
    return dataclasses.replace(recording, time_s=recording.time_s[:n], sensors=sensors, markers=())


@functools.cache
def analysed(kind: str) -> Analysed:
    """One of three real analyses of simulated sessions (see the module docstring), cached."""
    if kind == "home":
        recording = simulate_session(seed=47, minutes=11.7, stance_asymmetry_pct=3.0).recording
    elif kind == "asymmetric":
        recording = simulate_session(
            seed=12,
            script="walk",
            minutes=1.0,
            stance_asymmetry_pct=12.0,
            pelvic_drop_left_deg=5.0,
            pelvic_drop_right_deg=2.5,
        ).recording
    elif kind == "withheld":
        recording = _trimmed(simulate_session(seed=11, script="walk", minutes=0.62).recording, 22.0)
    else:
        raise ValueError(f"kind {kind!r}: home, asymmetric or withheld")
    return Analysed(analyze_recording(recording), recording)


def with_gap_flag(doc: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The document as the worker stores a session analysed across known-missing samples (its ``data_gap`` flag)."""
    out = copy.deepcopy(doc)
    out["quality"]["flags"].append(
        {
            "code": "data_gap",
            "severity": "warning",
            "message": "analysed across samples known to be missing: " + "; ".join(names),
        }
    )
    return out


def session_results(
    doc: dict[str, Any], subject: str, session: str, t0_us: int, *, old_format: bool = False, version: int = 1
) -> SessionResults:
    prov = Provenance(analysis_id=f"{subject}-{session}-v{version}", result_version=version, algorithm="gaitsym test")
    results = results_from_document(doc, subject=subject, session=session, t0_us=t0_us, provenance=prov)
    if old_format:
        points = tuple(
            dataclasses.replace(p, fields={k: v for k, v in p.fields.items() if k not in NEW_SUMMARY_FIELDS})
            for p in results.points
        )
        results = dataclasses.replace(results, points=points)
    return results


def write_session(
    store: Store, doc: dict[str, Any], subject: str, session: str, t0_us: int, *, old_format: bool = False
) -> SessionResults:
    """Store a document's results as a subject's session starting at ``t0_us`` (the worker's final write)."""
    results = session_results(doc, subject, session, t0_us, old_format=old_format)
    store.replace_results(results)
    return results


def write_raw(
    store: Store,
    recording: Recording,
    subject: str,
    session: str,
    t0_us: int,
    batch: int = 5000,
    start: int = 0,
    stop: int | None = None,
) -> int:
    """The recording's samples ``start..stop`` (indices) as the raw points of a session, in batches of ``batch``
    samples from ``start`` (sensor clocks mapped to UTC at ``t0_us``: sample i at ``t0_us`` + i periods)."""
    period_us = round(1e6 / recording.sampling_rate_hz)
    clock = ClockMapping(True, 0, t0_us / 1e6, 1.0, 0.0, 0.5)
    written = 0
    for placement, data in recording.sensors.items():
        n = len(data.acc_mps2) if stop is None else min(stop, len(data.acc_mps2))
        for lo in range(start, n, batch):
            hi = min(n, lo + batch)
            seq = np.arange(lo, hi, dtype=np.int64)
            samples = samples_from_arrays(
                subject=subject,
                session=session,
                placement=placement,
                serial=SERIAL[placement],
                boot_epoch=1,
                seq=seq,
                t_sensor_us=seq * period_us,
                acc_mps2=data.acc_mps2[lo:hi],
                gyr_dps=data.gyr_dps[lo:hi],
                clock=clock,
            )
            store.write_raw_many([samples])
            written += hi - lo
    return written


def gap_record(subject: str, session: str, placement: str, seq_first: int, seq_last: int) -> GapRecord:
    return GapRecord(
        subject=subject,
        session=session,
        placement=placement,
        serial=SERIAL[placement],
        boot_epoch=1,
        seq_first=seq_first,
        seq_last=seq_last,
        duration_s=(seq_last - seq_first + 1) / 100.0,
        reason="ble_link_lost",
    )


@dataclass
class Seeded:
    """A seeded InfluxDB (tests/dashboards/conftest.py) and what was written to it."""

    server: InfluxDB
    grafana: GrafanaInflux
    now_us: int
    sessions: dict[str, list[tuple[str, SessionResults]]] = field(default_factory=dict)
    """subject -> [(document kind, results written)], newest first."""
    plans: dict[tuple[str, str, str], int | None] = field(default_factory=dict)
    """(subject, exercise, side) -> sets a week in force (None: cleared)."""
    raw_session: SessionResults | None = None
    raw_samples: int = 0
    raw_switch: int = 0
    """The sample from which ``raw_session``'s samples are stored packed (before it: one point per sample), as a
    clinic that switched its raw layout mid-session has them."""

    @property
    def now_ms(self) -> int:
        return self.now_us // 1000
