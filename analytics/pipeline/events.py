"""Step 4 of the analysis: events per walking bout. From both thighs when both are usable over the whole bout,
otherwise from the pelvis alone (with sides from a usable thigh when there is one); ``gait.bouts[i].source``
says which. Thigh contacts must be confirmed by a pelvis contact (stride_checks.confirm_contacts), the rest are
dropped; where that leaves a step inside a thigh bout without a contact, the pelvis's contact of that step stands
in when it fits the alternation and rhythm of the thigh contacts around it (stride_checks.pelvis_stand_ins),
marked ``"source": "pelvis"``: it counts as a contact, never as timing (no stride it bounds or lies inside is
summarised, no step time is measured from or to it). The same thigh bouts with events from the pelvis alone are
kept as the cross-check of step 5."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.algorithms.pelvic_obliquity import WALK_MARGIN_S
from analytics.algorithms.stride_checks import (
    CONFIRM_STEP_FRACTION,
    confirming_contacts,
    median_step_s,
    pelvis_stand_ins,
)
from analytics.algorithms.thigh_events import ThighEvents
from analytics.pipeline.pelvis import PelvisStep
from analytics.pipeline.result import Flags, Record
from analytics.pipeline.streams import StreamCheck
from analytics.pipeline.thighs import THIGHS, ThighStep

SIDES = ("left", "right")
MAX_STEP_S = 1.5
"""A gap between thigh contacts longer than this (s) ends a thigh-derived bout (as in gait_events)."""
MIN_BOUT_ICS = 4
"""Fewest initial contacts in a walking bout (two strides)."""
MATCH_S = 0.15
"""A pelvis IC within this time (s) of a thigh IC of one leg is that leg's contact."""
StandIn = tuple[float, str, float | None]
"""A pelvis contact standing in for a thigh contact: time (s), side, the toe off of its swing (s) or None."""


@dataclass(frozen=True)
class BoutEvents:
    """Contacts, bouts (without their summaries yet) and strides (unchecked) of the walking bouts.

    ``cross_ics``/``cross_strides``: the thigh bouts' events from the pelvis alone. ``contacts_judged`` and
    ``contacts_dropped``: thigh initial contacts a pelvis contact could confirm, and those it did not;
    ``contacts_from_pelvis``: pelvis contacts standing in for steps the thighs missed in thigh bouts."""

    initial_contacts: list[Record]
    final_contacts: list[Record]
    bouts: list[Record]
    strides: list[Record]
    cross_ics: list[Record]
    cross_strides: list[Record]
    contacts_judged: int
    contacts_dropped: int
    contacts_from_pelvis: int = 0


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
    contacts_dropped = contacts_judged = stand_ins = 0
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
            confirmed, judged, dropped, claimed = _confirmed_thigh_events(thigh_events, pelvis_ic, lo, hi)
            contacts_judged += judged
            contacts_dropped += dropped
            relabel = _sides_from_thigh(pelvis_ic, confirmed, usable)
            filled = _pelvis_stand_ins(thigh_events, confirmed, pelvis_ic, claimed, relabel, lo, hi)
            for sub in _thigh_bouts(confirmed, lo, hi, filled):
                stand_ins += sum(c.get("source") == "pelvis" for c in sub[2][0])
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
    if stand_ins:
        flags.add(
            "pelvis_contacts_stand_in",
            "info",
            f"{stand_ins} initial contacts of thigh bouts come from the pelvis (source pelvis): the thighs gave none "
            "it confirmed there, and the pelvis's fits the alternation and rhythm of the thigh contacts around it; "
            "no stride it bounds or lies inside is summarised (pelvis_contact_in_stride), nor any step from or to it",
        )
    return BoutEvents(ics, fcs, bouts, strides, cross_ics, cross_strides, contacts_judged, contacts_dropped, stand_ins)


def _thigh_bouts(
    thigh_events: dict[str, Any],
    lo: float,
    hi: float,
    stand_ins: list[StandIn] | None = None,
) -> list[tuple[float, float, tuple[list[dict[str, Any]], list[dict[str, Any]]]]]:
    """Split the thigh contacts inside [lo, hi] s into bouts (gaps > MAX_STEP_S), with their contacts and toe offs;
    the pelvis's ``stand_ins`` inside a bout join it, marked ``"source": "pelvis"``, each with the toe off of its
    swing, if any (a stand-in outside every bout is dropped, and takes its toe off with it).

    The bouts' extents are the thighs' alone: a stand-in does not join two bouts that a missed contact split
    (below 80 steps/min two steps exceed MAX_STEP_S). Joining them was measured to summarise strides beside
    turns whose thigh timing errs by side (simulated frail walkers at home: stance SI error 0.5 -> 0.8 pp mean);
    a split leaves each part's end strides out of the summary instead."""
    contacts: list[tuple[float, str, str]] = []
    for side, ev in thigh_events.items():
        for kind, times in (("ic", ev.initial_contact_s), ("fc", ev.toe_off_s)):
            inside = times[(times >= lo) & (times <= hi)]
            contacts.extend((t, side, kind) for t in inside.tolist())
    toe_off_of = {(t, side): toe_off for t, side, toe_off in stand_ins or ()}
    contacts.extend((t, side, "pelvis_ic") for t, side in toe_off_of)
    contacts.sort()
    out: list[tuple[float, float, tuple[list[dict[str, Any]], list[dict[str, Any]]]]] = []
    groups: list[list[float]] = []
    for t in (c[0] for c in contacts if c[2] == "ic"):
        if not groups or t - groups[-1][-1] > MAX_STEP_S:
            groups.append([t])
        else:
            groups[-1].append(t)
    for g in groups:
        if len(g) < MIN_BOUT_ICS:
            continue
        start, end = g[0], g[-1]
        bic_c = [c for c in contacts if c[2] != "fc" and start <= c[0] <= end]
        bic = [{"t_s": t, "side": s} if k == "ic" else {"t_s": t, "side": s, "source": "pelvis"} for t, s, k in bic_c]
        toe_offs = [(t, s, "fc") for t, s, k in contacts if k == "fc" and start - MAX_STEP_S <= t <= end]
        for t, s, k in bic_c:
            toe_off = toe_off_of.get((t, s)) if k == "pelvis_ic" else None
            if toe_off is not None:
                toe_offs.append((toe_off, s, "fc"))
        bfc = [{"t_s": t, "side": s} for t, s, _ in sorted(toe_offs)]
        out.append((start, end, (bic, bfc)))
    return out


def _confirmed_thigh_events(
    thigh_events: dict[str, ThighEvents], pelvis_ic: list[Any], lo: float, hi: float
) -> tuple[dict[str, ThighEvents], int, int, set[int]]:
    """Each leg's swings whose initial contact a pelvis contact confirms (stride_checks.confirm_contacts); a
    dropped swing takes its toe off with it (both come from one swing). Judged: contacts inside [lo, hi] s and
    inside the pelvis's own steps (beyond its first and last contact the pelvis has no say: gait initiation
    and termination steps load the trunk too little for it). Returns the kept swings, how many contacts were
    judged and how many dropped, and the indices (into ``pelvis_ic``) of the pelvis contacts that confirmed one."""
    times = [c.t_s for c in pelvis_ic]
    step = median_step_s(times)  # refuses times that are not finite numbers (InvalidSignal)
    as_array = np.array(times, dtype=np.float64)  # converted once for both legs
    out: dict[str, ThighEvents] = {}
    claimed: set[int] = set()
    judged = dropped = 0
    if step is not None:
        margin = CONFIRM_STEP_FRACTION * step
        lo, hi = max(lo, min(times) - margin), min(hi, max(times) + margin)
    for side, ev in thigh_events.items():
        inside = (ev.initial_contact_s >= lo) & (ev.initial_contact_s <= hi)
        n_inside = int(np.count_nonzero(inside))
        judged += n_inside
        out[side] = ev  # every swing kept (ThighEvents is frozen and its arrays are only read)
        if step is not None and n_inside:
            partner = confirming_contacts(ev.initial_contact_s[inside], as_array, step)
            confirmed = partner >= 0
            claimed.update(partner[confirmed].tolist())
            n_dropped = n_inside - int(np.count_nonzero(confirmed))
            if n_dropped:
                dropped += n_dropped
                keep = np.ones(ev.initial_contact_s.size, dtype=bool)
                keep[inside] = confirmed
                out[side] = ThighEvents(ev.toe_off_s[keep], ev.initial_contact_s[keep], ev.swing_peak_s[keep])
    return out, judged, dropped, claimed


def _pelvis_stand_ins(
    thigh_events: dict[str, ThighEvents],
    confirmed: dict[str, ThighEvents],
    pelvis_ic: list[Any],
    claimed: set[int],
    relabel: Callable[[str], str],
    lo: float,
    hi: float,
) -> list[StandIn]:
    """The pelvis contacts inside [lo, hi] s no thigh contact claimed that stand in for a step the confirmed thigh
    contacts miss (stride_checks.pelvis_stand_ins), as (time, side, toe off) with the side relabelled as the
    thigh bout's and the toe off of the thigh swing it stands in for (None without one).

    A dropped thigh contact of the same foot within half a step of a stand-in ends the same swing (half a step
    is where the other foot's contact lies): the pelvis and the thigh agree that the foot landed in that step
    and disagree on when, so the swing and its toe off (a feature of the swing's start, not of its contact)
    are the thigh's, and only the contact's time is the pelvis's."""
    free = [k for k, c in enumerate(pelvis_ic) if k not in claimed and lo <= c.t_s <= hi]
    thigh_s: list[float] = []
    thigh_side: list[str] = []
    for side, ev in confirmed.items():
        inside = ev.initial_contact_s[(ev.initial_contact_s >= lo) & (ev.initial_contact_s <= hi)]
        thigh_s.extend(inside.tolist())
        thigh_side.extend([side] * inside.size)
    # the rhythm is the thighs' own: a missed step doubles one of their steps and leaves the median, where the
    # pelvis's double counts (simulated slow walks) would halve it
    step = median_step_s(thigh_s) if thigh_s else None
    if step is None or not free:
        return []
    candidates = [(pelvis_ic[k].t_s, relabel(pelvis_ic[k].side)) for k in free]
    keep = pelvis_stand_ins(thigh_s, thigh_side, [t for t, _ in candidates], [s for _, s in candidates], step)
    out: list[StandIn] = []
    for (t, side), kept in zip(candidates, keep, strict=True):
        if not kept:
            continue
        toe_off = None
        if side in thigh_events:
            ev = thigh_events[side]
            dropped = ~np.isin(ev.initial_contact_s, confirmed[side].initial_contact_s)
            near = dropped & (np.abs(ev.initial_contact_s - t) < 0.5 * step) & (ev.toe_off_s < t)
            if near.any():
                k = int(np.argmin(np.where(near, np.abs(ev.initial_contact_s - t), np.inf)))
                toe_off = float(ev.toe_off_s[k])
        out.append((t, side, toe_off))
    return out


def _sides_from_thigh(bic: list[Any], thigh_events: dict[str, Any], usable: list[str]) -> Callable[[str], str]:
    """Side relabelling of pelvis contacts: keep, or flip when a usable thigh says the pelvis has them swapped."""
    if not usable or not bic:
        return lambda s: s
    side = usable[0]
    thigh_ics = np.asarray(thigh_events[side].initial_contact_s)
    if thigh_ics.size == 0:
        return lambda s: s
    # each contact's nearest thigh contact is one of the two around it in time order: a few calls for all of them
    # (a NaN makes every distance NaN, so no contact is near, as a minimum over all of them gives)
    ordered = np.sort(thigh_ics)
    times = np.array([c.t_s for c in bic], dtype=np.float64)
    k = np.searchsorted(ordered, times)
    below, above = ordered[np.maximum(k - 1, 0)], ordered[np.minimum(k, ordered.size - 1)]
    distance = np.minimum(np.abs(times - below), np.abs(above - times))
    near = [False] * len(bic) if np.isnan(ordered[-1]) else (distance <= MATCH_S).tolist()
    agree = disagree = 0
    for c, is_near in zip(bic, near, strict=True):
        if is_near:
            agree += c.side == side
            disagree += c.side != side
    if disagree > agree:
        return lambda s: "right" if s == "left" else "left"
    return lambda s: s


def _strides(ics: list[dict[str, Any]], fcs: list[dict[str, Any]], bout: int) -> list[dict[str, Any]]:
    """Same-side IC-to-IC strides of one bout; stance = IC to the first same-side FC before the next IC. A stride
    bounded by a contact the pelvis placed in a thigh bout, or with one of the opposite foot inside it, is flagged
    ``pelvis_contact_in_stride``."""
    out = []
    # plain Python over the handful of contacts of a bout: numpy's per-call cost exceeds the work here
    stand_ins = {side: [c["t_s"] for c in ics if c["side"] == side and c.get("source") == "pelvis"] for side in SIDES}
    for side in SIDES:
        times = sorted(c["t_s"] for c in ics if c["side"] == side)
        mine, other = stand_ins[side], stand_ins["right" if side == "left" else "left"]
        fc = sorted(c["t_s"] for c in fcs if c["side"] == side)
        # sorted() orders a list holding NaN arbitrarily: then the first toe off inside is found by a scan
        ordered = all(t == t for t in fc)
        for a, b in itertools.pairwise(times):
            if b - a > 2 * MAX_STEP_S:
                continue
            if ordered:
                k = bisect.bisect_right(fc, a)
                first = fc[k] if k < len(fc) and fc[k] < b else None
            else:
                first = next((t for t in fc if a < t < b), None)
            if first is None:
                continue
            stance = float(first - a)
            # == and not `in` (which tries identity first): a NaN is never equal to itself, as in np.isin
            mixed = any(t == a for t in mine) or any(t == b for t in mine) or any(a < t < b for t in other)
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
                    "flags": ["pelvis_contact_in_stride"] if mixed else [],
                }
            )
    return out
