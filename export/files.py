"""Files of an export: each written under a temporary hidden name beside its final one, flushed to disk and
renamed when complete, so an interrupted export never leaves a file that looks complete (readers of Parquet
datasets and the BIDS validator skip hidden files), nor, after a power cut, a complete-looking name over lost
data; and the progress line, shown only on a terminal.

An export holds health data: its files are created owner-only (0600) and the folders it creates 0700.
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
FILE_MODE = 0o600
FOLDER_MODE = 0o700


def partial_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{PARTIAL}")


def is_partial(path: Path) -> bool:
    """A file an interrupted export left under its temporary name (never a complete file)."""
    return path.name.startswith(".") and path.name.endswith(PARTIAL)


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_folder(folder: Path) -> None:
    """``folder`` and its missing parents, each created owner-only (mkdir -p would create the parents with the
    default mode)."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for f in reversed(missing):
        f.mkdir(mode=FOLDER_MODE, exist_ok=True)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path, already created owner-only, to write ``path``'s content to (writers reopen it, which
    keeps its mode); when the block ends without error it is flushed to disk and renamed to ``path``, otherwise
    removed."""
    make_folder(path.parent)
    tmp = partial_name(path)
    tmp.unlink(missing_ok=True)  # a killed export's leftover: a new file, so the mode below is certain
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the rename itself on disk (not every system can fsync a folder)
        _fsync(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


@contextlib.contextmanager
def atomic_text(path: Path) -> Iterator[IO[str]]:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as f:
        yield f


def write_text(path: Path, text: str) -> None:
    with atomic_text(path) as f:
        f.write(text)


def leftovers(out: Path, limit: int = 3) -> list[Path]:
    """Up to ``limit`` files (or other non-folders) under ``out`` other than an interrupted export's temporary
    files: what an export would mix its own files with."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(out):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if not is_partial(path):
                found.append(path)
                if len(found) >= limit:
                    return found
    return found


def prepare_out(out: Path) -> None:
    """The output folder: created when missing; refused when it is not a folder, holds a previous export's
    manifest (an export never overwrites another), or holds any other file (an interrupted export's complete
    files, or anything else, would be mixed with this export's and look like part of it). Empty folders and an
    interrupted export's hidden temporary files are no reason to refuse: they are never read as export files,
    and a temporary file of the same name is replaced."""
    if out.exists() and not out.is_dir():
        raise InvalidExportRequest(f"--out {out}: exists and is not a folder")
    if (out / "manifest.json").exists():
        raise InvalidExportRequest(f"--out {out}: already holds an export (manifest.json): choose a new folder")
    if out.is_dir():
        found = leftovers(out)
        if found:
            names = ", ".join(str(p.relative_to(out)) for p in found)
            raise InvalidExportRequest(
                f"--out {out}: not empty ({names}{' ...' if len(found) >= 3 else ''}; no manifest.json, so not a "
                "complete export): an export writes only into a new or empty folder, so that no file in it is "
                "left from something else. Choose a new folder, or empty this one"
            )
    make_folder(out)


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
