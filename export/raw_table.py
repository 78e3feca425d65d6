"""A raw chunk as the exported raw-sample table (`export.columns.RAW`): the store's values untouched (the same
float64 objects, never re-parsed), the UTC time null for samples that keep sensor time only, the batch key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from export.columns import RAW, SERIAL, Column, arrow_schema
from export.raw_stream import Chunk


def raw_columns(with_serials: bool, leading: tuple[Column, ...] = ()) -> list[Column]:
    return [*leading, *RAW, *((SERIAL,) if with_serials else ())]


def raw_output(
    chunk: Chunk, with_serials: bool, *, parquet: bool = False, constants: Mapping[str, str] | None = None
) -> Any:
    """The chunk's rows as a record batch of `raw_columns`; ``constants``: leading text columns holding one value
    (subject, session, placement in the Parquet dataset), dictionary-encoded (a few bytes per row group)."""
    import pyarrow as pa

    raw = chunk.raw
    n = chunk.n
    all_utc = bool(chunk.utc.all())
    time_utc = raw.column("time_us") if all_utc else pa.array(chunk.time_us, type=pa.int64(), mask=~chunk.utc)
    if parquet:
        time_utc = time_utc.cast(pa.timestamp("us", tz="UTC"))
    arrays: list[Any] = []
    names: list[str] = []
    for name, value in (constants or {}).items():
        arrays.append(pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value])))
        names.append(name)
    arrays += [time_utc, *(raw.column(c) for c in ("t_sensor_us", "seq", "boot_epoch"))]
    arrays += [raw.column(c) for c in ("acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")]
    unclaimed = chunk.batch_key < 0
    arrays.append(pa.array(chunk.batch_key, type=pa.int64(), mask=unclaimed if unclaimed.any() else None))
    names += [c.name for c in RAW]
    if with_serials:
        arrays.append(raw.column("serial"))
        names.append(SERIAL.name)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def raw_schema(with_serials: bool, parquet: bool, constants: tuple[Column, ...] = ()) -> Any:
    """The schema `raw_output` produces (units and meanings in each field's metadata)."""
    import pyarrow as pa

    schema = arrow_schema(raw_columns(with_serials, constants), parquet=parquet)
    for i, c in enumerate(constants):
        f = schema.field(i)
        schema = schema.set(i, pa.field(c.name, pa.dictionary(pa.int32(), pa.string()), metadata=f.metadata))
    return schema
