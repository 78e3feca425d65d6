"""Where the tests find real recordings.

- The mobgap lab trials (Apache-2.0) are vendored in ``tests/data/mobgap-lab`` (attribution in
  ``tests/data/README.md``): always present, so the tests that use them never depend on where the checkout sits.
- Data that may not live in the repository (GPL-licensed trials such as ``neura-sample``) is read from the
  project's shared folder: ``../shared`` beside the checkout, or the folder named by ``GAITSYM_SHARED_DIR``. Only
  tests of that data skip, with the reason, when the folder is absent (CI always has it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MOBGAP_LAB = REPO / "tests" / "data" / "mobgap-lab"
"""Real lower-back recordings with two reference systems (INDIP, optical capture), vendored."""


def shared_dir() -> Path:
    """The shared data folder (``GAITSYM_SHARED_DIR``, else ``../shared`` beside the checkout)."""
    configured = os.environ.get("GAITSYM_SHARED_DIR")
    return Path(configured) if configured else REPO.parent / "shared"


def shared_validation(name: str) -> Path:
    """``shared/validation/NAME``; skips the calling test, saying why, when the shared folder is absent."""
    path = shared_dir() / "validation" / name
    if not path.is_dir():
        pytest.skip(
            f"{path} is absent: data that may not be vendored is read from the shared folder beside the "
            "checkout (or GAITSYM_SHARED_DIR)"
        )
    return path
