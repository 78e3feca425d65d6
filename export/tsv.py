"""Tab-separated files as BIDS wants them: ``n/a`` for a value that does not exist, no quoting, optionally no
header row (``_motion.tsv``). Floats as the shortest text that reads back to the same float64 (Arrow's cast)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from export.files import atomic_path

NA = "n/a"


def text_columns(table: Any) -> Any:
    """Every column as text, nulls as ``n/a``, tabs and line breaks inside text replaced by spaces."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for col in table.columns:
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        text = col.cast(pa.string())
        if pa.types.is_string(col.type):
            text = pc.replace_substring_regex(text, r"[\t\r\n]", " ")
        columns.append(pc.fill_null(text, NA))
    return pa.Table.from_arrays(columns, names=table.column_names)


def tsv_options(quoting: str = "none") -> Any:
    import pyarrow.csv as pacsv

    # the header (when wanted) is written by `write_tsv` itself: Arrow quotes header names
    return pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style=quoting)


def write_tsv(path: Path, table: Any, header: bool = True, quoting: str = "none") -> None:
    """``quoting`` "needed" for tables whose text may hold quotes or tabs (JSON provenance: the derivatives)."""
    import pyarrow.csv as pacsv

    with atomic_path(path) as tmp, tmp.open("wb") as f:
        if header and table.num_columns:
            f.write(("\t".join(table.column_names) + "\n").encode("utf-8"))
        if table.num_rows:
            pacsv.write_csv(text_columns(table), f, write_options=tsv_options(quoting))
