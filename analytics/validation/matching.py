"""Matching detected events to reference events: greedy one-to-one, nearest pairs first, within a tolerance.

The rule of Mobilise-D's evaluation of initial contacts (Micó-Amigo et al. 2023, J NeuroEng Rehabil: ICs
matched within a tolerance, errors as detected - reference): every candidate pair closer than ``tol_s``
seconds is sorted by distance, and pairs are taken in that order when neither event is taken yet. Candidate
pairs come from sorted neighbours (searchsorted), so the cost grows with the events, not their product.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def match_events(reference_s: Sequence[float], detected_s: Sequence[float], tol_s: float) -> list[tuple[int, int]]:
    """[(reference index, detected index)] of one-to-one matches within ``tol_s`` seconds, nearest first."""
    ref = np.asarray(reference_s, dtype=np.float64)
    det = np.asarray(detected_s, dtype=np.float64)
    if ref.size == 0 or det.size == 0:
        return []
    order = np.argsort(det, kind="stable")
    det_sorted = det[order]
    lo = np.searchsorted(det_sorted, ref - tol_s, side="left")
    hi = np.searchsorted(det_sorted, ref + tol_s, side="right")
    counts = hi - lo
    ref_idx = np.repeat(np.arange(ref.size), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    det_pos = np.repeat(lo, counts) + offsets
    distance = np.abs(ref[ref_idx] - det_sorted[det_pos])
    near = distance <= tol_s  # the same test as |r - d| <= tol: searchsorted's bounds round differently
    ref_idx, det_pos, distance = ref_idx[near], det_pos[near], distance[near]
    taken_ref = np.zeros(ref.size, dtype=bool)
    taken_det = np.zeros(det.size, dtype=bool)
    pairs = []
    det_idx = order[det_pos]
    for k in np.lexsort((det_idx, ref_idx, distance)):  # ties: lower reference, then lower detection index
        i, j = int(ref_idx[k]), int(det_idx[k])
        if not taken_ref[i] and not taken_det[j]:
            taken_ref[i] = taken_det[j] = True
            pairs.append((i, j))
    return pairs
