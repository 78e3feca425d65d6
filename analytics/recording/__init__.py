"""Recording folders: the one file format every gaitsym tool reads and writes (see io.py).

Names are exported lazily so that the light `cli` module can be imported without numpy and pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["COLUMNS", "PLACEMENTS", "ExerciseMarker", "Recording", "SensorData", "read_recording", "write_recording"]

if TYPE_CHECKING:
    from analytics.recording.io import (
        COLUMNS,
        PLACEMENTS,
        ExerciseMarker,
        Recording,
        SensorData,
        read_recording,
        write_recording,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        from analytics.recording import io

        return getattr(io, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
