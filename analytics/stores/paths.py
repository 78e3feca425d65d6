"""Where the analytics side keeps its own files (quarantine, embedded store): never the current directory.

``$GAITSYM_STATE_DIR`` when set (deployments, tests), else ``$XDG_STATE_HOME/gaitsym`` or
``~/.local/state/gaitsym`` (the XDG base-directory default for state data).
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    explicit = os.environ.get("GAITSYM_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "gaitsym"
