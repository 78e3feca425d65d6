"""The export's rules on a store seeded directly (fast): exact floats, gaps as n/a rows, the shared tracking system
only for one shared timeline, the effective rate from the clock mapping, labels, pseudonymity, older data without
the sensors' declarations, the raw-retention refusal, streaming across chunk boundaries, no complete-looking file
after an interruption, and the command line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from analytics.stores.embedded import EmbeddedStore
from analytics.stores.model import samples_from_arrays
from export import labels
from export.errors import LabelCollision, RawSamplesGone
from export.files import Progress
from export.run import ExportRequest, run_export
from gaitsym.cli import main
from gaitsym_common.uplink.envelope import SensorIdentity
from testing.stores.storelib import T0_UTC_S, synced_clock
from tests.export.bids_check import check_beyond_validator, motion_files, validate
from tests.export.seeding import AWKWARD, SERIALS, SESSION, SUBJECT, bits, export, seed


def test_csv_values_read_back_bit_for_bit_and_gaps_are_listed(store: EmbeddedStore, tmp_path: Path) -> None:
    seed(store, skip={"pelvis": 4})
    out = export(store, tmp_path / "csv", "csv", chunk_samples=250)  # chunks cut through batches and the gap
    folder = next(out.glob("*/*/"))
    stored = store.read_raw(SUBJECT, "pelvis")
    csv = pd.read_csv(folder / "raw_pelvis.csv")
    values = np.hstack([stored.acc_mps2, stored.gyr_dps])
    assert np.array_equal(bits(csv[["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]].to_numpy()), bits(values))
    assert bits(csv["acc_x"].to_numpy()[: len(AWKWARD)]).tolist() == bits(AWKWARD).tolist()
    with (folder / "raw_pelvis.csv").open() as f:  # also with Python's own float()
        next(f)
        first = [float(next(f).split(",")[4]) for _ in range(len(AWKWARD))]
    assert bits(np.array(first)).tolist() == bits(AWKWARD).tolist()
    assert np.array_equal(csv["time_utc_us"].to_numpy(), stored.time_us)
    gaps = pd.read_csv(folder / "gaps.csv")
    assert gaps[["placement", "seq_first_missing", "seq_last_missing", "n_missing", "reason"]].values.tolist() == [
        ["pelvis", 400, 499, 100, "lost"]
    ]
    assert gaps["time_before_utc_us"][0] == stored.time_us[399] and gaps["time_after_utc_us"][0] == stored.time_us[400]
    batches = pd.read_csv(folder / "batches.csv")
    assert set(batches["sample_rate_hz"]) == {100.0} and set(batches["firmware"]) == {"2.1.0"}
    assert (csv["batch"] >= 0).all()
    readme = (out / "README.md").read_text()
    for column in ("time_utc_us", "t_sensor_us", "seq", "acc_x", "gyr_z", "drift_ppm", "n_missing", "m/s²", "deg/s"):
        assert column in readme


def test_bids_validates_gaps_are_na_rows_and_each_sensor_is_its_own_tracksys(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    seed(store, skip={"left_thigh": 3})
    out = export(store, tmp_path / "bids", "bids", chunk_samples=333)
    report = validate(out)
    assert report.errors == [] and report.exit_code == 0, report.errors
    assert check_beyond_validator(out) == []
    files = motion_files(out)
    assert len(files) == 3 and {f.name.split("tracksys-")[1].split("_")[0] for f in files} == {
        "imupelvis", "imuleftthigh", "imurightthigh",
    }  # fmt: skip
    left = pd.read_csv(motion_files(out, "left_thigh")[0], sep="\t", header=None, na_values="n/a")
    assert (
        len(left) == 1200
        and left.iloc[300:400].isna().all().all()
        and not left.drop(range(300, 400)).isna().any().any()
    )
    stored = store.read_raw(SUBJECT, "left_thigh")
    assert np.allclose(left[6].dropna().to_numpy(), (stored.time_us - stored.time_us[0]) / 1e6, rtol=0, atol=1e-9)
    sidecar = json.loads(files[0].with_name(files[0].name.replace(".tsv", ".json")).read_text())
    assert sidecar["SamplingFrequency"] == 100.0 and sidecar["MissingValues"] == "n/a"
    # effective rate from the clock mapping: 100 sensor Hz at rate = 1 / (1 + drift) UTC s per sensor s
    drift = 5.0 * 2 if "leftthigh" in files[0].name else 5.0 if "pelvis" in files[0].name else 15.0
    assert sidecar["SamplingFrequencyEffective"] == pytest.approx(
        100.0 * (1 + drift * 1e-6), rel=1e-7
    )  # mapped times are whole µs
    participants = (out / "participants.tsv").read_text().splitlines()
    assert participants == ["participant_id\toriginal_id", f"sub-{labels.label(SUBJECT)}\t{SUBJECT}"]
    sessions = next(out.glob("sub-*/sub-*_sessions.tsv")).read_text()
    assert SESSION in sessions and f"ses-{labels.label(SESSION)}" in sessions
    events = pd.read_csv(next(out.glob("sub-*/ses-*/motion/*_events.tsv")), sep="\t", na_values="n/a")
    assert (events["trial_type"] == "initial_contact").sum() == 6 and "exercise_set" in set(events["trial_type"])


def test_one_tracksys_with_three_points_only_for_one_shared_timeline(store: EmbeddedStore, tmp_path: Path) -> None:
    seed(store, same_clock=True, n_batches=4)
    out = export(store, tmp_path / "bids", "bids")
    files = motion_files(out)
    assert [f.name.split("tracksys-")[1] for f in files] == ["imu_motion.tsv"]
    channels_path = files[0].with_name(files[0].name.replace("_motion.tsv", "_channels.tsv"))
    channels = pd.read_csv(channels_path, sep="\t", keep_default_na=False)
    assert set(channels["tracked_point"]) == {"pelvis", "leftthigh", "rightthigh", "n/a"}
    assert list(channels["type"]).count("LATENCY") == 1 and len(channels) == 19
    assert validate(out).errors == [] and check_beyond_validator(out) == []


def test_our_checks_catch_what_the_validator_does_not(store: EmbeddedStore, tmp_path: Path) -> None:
    seed(store, n_batches=2, results=False)
    out = export(store, tmp_path / "bids", "bids")
    assert check_beyond_validator(out) == []
    motion = motion_files(out)[0]
    channels = motion.with_name(motion.name.replace("_motion.tsv", "_channels.tsv"))
    text = motion.read_text()
    motion.write_text("\t".join(f"c{i}" for i in range(7)) + "\n" + text)
    assert any("header" in p for p in check_beyond_validator(out))
    motion.write_text(text)
    channels.write_text(channels.read_text().replace("GYRO", "EEG", 1))
    assert any("non-motion" in p for p in check_beyond_validator(out))
    channels.unlink()
    assert any("no _channels.tsv" in p for p in check_beyond_validator(out))


def test_parquet_is_one_typed_dataset_partitioned_by_subject_and_session(store: EmbeddedStore, tmp_path: Path) -> None:
    seed(store)
    out = export(store, tmp_path / "pq", "parquet", chunk_samples=500)
    table = ds.dataset(out / "raw", partitioning="hive").to_table()
    assert str(table.schema.field("time_utc_us").type) == "timestamp[us, tz=UTC]"
    assert (
        str(table.schema.field("acc_x").type) == "double"
        and table.schema.field("acc_x").metadata[b"unit"] == "m/s²".encode()
    )
    frame = table.to_pandas()
    assert set(frame["subject"]) == {labels.label(SUBJECT)} and set(frame["session_id"]) == {SESSION}
    stored = store.read_raw(SUBJECT, "pelvis")
    mine = frame[frame["placement"] == "pelvis"]
    assert np.array_equal(bits(mine[["acc_x", "acc_y", "acc_z"]].to_numpy()), bits(stored.acc_mps2))
    assert len(frame) == 3600


def test_no_serials_unless_asked_and_older_data_exports_declarations_as_unknown(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    seed(store, declared=False)
    for fmt in ("csv", "bids"):
        out = export(store, tmp_path / fmt, fmt)
        text = " ".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
        assert not any(s in text for s in SERIALS.values()), fmt
    batches = pd.read_csv(next((tmp_path / "csv").glob("*/*/")) / "batches.csv")
    assert batches[["sample_rate_hz", "acc_range_g", "gyr_range_dps", "firmware"]].isna().all().all()
    out = export(store, tmp_path / "csv-serials", "csv", with_serials=True)
    raw = pd.read_csv(next(out.glob("*/*/")) / "raw_pelvis.csv")
    assert set(raw["serial"]) == {SERIALS["pelvis"]}


def test_a_range_older_than_the_raw_retention_is_refused_naming_what_is_gone(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store.sqlite", raw_retention_s=3600.0)
    try:
        seed(store, n_batches=2)
        now = round((T0_UTC_S + 1800) * 1e6)
        since = round((T0_UTC_S - 2 * 86400) * 1e6)
        with pytest.raises(RawSamplesGone) as err:
            run_export(store, ExportRequest((SUBJECT,), "csv", tmp_path / "x", since_us=since, now_us=now))
        assert "raw retention" in str(err.value) and "0.0416667 days" in str(err.value)
        store.enforce_retention(now_s=T0_UTC_S + 2 * 86400)  # the raw samples are deleted, the results kept
        with pytest.raises(RawSamplesGone) as err:
            run_export(store, ExportRequest((SUBJECT,), "csv", tmp_path / "y", session=SESSION,
                                            since_us=since, now_us=round((T0_UTC_S + 2 * 86400) * 1e6)))  # fmt: skip
        assert f"session {SESSION}" in str(err.value) and not (tmp_path / "x").exists()
    finally:
        store.close()


def test_an_interrupted_export_leaves_no_complete_looking_file(store: EmbeddedStore, tmp_path: Path) -> None:
    seed(store)
    chunks = store.raw_chunks

    def failing(*args: object, **kw: object):  # type: ignore[no-untyped-def]
        for i, chunk in enumerate(chunks(*args, **kw)):  # type: ignore[arg-type]
            if i == 2:
                raise KeyboardInterrupt
            yield chunk

    store.raw_chunks = failing  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        export(store, tmp_path / "pq", "parquet", chunk_samples=300)
    left = [p for p in (tmp_path / "pq").rglob("*") if p.is_file()]
    assert left == []  # nothing half-written under a final name, no manifest


def test_labels_are_alphanumeric_stable_and_collisions_refused() -> None:
    assert labels.label("S001") == "S001"
    assert labels.label("demo-001").startswith("demo001x") and labels.label("demo-001") != labels.label("demo_001")
    assert labels.label("démo 1").isalnum() and labels.label("démo 1").isascii()
    assert labels.check_unique(["a-1", "a_1", "a1"], "subject")["a1"] == "a1"
    with pytest.raises(LabelCollision, match="'demo-001' and 'demo001x"):  # an id spelling another's label
        labels.check_unique(["demo-001", labels.label("demo-001")], "subject")


def test_progress_only_on_a_terminal() -> None:
    quiet = io.StringIO()
    p = Progress(100, stream=quiet)
    p.add(100)
    p.close()
    assert quiet.getvalue() == ""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    shown = Terminal()
    p = Progress(100, stream=shown)
    p.add(50)
    p.close()
    assert "50 / 100 samples" in shown.getvalue()


def test_the_command_exports_and_never_creates_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = EmbeddedStore(tmp_path / "store.sqlite")
    seed(s, n_batches=2, results=False)
    s.close()
    code = main(["export", "--subject", SUBJECT, "--format", "csv", "--out", str(tmp_path / "o"),
                 "--store", str(tmp_path / "store.sqlite")])  # fmt: skip
    assert code == 0 and (tmp_path / "o" / "manifest.json").exists()
    assert "exported 600 samples of 1 session(s)" in capsys.readouterr().out
    code = main(["export", "--subject", SUBJECT, "--format", "csv", "--out", str(tmp_path / "o2"),
                 "--store", str(tmp_path / "none.sqlite")])  # fmt: skip
    assert code == 2 and "no embedded store file" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists()
    code = main(["export", "--subject", SUBJECT, "--format", "csv", "--out", str(tmp_path / "o"),
                 "--store", str(tmp_path / "store.sqlite")])  # fmt: skip
    assert code == 2 and "already holds an export" in capsys.readouterr().err


def test_sensor_batches_keep_what_the_sensor_declared() -> None:
    s = EmbeddedStore(":memory:")
    try:
        b = samples_from_arrays(
            subject="Q1", session="s", placement="pelvis", serial="GS-1", boot_epoch=1, seq=[0, 1],
            t_sensor_us=[0, 10_000], acc_mps2=np.zeros((2, 3)), gyr_dps=np.zeros((2, 3)), clock=synced_clock(),
            sensor=SensorIdentity("GS-1", 1, 100.0, 8, 500, "3.0.1"),
        )  # fmt: skip
        s.write_raw(b)
        (record,) = s.raw_batches("Q1")
        assert (record.sample_rate_hz, record.acc_range_g, record.gyr_range_dps, record.firmware) == (
            100.0, 8, 500, "3.0.1",
        )  # fmt: skip
        chunks = list(s.raw_chunks("Q1", "pelvis", chunk_samples=1))  # the in-memory store's sqlite3 path
        assert [c.num_rows for c in chunks] == [1, 1] and chunks[1].column("seq").to_pylist() == [1]
    finally:
        s.close()
