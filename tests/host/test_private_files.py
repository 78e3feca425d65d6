"""Health data on the gateway and the analysis host is owner-only: the outbox, the embedded store and the
quarantine, with SQLite's -wal/-shm side files, and the folders gaitsym creates for them."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.stores.embedded import EmbeddedStore
from analytics.stores.errors import StoreConfigError
from analytics.stores.quarantine import Quarantine
from gaitsym_common.private_files import make_private_dir, prepare_private_sqlite
from sensor_gateway.outbox.store import Outbox


@pytest.fixture(autouse=True)
def _usual_umask() -> Iterator[None]:
    """The umask most hosts run with (022): files would be world-readable unless gaitsym says otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _assert_owner_only(folder: Path, stem: str) -> None:
    files = sorted(p for p in folder.iterdir() if p.name.startswith(stem))
    names = {p.name for p in files}
    assert {stem, f"{stem}-wal", f"{stem}-shm"} <= names, names  # WAL mode, open: both side files exist
    for path in files:
        assert _mode(path) == 0o600, f"{path.name} is {oct(_mode(path))}"


def test_outbox_and_its_folder_are_owner_only(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # an administrator's folder
    folder = tmp_path / "gateway" / "state"
    make_private_dir(folder)  # what the gateway runner does with its state folder
    outbox = Outbox(folder / "outbox.db")
    try:
        outbox.put("raw:S:1:0", "gaitsym/v1/s/raw/pelvis", b"payload of a patient", "raw")
        _assert_owner_only(folder, "outbox.db")
    finally:
        outbox.close()
    assert _mode(folder) == 0o700 and _mode(folder.parent) == 0o700
    assert _mode(tmp_path) == 0o755  # a folder that existed is left as its owner set it


def test_embedded_store_and_quarantine_are_owner_only(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "new" / "store.sqlite")
    quarantine = Quarantine(tmp_path / "new" / "quarantine.sqlite")
    try:
        quarantine.put("a batch", 400, "bad line", "server said no", ["raw,subject=s1 acc_x=1 1"])
        _assert_owner_only(tmp_path / "new", "store.sqlite")
        _assert_owner_only(tmp_path / "new", "quarantine.sqlite")
    finally:
        store.close()
        quarantine.close()
    assert _mode(tmp_path / "new") == 0o700


def test_files_left_world_readable_by_an_older_version_are_tightened(tmp_path: Path) -> None:
    old = tmp_path / "outbox.db"
    for path in (old, tmp_path / "outbox.db-wal", tmp_path / "outbox.db-shm"):
        path.touch()
        path.chmod(0o644)
    prepare_private_sqlite(old)
    for path in (old, tmp_path / "outbox.db-wal", tmp_path / "outbox.db-shm"):
        assert _mode(path) == 0o600, path.name


def test_a_store_path_that_cannot_be_created_is_a_typed_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreConfigError) as info:
        EmbeddedStore(blocker / "store.sqlite")
    assert "store.sqlite" in str(info.value)


def test_an_in_memory_store_and_quarantine_leave_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = EmbeddedStore(":memory:")
    store.quarantine.close()
    Quarantine(":memory:").close()
    assert list(tmp_path.iterdir()) == []
