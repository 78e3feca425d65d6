"""The one rule that turns strides into a gait summary, shared by the simulator's truth and the analysis.

Rule (gaitsym.result/1): in each walking bout, the first and the last stride of each side are excluded
(gait initiation and termination: Mobilise-D practice); a side's summary value
is the mean over its included strides. A stride's step time runs from the previous initial contact of the other
foot in its bout, and is not measured where that step spans a missed contact or a contact the pelvis stood in
with (add_step_times). Asymmetry follows:

- symmetry index  SI  = 100 (L - R) / (0.5 (L + R))   [%], positive when left is larger
- ratio               = L / R                           [-] (Patterson 2010 recommends reporting it)
- gait asymmetry  GA  = 100 |ln(L / R)|                 [%] (Plotnik 2007)
- diff                = L - R                           [unit of the metric]

SI, ratio and GA are undefined (None) when a side is missing or not positive: pelvic drop can be zero or
negative (hip hiking), so for it `diff` (degrees) is the robust figure. The 95% interval of SI is a
percentile bootstrap over strides (resampling each side's strides), seeded so the same strides always give
the same interval (BOOTSTRAP_RESAMPLES = 2000 resamples: Efron & Tibshirani 1993 recommend >= 1000 for
percentile intervals).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

SIDES = ("left", "right")
ASYMMETRY_METRICS = ("stance_time_s", "step_time_s", "pelvic_drop_deg")
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240101
BOOTSTRAP_BATCH_DRAWS = 2**18


def symmetry_index_pct(left: float | None, right: float | None) -> float | None:
    """SI = 100 (L - R) / (0.5 (L + R)) in %, None unless both sides are positive numbers."""
    if left is None or right is None or left <= 0 or right <= 0:
        return None
    return 100.0 * (left - right) / (0.5 * (left + right))


def ratio(left: float | None, right: float | None) -> float | None:
    if left is None or right is None or left <= 0 or right <= 0:
        return None
    return left / right


def gait_asymmetry_pct(left: float | None, right: float | None) -> float | None:
    """GA = 100 |ln(L / R)| in %, None unless both sides are positive numbers."""
    if left is None or right is None or left <= 0 or right <= 0:
        return None
    return 100.0 * abs(math.log(left / right))


def mark_included(strides: Sequence[Mapping[str, Any]]) -> list[bool]:
    """For each stride, whether the summary rule includes it (not the first or last of its side in its bout)."""
    included = [True] * len(strides)
    by_bout_side: dict[tuple[int, str], list[int]] = {}
    for i, stride in enumerate(strides):
        by_bout_side.setdefault((int(stride["bout"]), str(stride["side"])), []).append(i)
    for indices in by_bout_side.values():
        ordered = sorted(indices, key=lambda i: float(strides[i]["start_s"]))
        included[ordered[0]] = False
        included[ordered[-1]] = False
    return included


def _values(strides: Iterable[Mapping[str, Any]], side: str, metric: str) -> np.ndarray:
    vals = [s.get(metric) for s in strides if s["side"] == side and s["included"]]
    return np.array([v for v in vals if v is not None and math.isfinite(v)], dtype=np.float64)


Resamples = dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]
"""Bootstrap indices by (n_left, n_right), shared by the asymmetry blocks of one summary (see asymmetry)."""


def _bootstrap_indices(n_left: int, n_right: int) -> tuple[np.ndarray, np.ndarray]:
    """BOOTSTRAP_RESAMPLES x n indices resampling each side with replacement, from BOOTSTRAP_SEED (left
    first). Drawn in the smallest integer type that holds them (int16 up to 32767 strides: a quarter of the
    random bits and memory traffic of int64, the same uniform draw)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    out = []
    for n in (n_left, n_right):
        dtype = np.int16 if n <= np.iinfo(np.int16).max else np.int64
        out.append(rng.integers(0, n, (BOOTSTRAP_RESAMPLES, n), dtype=dtype))
    return out[0], out[1]


def _resampled_means(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Means of ``values`` over each row of ``idx``, gathered in batches of at most BOOTSTRAP_BATCH_DRAWS
    values (memory stays ~8 bytes x that whatever the number of strides)."""
    batch = max(1, min(idx.shape[0], BOOTSTRAP_BATCH_DRAWS // values.size))
    means = np.empty(idx.shape[0])
    for start in range(0, idx.shape[0], batch):
        means[start : start + batch] = values[idx[start : start + batch]].mean(axis=1)
    return means


def asymmetry(
    left_values: np.ndarray, right_values: np.ndarray, bootstrap: bool, resamples: Resamples | None = None
) -> dict[str, Any]:
    """Per-side means and their SI, ratio, GA, diff; with a bootstrap 95% interval of SI if asked.

    The resampling indices depend only on the two sample sizes (they are drawn from BOOTSTRAP_SEED), so
    blocks with the same sizes share them: pass one ``resamples`` dict to the calls of one summary to draw
    them once (the intervals are bit-for-bit those of separate calls).
    """
    left = float(left_values.mean()) if left_values.size else None
    right = float(right_values.mean()) if right_values.size else None
    block: dict[str, Any] = {
        "left": left,
        "right": right,
        "n_left": int(left_values.size),
        "n_right": int(right_values.size),
        "diff": None if left is None or right is None else left - right,
        "si_pct": symmetry_index_pct(left, right),
        "ratio": ratio(left, right),
        "ga_pct": gait_asymmetry_pct(left, right),
        "si_ci95_pct": None,
    }
    if bootstrap and block["si_pct"] is not None and left_values.size >= 2 and right_values.size >= 2:
        key = (int(left_values.size), int(right_values.size))
        if resamples is None or key not in resamples:
            indices = _bootstrap_indices(*key)
            if resamples is not None:
                resamples[key] = indices
        else:
            indices = resamples[key]
        lm = _resampled_means(left_values, indices[0])
        rm = _resampled_means(right_values, indices[1])
        ok = (lm > 0) & (rm > 0)
        si = 100.0 * (lm[ok] - rm[ok]) / (0.5 * (lm[ok] + rm[ok]))
        if si.size:
            lo, hi = np.percentile(si, [2.5, 97.5])
            block["si_ci95_pct"] = [float(lo), float(hi)]
    return block


def summarize_gait(strides: Sequence[Mapping[str, Any]], bootstrap: bool = True) -> dict[str, Any]:
    """The gait summary of gaitsym.result/1 from strides that already carry ``included`` (see mark_included)."""
    resamples: Resamples = {}
    blocks = {
        metric: asymmetry(_values(strides, "left", metric), _values(strides, "right", metric), bootstrap, resamples)
        for metric in ASYMMETRY_METRICS
    }
    stance = blocks["stance_time_s"]
    return {
        "n_strides": {side: sum(1 for s in strides if s["side"] == side and s["included"]) for side in SIDES},
        "stance_time_s": {"left": stance["left"], "right": stance["right"]},
        "step_time_s": {"left": blocks["step_time_s"]["left"], "right": blocks["step_time_s"]["right"]},
        "stance_si_pct": stance["si_pct"],
        "stance_ratio": stance["ratio"],
        "stance_ga_pct": stance["ga_pct"],
        "pelvic_drop_deg": {
            "left": blocks["pelvic_drop_deg"]["left"],
            "right": blocks["pelvic_drop_deg"]["right"],
        },
        "asymmetry": blocks,
    }


STEP_RATIO_LIMIT = math.sqrt(2.0)
"""A step longer than this factor times the bout's median step spans a missed contact: no step time."""


def _median(values: list[float]) -> float:
    """``np.median`` of a non-empty list of floats, the same value without its per-call cost: the middle value, or
    the mean of the two middle ones, plus +0.0 as np.median's mean sums from it (a median of -0.0 reads 0.0)."""
    if any(math.isnan(v) for v in values):
        return math.nan
    ordered = sorted(values)
    half = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[half] + 0.0
    return (ordered[half - 1] + ordered[half] + 0.0) / 2


def add_step_times(strides: list[dict[str, Any]], initial_contacts: Sequence[Mapping[str, Any]] | None = None) -> None:
    """Fill each stride's step_time_s: its start minus the latest earlier contralateral initial contact of its bout.

    ``initial_contacts``: every initial contact the strides were built from (both feet; default: the strides'
    own starts and ends, which are all of them where every contact starts or ends a stride, as in the
    simulator's truth). A bout's contacts are those from its first stride's start on.
    The step time is None (not measured) where there is no such contact, where the step is longer than
    ``STEP_RATIO_LIMIT`` x the bout's median step (half its median stride time: a step of an asymmetric
    walker is never that long, a step across a missed contact is about three), or where either contact
    carries ``"source": "pelvis"`` (a contact the pelvis placed where the thighs gave none: its timing is not
    the thighs', so the step would mix two sources)."""
    by_bout: dict[int, list[dict[str, Any]]] = {}
    for stride in strides:
        by_bout.setdefault(int(stride["bout"]), []).append(stride)
    from_pelvis: dict[tuple[float, str], bool] = {}
    if initial_contacts is None:
        for stride in strides:
            for end in ("start_s", "end_s"):
                from_pelvis[(float(stride[end]), str(stride["side"]))] = False
    else:
        for c in initial_contacts:
            contact = (float(c["t_s"]), str(c["side"]))
            from_pelvis[contact] = from_pelvis.get(contact, False) or c.get("source") == "pelvis"
    # plain Python over a bout's few dozen contacts: numpy's per-call cost exceeds the work here
    per_side = {side: sorted(t for t, s in from_pelvis if s == side) for side in SIDES}
    # sorted() orders a list holding NaN arbitrarily: then numpy's search (NaN last) decides, as on an array
    searchable = {side: all(t == t for t in times) for side, times in per_side.items()}
    for mine in by_bout.values():
        first = min(float(s["start_s"]) for s in mine)
        step_limit = STEP_RATIO_LIMIT * 0.5 * _median([float(s["end_s"]) - float(s["start_s"]) for s in mine])
        for stride in mine:
            start, side = float(stride["start_s"]), str(stride["side"])
            stride["step_time_s"] = None
            other_side = "right" if side == "left" else "left"
            other = per_side.get(other_side)
            if other is None or from_pelvis.get((start, side), False):
                continue
            if searchable[other_side]:
                k = bisect.bisect_left(other, start) - 1
            else:
                k = int(np.searchsorted(np.array(other, dtype=np.float64), start, "left")) - 1
            if k < 0 or other[k] < first or from_pelvis[(float(other[k]), other_side)]:
                continue
            step = start - float(other[k])
            if step <= step_limit:
                stride["step_time_s"] = step
