"""Step 4 of the analysis: events per walking bout. From both thighs when both are usable over the whole bout,
otherwise from the pelvis alone (with sides from a usable thigh when there is one); ``gait.bouts[i].source``
says which. Thigh contacts must be confirmed by a pelvis contact (stride_checks.confirm_contacts), the rest are
dropped. The same thigh bouts with events from the pelvis alone are kept as the cross-check of step 5."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.algorithms.pelvic_obliquity import WALK_MARGIN_S
from analytics.algorithms.stride_checks import CONFIRM_STEP_FRACTION, confirm_contacts, median_step_s
from analytics.algorithms.thigh_events import ThighEvents
from analytics.pipeline.pelvis import PelvisStep
from analytics.pipeline.result import Flags, Record
from analytics.pipeline.streams import StreamCheck
from analytics.pipeline.thighs import THIGHS, ThighStep

SIDES = ("left", "right")
MAX_STEP_S = 1.5
"""A gap between contacts longer than this (s) ends a thigh-derived bout (as in gait_events)."""
MIN_BOUT_ICS = 4
"""Fewest initial contacts in a walking bout (two strides)."""
MATCH_S = 0.15
"""A pelvis IC within this time (s) of a thigh IC of one leg is that leg's contact."""


@dataclass(frozen=True)
class BoutEvents:
    """Contacts, bouts (without their summaries yet) and strides (unchecked) of the walking bouts.

    ``cross_ics``/``cross_strides``: the thigh bouts' events from the pelvis alone. ``contacts_judged`` and
    ``contacts_dropped``: thigh initial contacts a pelvis contact could confirm, and those it did not."""

    initial_contacts: list[Record]
    final_contacts: list[Record]
    bouts: list[Record]
    strides: list[Record]
    cross_ics: list[Record]
    cross_strides: list[Record]
    contacts_judged: int
    contacts_dropped: int


def events_per_bout(
    n: int, fs: float, streams: StreamCheck, pelvis: PelvisStep, thighs: ThighStep, flags: Flags
) -> BoutEvents:
    bad, thigh_events, events = streams.stuck, thighs.events, pelvis.signals.events
    ics: list[Record] = []
    fcs: list[Record] = []
    bouts: list[Record] = []
    strides: list[Record] = []
    cross_ics: list[Record] = []
    cross_strides: list[Record] = []
    contacts_dropped = contacts_judged = 0
    thigh_until = -np.inf  # last contact of the previous thigh bout: margins of close pelvis bouts overlap
    pelvis_ics = sorted(events.initial_contacts, key=lambda c: c.t_s)
    pelvis_fcs = sorted(events.final_contacts, key=lambda c: c.t_s)
    ic_times = np.array([c.t_s for c in pelvis_ics])
    fc_times = np.array([c.t_s for c in pelvis_fcs])

    def pelvis_between(contacts: list[Any], times: np.ndarray, a: float, b: float) -> list[Any]:
        # a slice of the time-ordered contacts, not a scan of all of them per bout (~100 bouts in 30 min)
        return contacts[int(np.searchsorted(times, a, "left")) : int(np.searchsorted(times, b, "right"))]

    for b in events.walking_bouts if pelvis.on_pelvis else ():
        lo = b.start_s - WALK_MARGIN_S
        hi = b.end_s + WALK_MARGIN_S
        i0, i1 = max(0, round(lo * fs)), min(n, round(hi * fs) + 1)
        usable = [s for s in thigh_events if not bad[THIGHS[s]][i0:i1].any()]
        pelvis_ic = pelvis_between(pelvis_ics, ic_times, b.start_s, b.end_s)
        if len(usable) == 2:
            lo = max(lo, np.nextafter(thigh_until, np.inf))  # each thigh contact belongs to one bout only
            confirmed, judged, dropped = _confirmed_thigh_events(thigh_events, pelvis_ic, lo, hi)
            contacts_judged += judged
            contacts_dropped += dropped
            for sub in _thigh_bouts(confirmed, lo, hi):
                index = len(bouts)
                bic = [c for c in pelvis_ic if sub[0] - MATCH_S <= c.t_s <= sub[1] + MATCH_S]
                bfc = pelvis_between(pelvis_fcs, fc_times, sub[0] - MATCH_S, sub[1] + 0.5)
                relabel = _sides_from_thigh(bic, confirmed, usable)
                cic = [{"t_s": c.t_s, "side": relabel(c.side)} for c in bic]
                cross_ics.extend(cic)
                cross_strides.extend(_strides(cic, [{"t_s": c.t_s, "side": relabel(c.side)} for c in bfc], index))
                bouts.append({"start_s": sub[0], "end_s": sub[1], "source": "thigh", "_events": sub[2]})
                thigh_until = sub[1]
        else:
            bfc = pelvis_between(pelvis_fcs, fc_times, b.start_s - 0.01, b.end_s + 0.5)
            relabel = _sides_from_thigh(pelvis_ic, thigh_events, usable)
            bic_d = [{"t_s": c.t_s, "side": relabel(c.side)} for c in pelvis_ic]
            bfc_d = [{"t_s": c.t_s, "side": relabel(c.side)} for c in bfc]
            bouts.append({"start_s": b.start_s, "end_s": b.end_s, "source": "pelvis", "_events": (bic_d, bfc_d)})
    for index, bout in enumerate(bouts):
        bic, bfc = bout.pop("_events")
        ics.extend(bic)
        fcs.extend(bfc)
        strides.extend(_strides(bic, bfc, index))
    if contacts_dropped:
        flags.add(
            "thigh_contacts_unconfirmed",
            "info",
            f"{contacts_dropped} of {contacts_judged} thigh initial contacts had no pelvis contact within a quarter "
            "step (a second contact in one step, or none where the pelvis felt one): dropped with their swings",
        )
    return BoutEvents(ics, fcs, bouts, strides, cross_ics, cross_strides, contacts_judged, contacts_dropped)


def _thigh_bouts(
    thigh_events: dict[str, Any], lo: float, hi: float
) -> list[tuple[float, float, tuple[list[dict[str, Any]], list[dict[str, Any]]]]]:
    """Split the thigh contacts inside [lo, hi] s into bouts (gaps > MAX_STEP_S), with their contacts."""
    contacts: list[tuple[float, str, str]] = []
    for side, ev in thigh_events.items():
        for kind, times in (("ic", ev.initial_contact_s), ("fc", ev.toe_off_s)):
            inside = times[(times >= lo) & (times <= hi)]
            contacts.extend((t, side, kind) for t in inside.tolist())
    contacts.sort()
    ic_times = [c[0] for c in contacts if c[2] == "ic"]
    out: list[tuple[float, float, tuple[list[dict[str, Any]], list[dict[str, Any]]]]] = []
    if len(ic_times) < MIN_BOUT_ICS:
        return out
    groups: list[list[float]] = [[ic_times[0]]]
    for t in ic_times[1:]:
        if t - groups[-1][-1] > MAX_STEP_S:
            groups.append([t])
        else:
            groups[-1].append(t)
    for g in groups:
        if len(g) < MIN_BOUT_ICS:
            continue
        start, end = g[0], g[-1]
        bic = [{"t_s": t, "side": s} for t, s, k in contacts if k == "ic" and start <= t <= end]
        bfc = [{"t_s": t, "side": s} for t, s, k in contacts if k == "fc" and start - MAX_STEP_S <= t <= end]
        out.append((start, end, (bic, bfc)))
    return out


def _confirmed_thigh_events(
    thigh_events: dict[str, ThighEvents], pelvis_ic: list[Any], lo: float, hi: float
) -> tuple[dict[str, ThighEvents], int, int]:
    """Each leg's swings whose initial contact a pelvis contact confirms (stride_checks.confirm_contacts); a
    dropped swing takes its toe off with it (both come from one swing). Judged: contacts inside [lo, hi] s and
    inside the pelvis's own steps (beyond its first and last contact the pelvis has no say: gait initiation
    and termination steps load the trunk too little for it). Returns the kept swings, how many contacts were
    judged and how many dropped."""
    times = [c.t_s for c in pelvis_ic]
    step = median_step_s(times)
    out: dict[str, ThighEvents] = {}
    judged = dropped = 0
    if step is not None:
        margin = CONFIRM_STEP_FRACTION * step
        lo, hi = max(lo, min(times) - margin), min(hi, max(times) + margin)
    for side, ev in thigh_events.items():
        inside = (ev.initial_contact_s >= lo) & (ev.initial_contact_s <= hi)
        keep = np.ones(ev.initial_contact_s.size, dtype=bool)
        if step is not None and inside.any():
            keep[inside] = confirm_contacts(ev.initial_contact_s[inside], [c.t_s for c in pelvis_ic], step)
        judged += int(inside.sum())
        dropped += int((~keep).sum())
        out[side] = ThighEvents(ev.toe_off_s[keep], ev.initial_contact_s[keep], ev.swing_peak_s[keep])
    return out, judged, dropped


def _sides_from_thigh(bic: list[Any], thigh_events: dict[str, Any], usable: list[str]) -> Callable[[str], str]:
    """Side relabelling of pelvis contacts: keep, or flip when a usable thigh says the pelvis has them swapped."""
    if not usable or not bic:
        return lambda s: s
    side = usable[0]
    thigh_ics = np.asarray(thigh_events[side].initial_contact_s)
    if thigh_ics.size == 0:
        return lambda s: s
    agree = disagree = 0
    for c in bic:
        near = np.min(np.abs(thigh_ics - c.t_s)) <= MATCH_S
        if near:
            agree += c.side == side
            disagree += c.side != side
    if disagree > agree:
        return lambda s: "right" if s == "left" else "left"
    return lambda s: s


def _strides(ics: list[dict[str, Any]], fcs: list[dict[str, Any]], bout: int) -> list[dict[str, Any]]:
    """Same-side IC-to-IC strides of one bout; stance = IC to the first same-side FC before the next IC."""
    out = []
    for side in SIDES:
        times = sorted(c["t_s"] for c in ics if c["side"] == side)
        fc = np.array(sorted(c["t_s"] for c in fcs if c["side"] == side))
        for a, b in itertools.pairwise(times):
            if b - a > 2 * MAX_STEP_S:
                continue
            inside = fc[(fc > a) & (fc < b)]
            if inside.size == 0:
                continue
            stance = float(inside[0] - a)
            out.append(
                {
                    "side": side,
                    "start_s": float(a),
                    "end_s": float(b),
                    "stance_time_s": stance,
                    "swing_time_s": float(b - a - stance),
                    "step_time_s": None,
                    "pelvic_drop_deg": None,
                    "bout": bout,
                    "included": True,
                    "flags": [],
                }
            )
    return out
