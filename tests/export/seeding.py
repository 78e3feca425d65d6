"""A store seeded directly with what the worker would have written (fast): three sensors of one session in
100-sample batches, optionally a recorded gap, the sensors' declarations, and the session's results."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from analytics.stores.embedded import EmbeddedStore
from analytics.stores.model import GapRecord, Provenance, results_from_document
from export.run import ExportRequest, run_export
from gaitsym_common.uplink.envelope import ClockMapping, SensorIdentity
from testing.stores.storelib import T0_UTC_S, batch, result_doc

SUBJECT = "P-01"
SESSION = "P-01/s1"
SERIALS = {"pelvis": "GS-PLV-9001", "left_thigh": "GS-LTH-9002", "right_thigh": "GS-RTH-9003"}
AWKWARD = np.array([0.1, 1 / 3, 1e-310, 5e-324, 1.7976931348623157e308, 9.80665 * 16 / 32768 * 12345, -2.5])


def seed(
    store: EmbeddedStore,
    *,
    skip: dict[str, int] | None = None,
    declared: bool = True,
    same_clock: bool = False,
    n_batches: int = 12,
    results: bool = True,
    session: str = SESSION,
    t0_utc_s: float = T0_UTC_S,
    doc: dict[str, Any] | None = None,
    boot_base: int = 10,
) -> None:
    """Three sensors of one session, 100-sample batches at 100 Hz from ``t0_utc_s``; ``skip``: a batch index a
    placement lost (a recorded gap); ``same_clock``: the three share ticks and mapping (one timeline); ``doc``:
    the session's gaitsym.result/1 document (default: 6 strides, one exercise set, a summary)."""
    for i, (placement, serial) in enumerate(SERIALS.items()):
        boot = boot_base + i
        drift = 12.5 if same_clock else 5.0 * (i + 1)
        clock = ClockMapping(True, 5_000_000, t0_utc_s, 1.0 / (1.0 + drift * 1e-6), drift, 0.8)
        for k in range(n_batches):
            if (skip or {}).get(placement) == k:
                store.write_gap(
                    GapRecord(SUBJECT, session, placement, serial, boot, k * 100, k * 100 + 99, 1.0, "lost")
                )
                continue
            b = batch(SUBJECT, seq_first=k * 100, placement=placement, serial=serial, boot_epoch=boot,
                      session=session, clock=clock)  # fmt: skip
            if k == 0 and placement == "pelvis":  # values whose text form is easy to get wrong
                values = np.hstack([b.acc_mps2, b.gyr_dps])
                values[: len(AWKWARD), 0] = AWKWARD
                b = replace(b, acc_mps2=values[:, :3].copy())
            if declared:
                b = replace(b, sensor=SensorIdentity(serial, boot, 100.0, 16, 2000, "2.1.0"))
            store.write_raw(b)
    if results:
        prov = Provenance("an-1", 2, "gaitsym.analysis 0.1.0", clock={"pelvis": {"serial": "GS-PLV-9001"}})
        t0 = round(t0_utc_s * 1e6) + 1_000_000
        store.replace_results(
            results_from_document(
                doc if doc is not None else result_doc(n_strides=6),
                subject=SUBJECT,
                session=session,
                t0_us=t0,
                provenance=prov,
            )
        )


def export(store: EmbeddedStore, out: Path, fmt: str, **kw: object) -> Path:
    run_export(store, ExportRequest((SUBJECT,), fmt, out, **kw))  # type: ignore[arg-type]
    return out


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)
