"""Subject and session ids -> file-name labels (BIDS labels are alphanumeric), one documented rule for every format.

The rule (a pure function of the id, so a subject keeps its label in every export, whoever else is exported):
- an id that is already a label (ASCII letters and digits only, non-empty) is its own label: ``S001`` -> ``S001``;
- any other id keeps its ASCII letters and digits and gets ``x`` + the first 8 hex digits of the SHA-256 of the id
  (UTF-8) appended: ``demo-001`` -> ``demo001x`` + 8 hex digits. The suffix tells ``demo-001`` from ``demo_001``
  and ``demo001``, which would all read ``demo001`` with the punctuation dropped.
`check_unique` refuses a set of ids where two different ids still share a label, compared without case (a hash
prefix collision, an id that happens to spell another's label, or ids differing only in case: ``S001`` and ``s001``
would be one folder on the case-insensitive file systems of macOS, Windows and exFAT drives): `LabelCollision`
names both. The original ids are written beside the
labels (participants.tsv / sessions.tsv in BIDS, ``subjects.csv`` / ``sessions.csv`` and a column in CSV/Parquet).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from export.errors import LabelCollision

_LABEL = re.compile(r"^[A-Za-z0-9]+$")
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
HASH_DIGITS = 8


def label(original: str) -> str:
    """The label of one id (see the module docstring)."""
    if _LABEL.match(original):
        return original
    digest = hashlib.sha256(original.encode("utf-8")).hexdigest()[:HASH_DIGITS]
    return f"{_NOT_ALNUM.sub('', original)}x{digest}"


def check_unique(originals: Iterable[str], what: str) -> dict[str, str]:
    """Labels of distinct ids, original -> label; LabelCollision when two ids share one (``what``: "subject",
    "session of subject S", named in the error)."""
    seen: dict[str, str] = {}
    out: dict[str, str] = {}
    for original in dict.fromkeys(originals):
        lab = label(original)
        key = lab.casefold()
        if key in seen:
            other = seen[key]
            if out[other] == lab:
                same = f"the label {lab!r}"
            else:
                same = f"the labels {out[other]!r} and {lab!r} (one name on a file system that ignores case)"
            raise LabelCollision(
                f"{what} ids {other!r} and {original!r} both map to {same}: rename one of them in the store, or "
                "export them separately"
            )
        seen[key] = original
        out[original] = lab
    return out
