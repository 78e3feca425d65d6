"""gaitsym.result/1: the frozen result schema, its validator, and the one summary rule.

The same document comes out of `gaitsym analyze --json` and is written by the simulator as truth.json,
so that analysis and truth are compared field by field.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from analytics.errors import ResultSchemaError
from analytics.results.summary import (
    add_step_times,
    asymmetry,
    gait_asymmetry_pct,
    mark_included,
    ratio,
    summarize_gait,
    symmetry_index_pct,
)

RESULT_SCHEMA = "gaitsym.result/1"


@cache
def result_schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("result-v1.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_result(doc: Any) -> None:
    """Raise ResultSchemaError naming the first offending path when ``doc`` is not a gaitsym.result/1."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(result_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path) or "(document)"
        raise ResultSchemaError(f"result does not follow {RESULT_SCHEMA} at {path}: {error.message}")


__all__ = [
    "RESULT_SCHEMA",
    "add_step_times",
    "asymmetry",
    "gait_asymmetry_pct",
    "mark_included",
    "ratio",
    "result_schema",
    "summarize_gait",
    "symmetry_index_pct",
    "validate_result",
]
