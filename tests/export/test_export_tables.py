"""The result tables have declared columns: a table with no row still has its header (CSV, TSV) and its columns
(Parquet), and every session's file of a table has the same columns, so a Parquet dataset read as one (pyarrow,
pandas) keeps every stored field of every session."""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from analytics.stores.embedded import EmbeddedStore
from export import labels
from export.columns import EXERCISE_SETS, RESULT_TABLES, SESSION_SUMMARY, STRIDES
from testing.stores.storelib import T0_UTC_S, result_doc
from tests.export.bids_check import check_beyond_validator, validate
from tests.export.seeding import SESSION, export, seed


def no_walking() -> dict[str, Any]:
    """An exercise-only session: no stride, no exercise set either (a calibration that found nothing)."""
    doc = result_doc(n_strides=0)
    doc["exercises"] = []
    return doc


def names(table: Any) -> list[str]:
    return [c.name for c in table.declared]


def test_a_session_without_strides_or_sets_has_every_table_with_its_columns(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    seed(store, n_batches=2, doc=no_walking())
    csv = export(store, tmp_path / "csv", "csv")
    folder = next(csv.glob("*/*/"))
    for name, table in RESULT_TABLES.items():
        frame = pd.read_csv(folder / f"{name}.csv")
        assert list(frame.columns) == names(table) and (len(frame) == 0) == (name != "session_summary"), name
    assert len(pd.read_csv(folder / "events.csv")) == 0
    parquet = export(store, tmp_path / "pq", "parquet")
    strides = ds.dataset(parquet / "strides", partitioning="hive").to_table()
    assert strides.num_rows == 0 and {"stance_time_s", "pelvic_drop_deg", "included"} <= set(strides.column_names)
    assert str(strides.schema.field("time_utc_us").type) == "timestamp[us, tz=UTC]"
    bids = export(store, tmp_path / "bids", "bids")
    derived = next((bids / "derivatives").rglob("*_strides.tsv")).read_text().splitlines()
    assert derived == ["\t".join(names(STRIDES))]
    events = next(bids.glob("sub-*/ses-*/motion/*_events.tsv")).read_text().splitlines()
    assert events == ["onset\tduration\ttrial_type\tside\texercise\tset\tstride_included"]
    assert validate(bids).errors == [] and check_beyond_validator(bids) == []


def test_a_session_without_results_has_the_summary_header(store: EmbeddedStore, tmp_path: Path) -> None:
    seed(store, n_batches=2, results=False)
    folder = next(export(store, tmp_path / "csv", "csv").glob("*/*/"))
    frame = pd.read_csv(folder / "session_summary.csv")
    assert list(frame.columns) == names(SESSION_SUMMARY) and len(frame) == 0


def test_the_readme_lists_every_column_of_every_table(store: EmbeddedStore, tmp_path: Path) -> None:
    seed(store, n_batches=2)
    for fmt in ("csv", "parquet"):
        readme = (export(store, tmp_path / fmt, fmt) / "README.md").read_text()
        for table in RESULT_TABLES.values():
            for column in table.declared:
                assert f"| `{column.name}` | {column.kind} |" in readme, (fmt, column.name)
        for line in ("#### strides", "#### exercise_sets", "#### session_summary"):
            assert line in readme


def test_parquet_sessions_read_as_one_keep_fields_the_first_session_lacks(store: EmbeddedStore, tmp_path: Path) -> None:
    withheld = result_doc(n_strides=0)  # first by label: its SI withheld, a clam set
    withheld["gait"]["summary"].update(stance_si_pct=None, stance_ratio=None, stance_ga_pct=None)
    withheld["exercises"][0].update(exercise="clam", metrics={"thigh_rotation_amplitude_deg": 31.5})
    reported = copy.deepcopy(result_doc(n_strides=6))  # second: SI reported, a metric no declaration names
    reported["exercises"][0]["metrics"]["novel_balance_score"] = 0.75
    first, second = "P-01/a", "P-01/b"
    seed(store, n_batches=2, session=first, doc=withheld)
    seed(store, n_batches=2, session=second, doc=reported, t0_utc_s=T0_UTC_S + 3600, boot_base=20)
    out = export(store, tmp_path / "pq", "parquet")
    for name in RESULT_TABLES:  # every session's file of a table: one schema
        files = sorted((out / name).rglob("*.parquet"))
        assert len(files) == 2 and pq.read_schema(files[0]) == pq.read_schema(files[1]), name
    summary = ds.dataset(out / "session_summary", partitioning="hive").to_table().to_pandas()
    assert list(summary["session"].unique()) == [labels.label(first), labels.label(second)]  # file order
    bilateral = summary[summary["side"] == "none"].set_index("session_id")
    assert pd.isna(bilateral.loc[first, "stance_si_pct"]) and bilateral.loc[second, "stance_si_pct"] == 6.25
    sets = pd.read_parquet(out / "exercise_sets").set_index("session_id")
    assert sets.loc[first, "thigh_rotation_amplitude_deg"] == 31.5 and sets.loc[second, "time_level_pct"] == 70.0
    assert pd.isna(sets.loc[first, "novel_balance_score"]) and sets.loc[second, "novel_balance_score"] == 0.75
    assert sets.columns.get_loc("novel_balance_score") < sets.columns.get_loc("flags")  # before the provenance
    csv = export(store, tmp_path / "csv", "csv")  # CSV: the same header in every session
    headers = {p.read_text().splitlines()[0] for p in csv.glob("*/*/exercise_sets.csv")}
    assert len(headers) == 1 and "novel_balance_score" in headers.pop()


@pytest.mark.parametrize(("field", "stored", "arrow_type"), [("n_holds", 2.5, "double"), ("reps", "many", "string")])
def test_a_value_that_does_not_fit_its_column_widens_it_for_the_whole_export(
    store: EmbeddedStore, tmp_path: Path, field: str, stored: object, arrow_type: str
) -> None:
    seed(store, n_batches=2)
    seed(store, n_batches=2, session=SESSION + "-2", t0_utc_s=T0_UTC_S + 3600, boot_base=20)
    # a stored field declared int holding a fraction, or text (a newer analysis, another tool): the first
    # session's; the column widens in every session's file, no value is lost or changed
    db = sqlite3.connect(tmp_path / "store.sqlite")
    with db:
        db.execute(
            f"UPDATE points SET fields = json_set(fields, '$.{field}', ?) WHERE measurement = 'exercise_set' "
            "AND time_us < ?",
            (stored, round((T0_UTC_S + 1800) * 1e6)),
        )
    db.close()
    out = export(store, tmp_path / "pq", "parquet")
    for path in (out / "exercise_sets").rglob("*.parquet"):
        assert str(pq.read_schema(path).field(field).type) == arrow_type
    sets = pd.read_parquet(out / "exercise_sets").set_index("session_id")
    assert sets.loc[SESSION, field] == stored
    assert sets.loc[SESSION + "-2", field] in (5, "5")
    declared = next(c for c in EXERCISE_SETS.declared if c.name == field)
    assert declared.kind == "int"
