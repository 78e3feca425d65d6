"""Step 5 of the analysis, its gate: whether the session's stance and step numbers may be reported
(stride_checks.asymmetry_verdict), what the stance asymmetry rests on (``gait.summary.stance_asymmetry_evidence``)
and withholding side-labelled numbers that cannot be trusted."""

from __future__ import annotations

from typing import Any

import numpy as np

from analytics.algorithms.stride_checks import (
    MIN_STRIDES_PER_SIDE,
    SOURCES_DISAGREE_PP,
    WITHHELD_TOO_FEW_STRIDES,
    asymmetry_verdict,
)
from analytics.results import asymmetry
from analytics.results.summary import ASYMMETRY_METRICS

SIDE_LABELLED = (
    "gait.summary.stance_time_s",
    "gait.summary.step_time_s",
    "gait.summary.stance_si_pct",
    "gait.summary.stance_ratio",
    "gait.summary.stance_ga_pct",
    "gait.summary.pelvic_drop_deg",
    "gait.summary.asymmetry",
    "gait.bouts.asymmetry",
)
STEP_AND_STANCE = (
    "gait.summary.stance_time_s",
    "gait.summary.step_time_s",
    "gait.summary.stance_si_pct",
    "gait.summary.stance_ratio",
    "gait.summary.stance_ga_pct",
    "gait.summary.asymmetry.stance_time_s",
    "gait.summary.asymmetry.step_time_s",
)
"""What the stride-count and event-source gate withholds (stride_checks.asymmetry_verdict): every number that
rests on the contacts' timing."""


def asymmetry_gate(
    summary: dict[str, Any],
    strides: list[dict[str, Any]],
    bouts: list[dict[str, Any]],
    cross_strides: list[dict[str, Any]],
    contacts_dropped: int,
    sides_trusted: bool,
) -> dict[str, Any] | None:
    """Whether the session's stance and step numbers must be withheld (stride_checks.asymmetry_verdict): the
    flag to raise, or None. Also records the cross-check figures in ``summary`` for the evidence block."""
    thigh_bouts = {i for i, b in enumerate(bouts) if b["source"] == "thigh"}
    cross_si = own_si = None
    if thigh_bouts:
        own = [s for s in strides if s["bout"] in thigh_bouts]
        own_si = asymmetry(
            side_values(own, "left", "stance_time_s"), side_values(own, "right", "stance_time_s"), bootstrap=False
        )["si_pct"]
        cross_si = asymmetry(
            side_values(cross_strides, "left", "stance_time_s"),
            side_values(cross_strides, "right", "stance_time_s"),
            bootstrap=False,
        )["si_pct"]
    summary["_cross_check"] = (own_si, cross_si)
    block = summary["asymmetry"]["stance_time_s"]
    code = asymmetry_verdict(block["n_left"], block["n_right"], own_si, cross_si)
    if code is None or not sides_trusted or not strides:  # no strides: nothing measured, nothing to withhold
        return None
    if code == WITHHELD_TOO_FEW_STRIDES:
        message = (
            f"stance and step times withheld: {block['n_left']} left and {block['n_right']} right strides survive "
            f"the plausibility checks; {MIN_STRIDES_PER_SIDE} a side are needed for an asymmetry and an honest "
            "interval"
        )
    else:
        message = (
            f"stance and step times withheld: the thigh events give a stance SI of {own_si:+.1f} %, the pelvis "
            f"alone {cross_si:+.1f} % over the same walking (more than {SOURCES_DISAGREE_PP:g} points apart)"
            + (f"; {contacts_dropped} thigh contacts had no pelvis contact" if contacts_dropped else "")
        )
    return {"code": code, "message": message}


def withhold_step_and_stance(summary: dict[str, Any], bouts: list[dict[str, Any]]) -> None:
    """Null the session's stance and step numbers (and those of ``bouts``); strides keep their values."""
    summary["stance_time_s"] = {"left": None, "right": None}
    summary["step_time_s"] = {"left": None, "right": None}
    for key in ("stance_si_pct", "stance_ratio", "stance_ga_pct"):
        summary[key] = None
    for blocks in [summary["asymmetry"]] + [b["asymmetry"] for b in bouts if b["source"] == "thigh"]:
        blocks["stance_time_s"] = empty_block()
        blocks["step_time_s"] = empty_block()


def stance_asymmetry_evidence(
    summary: dict[str, Any],
    strides: list[dict[str, Any]],
    bouts: list[dict[str, Any]],
    gate: dict[str, Any] | None,
    contacts_dropped: int,
    sides_trusted: bool,
    *,
    sampling_ci: list[float] | None = None,
    timing_pp: float | None = None,
) -> dict[str, Any]:
    """What the session's stance-time asymmetry rests on (optional gaitsym.result/1 field). ``si_ci95_pct`` is the
    interval shown; ``sampling_ci`` (the bootstrap over strides alone) and ``timing_pp`` (the half-width event
    timing adds, stride_checks.honest_si_interval) say what it is made of."""
    own_si, cross_si = summary.pop("_cross_check")
    sources = {b["source"] for b in bouts}
    source = {frozenset(): None, frozenset({"thigh"}): "thigh+pelvis", frozenset({"pelvis"}): "pelvis"}.get(
        frozenset(sources), "mixed"
    )
    excluded: dict[str, int] = {}
    for stride in strides:
        for code in stride["flags"]:
            excluded[code] = excluded.get(code, 0) + 1
    block = summary["asymmetry"]["stance_time_s"]
    reason = None if sides_trusted else "side_labels_untrusted"
    if reason is None and gate is not None:
        reason = gate["code"]
    if reason is None and not strides:
        reason = "no_walking"
    return {
        "status": "reported" if summary["stance_si_pct"] is not None else "withheld",
        "withheld_reason": reason,
        "event_source": source,
        "strides_used": dict(summary["n_strides"]),
        "strides_excluded": excluded,
        "contacts_dropped": contacts_dropped,
        "min_strides_per_side": MIN_STRIDES_PER_SIDE,
        "si_ci95_pct": block.get("si_ci95_pct"),
        "si_ci95_sampling_pct": sampling_ci if block.get("si_ci95_pct") is not None else None,
        "event_timing_pp": timing_pp if block.get("si_ci95_pct") is not None else None,
        "cross_check": None
        if own_si is None and cross_si is None
        else {
            "thigh_events_si_pct": own_si,
            "pelvis_events_si_pct": cross_si,
            "limit_pp": SOURCES_DISAGREE_PP,
        },
    }


def side_values(strides: list[dict[str, Any]], side: str, metric: str) -> np.ndarray:
    """The finite values of ``metric`` of one side's included strides."""
    vals = [s.get(metric) for s in strides if s["side"] == side and s["included"]]
    return np.array([v for v in vals if v is not None and np.isfinite(v)], dtype=np.float64)


def empty_block() -> dict[str, Any]:
    """An asymmetry block with nothing measured."""
    return asymmetry(np.zeros(0), np.zeros(0), bootstrap=False)


def withhold_side_labelled(summary: dict[str, Any], bouts: list[dict[str, Any]], strides: list[dict[str, Any]]) -> None:
    """Null every side-labelled number of the summaries (strides keep their values, flagged)."""
    summary["stance_time_s"] = {"left": None, "right": None}
    summary["step_time_s"] = {"left": None, "right": None}
    summary["pelvic_drop_deg"] = {"left": None, "right": None}
    for key in ("stance_si_pct", "stance_ratio", "stance_ga_pct"):
        summary[key] = None
    summary["asymmetry"] = {metric: empty_block() for metric in ASYMMETRY_METRICS}
    for bout in bouts:
        bout["asymmetry"] = {metric: empty_block() for metric in ASYMMETRY_METRICS}
    for stride in strides:
        stride["flags"].append("side_untrusted")
