"""The clinic folder's files: owner-only from the first byte, written atomically, owned by the user the clinic's
containers run as, and one `init` or `enrol` at a time.

Only what is the clinic's is ever made owner-only or given to that user: folders created here, the clinic folder
and what is in it. A folder that already exists outside it (deploy/clinic/ of the checkout, where the compose
variables go) keeps its mode and owner."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gaitsym.errors import ClinicSetupError

FILE_MODE, FOLDER_MODE = 0o600, 0o700
LOCK_FILE = ".lock"


@dataclass(frozen=True)
class Owner:
    """Who the clinic's containers run as, and so who owns every file of the clinic folder."""

    uid: int
    gid: int

    @classmethod
    def parse(cls, text: str) -> Owner:
        match = re.fullmatch(r"(\d+):(\d+)", text.strip())
        if match is None:
            raise ClinicSetupError(f"--run-as {text!r}: expected UID:GID (numbers), e.g. 1883:1883")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def default(cls) -> Owner:
        """The user running `init`; when that is root, uid/gid 1883 (no login, the broker image's own), so that no
        container of the clinic runs as root."""
        if os.geteuid() == 0:
            return cls(1883, 1883)
        return cls(os.geteuid(), os.getegid())


def give_to(path: Path, owner: Owner | None) -> None:
    """Make ``owner`` the owner of ``path`` (only root can; anyone else already owns what it writes)."""
    if owner is not None and os.geteuid() == 0:
        os.chown(path, owner.uid, owner.gid)


def make_folder(path: Path, owner: Owner | None) -> Path:
    """Create ``path`` 0700 (a missing parent too, with the default mode, like ``mkdir -p``); an existing folder is
    made 0700 too, so callers pass only the clinic's own folders."""
    path.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    os.chmod(path, FOLDER_MODE)
    give_to(path, owner)
    return path


def write_private(path: Path, text: str, owner: Owner | None = None) -> Path:
    """Write ``text`` to ``path`` atomically, mode 0600 from the first byte (a temporary file in the same folder,
    fsync'd, renamed over the old one): a reader sees the old file or the new one, never half of one.

    A missing folder is created owner-only; an existing one is left as it is (the compose variables go into
    deploy/clinic/ of the checkout, which must stay the checkout's)."""
    if not path.parent.exists():
        make_folder(path.parent, owner)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        give_to(Path(tmp), owner)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def owner_only_umask() -> Iterator[None]:
    """For files other programs create (openssl's keys): owner-only whatever the caller's umask."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


@contextlib.contextmanager
def clinic_lock(root: Path) -> Iterator[None]:
    """One `init` or `enrol` at a time on the clinic folder ``root``, which exists already (two enrolments must
    not overwrite each other's line). The folder itself is left as it is."""
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
