"""The analysis pipeline of a recording: `analyze_recording(recording) -> gaitsym.result/1 dict`.

Imported lazily so that `gaitsym` builds its parser (analytics.pipeline.cli) without numpy.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AnalysisResult", "analyze_recording", "default_exercise_analyzer"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from analytics.pipeline import analyze

        return getattr(analyze, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
