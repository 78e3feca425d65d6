"""Scoring a gaitsym.result/1 gait block against a reference: events, stance times, and the stance SI a
clinician would read (reported, flagged or withheld).

References come from three places and are read into one ``GaitReference``:
- ``reference_<system>.json`` of a validation trial (``load_reference``): ``initial_contacts``,
  ``final_contacts`` (``[{t_s, side}]``), ``walking_bouts`` (``[{start_s, end_s}]``) and either ``stances``
  (``{side, ic_s, fc_s, stance_time_s, qc_ok}``; only ``qc_ok`` ones are used) or ``strides``
  (``{side, start_s, stance_time_s}``);
- the simulator's truth, itself a gaitsym.result/1 document (``reference_from_truth``).

Rules (the Mobilise-D evaluation of events, Micó-Amigo et al. 2023, J NeuroEng Rehabil 20:78, and the
project's summary rule):
- events are matched one-to-one, nearest first, within ``TOLERANCE_S`` (``analytics.validation.matching``);
  errors are detected - reference. Recall = matched / reference events; ``extra`` = detected ICs inside a
  reference walking bout (+-``BOUT_MARGIN_S``) that match no reference IC (duplicate or invented contacts);
  ``wrong_side`` = matched ICs whose side differs. Final contacts are matched by time only.
- stance error: for each reference stance, the detected stride of the same side starting nearest to its
  initial contact (within ``TOLERANCE_S``); error = detected stance - reference stance. Strides the analysis
  flags as implausible (``analytics.algorithms.stride_checks.STRIDE_FLAGS``) are left out: it shows them but
  never summarises them.
- the reference's stance SI follows the summary rule of gaitsym.result/1 (first and last stance of each side in
  each reference walking bout excluded, means per side, SI = 100 (L - R) / (0.5 (L + R))).
- what the analysis reports: ``summary.stance_si_pct``; "withheld" when it is null, "flagged" when the
  document carries a warning or withheld flag (``FLAG_SEVERITIES``), else "ok".

Optical capture sees only its camera volume: recall is judged against the events each reference has.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analytics.algorithms.stride_checks import STRIDE_FLAGS
from analytics.errors import RecordingError
from analytics.results.summary import symmetry_index_pct
from analytics.validation.matching import match_events

TOLERANCE_S = 0.2
"""Largest detected - reference distance (s) of a matched event (Mobilise-D's IC tolerance is 0.5 s; 0.2 s
keeps a contact from matching the neighbouring step, half a slow step)."""
BOUT_MARGIN_S = 0.25
"""Detected ICs this close (s) to a reference walking bout count towards ``extra``."""
FLAG_SEVERITIES = ("warning", "withheld")
"""Flags of these severities make a reported number "flagged"."""
IGNORED_FLAGS = frozenset({"thigh_missing"})
IMPLAUSIBLE_FLAGS = frozenset(STRIDE_FLAGS)
"""Strides the analysis itself marks as implausible are not scored (it excludes them from every summary);
``stance_n`` against ``n_ref_stance`` shows how many stances were scored."""
"""Flags that describe the kit rather than limit a number (a pelvis-only recording always has them)."""


@dataclass(frozen=True)
class GaitReference:
    """Reference events of one trial from one system (times in s from the first sample)."""

    system: str
    initial_contacts: tuple[tuple[float, str], ...]
    final_contacts: tuple[tuple[float, str], ...]
    stances: tuple[tuple[str, float, float], ...]
    """(side, initial contact s, stance time s)."""
    walking_bouts: tuple[tuple[float, float], ...]
    stance_si_pct: float | None


@dataclass
class GaitScore:
    """Raw material of the scores of one analysis against one reference; poolable by ``pool``."""

    n_ref_ic: int = 0
    n_ref_fc: int = 0
    n_ref_stance: int = 0
    ic_err_s: list[float] = field(default_factory=list)
    fc_err_s: list[float] = field(default_factory=list)
    stance_err_s: list[float] = field(default_factory=list)
    wrong_side: int = 0
    extra: int = 0
    si_reported: list[float | None] = field(default_factory=list)
    si_reference: list[float | None] = field(default_factory=list)
    si_status: list[str] = field(default_factory=list)
    si_flags: list[tuple[str, ...]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The table's figures: recall, MAE / bias (ms), counts, SI error (pp) per trial or pooled."""

        def ms(values: list[float], absolute: bool) -> float | None:
            if not values:
                return None
            arr = np.asarray(values) * 1e3
            return float(np.mean(np.abs(arr)) if absolute else np.mean(arr))

        si_err = [
            r - f
            for r, f, s in zip(self.si_reported, self.si_reference, self.si_status, strict=True)
            if r is not None and f is not None
        ]
        unflagged = [
            abs(r - f)
            for r, f, s in zip(self.si_reported, self.si_reference, self.si_status, strict=True)
            if r is not None and f is not None and s == "ok"
        ]
        return {
            "ic_recall": len(self.ic_err_s) / self.n_ref_ic if self.n_ref_ic else None,
            "ic_mae_ms": ms(self.ic_err_s, True),
            "ic_bias_ms": ms(self.ic_err_s, False),
            "extra_ic": self.extra,
            "wrong_side": self.wrong_side,
            "fc_recall": len(self.fc_err_s) / self.n_ref_fc if self.n_ref_fc else None,
            "fc_mae_ms": ms(self.fc_err_s, True),
            "fc_bias_ms": ms(self.fc_err_s, False),
            "stance_n": len(self.stance_err_s),
            "stance_ref_n": self.n_ref_stance,
            "stance_mae_ms": ms(self.stance_err_s, True),
            "stance_bias_ms": ms(self.stance_err_s, False),
            "si_abs_err_pp": float(np.mean(np.abs(si_err))) if si_err else None,
            "si_max_unflagged_err_pp": max(unflagged) if unflagged else None,
            "si_ok": self.si_status.count("ok"),
            "si_flagged": self.si_status.count("flagged"),
            "si_withheld": self.si_status.count("withheld"),
        }


def _side(value: Any, where: str) -> str:
    if value not in ("left", "right"):
        raise RecordingError(where, f"side must be 'left' or 'right', got {value!r}")
    return str(value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise RecordingError(where, f"expected a finite number, got {value!r}")
    return float(value)


def reference_stance_si(
    stances: Sequence[tuple[str, float, float]], bouts: Sequence[tuple[float, float]]
) -> float | None:
    """Stance SI of reference stances by the summary rule (first and last of each side in each bout excluded)."""
    groups: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for side, ic, stance in stances:
        bout = next((k for k, (a, b) in enumerate(bouts) if a - 1e-6 <= ic <= b + 1e-6), -1)
        groups.setdefault((bout, side), []).append((ic, stance))
    means: dict[str, list[float]] = {"left": [], "right": []}
    for (_, side), rows in groups.items():
        rows.sort()
        means[side] += [s for _, s in rows[1:-1]]
    left = float(np.mean(means["left"])) if means["left"] else None
    right = float(np.mean(means["right"])) if means["right"] else None
    return symmetry_index_pct(left, right)


def load_reference(path: Path) -> GaitReference:
    """A trial's ``reference_<system>.json`` (see the module docstring). Raises RecordingError if malformed."""
    where = str(path)
    try:
        doc = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise RecordingError(where, f"cannot read the reference: {exc}") from exc
    if not isinstance(doc, dict):
        raise RecordingError(where, "the reference must be a JSON object")
    system = Path(path).stem.removeprefix("reference_")
    try:
        ics = tuple((_number(e["t_s"], where), _side(e["side"], where)) for e in doc["initial_contacts"])
        fcs = tuple((_number(e["t_s"], where), _side(e["side"], where)) for e in doc["final_contacts"])
        bouts = tuple((_number(b["start_s"], where), _number(b["end_s"], where)) for b in doc["walking_bouts"])
        if "stances" in doc:
            stances = tuple(
                (_side(s["side"], where), _number(s["ic_s"], where), _number(s["stance_time_s"], where))
                for s in doc["stances"]
                if s.get("qc_ok", True)
            )
        else:
            stances = tuple(
                (_side(s["side"], where), _number(s["start_s"], where), _number(s["stance_time_s"], where))
                for s in doc["strides"]
                if s.get("stance_time_s") is not None
            )
    except (KeyError, TypeError) as exc:
        raise RecordingError(where, f"reference field missing or malformed: {exc!r}") from exc
    return GaitReference(system, ics, fcs, stances, bouts, reference_stance_si(stances, bouts))


def reference_from_truth(truth: Mapping[str, Any]) -> GaitReference:
    """The simulator's truth (a gaitsym.result/1 document) as a reference; its SI is the truth summary's."""
    gait = truth["gait"]
    return GaitReference(
        "truth",
        tuple((float(c["t_s"]), str(c["side"])) for c in gait["initial_contacts"]),
        tuple((float(c["t_s"]), str(c["side"])) for c in gait["final_contacts"]),
        tuple((str(s["side"]), float(s["start_s"]), float(s["stance_time_s"])) for s in gait["strides"]),
        tuple((float(b["start_s"]), float(b["end_s"])) for b in gait["bouts"]),
        gait["summary"]["stance_si_pct"],
    )


def _inside(t: float, bouts: Iterable[tuple[float, float]], margin: float) -> bool:
    return any(a - margin <= t <= b + margin for a, b in bouts)


def si_status(doc: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """("ok" | "flagged" | "withheld", codes of the flags behind it) of the document's stance SI."""
    codes = tuple(
        sorted(
            {
                str(f["code"])
                for f in doc["quality"]["flags"]
                if f.get("severity") in FLAG_SEVERITIES and f["code"] not in IGNORED_FLAGS
            }
        )
    )
    if doc["gait"]["summary"].get("stance_si_pct") is None:
        return "withheld", codes
    return ("flagged" if codes else "ok"), codes


def score_gait(doc: Mapping[str, Any], ref: GaitReference, score: GaitScore | None = None) -> GaitScore:
    """Add the scores of one analysis document against one reference to ``score`` (a new one if None)."""
    out = GaitScore() if score is None else score
    gait = doc["gait"]
    det_ic = [(float(c["t_s"]), str(c["side"])) for c in gait["initial_contacts"]]
    det_fc = [float(c["t_s"]) for c in gait["final_contacts"]]
    ref_ic_t = [t for t, _ in ref.initial_contacts]
    pairs = match_events(ref_ic_t, [t for t, _ in det_ic], TOLERANCE_S)
    out.n_ref_ic += len(ref_ic_t)
    out.ic_err_s += [det_ic[j][0] - ref_ic_t[i] for i, j in pairs]
    out.wrong_side += sum(det_ic[j][1] != ref.initial_contacts[i][1] for i, j in pairs)
    matched = {j for _, j in pairs}
    out.extra += sum(
        1 for j, (t, _) in enumerate(det_ic) if j not in matched and _inside(t, ref.walking_bouts, BOUT_MARGIN_S)
    )
    ref_fc_t = [t for t, _ in ref.final_contacts]
    out.n_ref_fc += len(ref_fc_t)
    out.fc_err_s += [det_fc[j] - ref_fc_t[i] for i, j in match_events(ref_fc_t, det_fc, TOLERANCE_S)]
    strides = [
        (str(s["side"]), float(s["start_s"]), float(s["stance_time_s"]))
        for s in gait["strides"]
        if not IMPLAUSIBLE_FLAGS & set(s.get("flags", ()))
    ]
    out.n_ref_stance += len(ref.stances)
    for side, ic, stance in ref.stances:
        near = [(abs(t - ic), st) for sd, t, st in strides if sd == side and abs(t - ic) <= TOLERANCE_S]
        if near:
            out.stance_err_s.append(min(near)[1] - stance)
    status, codes = si_status(doc)
    out.si_reported.append(gait["summary"].get("stance_si_pct"))
    out.si_reference.append(ref.stance_si_pct)
    out.si_status.append(status)
    out.si_flags.append(codes)
    return out


def pool(scores: Iterable[GaitScore]) -> GaitScore:
    """One score holding every trial's events and SI rows."""
    out = GaitScore()
    for s in scores:
        out.n_ref_ic += s.n_ref_ic
        out.n_ref_fc += s.n_ref_fc
        out.n_ref_stance += s.n_ref_stance
        out.ic_err_s += s.ic_err_s
        out.fc_err_s += s.fc_err_s
        out.stance_err_s += s.stance_err_s
        out.wrong_side += s.wrong_side
        out.extra += s.extra
        out.si_reported += s.si_reported
        out.si_reference += s.si_reference
        out.si_status += s.si_status
        out.si_flags += s.si_flags
    return out
