"""What an export refuses, and how it writes: a session running past --until is exported whole; a folder holding
an interrupted export's files (or anything else) is refused; ids that differ only in case are refused (one folder
on macOS, Windows, exFAT); a placement the protocol does not know never becomes a file name; every file is
owner-only and on disk before it gets its name; a store path that does not exist is never created."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pandas as pd
import pytest

from analytics.stores.embedded import EmbeddedStore
from analytics.stores.location import EmbeddedStoreMissing, existing_store
from export import labels
from export.errors import InvalidExportRequest, LabelCollision, UnknownPlacement
from export.files import partial_name
from export.run import ExportRequest, run_export
from gaitsym.cli import main
from report.build import render_report
from report.errors import StoreNotFound
from testing.stores.storelib import T0_UTC_S
from tests.export.seeding import SUBJECT, export, seed


def test_a_session_running_past_the_range_is_exported_whole_or_not_at_all(store: EmbeddedStore, tmp_path: Path) -> None:
    seed(store)  # 12 s of samples from T0
    seed(store, n_batches=2, session="P-01/later", t0_utc_s=T0_UTC_S + 3600, boot_base=20, results=False)
    until = round((T0_UTC_S + 5) * 1e6)  # the session starts in the range and runs 7 s past it
    out = export(store, tmp_path / "csv", "csv", until_us=until)
    (folder,) = out.glob("*/*/")  # the later session starts after --until: not exported
    for placement in ("pelvis", "left_thigh", "right_thigh"):
        raw = pd.read_csv(folder / f"raw_{placement}.csv")
        assert len(raw) == 1200 and raw["seq"].tolist() == list(range(1200)), placement
    assert len(pd.read_csv(folder / "strides.csv")) == 6
    # the mirror case: a session begun before --since is not exported (never its tail as if it were all of it)
    since = round((T0_UTC_S + 5) * 1e6)
    out = export(store, tmp_path / "since", "csv", since_us=since, until_us=round((T0_UTC_S + 7200) * 1e6))
    (folder,) = out.glob("*/*/")
    assert folder.name == labels.label("P-01/later") and len(pd.read_csv(folder / "raw_pelvis.csv")) == 200


def _interrupt_on(store: EmbeddedStore, placement: str) -> None:
    chunks = store.raw_chunks

    def failing(subject: str, p: str, **kw: object):  # type: ignore[no-untyped-def]
        for i, chunk in enumerate(chunks(subject, p, **kw)):  # type: ignore[arg-type]
            if p == placement and i == 1:
                raise KeyboardInterrupt
            yield chunk

    store.raw_chunks = failing  # type: ignore[method-assign]


def test_a_folder_holding_an_interrupted_export_is_refused(store: EmbeddedStore, tmp_path: Path) -> None:
    seed(store)
    _interrupt_on(store, "right_thigh")  # the last sensor: the others' files are complete
    with pytest.raises(KeyboardInterrupt):
        export(store, tmp_path / "csv", "csv", chunk_samples=300)
    left = sorted(p.name for p in (tmp_path / "csv").rglob("*") if p.is_file())
    assert left == ["raw_left_thigh.csv", "raw_pelvis.csv"]
    del store.raw_chunks  # the store reads again
    with pytest.raises(InvalidExportRequest, match=r"not empty \(.*raw_left_thigh\.csv.*Choose a new folder"):
        export(store, tmp_path / "csv", "csv")
    assert sorted(p.name for p in (tmp_path / "csv").rglob("*") if p.is_file()) == left  # nothing touched
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidExportRequest, match=r"notes\.txt"):
        export(store, tmp_path / "other", "parquet")


def test_a_folder_with_only_a_killed_exports_temporary_files_is_used(store: EmbeddedStore, tmp_path: Path) -> None:
    seed(store, n_batches=2)
    out = tmp_path / "csv"
    stale = partial_name(out / labels.label(SUBJECT) / "x" / "raw_pelvis.csv")
    stale.parent.mkdir(parents=True)
    stale.write_text("half a file")  # what a SIGKILL leaves: a hidden temporary file, empty folders
    export(store, out, "csv")
    assert (out / "manifest.json").exists()


def test_ids_differing_only_in_case_are_refused(store: EmbeddedStore, tmp_path: Path) -> None:
    with pytest.raises(LabelCollision, match="'S001' and 's001' both map to the labels 'S001' and 's001'"):
        labels.check_unique(["S001", "s001"], "subject")
    assert labels.check_unique(["S-1", "s-1"], "subject")  # the hash suffix tells these apart
    seed(store, n_batches=2)
    seed(store, n_batches=2, session="Home1", t0_utc_s=T0_UTC_S + 3600, boot_base=20)
    seed(store, n_batches=2, session="home1", t0_utc_s=T0_UTC_S + 7200, boot_base=30)
    with pytest.raises(LabelCollision, match="session of subject P-01 ids 'Home1' and 'home1'"):
        export(store, tmp_path / "csv", "csv")
    assert not (tmp_path / "csv").exists()


def test_a_placement_the_protocol_does_not_know_is_refused_before_writing(store: EmbeddedStore, tmp_path: Path) -> None:
    seed(store, n_batches=2)
    db = sqlite3.connect(tmp_path / "store.sqlite")  # another tool wrote to the store
    with db:
        db.execute("UPDATE raw SET placement = '../../evil' WHERE placement = 'pelvis'")
        db.execute(
            "UPDATE points SET tags = json_set(tags, '$.placement', '../../evil') WHERE measurement = 'raw_batch' "
            "AND json_extract(tags, '$.placement') = 'pelvis'"
        )
    db.close()
    for fmt in ("csv", "parquet", "bids"):
        with pytest.raises(UnknownPlacement, match=r"placement '\.\./\.\./evil', not one of pelvis, left_thigh"):
            export(store, tmp_path / fmt, fmt)
        assert not (tmp_path / fmt).exists()
    assert not list(tmp_path.rglob("*evil*"))


def test_every_file_is_owner_only_and_flushed_before_it_is_named(
    store: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(store, n_batches=2)
    flushed: set[str] = set()
    fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        flushed.add(os.readlink(f"/proc/self/fd/{fd}"))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    old_umask = os.umask(0o022)  # a usual umask: files would be world-readable
    try:
        for fmt in ("csv", "parquet", "bids"):
            out = export(store, tmp_path / fmt, fmt)
            files = [p for p in out.rglob("*") if p.is_file()]
            listed = json.loads((out / "manifest.json").read_text())["files"]
            assert len(files) == len(listed) + 1 > 10, fmt
            for path in files:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
                assert str(partial_name(path)) in flushed, path
            assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in out.rglob("*") if p.is_dir())
    finally:
        os.umask(old_umask)


def test_a_store_path_that_does_not_exist_is_refused_never_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo.sqlite"
    for location in (str(missing), f"file://{missing}"):
        with pytest.raises(EmbeddedStoreMissing, match=r"typo\.sqlite"):
            existing_store(location)
        with pytest.raises(StoreNotFound, match=r"typo\.sqlite"):
            render_report(location, SUBJECT)
        code = main(["export", "--subject", SUBJECT, "--format", "csv", "--out", str(tmp_path / "o"),
                     "--store", location])  # fmt: skip
        assert code == 2 and "no embedded store file" in capsys.readouterr().err
        assert not missing.exists() and not (tmp_path / "o").exists()
    assert existing_store("influx://u@127.0.0.1:1/db") == "influx://u@127.0.0.1:1/db"  # the server answers
    with pytest.raises(InvalidExportRequest):  # (the request is checked before the store is opened)
        run_export(EmbeddedStore(":memory:"), ExportRequest((), "csv", tmp_path / "p"))
