"""Pure parts: the write-error sorting rule, timestamps, line protocol, result documents -> points."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from analytics.stores.errors import InvalidBatch, WriteAction, retry_after_s, sort_write_error
from analytics.stores.model import (
    SENSOR_SLOT_US,
    Point,
    Provenance,
    point_line,
    raw_lines,
    raw_time_us,
    results_from_document,
    samples_from_arrays,
)
from testing.stores.storelib import T0_UTC_S, batch, new_subject, result_doc, synced_clock, unsynced_clock


@pytest.mark.parametrize(
    ("status", "n_lines", "message", "action"),
    [
        (400, 10, "unable to parse", WriteAction.QUARANTINE),
        (422, 10, "", WriteAction.QUARANTINE),
        (400, 10, "partial write: points beyond retention policy dropped=3", WriteAction.QUARANTINE),
        (413, 10, "", WriteAction.SPLIT),
        (413, 1, "", WriteAction.QUARANTINE),
        (429, 10, "", WriteAction.RETRY),
        (500, 10, "", WriteAction.RETRY),
        (503, 10, "", WriteAction.RETRY),
        (None, 10, "", WriteAction.RETRY),
        (401, 10, "", WriteAction.RETRY),
        (404, 10, 'database not found: "gaitsym"', WriteAction.RETRY),
        (400, 10, "retention policy not found: raw", WriteAction.RETRY),
    ],
)
def test_sort_write_error(status: int | None, n_lines: int, message: str, action: WriteAction) -> None:
    assert sort_write_error(status, n_lines=n_lines, message=message).action is action


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    delays = [sort_write_error(503, n_lines=5, attempt=a, max_delay_s=4.0).delay_s for a in range(1, 7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert sort_write_error(429, n_lines=5, retry_after="12").delay_s == 12.0
    assert sort_write_error(None, n_lines=5, retry_after="12").delay_s == 0.5  # no answer, no header
    assert retry_after_s("Wed, 21 Oct 2015 07:28:10 GMT", now_s=1445412480.0) == 10.0
    assert retry_after_s("soon") is None
    with pytest.raises(ValueError):
        sort_write_error(204, n_lines=1)


def test_timestamps_are_a_pure_function_of_ticks_and_mapping() -> None:
    clock = synced_clock()
    ticks = np.array([5_000_000, 5_010_000, 3_600_000_000_000])
    a, b = raw_time_us(ticks, clock, 1), raw_time_us(ticks.copy(), synced_clock(), 1)
    np.testing.assert_array_equal(a, b)
    assert a[0] == round(T0_UTC_S * 1e6) and a[1] - a[0] == 10_000  # 10 ms sensor -> 10 ms UTC (12.5 ppm fast)
    assert a[2] - a[0] == round((3_600_000_000_000 - 5_000_000) / (1 + 12.5e-6))
    s1 = raw_time_us(ticks, unsynced_clock(), 1)
    s2 = raw_time_us(ticks, unsynced_clock(), 2)
    assert bool((s1 < 0).all() and (s2 < 0).all()) and s2[0] - s1[0] == SENSOR_SLOT_US


def test_line_protocol_escapes_and_types() -> None:
    p = Point("stride", (("subject", "P 1,x"), ("side", "left")), {"a": 1.5, "n": 3, "ok": True, "s": 'q"\\'}, 7)
    assert point_line(p) == 'stride,side=left,subject=P\\ 1\\,x a=1.5,n=3i,ok=true,s="q\\"\\\\" 7'
    line = raw_lines(batch("P1", n=1))[0]
    assert line.startswith("raw,placement=pelvis,subject=P1 acc_x=") and "seq=0i,t_sensor_us=5000000i " in line
    with pytest.raises(InvalidBatch):
        point_line(Point("m", (("subject", "s"),), {"x": float("nan")}, 1))


def test_invalid_batches_are_named() -> None:
    good = batch(new_subject(), n=3)
    common: dict[str, Any] = dict(subject="P1", session=None, serial="X", boot_epoch=1, clock=synced_clock())
    with pytest.raises(InvalidBatch, match="placement"):
        samples_from_arrays(
            placement="knee",
            seq=good.seq,
            t_sensor_us=good.t_sensor_us,
            acc_mps2=good.acc_mps2,
            gyr_dps=good.gyr_dps,
            **common,
        )  # type: ignore[arg-type]
    with pytest.raises(InvalidBatch, match="arrays"):
        samples_from_arrays(
            placement="pelvis",
            seq=good.seq,
            t_sensor_us=good.t_sensor_us[:2],
            acc_mps2=good.acc_mps2,
            gyr_dps=good.gyr_dps,
            **common,
        )  # type: ignore[arg-type]
    with pytest.raises(InvalidBatch, match="seq"):
        samples_from_arrays(
            placement="pelvis",
            seq=good.seq[::-1],
            t_sensor_us=good.t_sensor_us,
            acc_mps2=good.acc_mps2,
            gyr_dps=good.gyr_dps,
            **common,
        )  # type: ignore[arg-type]


def test_result_document_to_points_uses_only_dashboard_tags() -> None:
    prov = Provenance(analysis_id="a", result_version=3, algorithm="g 1")
    res = results_from_document(result_doc(), subject="P1", session="S9", t0_us=1_000_000, provenance=prov)
    tag_keys = {k for p in res.points for k, _ in p.tags}
    assert tag_keys == {"subject", "side", "exercise"}
    assert res.start_us == 1_000_000 and res.end_us == 61_000_000 and res.result_version == 3
    with pytest.raises(InvalidBatch, match="schema"):
        results_from_document({"schema": "x"}, subject="P1", session="S", t0_us=0, provenance=prov)
