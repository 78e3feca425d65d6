"""Physiological plausibility of strides, thigh contacts checked against the pelvis, and when a session's
stance-time asymmetry may be shown at all. Pure: arrays in, verdicts out.

The stance-time symmetry index (SI) is the number clinicians act on; one invented contact turns a 0.8 s stance
into 0.05 s and the SI into nonsense (a real three-sensor trial read -78 % where optical capture says about
-5 %). Every rule here follows from the mechanics of walking, not from that trial:

1. **Contacts lie where the pelvis says a step happened** (``confirm_contacts``). Each step loads the body
   once: one peak of vertical trunk acceleration per step (Zijlstra & Hof 2003, Gait Posture 18:1), which the
   pelvis detector finds orientation-free (analytics.algorithms.gait_events; IC recall 0.92-1.00 on real
   lower-back data). A thigh contact is confirmed by the nearest pelvis contact within a quarter of the
   median step (``CONFIRM_STEP_FRACTION``: nearer to that contact than to the middle of the step), one to one,
   so two thigh contacts of one step cannot both be confirmed. Unconfirmed thigh contacts are dropped.
1b. **Where the thighs give no contact the pelvis felt, the pelvis's contact stands in** (``pelvis_stand_ins``).
   Dropping an unconfirmed thigh contact leaves its step without a contact (on the real three-sensor trial the
   thigh and the pelvis each placed the turn's and the stop's contacts, 250-400 ms apart, the optical one
   between them): the two sources agree that the foot landed and disagree on when. The pelvis's contact is
   kept in its place, with its source, only where it is the step the walking rhythm is missing: the chain of
   contacts through it alternates feet (one foot's contact between two of the other's: walking has no flight
   phase and no double step) and each of its steps lies within a factor sqrt(2) of the thighs' median step
   (rule 2's bound, for a step: a missed contact doubles a step, an extra one halves it; the thighs' median,
   which a missed step leaves in place, where the pelvis's double counts would halve the pelvis's). A pelvis
   contact between two thigh contacts that already alternate can never pass (its foot would repeat one of
   theirs): the pelvis's double counts (simulated slow walks) and wrong sides stay out. Where two chains fit
   equally well the pelvis is ambiguous and none is kept. What ``pelvis_stand_ins`` itself enforces: only gaps
   between two thigh contacts of the stretch it is given are filled (nothing before the first or after the
   last: where walking starts and stops stays the thighs' to say), the alternation, the sqrt(2) bound on every
   step against the ``step_s`` it is given, and uniqueness. The caller (analytics.pipeline.events) gives it the
   confirmed thigh contacts of one pelvis walking bout and their own median step, then splits bouts where more
   than 1.5 s passes without a contact, thigh or stand-in, and starts and ends each bout at a thigh contact (a
   stand-in left at a bout's end is dropped, with the toe off it brought). Because the median is the thighs',
   a one-sided loss (one thigh lost most of its contacts) doubles it, and then every stand-in is refused (each
   would make two half-length steps): the stand-ins fill the occasional lost step, not a lost leg. The
   stand-in's timing is the pelvis's (IC MAE 10-55 ms on the real trials against the thighs' 41 ms) and the
   stance SI rests on the thighs' timing (its interval's error model is theirs), so no stride bounded by a
   stand-in, or with one of the opposite foot inside it, is summarised (``pelvis_contact_in_stride``), and no
   step time is measured from or to one (analytics.results.summary.add_step_times): the stand-in counts as a
   contact and a step, never as timing.
2. **Each stride fits the rhythm** (``STRIDE_RATIO_LIMIT``): the stride time lies within a factor sqrt(2) of
   the bout's rhythm (``bout_rhythm_s``: the median stride time of the bout, both legs; a median, so a minority
   of broken strides does not move it). A missed contact doubles a stride, an
   extra one halves it; sqrt(2) is the geometric midpoint between one stride and two, and 40 % is far beyond
   the stride-to-stride variation of steady walking (stride-time CV 1-3 % in healthy adults, a few percent
   more at slow speed: Beauchet et al. 2009, J NeuroEng Rehabil 6:32; Hausdorff 2005, J NeuroEng Rehabil 2:19).
3. **Steps alternate** (``STEP_PHASE_LIMITS``): exactly one contralateral initial contact lies inside each
   stride, between a quarter and three quarters of it (half way in symmetric walking; a quarter is the
   midpoint between a contralateral step and a same-side duplicate).
4. **Stance is a walking stance** (``STANCE_FRACTION_LIMITS``): walking has double support, so stance is more
   than half the cycle (losing double support is the transition to running: Perry & Burnfield 2010, Gait
   Analysis, 2nd ed., ch. 1); normative stance is 59-64 % of the cycle, longer the slower the walk (stance % =
   64.2 - 3.5 x speed in m/s: Kirtley, Whittle & Jefferson 1985, J Biomed Eng 7:282; 61.8 +- 2.5 % under 45
   years, 63.6 +- 3.9 % over). The limits 0.45-0.80 leave room for event timing errors (~30 ms of a ~1.1 s
   stride is 3 %) and for the long stances of pathological and very slow walking.
5. **Stance is consistent stride to stride** (``STANCE_CONSISTENCY``): a stride's stance share more than 0.10
   of the cycle away from the median of the same leg's plausible strides (2.5-4 between-subject SDs above)
   is not steady walking of that leg (a turn, a start, a stop or a wrong event). Judged only with at least
   ``MIN_CONSISTENCY_STRIDES`` strides of that leg.

A stride failing any rule keeps its values but is excluded from every summary, with the rule's code in its
flags (``STRIDE_FLAGS`` says what each means).

**When the session's asymmetry is withheld** (``asymmetry_verdict``):
- fewer than ``MIN_STRIDES_PER_SIDE`` summarised strides on either side. The interval shown with the SI is a
  percentile bootstrap over strides, which under-covers in small samples (Hesterberg 2015, Am Stat 69:371).
  Measured here for the SI of two normal samples with a 4 % CV (1500 trials each): coverage of the nominal
  95 % interval 80 % with 3 strides a side, 90 % with 5, 91 % with 8, 92 % with 10, 94 % with 20. At 10 a
  side the interval shown is within a few points of what it claims.
- the two event sources disagree (``SOURCES_DISAGREE_PP``): where the events come from the thighs, the same
  walking bouts measured by the pelvis alone must give a stance SI within 10 percentage points. A ~10 % SI is
  a common, arbitrary cut-off between symmetric and asymmetric gait (how symmetry measures and their cut-offs
  vary: Patterson et al. 2010, Gait Posture 31:241): two measurements of the same walking that differ by more
  than that can flip the clinical reading, so neither is shown.

**The interval shown with the SI** (``honest_si_interval``). The percentile bootstrap over strides measures how
much the SI would move with other strides of the same walking, stride-to-stride timing scatter included; it cannot
see an error that every stride of a side shares, and event timing has one: a detector places each leg's contacts
from that leg's signal shape, which is the same stride after stride. With stance errors e_L = c + d / 2 and
e_R = c - d / 2 on a mean stance S, to first order SI_measured = SI (1 - c / S) + 100 d / S. The interval shown
combines with each bootstrap half-width, in quadrature, 1.96 x 100 sigma_d / S and 1.96 x |SI| sigma_c / S, and,
where the thigh events have the pelvis's as a cross-check, the two sources' SI difference itself (an error at
least one of them makes on this very walking). Measured on the shared real trials against optical capture
(bench/validate_gait.py prints each figure):
- sigma_c, ``COMMON_TIMING_ERROR_S``: RMS of the per-trial mean stance error over trials and paths (-7, -16, -15
  and +112 ms pelvis, +1 ms thighs: 51 ms);
- sigma_d for the pelvis alone, ``PELVIS_SIDE_TIMING_ERROR_S``: RMS of the left-minus-right difference of mean
  stance error (17.6, -12.5, -15.8, 43.3 ms: 25 ms). These trials are short, so part of it is stride-to-stride
  scatter counted twice: generous, the right side to err on with no second source;
- sigma_d where a second source checks the first, ``SIDE_TIMING_ERROR_FLOOR_S``: the same differences over both
  paths with the stride-to-stride scatter removed (method of moments: mean of d^2 - se(d)^2), 6 ms; the session's
  own thigh/pelvis disagreement carries the rest.
With a 0.8 s stance the pelvis-alone term is +-6 pp, the floor +-1.5 pp. One more error shows in the session
itself (``uneven_scatter_pp``): a detector that hesitates between two cues for one leg's toe off (the pelvis's
dip at the end of double support merges with the loading peak on the shorter-stance leg: docs/
gait-physiology-real-vs-simulator.md) spreads that leg's stance shares over two clusters while the other leg's
stay tight, and the share of strides in the wrong cluster biases the leg's mean. Both legs of one walker scatter
alike from stride to stride, so the difference of their interquartile ranges of stance share, times the stride
time, bounds that bias; it is added in quadrature (judged with ``MIN_CONSISTENCY_STRIDES`` strides a side).

Units: s; fractions of the gait cycle; SI in percent.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from analytics.errors import InvalidSignal

CONFIRM_STEP_FRACTION = 0.25
"""A thigh contact is confirmed by a pelvis contact within this fraction of the median step time."""
STRIDE_RATIO_LIMIT = math.sqrt(2.0)
"""A stride time further than this factor from the bout's rhythm is not one stride."""
MIN_RHYTHM_STRIDES = 3
"""Strides a bout needs before its median stride time is its rhythm (the median of three survives one bad one)."""
STEP_PHASE_LIMITS = (0.25, 0.75)
"""Where in its stride the single contralateral initial contact must lie (fraction of the stride)."""
STANCE_FRACTION_LIMITS = (0.45, 0.80)
"""Stance share of the stride accepted as walking."""
STANCE_CONSISTENCY = 0.10
"""Largest distance (fraction of the cycle) of a stride's stance share from its leg's median."""
MIN_CONSISTENCY_STRIDES = 5
"""Strides of one leg needed before its median stance share is used to judge consistency."""
MIN_STRIDES_PER_SIDE = 10
"""Fewest summarised strides per side for a session's stance-time asymmetry to be shown."""
SOURCES_DISAGREE_PP = 10.0
"""Largest difference (percentage points) between the thigh-event and pelvis-event stance SI."""

STRIDE_FLAGS = {
    "not_a_stride": "the stride does not end after it starts (two contacts of one foot at one time)",
    "off_rhythm": "stride time more than a factor sqrt(2) from the bout's rhythm (a missed or extra contact)",
    "steps_not_alternating": "not exactly one opposite-foot contact inside the stride",
    "uneven_steps": "the opposite-foot contact lies outside the middle half of the stride",
    "stance_implausible": "stance share of the stride outside 0.45-0.80 (not a walking stance)",
    "stance_inconsistent": "stance share more than 0.10 of the cycle from the same leg's median",
    "pelvis_contact_in_stride": "a contact bounding the stride, or the opposite foot's inside it, is one the pelvis "
    "placed where the thighs gave none it confirmed: the stride's timing and checks mix two sources",
}
"""Per-stride codes of the rules above; a stride with any of them is excluded from summaries."""

PELVIS_SIDE_TIMING_ERROR_S = 0.025
"""sigma_d of pelvis-alone events: RMS left-minus-right mean stance error, real trials vs optical capture (s)."""
SIDE_TIMING_ERROR_FLOOR_S = 0.006
"""sigma_d beyond stride-to-stride scatter over the real trials and both paths (s): with a cross-check only."""
COMMON_TIMING_ERROR_S = 0.051
"""sigma_c: RMS mean stance-time error on the shared real trials vs optical capture (s)."""

WITHHELD_TOO_FEW_STRIDES = "asymmetry_too_few_strides"
WITHHELD_SOURCES_DISAGREE = "asymmetry_sources_disagree"


def _as_1d(name: str, values: object, *, finite: bool = True) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidSignal(f"{name} must be numbers (s): {exc}") from exc
    if arr.ndim != 1:
        raise InvalidSignal(f"{name} must be a 1-D array of times (s), got shape {arr.shape}")
    if finite and not np.isfinite(arr).all():
        raise InvalidSignal(f"{name} contains NaN or infinite values")
    return arr


def _step_seconds(step_s: object) -> float:
    """``step_s`` as a positive, finite number of seconds (a bool or a string is refused, not coerced)."""
    if isinstance(step_s, bool) or not isinstance(step_s, (int, float, np.integer, np.floating)):
        raise InvalidSignal(f"step_s must be a positive number of seconds, got {step_s!r}")
    value = float(step_s)
    if not math.isfinite(value) or value <= 0:
        raise InvalidSignal(f"step_s must be a positive number of seconds, got {step_s!r}")
    return value


def _median(values: np.ndarray) -> float:
    """``np.median`` of a non-empty 1-D array of finite numbers, the same value from one partial sort: np.median's
    own checks cost more than the work on a bout's few dozen. Its mean of the middle value(s) sums from +0.0, so
    +0.0 is added here too (it turns a median of -0.0 into 0.0, as np.median does, and changes nothing else)."""
    half = values.size // 2
    if values.size % 2:
        return float(np.partition(values, half)[half] + 0.0)
    part = np.partition(values, (half - 1, half))
    return float((part[half - 1] + part[half] + 0.0) / 2)


def median_step_s(initial_contact_s: object) -> float | None:
    """Median time (s) between consecutive initial contacts of a bout (one per step), None with fewer than 3."""
    t = np.sort(_as_1d("initial_contact_s", initial_contact_s))
    if t.size < 3:
        return None
    steps = t[1:] - t[:-1]
    steps = steps[steps > 0]
    return _median(steps) if steps.size else None


def bout_rhythm_s(stride_s: object) -> float:
    """The rhythm of a bout: median of its stride times (s), NaN with fewer than ``MIN_RHYTHM_STRIDES``."""
    times = _as_1d("stride_s", stride_s)
    return _median(times) if times.size >= MIN_RHYTHM_STRIDES else float("nan")


def confirm_contacts(thigh_ic_s: object, pelvis_ic_s: object, step_s: float) -> np.ndarray:
    """Which thigh initial contacts (s) a pelvis initial contact confirms (bool per thigh contact).

    One to one, nearest pairs first, within ``CONFIRM_STEP_FRACTION`` x ``step_s`` (the median step, s).
    """
    return confirming_contacts(thigh_ic_s, pelvis_ic_s, step_s) >= 0


def confirming_contacts(thigh_ic_s: object, pelvis_ic_s: object, step_s: float) -> np.ndarray:
    """The index (into ``pelvis_ic_s``) of the pelvis contact confirming each thigh initial contact, -1 for
    none: the pairing of ``confirm_contacts``."""
    thigh = _as_1d("thigh_ic_s", thigh_ic_s)
    pelvis = _as_1d("pelvis_ic_s", pelvis_ic_s)
    step_s = _step_seconds(step_s)
    tol = CONFIRM_STEP_FRACTION * step_s
    partner = np.full(thigh.size, -1, dtype=np.int64)
    if thigh.size == 0 or pelvis.size == 0:
        return partner
    # candidate pairs from sorted neighbours (a long bout holds thousands of contacts: no n x m matrix)
    order = np.argsort(pelvis, kind="stable")
    p_sorted = pelvis[order]
    lo = np.searchsorted(p_sorted, thigh - tol, side="left")
    hi = np.searchsorted(p_sorted, thigh + tol, side="right")
    # the pairs in plain Python: a few per contact, and the pairing below is a loop over them anyway
    t_list, p_list, order_list = thigh.tolist(), p_sorted.tolist(), order.tolist()
    pairs = []
    for i, (t, a, b) in enumerate(zip(t_list, lo.tolist(), hi.tolist(), strict=True)):
        for j in range(a, b):
            distance = abs(t - p_list[j])
            if distance <= tol:
                pairs.append((distance, i, j))
    pairs.sort()  # nearest first; ties: earlier thigh, then earlier pelvis contact
    paired = [-1] * thigh.size
    taken = [False] * pelvis.size
    for _, i, j in pairs:
        if paired[i] < 0 and not taken[j]:
            paired[i] = order_list[j]
            taken[j] = True
    return np.array(paired, dtype=np.int64)


MAX_STAND_IN_CANDIDATES = 64
"""Most pelvis contacts judged in one gap of the thigh contacts (the chain search is quadratic in them)."""


def pelvis_stand_ins(
    thigh_ic_s: object,
    thigh_side: Sequence[str],
    pelvis_ic_s: object,
    pelvis_side: Sequence[str],
    step_s: float,
) -> np.ndarray:
    """Which pelvis initial contacts stand in for steps the thigh contacts miss (bool per pelvis contact; rule
    1b of the module docstring).

    ``thigh_ic_s`` / ``thigh_side``: the confirmed thigh contacts of a stretch of walking (both feet);
    ``pelvis_ic_s`` / ``pelvis_side``: the pelvis contacts of it no thigh contact claimed; ``step_s``: the median
    step (s). In each gap between consecutive thigh contacts the longest chain of pelvis contacts is kept whose
    every step (the thigh contacts at its ends included) changes foot and lies within a factor
    ``STRIDE_RATIO_LIMIT`` of ``step_s``; a gap whose thigh contacts already fit needs none, a gap with no such
    chain or with two equally long ones keeps none. Nothing is added before the first thigh contact or after the
    last: where a walk starts and stops stays the thighs' to say.
    """
    thigh = _as_1d("thigh_ic_s", thigh_ic_s)
    pelvis = _as_1d("pelvis_ic_s", pelvis_ic_s)
    if len(thigh_side) != thigh.size or len(pelvis_side) != pelvis.size:
        raise InvalidSignal("thigh_side and pelvis_side must have one entry per contact")
    for name, sides in (("thigh_side", thigh_side), ("pelvis_side", pelvis_side)):
        wrong = [s for s in sides if s not in ("left", "right")]
        if wrong:
            raise InvalidSignal(f"{name} must hold 'left' or 'right' per contact, got {wrong[0]!r}")
    step_s = _step_seconds(step_s)
    keep = np.zeros(pelvis.size, dtype=bool)
    if pelvis.size == 0:
        return keep
    t_order = np.argsort(thigh, kind="stable")
    t_times, t_sides = thigh[t_order], [thigh_side[k] for k in t_order]
    p_order = np.argsort(pelvis, kind="stable")
    p_times = pelvis[p_order]
    bounds = np.searchsorted(t_times, p_times, side="left")  # gap g: between thigh contacts g-1 and g
    for gap in np.unique(bounds):
        members = np.flatnonzero(bounds == gap)
        if gap == 0 or gap == t_times.size or members.size > MAX_STAND_IN_CANDIDATES:
            continue  # before the first thigh contact or after the last: the bout's ends stay the thighs'
        before = (t_times[gap - 1], t_sides[gap - 1])
        after = (t_times[gap], t_sides[gap])
        nodes = [(float(p_times[m]), pelvis_side[p_order[m]]) for m in members]
        chain = _longest_chain(nodes, before, after, step_s)
        for k in chain:
            keep[p_order[members[k]]] = True
    return keep


def _fits_step(a: tuple[float, str], b: tuple[float, str], step_s: float) -> bool:
    """One step from contact a to contact b: the foot changes and the time is within the rhythm's bounds."""
    ratio = (b[0] - a[0]) / step_s
    return a[1] != b[1] and 1.0 / STRIDE_RATIO_LIMIT <= ratio <= STRIDE_RATIO_LIMIT


def _longest_chain(
    nodes: list[tuple[float, str]], before: tuple[float, str], after: tuple[float, str], step_s: float
) -> list[int]:
    """Indices of the unique longest chain of ``nodes`` (time order) from ``before`` to ``after`` in which every
    step fits (``_fits_step``); [] when none exists or two are equally long."""
    n = len(nodes)
    # best[k]: (length, number of chains of that length, predecessor) of chains from ``before`` ending at node k
    best: list[tuple[int, int, int]] = []
    for k in range(n):
        length, count, pred = (1, 1, -1) if _fits_step(before, nodes[k], step_s) else (0, 0, -1)
        for j in range(k):
            if best[j][0] > 0 and _fits_step(nodes[j], nodes[k], step_s):
                if best[j][0] + 1 > length:
                    length, count, pred = best[j][0] + 1, best[j][1], j
                elif best[j][0] + 1 == length:
                    count += best[j][1]
        best.append((length, count, pred))
    ends = [k for k in range(n) if best[k][0] > 0 and _fits_step(nodes[k], after, step_s)]
    if not ends:
        return []
    top = max(best[k][0] for k in ends)
    if sum(best[k][1] for k in ends if best[k][0] == top) != 1:
        return []
    k = next(k for k in ends if best[k][0] == top)
    chain = []
    while k >= 0:
        chain.append(k)
        k = best[k][2]
    return chain[::-1]


def stride_problems(
    side: Sequence[str],
    start_s: object,
    end_s: object,
    stance_s: object,
    rhythm_stride_s: object,
    contact_s: object,
    contact_side: Sequence[str],
) -> list[list[str]]:
    """The rule codes (``STRIDE_FLAGS``) each stride breaks; [] for a plausible stride.

    Strides: ``side`` ("left"/"right"), ``start_s`` and ``end_s`` (its initial contact and the next one of the
    same foot), ``stance_s``, and ``rhythm_stride_s`` (the stride time of its bout's rhythm, NaN when unknown:
    then the rhythm rule is not applied). ``contact_s`` / ``contact_side``: every initial contact the strides
    were built from (both feet).
    """
    start = _as_1d("start_s", start_s)
    end = _as_1d("end_s", end_s)
    stance = _as_1d("stance_s", stance_s)
    rhythm = _as_1d("rhythm_stride_s", rhythm_stride_s, finite=False)  # NaN: no rhythm known
    sides, csides = np.asarray(side), np.asarray(contact_side)
    if sides.ndim != 1 or csides.ndim != 1:
        raise InvalidSignal("side and contact_side must be one 'left' or 'right' per stride and per contact")
    n = start.size
    if not (end.size == stance.size == rhythm.size == sides.size == n):
        raise InvalidSignal("side, start_s, end_s, stance_s and rhythm_stride_s must have one entry per stride")
    contacts = _as_1d("contact_s", contact_s)
    if csides.size != contacts.size:
        raise InvalidSignal("contact_s and contact_side must have one entry per contact")
    return _stride_problems_listed(
        sides.tolist(),
        start.tolist(),
        end.tolist(),
        stance.tolist(),
        rhythm.tolist(),
        contacts.tolist(),
        csides.tolist(),
    )


def _stride_problems_listed(
    sides: list[Any],
    start: list[float],
    end: list[float],
    stance: list[float],
    rhythm: list[float],
    contacts: list[float],
    contact_sides: list[Any],
) -> list[list[str]]:
    """`stride_problems` of checked inputs as Python lists (the sides as numpy reads them back: ``tolist`` of their
    arrays), stride by stride: the same IEEE arithmetic and comparisons as its arrays, without numpy's per-call
    cost, which exceeds the rules' work on a window's dozen strides. Start, end, stance and contact times are finite
    (checked); a rhythm is any number."""
    low, high = 1 / STRIDE_RATIO_LIMIT, STRIDE_RATIO_LIMIT
    # the opposite foot's contacts (every contact not of this leg), sorted: finite, so bisect orders as np.sort
    left = sorted(t for t, s in zip(contacts, contact_sides, strict=True) if s != "left")
    right = sorted(t for t, s in zip(contacts, contact_sides, strict=True) if s != "right")
    fractions: list[float] = []
    hits: list[tuple[bool, bool, bool, bool, bool]] = []
    for side, a, b, st, r in zip(sides, start, end, stance, rhythm, strict=True):
        stride = b - a
        degenerate = not stride > 0
        if degenerate:
            stride = math.nan
        fraction = st / stride
        off_rhythm = r > 0 and math.isfinite(ratio := stride / r) and (ratio > high or ratio < low)
        count, first = 0, math.nan
        times = left if side == "left" else right if side == "right" else None
        if times is not None:
            lo = bisect.bisect_right(times, a)
            count = bisect.bisect_left(times, b) - lo
            if times:
                first = times[min(lo, len(times) - 1)]
        not_alternating = count != 1
        phase = (first - a) / stride
        uneven = not not_alternating and (phase < STEP_PHASE_LIMITS[0] or phase > STEP_PHASE_LIMITS[1])
        implausible = fraction < STANCE_FRACTION_LIMITS[0] or fraction > STANCE_FRACTION_LIMITS[1]
        fractions.append(fraction)
        hits.append((degenerate, off_rhythm, not_alternating, uneven, implausible))
    inconsistent = [False] * len(fractions)
    for leg in ("left", "right"):
        mine = [k for k, (side, h) in enumerate(zip(sides, hits, strict=True)) if side == leg and not any(h)]
        if len(mine) >= MIN_CONSISTENCY_STRIDES:
            median = _median_of(sorted(fractions[k] for k in mine))
            for k in mine:
                inconsistent[k] = abs(fractions[k] - median) > STANCE_CONSISTENCY
    codes = ("not_a_stride", "off_rhythm", "steps_not_alternating", "uneven_steps", "stance_implausible")
    return [
        [code for code, hit in zip(codes, h, strict=True) if hit] + (["stance_inconsistent"] if bad else [])
        for h, bad in zip(hits, inconsistent, strict=True)
    ]


def _median_of(ordered: list[float]) -> float:
    """`_median` of finite numbers already sorted (the same sums: +0.0 as np.median's mean adds it)."""
    half = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[half] + 0.0
    return (ordered[half - 1] + ordered[half] + 0.0) / 2


def asymmetry_verdict(n_left: int, n_right: int, si_pct: float | None, cross_check_si_pct: float | None) -> str | None:
    """Why the session's stance asymmetry must be withheld (a flag code), or None when it may be shown.

    ``n_left`` / ``n_right``: summarised strides per side; ``si_pct``: the SI to be shown; ``cross_check_si_pct``:
    the SI of the same bouts from the other event source (None when there is no second source).
    """
    if min(n_left, n_right) < MIN_STRIDES_PER_SIDE:
        return WITHHELD_TOO_FEW_STRIDES
    if si_pct is not None and cross_check_si_pct is not None and abs(si_pct - cross_check_si_pct) > SOURCES_DISAGREE_PP:
        return WITHHELD_SOURCES_DISAGREE
    return None


def event_timing_pp(
    si_pct: float, mean_stance_s: float, *, cross_checked: bool, cross_check_pp: float | None = None
) -> float:
    """Half-width (percentage points) that event timing adds to a 95 % interval of the stance SI (module
    docstring): 1.96 x sqrt((100 sigma_d / S)^2 + (SI sigma_c / S)^2), sigma_d the floor when a second event source
    checked the first (``cross_checked``; ``cross_check_pp``: the two sources' SI difference, added in
    quadrature), else the pelvis-alone figure."""
    if not (math.isfinite(si_pct) and math.isfinite(mean_stance_s) and mean_stance_s > 0):
        raise InvalidSignal(f"si_pct and a positive mean_stance_s are needed, got {si_pct!r}, {mean_stance_s!r}")
    sigma_d = SIDE_TIMING_ERROR_FLOOR_S if cross_checked else PELVIS_SIDE_TIMING_ERROR_S
    side = 100.0 * sigma_d / mean_stance_s
    common = abs(si_pct) * COMMON_TIMING_ERROR_S / mean_stance_s
    observed = abs(cross_check_pp) if cross_checked and cross_check_pp is not None else 0.0
    return math.hypot(1.96 * math.hypot(side, common), observed)


def honest_si_interval(si_pct: float, sampling_ci_pct: Sequence[float], timing_pp: float) -> list[float]:
    """The 95 % interval of a stance SI (%): each half-width of the sampling (bootstrap) interval combined in
    quadrature with ``timing_pp`` (event_timing_pp)."""
    lo, hi = (float(v) for v in sampling_ci_pct)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi and math.isfinite(timing_pp) and timing_pp >= 0):
        raise InvalidSignal(
            f"sampling_ci_pct must be two finite numbers, low first, and timing_pp >= 0: {sampling_ci_pct!r}, "
            f"{timing_pp!r}"
        )
    # a percentile interval may (rarely) not hold its point estimate: a half-width is never taken below zero
    below, above = max(si_pct - lo, 0.0), max(hi - si_pct, 0.0)
    return [min(lo, si_pct - math.hypot(below, timing_pp)), max(hi, si_pct + math.hypot(above, timing_pp))]


def uneven_scatter_pp(
    left_share: Sequence[float], right_share: Sequence[float], stride_s: float, mean_stance_s: float
) -> float:
    """SI half-width (pp) from one leg's stance shares scattering more than the other's (module docstring):
    100 |IQR_L - IQR_R| stride / S; 0 with fewer than MIN_CONSISTENCY_STRIDES shares a side."""
    left, right = _as_1d("left_share", left_share), _as_1d("right_share", right_share)
    if min(left.size, right.size) < MIN_CONSISTENCY_STRIDES:
        return 0.0
    if not (math.isfinite(stride_s) and stride_s > 0 and math.isfinite(mean_stance_s) and mean_stance_s > 0):
        raise InvalidSignal(f"stride_s and mean_stance_s must be positive, got {stride_s!r}, {mean_stance_s!r}")
    spread = [float(np.subtract(*np.percentile(x, [75, 25]))) for x in (left, right)]
    return 100.0 * abs(spread[0] - spread[1]) * stride_s / mean_stance_s
