"""Recording folders: the one file format every gaitsym tool reads and writes."""

from analytics.recording.io import (
    COLUMNS,
    PLACEMENTS,
    ExerciseMarker,
    Recording,
    SensorData,
    read_recording,
    write_recording,
)

__all__ = [
    "COLUMNS",
    "PLACEMENTS",
    "ExerciseMarker",
    "Recording",
    "SensorData",
    "read_recording",
    "write_recording",
]
