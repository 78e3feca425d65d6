"""The recording folder format (recording/1): read, validate, write.

A recording is a folder:

- ``recording.json``: ``format`` ("recording/1"), ``sampling_rate_hz``, ``units`` (``acc``: "m/s^2",
  ``gyr``: "deg/s"), ``sensors`` (``{placement: file}``), ``subject`` (object; ``id`` optional), ``task``.
  Other keys are kept as they are (``meta``).
- one CSV per placement (``pelvis.csv``, ``left_thigh.csv``, ``right_thigh.csv``) with the header
  ``time_s, acc_x, acc_y, acc_z, gyr_x, gyr_y, gyr_z``: seconds, m/s^2 including gravity, deg/s, in the
  sensor's own frame (never assumed to be aligned with the body). All files share one timeline.
- optional ``events.csv``: ``t_s, event, exercise, side, set`` exercise markers (event "start" | "end").
- optional ``truth.json``: ground truth from the simulator, in the result schema (analytics.results).

Readers validate and fail with a RecordingError naming the file and what is wrong: a missing file or
column, a wrong unit, non-monotonic or irregular time, NaN, sensors of different lengths. A recording is
untrusted input (it may come from anyone), so what is read is bounded: each file is a regular file inside the
folder itself, never a symbolic link (nothing outside the folder is ever read) nor a device or pipe, and
within a size limit; recording.json's nesting depth and the length of its numbers are bounded; sample values
and the sampling rate lie within what a sensor can measure (`ACC_LIMIT_MPS2`, `GYR_LIMIT_DPS`, rates 1..1000 Hz:
the widest ranges of the gaitsym sensors, firmware_protocol/SPEC.md sections 3 and 7; the real IMUs of the
validation data stay well inside them).
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from analytics.errors import RecordingError
from firmware_protocol.sensor_info import PLACEMENTS
from firmware_protocol.wire import ACC_RANGES_G, GYR_RANGES_DPS, MAX_SAMPLE_RATE_HZ

FORMAT = "recording/1"
COLUMNS = ("time_s", "acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
UNITS = {"acc": "m/s^2", "gyr": "deg/s"}
EVENT_COLUMNS = ("t_s", "event", "exercise", "side", "set")
GRAVITY_MPS2 = 9.80665

ACC_LIMIT_MPS2 = max(ACC_RANGES_G) * GRAVITY_MPS2
"""Largest acceleration magnitude per axis, m/s^2: full scale of the widest accelerometer range (±16 g)."""
GYR_LIMIT_DPS = float(max(GYR_RANGES_DPS))
"""Largest angular rate per axis, deg/s: full scale of the widest gyroscope range (±2000 deg/s)."""
RANGE_SLACK = 1e-3
"""Allowance over the limits for the rounding of written values (1e-5 m/s^2, 1e-4 deg/s)."""
MIN_RATE_HZ, MAX_RATE_HZ = 1.0, float(MAX_SAMPLE_RATE_HZ)
"""Sampling rates a sensor can run at (sensor info sample_rate_hz, 1..1000 Hz)."""
MAX_METADATA_BYTES = 1 << 20
"""recording.json: settings and a subject description, never data."""
MAX_EVENTS_BYTES = 4 << 20
"""events.csv: exercise markers, a few per set."""
MAX_SENSOR_CSV_BYTES = 2 << 30
"""One sensor's CSV (about 65 bytes a sample: 6 h at 1000 Hz is 1.4 GB)."""
MAX_JSON_DEPTH = 32
"""Nesting of objects and arrays in recording.json."""
MAX_JSON_NUMBER_CHARS = 40
"""Characters of one number in recording.json (a double needs at most 24)."""


@dataclass(frozen=True)
class SensorData:
    """One sensor's samples: ``acc_mps2`` (n, 3) m/s^2 incl. gravity, ``gyr_dps`` (n, 3) deg/s, sensor frame.

    read_recording returns them column-major (each channel contiguous, views of the file's block)."""

    placement: str
    acc_mps2: np.ndarray
    gyr_dps: np.ndarray


@dataclass(frozen=True)
class ExerciseMarker:
    """A start or end marker of an exercise set (``t_s`` seconds from the first sample)."""

    t_s: float
    event: str
    exercise: str
    side: str
    set: int


@dataclass(frozen=True)
class Recording:
    sampling_rate_hz: float
    time_s: np.ndarray
    sensors: dict[str, SensorData]
    subject: dict[str, Any] = field(default_factory=dict)
    task: str = ""
    markers: tuple[ExerciseMarker, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.time_s.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sampling_rate_hz


def read_recording(path: str | Path) -> Recording:
    """Read and validate a recording folder (see the module docstring)."""
    folder = Path(path)
    meta_path = folder / "recording.json"
    if not folder.is_dir():
        raise RecordingError(str(folder), "not a recording folder (no such directory)")
    handle = _open_in_folder(folder, "recording.json", MAX_METADATA_BYTES)
    if handle is None:
        raise RecordingError(str(meta_path), "missing: a recording folder needs recording.json")
    with handle:
        raw = handle.read(MAX_METADATA_BYTES + 1)
    if len(raw) > MAX_METADATA_BYTES:
        raise RecordingError(str(meta_path), f"larger than {MAX_METADATA_BYTES} bytes: not a recording's settings")
    meta = _load_json(raw, str(meta_path))
    if not isinstance(meta, dict):
        raise RecordingError(str(meta_path), "must be a JSON object")
    rate = _check_meta(meta, str(meta_path))

    sensors: dict[str, SensorData] = {}
    time_s: np.ndarray | None = None
    first_file = ""
    for placement, file_name in meta["sensors"].items():
        csv_path = folder / file_name
        t, acc, gyr = _read_sensor_csv(csv_path, rate, time_s)
        if time_s is None:
            time_s, first_file = t, file_name
        elif t is not time_s and (t.shape != time_s.shape or not np.allclose(t, time_s, atol=0.5 / rate)):
            raise RecordingError(
                str(csv_path),
                f"time_s differs from {first_file}: all sensors of a recording share one timeline "
                f"({t.shape[0]} vs {time_s.shape[0]} samples)",
            )
        sensors[placement] = SensorData(placement, acc, gyr)
    assert time_s is not None  # _check_meta guarantees one sensor at least
    markers = _read_events(folder / "events.csv", float(time_s[-1]))
    known = {"format", "sampling_rate_hz", "units", "sensors", "subject", "task"}
    return Recording(
        sampling_rate_hz=rate,
        time_s=time_s,
        sensors=sensors,
        subject=dict(meta.get("subject") or {}),
        task=str(meta.get("task", "")),
        markers=markers,
        meta={k: v for k, v in meta.items() if k not in known},
    )


def _check_meta(meta: dict[str, Any], where: str) -> float:
    if meta.get("format") != FORMAT:
        raise RecordingError(where, f"format must be {FORMAT!r}, got {meta.get('format')!r}")
    rate = meta.get("sampling_rate_hz")
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not (isinstance(rate, int) or math.isfinite(rate))
        or not MIN_RATE_HZ <= rate <= MAX_RATE_HZ
    ):
        raise RecordingError(
            where,
            f"sampling_rate_hz must be a positive number (Hz) within {MIN_RATE_HZ:g}..{MAX_RATE_HZ:g} "
            f"(what a sensor can run at), got {_short(rate)}",
        )
    units = meta.get("units")
    if not isinstance(units, dict):
        raise RecordingError(where, f"units must be an object like {UNITS}")
    for key, expected in UNITS.items():
        if units.get(key) != expected:
            raise RecordingError(where, f"units.{key} must be {expected!r}, got {units.get(key)!r}")
    sensors = meta.get("sensors")
    if not isinstance(sensors, dict) or not sensors:
        raise RecordingError(where, "sensors must map at least one placement to its CSV file")
    for placement, file_name in sensors.items():
        if placement not in PLACEMENTS:
            raise RecordingError(where, f"sensors: unknown placement {placement!r} (one of {PLACEMENTS})")
        if not isinstance(file_name, str) or "/" in file_name or "\\" in file_name or file_name.startswith("."):
            raise RecordingError(where, f"sensors.{placement}: {file_name!r} must be a file name in the folder")
    subject = meta.get("subject", {})
    if subject is not None and not isinstance(subject, dict):
        raise RecordingError(where, "subject must be an object")
    return float(rate)


def _read_sensor_csv(
    csv_path: Path, rate: float, shared_time_s: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read and validate one sensor file; returns (time_s, acc, gyr).

    ``shared_time_s``: the timeline of a file already read and validated. When this file's time column is
    identical to it, the time checks are not repeated and that array is returned (``is`` the same object).
    Nothing is copied: pandas holds the float columns as one (7, n) block, ``to_numpy`` is its column-major
    (n, 7) view, and acc and gyr are (n, 3) column-major views of it (each channel contiguous; a copy would
    raise the read's peak memory by the size of the data).
    """
    where = str(csv_path)
    handle = _open_in_folder(csv_path.parent, csv_path.name, MAX_SENSOR_CSV_BYTES)
    if handle is None:
        raise RecordingError(where, "missing: recording.json lists it under sensors")
    with handle:
        frame = _parse_sensor_csv(handle, where)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise RecordingError(where, f"missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    if tuple(frame.columns) == COLUMNS:
        data = frame.to_numpy(dtype=np.float64, copy=False)
    else:
        data = frame.loc[:, list(COLUMNS)].to_numpy(dtype=np.float64)
    del frame
    if data.shape[0] < 2:
        raise RecordingError(where, f"needs at least 2 samples, has {data.shape[0]}")
    finite = np.isfinite(data)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise RecordingError(where, f"NaN or infinite value in column {COLUMNS[col]} at data row {row + 1}")
    del finite
    _check_physical_range(data, where)
    if shared_time_s is not None and np.array_equal(data[:, 0], shared_time_s):
        t = shared_time_s
    else:
        t = data[:, 0]
        dt = np.diff(t)
        if (dt <= 0).any():
            row = int(np.argmax(dt <= 0))
            raise RecordingError(where, f"time_s is not strictly increasing at data row {row + 2} ({t[row + 1]!r})")
        period = 1.0 / rate
        irregular = np.abs(dt - period) > 0.25 * period
        if irregular.any():
            row = int(np.argmax(irregular))
            raise RecordingError(
                where,
                f"time_s step {dt[row]:.6g} s at data row {row + 2} does not match sampling_rate_hz "
                f"{rate:g} (expected {period:.6g} s; gaps must be filled or the recording split)",
            )
    acc, gyr = data[:, 1:4], data[:, 4:7]
    ax, ay, az = acc[:, 0], acc[:, 1], acc[:, 2]
    acc_norm = float(np.median(np.sqrt(ax * ax + ay * ay + az * az)))
    if acc_norm < 0.3 * GRAVITY_MPS2:
        hint = " (it looks like g: multiply by 9.80665)" if 0.5 < acc_norm < 2.0 else ""
        raise RecordingError(where, f"acc median magnitude {acc_norm:.3g} is not m/s^2 including gravity{hint}")
    return t, acc, gyr


def _read_events(path: Path, last_t_s: float) -> tuple[ExerciseMarker, ...]:
    handle = _open_in_folder(path.parent, path.name, MAX_EVENTS_BYTES)
    if handle is None:
        return ()
    from gaitsym_common.errors import VocabularyError
    from gaitsym_common.uplink.vocabulary import check_activity

    with handle:
        try:
            frame = pd.read_csv(handle, dtype={"event": str, "exercise": str, "side": str}, keep_default_na=False)
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise RecordingError(str(path), f"not a well-formed CSV ({exc})") from exc
    missing = [c for c in EVENT_COLUMNS if c not in frame.columns]
    if missing:
        raise RecordingError(str(path), f"missing column(s) {', '.join(missing)}; expected {EVENT_COLUMNS}")
    markers = []
    for i, row in enumerate(frame.itertuples(index=False), start=2):
        where = f"{path} line {i}"
        try:
            t_s = float(row.t_s)
            if isinstance(row.set, float) and not row.set.is_integer():
                raise ValueError(f"set {row.set!r} is not a whole number")
            set_number = int(row.set)
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: inf, or hundreds of digits
            raise RecordingError(where, f"t_s must be a number and set a whole number ({exc})") from None
        if not math.isfinite(t_s) or t_s < 0 or t_s > last_t_s + 1e-9:
            raise RecordingError(where, f"t_s {t_s!r} lies outside the recording (0..{last_t_s:g} s)")
        if row.event not in ("start", "end"):
            raise RecordingError(where, f"event must be 'start' or 'end', got {row.event!r}")
        try:
            check_activity(row.exercise, row.side, set_number)
        except VocabularyError as exc:
            raise RecordingError(where, str(exc)) from exc
        markers.append(ExerciseMarker(t_s, row.event, row.exercise, row.side, set_number))
    markers.sort(key=lambda m: (m.t_s, m.event != "end"))
    _check_marker_pairs(markers, str(path))
    return tuple(markers)


def _open_in_folder(folder: Path, name: str, max_bytes: int) -> IO[bytes] | None:
    """Open ``folder/name`` for reading if it is a regular file of at most ``max_bytes`` right in ``folder``:
    never through a symbolic link (O_NOFOLLOW: checked by the open itself, so nothing can be swapped in between),
    never a device or pipe (opened non-blocking, then refused). None when there is no such file."""
    path = folder / name
    where = str(path)
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise RecordingError(where, "must be a file name in the recording folder")
    try:
        os.fsencode(path)
    except UnicodeError:  # e.g. a lone surrogate from recording.json: no file on disk can have that name
        raise RecordingError(repr(where), "is not a file name this system can encode") from None
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RecordingError(where, "is a symbolic link: a recording reads only files inside its folder") from None
        raise RecordingError(where, f"cannot be read ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RecordingError(where, "is not a regular file (a folder, device or pipe)")
        if info.st_size > max_bytes:
            raise RecordingError(where, f"{info.st_size} bytes is more than the {max_bytes} bytes such a file may have")
        if os.path.realpath(path) != os.path.join(os.path.realpath(folder), name):
            raise RecordingError(where, "resolves outside the recording folder")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _load_json(raw: bytes, where: str) -> Any:
    """recording.json -> Python, bounded: nesting depth, number length, no NaN/Infinity; RecordingError else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordingError(where, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None

    def number(kind: type) -> Any:
        def parse(literal: str) -> Any:
            if len(literal) > MAX_JSON_NUMBER_CHARS:
                raise RecordingError(
                    where, f"number {literal[:20]}... has {len(literal)} characters (at most {MAX_JSON_NUMBER_CHARS})"
                )
            return kind(literal)

        return parse

    def constant(name: str) -> Any:
        raise RecordingError(where, f"{name} is not a number JSON allows")

    try:
        # the parser itself stops runaway nesting (RecursionError, at Python's recursion limit); the depth a
        # recording's settings may have is checked on the result, without recursion
        doc = json.loads(text, parse_int=number(int), parse_float=number(float), parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise RecordingError(where, f"not valid JSON ({exc})") from None
    except RecursionError:
        raise RecordingError(where, f"nested deeper than {MAX_JSON_DEPTH} levels: not a recording's settings") from None
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            if level > MAX_JSON_DEPTH:
                raise RecordingError(where, f"nested deeper than {MAX_JSON_DEPTH} levels: not a recording's settings")
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return doc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"


def _parse_sensor_csv(handle: IO[bytes], where: str) -> pd.DataFrame:
    try:
        # na_filter=False: no lookup of NA spellings in every field (~14 % of the parse); a file with "nan"
        # or an empty field then fails to parse, and is read again with NA parsing to say where it is
        return pd.read_csv(handle, dtype="float64", engine="c", na_filter=False)
    except ValueError:
        handle.seek(0)
        try:
            return pd.read_csv(handle, dtype="float64", engine="c")
        except ValueError as exc:
            raise RecordingError(where, f"every value must be a number ({exc})") from exc
        except pd.errors.ParserError as exc:
            raise RecordingError(where, f"not a well-formed CSV ({exc})") from exc
    except pd.errors.ParserError as exc:
        raise RecordingError(where, f"not a well-formed CSV ({exc})") from exc
    except pd.errors.EmptyDataError as exc:
        raise RecordingError(where, "empty file") from exc


_LIMITS = np.array([np.inf, *(3 * [ACC_LIMIT_MPS2 + RANGE_SLACK]), *(3 * [GYR_LIMIT_DPS + RANGE_SLACK])])


def _check_physical_range(data: np.ndarray, where: str) -> None:
    """Every acc and gyr value within what a sensor measures (see ACC_LIMIT_MPS2, GYR_LIMIT_DPS)."""
    beyond = np.abs(data) > _LIMITS
    if beyond.any():
        row, col = np.argwhere(beyond)[0]
        limit, unit = (ACC_LIMIT_MPS2, "m/s^2 (±16 g)") if col < 4 else (GYR_LIMIT_DPS, "deg/s")
        raise RecordingError(
            where,
            f"{COLUMNS[col]} {data[row, col]:.6g} at data row {row + 1} is beyond ±{limit:g} {unit}, the widest "
            "range a sensor measures",
        )


def _check_marker_pairs(markers: list[ExerciseMarker], where: str) -> None:
    open_sets: dict[tuple[str, str, int], float] = {}
    for m in markers:
        key = (m.exercise, m.side, m.set)
        if m.event == "start":
            if key in open_sets:
                raise RecordingError(where, f"set {key} starts twice (at {open_sets[key]:g} s and {m.t_s:g} s)")
            open_sets[key] = m.t_s
        else:
            if key not in open_sets:
                raise RecordingError(where, f"set {key} ends at {m.t_s:g} s without a start")
            del open_sets[key]
    if open_sets:
        key, t = next(iter(open_sets.items()))
        raise RecordingError(where, f"set {key} starts at {t:g} s and never ends")


def write_recording(path: str | Path, recording: Recording, truth: dict[str, Any] | None = None) -> Path:
    """Write a recording folder (creating it); the inverse of read_recording. Refuses to overwrite one."""
    folder = Path(path)
    if (folder / "recording.json").exists():
        raise RecordingError(str(folder), "already holds a recording; choose a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for placement, sensor in recording.sensors.items():
        name = f"{placement}.csv"
        block = np.column_stack([recording.time_s, sensor.acc_mps2, sensor.gyr_dps])
        _write_csv(folder / name, block)
        files[placement] = name
    if recording.markers:
        lines = [",".join(EVENT_COLUMNS)]
        lines += [f"{m.t_s:.3f},{m.event},{m.exercise},{m.side},{m.set}" for m in recording.markers]
        (folder / "events.csv").write_text("\n".join(lines) + "\n", "utf-8")
    meta = {
        "format": FORMAT,
        "sampling_rate_hz": recording.sampling_rate_hz,
        "units": dict(UNITS),
        "sensors": files,
        "subject": recording.subject,
        "task": recording.task,
        **recording.meta,
    }
    (folder / "recording.json").write_text(json.dumps(meta, indent=1) + "\n", "utf-8")
    if truth is not None:
        (folder / "truth.json").write_text(json.dumps(truth, indent=1) + "\n", "utf-8")
    return folder


def _write_csv(path: Path, block: np.ndarray) -> None:
    """time_s to 1 us; acc to 1e-5 m/s^2 and gyro to 1e-4 deg/s (below any MEMS sensor's resolution)."""
    frame = pd.DataFrame(block, columns=list(COLUMNS))
    frame["time_s"] = frame["time_s"].round(6)
    frame[list(COLUMNS[1:4])] = frame[list(COLUMNS[1:4])].round(5)
    frame[list(COLUMNS[4:7])] = frame[list(COLUMNS[4:7])].round(4)
    frame.to_csv(path, index=False, lineterminator="\n")
