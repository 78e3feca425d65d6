"""Workers started together on one machine open the same quarantine file at the same moment: none may fail to
start ("database is locked" while another switches the new file to WAL)."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

from analytics.stores.quarantine import Quarantine

PROCESSES = 4
ROUNDS = 15


def _open(path: str, barrier: Any) -> str | None:
    barrier.wait()
    try:
        Quarantine(path).close()
    except Exception as exc:  # reported to the test, not raised in the pool
        return repr(exc)
    return None


def test_workers_opening_one_new_quarantine_file_together_all_start(tmp_path: Path) -> None:
    failures = []
    with mp.Manager() as manager, mp.Pool(PROCESSES) as pool:
        for r in range(ROUNDS):  # each round a new file: the switch to WAL is what races
            barrier = manager.Barrier(PROCESSES)
            path = str(tmp_path / f"round-{r}" / "quarantine.sqlite")
            Path(path).parent.mkdir()
            failures += [e for e in pool.starmap(_open, [(path, barrier)] * PROCESSES) if e]
    assert failures == []
    q = Quarantine(tmp_path / "round-0" / "quarantine.sqlite")
    assert q.entries() == []
    q.close()
