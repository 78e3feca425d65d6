"""Motion-BIDS: the BIDS extension for motion data, as the official validator (PyPI ``bids-validator-deno``)
accepts it.

Per session (``sub-<label>/ses-<label>/``, labels from `export.labels`, original ids in ``participants.tsv`` and
``sub-<label>_sessions.tsv``):
- ``motion/..._task-home_tracksys-<ts>_motion.tsv``: no header row; one row per sample at the nominal period:
  ACCEL x y z (m/s²), GYRO x y z (deg/s) per tracked point, then a LATENCY channel: the sample's mapped UTC time in
  seconds from the file's first sample (its ``acq_time`` in ``scans.tsv``). A gap is as many rows of ``n/a`` as
  samples are missing (by sequence number; by time at the declared rate across a sensor restart): nothing is
  interpolated. Samples never mapped to UTC cannot be placed on the timeline and are left out (counted in
  manifest.json); a sample stored twice (SCHEMA.md, moved replays) is written once.
- one tracking system per sensor (``tracksys-imupelvis`` ...): the three sensors have their own clocks, so their
  samples do not share one timeline. Only when the three streams hold the same sample times and counts is one
  tracking system with three tracked points written (checked on the batch index first, then sample by sample
  while writing; any difference and the session is written per sensor instead).
- ``_motion.json`` (TaskName, SamplingFrequency = the sensor's declared rate, SamplingFrequencyEffective = samples
  per UTC second as the clock mapping placed them, MissingValues ``n/a``, channel counts), ``_channels.tsv``
  (name, component, type, tracked_point, units), ``..._task-home_events.tsv`` (initial and final contacts per
  side, exercise sets; onsets from the session's first sample: the earliest ``acq_time``), ``_scans.tsv``.
Batches (clock mappings), gaps with their reasons, strides, exercise sets and session summaries go to
``derivatives/gaitsym/`` (not validated as raw data).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.stores.model import RAW_FIELDS
from export.bids_dataset import Recording, dataset_files
from export.columns import Column
from export.files import atomic_path, write_text
from export.plan import SessionPlan, iso
from export.raw_stream import Chunk, SensorStream
from export.session import SessionContext
from export.tables import arrow_table, stride_contacts
from export.tsv import NA, tsv_options, write_tsv
from firmware_protocol.sensor_info import PLACEMENTS

TASK = "home"
BIDS_VERSION = "1.10.0"
POINTS = {p: p.replace("_", "") for p in PLACEMENTS}
"""Tracked points (BIDS labels: letters and digits) of the protocol's placements, the only ones an export plans."""
UNITS = {"ACCEL": "m/s^2", "GYRO": "deg/s", "LATENCY": "s"}
CHANNELS = tuple(Column(n, "text", "", "") for n in ("name", "component", "type", "tracked_point", "units"))
SCANS = (Column("filename", "text", "", ""), Column("acq_time", "text", "", ""))
EVENTS = (
    Column("onset", "float", "s", ""),
    Column("duration", "float", "s", ""),
    Column("trial_type", "text", "", ""),
    Column("side", "text", "", ""),
    Column("exercise", "text", "", ""),
    Column("set", "int", "", ""),
    Column("stride_included", "bool", "", ""),
)
"""The columns of ``_events.tsv`` (described in ``task-home_events.json``): the header is written with no event."""


class _NotShared(Exception):
    """The streams a shared tracking system was planned for differ: write one per sensor instead."""


class _NoUtcSamples(Exception):
    """A stream without a single UTC-mapped sample: no motion file for it."""


def tracksys_label(placements: Sequence[str]) -> str:
    return "imu" if len(placements) > 1 else "imu" + POINTS[placements[0]]


def shared_timeline_planned(plan: SessionPlan, n_recorded_gaps: int) -> bool:
    """Whether the batch index says every sensor's samples share one timeline: the same batches (mapped first and
    last times, sample counts), all in UTC, no recorded gap. Checked again sample by sample while writing."""
    placements = plan.placements
    if len(placements) < 2 or n_recorded_gaps or plan.sensor_time_ranges:
        return False
    shapes = []
    for p in placements:
        mine = plan.batches_of(p)
        if not all(b.clock.utc_synced for b in mine):
            return False
        shapes.append([(b.time_us, b.time_last_us, b.n_samples) for b in mine])
    return all(s == shapes[0] for s in shapes[1:])


def rows_with_gaps(values: npt.NDArray[np.float64], missing: npt.NDArray[np.int64]) -> Any:
    """A table of text columns: each row of ``values`` preceded by ``missing`` rows of n/a (nothing filled)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n, k = values.shape
    pos = np.arange(n, dtype=np.int64) + np.cumsum(missing)
    n_out = n + int(missing.sum())
    out = np.zeros((n_out, k), dtype=np.float64)
    valid = np.zeros(n_out, dtype=bool)
    out[pos] = values
    valid[pos] = True
    columns = [pc.fill_null(pa.array(out[:, j], mask=~valid).cast(pa.string()), NA) for j in range(k)]
    return pa.Table.from_arrays(columns, names=[f"c{j}" for j in range(k)])


def _values(chunk: Chunk, keep: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    return np.column_stack([chunk.raw.column(c).to_numpy()[keep] for c in RAW_FIELDS])


class BidsWriter:
    def __init__(self, out: Path, with_serials: bool) -> None:
        self.out = out
        self.with_serials = with_serials
        self.sessions: list[tuple[SessionContext, list[Recording]]] = []

    # ------------------------------------------------------------------------------------------ one session

    def write_session(self, ctx: SessionContext) -> list[Path]:
        sub, ses = f"sub-{ctx.subject_label}", f"ses-{ctx.session_label}"
        folder = self.out / sub / ses
        prefix = f"{sub}_{ses}_task-{TASK}"
        recordings: list[Recording] = []
        placements = ctx.plan.placements
        if shared_timeline_planned(ctx.plan, len(ctx.recorded_gaps)):
            try:
                recordings.append(self._write_motion(ctx, placements, folder / "motion", prefix))
            except _NotShared:
                ctx.summaries.clear()
        if not recordings:
            for p in placements:
                try:
                    recordings.append(self._write_motion(ctx, (p,), folder / "motion", prefix))
                except _NoUtcSamples:
                    continue
        files = [r.path for r in recordings]
        for r in recordings:
            files += self._sidecars(ctx, r)
        start_us = min((r.first_us for r in recordings), default=ctx.start_us)
        files.append(self._events(ctx, folder / "motion" / f"{prefix}_events.tsv", start_us))
        scans = arrow_table(
            [{"filename": f"motion/{r.path.name}", "acq_time": iso(r.first_us)} for r in recordings], SCANS
        )
        files.append(folder / f"{sub}_{ses}_scans.tsv")
        write_tsv(files[-1], scans)
        files += self._derivatives(ctx, sub, ses)
        self.sessions.append((ctx, recordings))
        return files

    def _write_motion(self, ctx: SessionContext, placements: tuple[str, ...], folder: Path, prefix: str) -> Recording:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        ts = tracksys_label(placements)
        path = folder / f"{prefix}_tracksys-{ts}_motion.tsv"
        k = 6 * len(placements) + 1
        schema = pa.schema([pa.field(f"c{j}", pa.string()) for j in range(k)])
        streams = [ctx.stream(p) for p in placements]
        first: int | None = None
        last = 0
        rows = 0
        with atomic_path(path) as tmp, pacsv.CSVWriter(str(tmp), schema, write_options=tsv_options()) as w:
            for chunks in self._aligned(streams):
                ctx.progress.add(sum(c.n for c in chunks))
                lead = chunks[0]
                keep = lead.utc & ~lead.duplicate
                if not keep.any():
                    continue
                t = lead.time_us[keep]
                missing = lead.missing_before[keep].copy()
                if first is None:
                    first = int(t[0])
                    missing[0] = 0  # the file starts at its first sample
                latency = ((t - first) / 1e6).reshape(-1, 1)
                values = np.hstack([*(_values(c, keep) for c in chunks), latency])
                table = rows_with_gaps(values, missing)
                w.write_table(table)
                rows += table.num_rows
                last = int(t[-1])
            if first is None:
                raise _NoUtcSamples(placements)
        return Recording(ts, path, placements, first, last, rows, tuple(s.summary for s in streams))

    @staticmethod
    def _aligned(streams: list[SensorStream]) -> Iterator[list[Chunk]]:
        """The streams' chunks side by side; for several streams, _NotShared as soon as their sample times
        differ (the batch index promised one timeline)."""
        if len(streams) == 1:
            for c in streams[0].chunks():
                yield [c]
            return
        iters = [s.chunks() for s in streams]
        while True:
            chunks = [next(it, None) for it in iters]
            if all(c is None for c in chunks):
                return
            present = [c for c in chunks if c is not None]
            if len(present) != len(chunks) or any(not np.array_equal(c.time_us, present[0].time_us) for c in present):
                raise _NotShared()
            yield present

    def _sidecars(self, ctx: SessionContext, r: Recording) -> list[Path]:
        base = r.path.name.removesuffix("_motion.tsv")
        channels = []
        for p in r.placements:
            point = POINTS[p]
            for kind, unit_kind, axes in (("acc", "ACCEL", "xyz"), ("gyr", "GYRO", "xyz")):
                for axis in axes:
                    channels.append(
                        {
                            "name": f"{point}_{kind}_{axis}",
                            "component": axis,
                            "type": unit_kind,
                            "tracked_point": point,
                            "units": UNITS[unit_kind],
                        }
                    )
        channels.append({"name": "latency", "component": NA, "type": "LATENCY", "tracked_point": NA, "units": "s"})
        chan_path = r.path.with_name(f"{base}_channels.tsv")
        write_tsv(chan_path, arrow_table(channels, CHANNELS))
        summary = r.summaries[0]
        effective = [s.effective_rate_hz() for s in r.summaries]
        sidecar: dict[str, Any] = {
            "TaskName": TASK,
            "TaskDescription": "a home session: quiet standing, walking and the gluteal control exercises",
            "SamplingFrequency": summary.nominal_rate_hz(),
            "MissingValues": NA,
            "RecordingDuration": (r.last_us - r.first_us) / 1e6,
            "MotionChannelCount": len(channels),
            "ACCELChannelCount": 3 * len(r.placements),
            "GYROChannelCount": 3 * len(r.placements),
            "LATENCYChannelCount": 1,
            "TrackingSystemName": "gaitsym IMU " + " + ".join(r.placements),
            "Manufacturer": "gaitsym (open hardware)",
            "RecordingType": "continuous",
        }
        if all(e is not None for e in effective):
            sidecar["SamplingFrequencyEffective"] = float(np.mean([e for e in effective if e is not None]))
        firmware = sorted({b.firmware for p in r.placements for b in ctx.plan.batches_of(p) if b.firmware})
        if firmware:
            sidecar["SoftwareVersions"] = ", ".join(firmware)
        if self.with_serials:
            sidecar["DeviceSerialNumber"] = ", ".join(s for x in r.summaries for s in x.serials)
        json_path = r.path.with_name(f"{base}_motion.json")
        write_text(json_path, json.dumps(sidecar, indent=1) + "\n")
        return [chan_path, json_path]

    @staticmethod
    def _events(ctx: SessionContext, path: Path, start_us: int) -> Path:
        rows: list[dict[str, Any]] = []
        for r in ctx.results:
            if r.measurement == "stride":
                for kind, t in stride_contacts(r):
                    rows.append(
                        {"onset": (t - start_us) / 1e6, "duration": 0.0, "trial_type": kind,
                         "side": r.tags.get("side"), "stride_included": r.fields.get("included")}
                    )  # fmt: skip
            elif r.measurement == "exercise_set":
                start, end = r.fields.get("start_s"), r.fields.get("end_s")
                duration = (
                    float(end) - float(start)
                    if isinstance(start, int | float) and isinstance(end, int | float)
                    else 0.0
                )
                rows.append(
                    {"onset": (r.time_us - start_us) / 1e6, "duration": duration, "trial_type": "exercise_set",
                     "side": r.tags.get("side"), "exercise": r.tags.get("exercise"), "set": r.fields.get("set")}
                )  # fmt: skip
        rows.sort(key=lambda e: (e["onset"], e["trial_type"]))
        write_tsv(path, arrow_table(rows, EVENTS))
        return path

    def _derivatives(self, ctx: SessionContext, sub: str, ses: str) -> list[Path]:
        folder = self.out / "derivatives" / "gaitsym" / sub / ses
        files = []
        for table in ctx.tables():
            path = folder / f"{sub}_{ses}_{table.name}.tsv"
            write_tsv(path, arrow_table(table.rows, table.columns), quoting="needed")
            files.append(path)
        return files

    # ------------------------------------------------------------------------------------------ the dataset

    def finish(self, sessions: Sequence[SessionContext], subject_labels: dict[str, str]) -> list[Path]:

        return dataset_files(self.out, self.sessions, subject_labels, self.with_serials)
