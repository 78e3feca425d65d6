"""Step 5 of the analysis: strides per side with stance, swing and step time and the pelvic drop relative to
standing; strides that break a plausibility rule (stride_checks.stride_problems) are flagged and excluded; the
summary rule (analytics.results) per session and per bout, with a 95 % interval of the stance SI (per bout only
with MIN_STRIDES_PER_SIDE strides a side): the bootstrap over strides widened by what event timing adds
(stride_checks.honest_si_interval); the session's stance and step numbers withheld when too few strides survive
or the thigh and pelvis events disagree (asymmetry_gate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.algorithms.pelvic_obliquity import pelvic_drop_deg
from analytics.algorithms.stride_checks import (
    MIN_STRIDES_PER_SIDE,
    STRIDE_FLAGS,
    WITHHELD_SOURCES_DISAGREE,
    bout_rhythm_s,
    event_timing_pp,
    honest_si_interval,
    stride_problems,
    uneven_scatter_pp,
)
from analytics.pipeline.asymmetry_gate import (
    SIDE_LABELLED,
    STEP_AND_STANCE,
    asymmetry_gate,
    empty_block,
    side_values,
    stance_asymmetry_evidence,
    withhold_side_labelled,
    withhold_step_and_stance,
)
from analytics.pipeline.events import SIDES, BoutEvents
from analytics.pipeline.pelvis import PelvisStep
from analytics.pipeline.result import Flags, Gait, ObliquityTrace
from analytics.pipeline.streams import StreamCheck
from analytics.results import add_step_times, asymmetry, mark_included, summarize_gait
from analytics.results.summary import ASYMMETRY_METRICS, Resamples


@dataclass(frozen=True)
class GaitStep:
    """The gait block, and the obliquity trajectory relative to standing when it was asked for."""

    gait: Gait
    obliquity: ObliquityTrace | None


def summarise_gait(
    fs: float,
    streams: StreamCheck,
    pelvis: PelvisStep,
    events: BoutEvents,
    sides_trusted: bool,
    flags: Flags,
    withheld: list[str],
    *,
    include_obliquity: bool,
) -> GaitStep:
    """Checks, pelvic drop and summaries of the strides; adds to ``withheld`` the paths of numbers withheld."""
    reference = pelvis.reference
    strides, bouts = events.strides, events.bouts
    cross_strides, contacts_dropped = events.cross_strides, events.contacts_dropped
    relative = _checked_strides(fs, streams, pelvis, events, flags)
    cross_strides.sort(key=lambda s: s["start_s"])
    for stride, included in zip(cross_strides, mark_included(cross_strides), strict=True):
        stride["included"] = included
    _exclude_implausible(cross_strides, events.cross_ics)
    summary = summarize_gait(strides)
    gate = asymmetry_gate(summary, strides, bouts, cross_strides, contacts_dropped, sides_trusted)
    by_bout: dict[int, list[dict[str, Any]]] = {index: [] for index in range(len(bouts))}
    for stride in strides:
        by_bout[stride["bout"]].append(stride)
    resamples: Resamples = {}  # bouts of equal stride counts share bootstrap indices (same intervals)
    for index, bout in enumerate(bouts):
        mine = by_bout[index]
        bout["n_strides"] = len(mine)
        # bootstrap CI of SI per bout for stance time only (it is most of the analysis time otherwise), and only
        # with MIN_STRIDES_PER_SIDE a side: below that the percentile interval covers far less than it claims
        enough = min(len(side_values(mine, side, "stance_time_s")) for side in SIDES) >= MIN_STRIDES_PER_SIDE
        bout["asymmetry"] = {
            metric: asymmetry(
                side_values(mine, "left", metric),
                side_values(mine, "right", metric),
                bootstrap=metric == "stance_time_s" and enough,
                resamples=resamples,
            )
            for metric in ASYMMETRY_METRICS
        }
    sampling_ci, timing_pp = _event_timing_intervals(summary, bouts, strides)
    if not sides_trusted:
        withhold_side_labelled(summary, bouts, strides)
        withheld.extend(p for p in SIDE_LABELLED if p not in withheld)
    elif relative is None:
        summary["pelvic_drop_deg"] = {"left": None, "right": None}
        summary["asymmetry"]["pelvic_drop_deg"] = empty_block()
    if gate is not None:
        withhold_step_and_stance(summary, bouts if gate["code"] == WITHHELD_SOURCES_DISAGREE else [])
        withheld.extend(p for p in STEP_AND_STANCE if p not in withheld)
        flags.add(gate["code"], "withheld", gate["message"])
    summary["stance_asymmetry_evidence"] = stance_asymmetry_evidence(
        summary, strides, bouts, gate, contacts_dropped, sides_trusted, sampling_ci=sampling_ci, timing_pp=timing_pp
    )
    # the contacts the pelvis placed in thigh bouts: they count as steps, never in the stance or step numbers
    summary["stance_asymmetry_evidence"]["contacts_from_pelvis"] = events.contacts_from_pelvis
    if any(b["source"] == "pelvis" for b in bouts):
        flags.add(
            "pelvis_only_events",
            "info",
            f"{sum(b['source'] == 'pelvis' for b in bouts)} of {len(bouts)} walking bouts have events from the "
            "pelvis alone (a thigh sensor missing, dropped out or not usable)",
        )

    obliquity = None
    if include_obliquity:
        obliquity = ObliquityTrace(
            obliquity_deg=[] if relative is None else np.round(relative, 2).tolist(),
            rate_hz=fs,
            standing_baseline_deg=None if reference is None else reference.obliquity_deg,
        )
    gait = Gait(
        initial_contacts=sorted(events.initial_contacts, key=lambda c: c["t_s"]),
        final_contacts=sorted(events.final_contacts, key=lambda c: c["t_s"]),
        bouts=bouts,
        strides=strides,
        summary=summary,
    )
    return GaitStep(gait, obliquity)


def gait_strides(
    fs: float, streams: StreamCheck, pelvis: PelvisStep, events: BoutEvents, sides_trusted: bool
) -> list[dict[str, Any]]:
    """The strides of `summarise_gait`'s gait block, each exactly as it gives them out (checks, flags,
    ``included``, step time, pelvic drop), without the summaries: for a caller that keeps only the strides (a live
    window). Mutates ``events.strides`` as `summarise_gait` does."""
    _checked_strides(fs, streams, pelvis, events, Flags())
    if not sides_trusted:
        for stride in events.strides:
            stride["flags"].append("side_untrusted")  # as withhold_side_labelled flags them
    return events.strides


def _checked_strides(
    fs: float, streams: StreamCheck, pelvis: PelvisStep, events: BoutEvents, flags: Flags
) -> np.ndarray | None:
    """``events.strides`` sorted, ``included``, checked (stride_checks), with step times, pelvic drop and saturation
    flags; returns the obliquity relative to standing (None without a reference)."""
    ps, reference, saturated_any = pelvis.signals, pelvis.reference, streams.saturated_any
    strides, ics = events.strides, events.initial_contacts
    strides.sort(key=lambda s: s["start_s"])
    for stride, included in zip(strides, mark_included(strides), strict=True):
        stride["included"] = included
    excluded = _exclude_implausible(strides, ics)
    if excluded:
        flags.add(
            "implausible_strides",
            "info",
            "strides excluded from every summary (values kept, flagged per stride): "
            + ", ".join(f"{count} {code} ({STRIDE_FLAGS[code]})" for code, count in sorted(excluded.items())),
        )
    add_step_times(strides, ics)  # from the previous contact, never a stand-in's (summary.add_step_times)
    relative = None  # obliquity relative to standing (computed here, not held through the thigh steps: memory)
    if reference is not None:
        assert ps.obliquity_raw_deg is not None
        relative = ps.obliquity_raw_deg - reference.obliquity_deg
    if strides and relative is not None:
        drops = pelvic_drop_deg(
            relative,
            fs,
            np.array([s["side"] for s in strides]),
            np.array([s["start_s"] for s in strides]),
            np.array([s["start_s"] + s["stance_time_s"] for s in strides]),
        )
        for stride, drop in zip(strides, drops, strict=True):
            stride["pelvic_drop_deg"] = float(drop) if np.isfinite(drop) else None
    # no saturated sample (the usual case): no stride to look at
    for stride in strides if saturated_any.any() else ():
        i0, i1 = round(stride["start_s"] * fs), round(stride["end_s"] * fs) + 1
        if saturated_any[i0:i1].any():
            stride["flags"].append("saturation")
            stride["included"] = False
    return relative


def _event_timing_intervals(
    summary: dict[str, Any], bouts: list[dict[str, Any]], strides: list[dict[str, Any]]
) -> tuple[list[float] | None, float | None]:
    """Widen the stance SI's bootstrap intervals (session and bouts) by what event timing adds
    (stride_checks.event_timing_pp: thigh bouts were cross-checked by the pelvis, whose SI difference from theirs
    over the session's thigh bouts counts in); the session's bootstrap-only interval and its timing term (pp)."""
    own_si, cross_si = summary["_cross_check"]
    discrepancy = None if own_si is None or cross_si is None else own_si - cross_si
    all_thigh = bool(bouts) and all(b["source"] == "thigh" for b in bouts)
    session = summary["asymmetry"]["stance_time_s"]
    sampling = session.get("si_ci95_pct")
    timing = None
    blocks = [(session, all_thigh)] + [(b["asymmetry"]["stance_time_s"], b["source"] == "thigh") for b in bouts]
    shares: dict[str, list[float]] = {"left": [], "right": []}
    stride_times = []
    for stride in strides:
        length = stride["end_s"] - stride["start_s"]
        if stride["included"] and length > 0 and stride["stance_time_s"] is not None:
            shares[stride["side"]].append(stride["stance_time_s"] / length)
            stride_times.append(length)
    for block, checked in blocks:
        ci, si = block.get("si_ci95_pct"), block.get("si_pct")
        if ci is None or si is None or block["left"] is None or block["right"] is None:
            continue
        mean_stance = 0.5 * (block["left"] + block["right"])
        term = event_timing_pp(si, mean_stance, cross_checked=checked, cross_check_pp=discrepancy)
        if stride_times:
            scatter = uneven_scatter_pp(shares["left"], shares["right"], float(np.median(stride_times)), mean_stance)
            term = float(np.hypot(term, scatter))
        block["si_ci95_pct"] = honest_si_interval(si, ci, term)
        if block is session:
            timing = term
    return (None if sampling is None else list(sampling)), timing


def _exclude_implausible(strides: list[dict[str, Any]], ics: list[dict[str, Any]]) -> dict[str, int]:
    """Flag and exclude the strides that break a rule of stride_checks; how many strides broke each rule."""
    if not strides:
        return {}
    by_bout: dict[int, list[float]] = {}
    for s in strides:
        by_bout.setdefault(s["bout"], []).append(s["end_s"] - s["start_s"])
    rhythm = {b: bout_rhythm_s(times) for b, times in by_bout.items()}
    problems = stride_problems(
        [s["side"] for s in strides],
        [s["start_s"] for s in strides],
        [s["end_s"] for s in strides],
        [s["stance_time_s"] for s in strides],
        [rhythm[s["bout"]] for s in strides],
        [c["t_s"] for c in ics],
        [c["side"] for c in ics],
    )
    counts: dict[str, int] = {}
    for stride, codes in zip(strides, problems, strict=True):
        # a code set when the stride was built (events: a stance from two sources) excludes it the same way
        codes = [c for c in stride["flags"] if c in STRIDE_FLAGS and c not in codes] + codes
        for code in codes:
            if code not in stride["flags"]:
                stride["flags"].append(code)
            counts[code] = counts.get(code, 0) + 1
        if codes:
            stride["included"] = False
    return counts
