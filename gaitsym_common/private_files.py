"""Files on the host that hold raw payloads or health data (outbox, embedded store, quarantine): owner-only.

SQLite creates a database file with mode 0644 less the process umask: readable by every local user. Its side
files (``-wal``, ``-shm``, ``-journal``) take the database file's own mode when SQLite creates them (SQLite copies
it, whatever the umask). So a database file created 0600 *before* SQLite first opens it keeps every side file
0600 too, with no window in which another user could open it. Folders gaitsym creates for them are 0700;
folders that already exist (chosen by an administrator) are left as they are.

Used by the analytics side as well (the lowest package that writes such files): no imports beyond the standard
library.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["FILE_MODE", "FOLDER_MODE", "SQLITE_SIDE_FILES", "make_private_dir", "prepare_private_sqlite"]

FILE_MODE = 0o600
FOLDER_MODE = 0o700
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def make_private_dir(path: str | Path) -> Path:
    """Create ``path`` and any missing parent, each folder created here 0700; existing folders are untouched."""
    path = Path(path)
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue  # created meanwhile by another process: not ours to change
        os.chmod(folder, FOLDER_MODE)  # exact, whatever the umask
    return path


def _owner_only(path: Path) -> None:
    """Take group and other permissions away from an existing file of ours (one made before this rule)."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        st = path.stat()
        if st.st_uid == os.geteuid() and st.st_mode & 0o077:
            os.chmod(path, st.st_mode & 0o700)


def prepare_private_sqlite(path: str | Path) -> Path:
    """Before ``sqlite3.connect(path)``: the folder (0700 when made here), the database file created 0600 if
    missing, and an existing database or side file of ours made owner-only. Returns ``path``."""
    path = Path(path)
    make_private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    os.close(fd)
    for candidate in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_SIDE_FILES)):
        _owner_only(candidate)
    return path
