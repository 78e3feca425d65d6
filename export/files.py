"""Files of an export: each written under a temporary hidden name beside its final one and renamed when complete,
so an interrupted export never leaves a file that looks complete (readers of Parquet datasets and the BIDS
validator skip hidden files); and the progress line, shown only on a terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from export.errors import InvalidExportRequest

PARTIAL = ".partial"


def partial_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{PARTIAL}")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s content to; renamed to ``path`` when the block ends without error,
    removed otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_text(path: Path) -> Iterator[IO[str]]:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as f:
        yield f


def write_text(path: Path, text: str) -> None:
    with atomic_text(path) as f:
        f.write(text)


def prepare_out(out: Path) -> None:
    """The output folder: created when missing; refused when it holds a previous export's manifest (an export
    never overwrites another) or is not a folder."""
    if out.exists() and not out.is_dir():
        raise InvalidExportRequest(f"--out {out}: exists and is not a folder")
    if (out / "manifest.json").exists():
        raise InvalidExportRequest(f"--out {out}: already holds an export (manifest.json): choose a new folder")
    out.mkdir(parents=True, exist_ok=True)


class Progress:
    """``exported 1,234,567 / 5,400,000 samples (23 %)`` on one line of stderr, redrawn at most 4 times a second,
    only when stderr is a terminal (quiet in pipes, logs and tests)."""

    def __init__(self, total: int, stream: Any = None, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = max(1, total)
        self.done = 0
        self._shown = 0.0

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._shown >= 0.25:
            self._shown = now
            self._draw()

    def _draw(self) -> None:
        pct = min(100, 100 * self.done // self.total)
        bar = "#" * (pct // 4) + "-" * (25 - pct // 4)
        self.stream.write(f"\r[{bar}] {self.done:,} / {self.total:,} samples ({pct} %)")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
