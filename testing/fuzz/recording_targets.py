"""Fuzz target of the recording folder reader: a valid folder with one file mutated (recording.json structure
aware, a CSV cell by cell or byte by byte)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from testing.fuzz.poison import Payload, byte_mutations, structured

CSV_POISON = (
    "inf",
    "-inf",
    "nan",
    "NaN",
    "",
    "1e400",
    "-1e400",
    "1e-400",
    "9" * 400,
    "1" * 5000,
    "0x10",
    "1_000",
    "--1",
    "1,2",
    '"',
    '"1"',
    "\x00",
    "é",
    " ",
    "True",
    "None",
)
EVENT_POISON = ("inf", "-inf", "1e400", "nan", "-1", "0", "1.5", "9" * 400, "", "True", "start", "walk", "left")


def _base_recording(folder: Path) -> None:
    from analytics.recording.io import ExerciseMarker, Recording, SensorData, write_recording

    n = 120
    rng = np.random.default_rng(5)
    t = np.arange(n) / 100.0
    sensors = {}
    for placement in ("pelvis", "left_thigh", "right_thigh"):
        acc = np.column_stack([rng.normal(0, 0.3, n), rng.normal(0, 0.3, n), 9.81 + rng.normal(0, 0.3, n)])
        sensors[placement] = SensorData(placement, acc, rng.normal(0, 20.0, (n, 3)))
    markers = (
        ExerciseMarker(0.2, "start", "clam", "left", 1),
        ExerciseMarker(1.0, "end", "clam", "left", 1),
    )
    write_recording(folder, Recording(100.0, t, sensors, {"id": "R001"}, "home", markers))


@st.composite
def _csv_cells(draw: st.DrawFn, text: str, poison: tuple[str, ...]) -> tuple[bytes, str]:
    lines = text.split("\n")
    how = []
    for _ in range(draw(st.integers(1, 3))):
        row = draw(st.integers(0, len(lines) - 2))
        cells = lines[row].split(",")
        op = draw(st.sampled_from(("cell", "cell", "cell", "drop cell", "add cell", "drop line", "dup line")))
        col = draw(st.integers(0, len(cells) - 1))
        if op == "cell":
            cells[col] = draw(st.sampled_from(poison))
        elif op == "drop cell":
            del cells[col]
        elif op == "add cell":
            cells.insert(col, draw(st.sampled_from(poison)))
        if op == "drop line":
            del lines[row]
        elif op == "dup line":
            lines.insert(row, lines[row])
        else:
            lines[row] = ",".join(cells)
        how.append(f"{op} row {row} col {col}")
    return "\n".join(lines).encode("utf-8"), "; ".join(how)


@st.composite
def recording_mutations(draw: st.DrawFn, base: dict[str, bytes]) -> Payload:
    """One file of a valid recording folder mutated: recording.json structure-aware, a CSV cell by cell or
    byte by byte."""
    name = draw(st.sampled_from(sorted(base)))
    if name == "recording.json":
        p = draw(structured([(name, json.loads(base[name]))]))
        return Payload(name, p.data, p.how)
    text = base[name].decode()
    if draw(st.integers(0, 3)) == 0:
        data, flips = draw(byte_mutations(base[name]))
        return Payload(name, data, "bytes " + ",".join(flips))
    data, how = draw(_csv_cells(text, EVENT_POISON if name == "events.csv" else CSV_POISON))
    return Payload(name, data, how)


class RecordingFolder:
    """`analytics.recording.io.read_recording` on a valid folder with one file mutated: RecordingError or a
    recording, never another exception."""

    def __init__(self, folder: Path) -> None:
        self.base_dir = folder / "base"
        _base_recording(self.base_dir)
        self.base = {p.name: p.read_bytes() for p in self.base_dir.iterdir()}
        self.work = folder / "work"

    def payloads(self) -> st.SearchStrategy[Payload]:
        return recording_mutations(self.base)

    def check(self, p: Payload) -> None:
        from analytics.errors import RecordingError
        from analytics.recording.io import read_recording

        shutil.rmtree(self.work, ignore_errors=True)
        shutil.copytree(self.base_dir, self.work)
        (self.work / p.topic).write_bytes(p.data)
        try:
            read_recording(self.work)
        except RecordingError:
            return

    def close(self) -> None: ...
