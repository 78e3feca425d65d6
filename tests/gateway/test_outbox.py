"""Durable outbox: idempotent puts, order, acks, full policy, and kill -9 in the middle of writing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sensor_gateway.outbox import Outbox, OutboxFull, is_retryable
from sensor_gateway.outbox.store import OutboxCorrupt, OutboxError

ROOT = Path(__file__).resolve().parents[2]


def test_put_is_idempotent_and_pending_is_in_order(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    assert box.put("raw:A:1:0", "t/raw", b"x" * 10)
    assert box.put("raw:A:1:100", "t/raw", b"y" * 10)
    assert not box.put("raw:A:1:0", "t/raw", b"x" * 10)
    assert [i.msg_id for i in box.pending()] == ["raw:A:1:0", "raw:A:1:100"]
    s = box.stats()
    assert (s.pending, s.bytes, s.accepted, s.duplicates) == (2, 20, 2, 1)


def test_only_ack_removes_and_inflight_is_skipped_then_requeued(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.put_many([(f"m{i}", "t", b"p", "raw") for i in range(5)])
    first = box.pending(limit=3)
    box.mark_inflight(first, sent_s=100.0)
    assert [i.msg_id for i in box.pending()] == ["m3", "m4"]
    assert box.ack(["m0", "nope"]) == 1
    assert box.requeue(older_than_s=50.0) == 0
    assert box.requeue(older_than_s=101.0) == 2
    assert [i.msg_id for i in box.pending()] == ["m1", "m2", "m3", "m4"]
    assert box.stats().acked == 1 and len(box) == 4


def test_reopen_keeps_everything_and_forgets_inflight(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.put_many([(f"m{i}", "t", bytes([i]) * 3, "raw") for i in range(4)])
    box.mark_inflight(box.pending(), 1.0)
    box.ack(["m1"])
    box.close()
    again = Outbox(tmp_path / "o.db")
    assert [i.msg_id for i in again.pending()] == ["m0", "m2", "m3"]
    assert again.stats().bytes == 9 and again.stats().inflight == 0


def test_full_refuses_raw_but_keeps_reserve_for_gaps_and_markers(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", budget_bytes=100, reserve_fraction=0.2)
    box.put("raw1", "t", b"r" * 90)
    with pytest.raises(OutboxFull) as exc:
        box.put("raw2", "t", b"r" * 20)
    assert is_retryable(exc.value)
    assert box.put("gap1", "t", b"g" * 25, kind="gap")  # 115 <= 120: the reserve takes it
    with pytest.raises(OutboxFull):
        box.put("marker1", "t", b"m" * 10, kind="marker")
    s = box.stats()
    assert s.full and s.refused == 2 and s.refused_bytes == 30 and len(box) == 2
    assert s.as_status()["full"] == 1.0
    box.ack(["raw1"])
    assert box.put("raw2", "t", b"r" * 20)  # room again once the worker acknowledged


def test_put_many_commits_the_rest_when_some_are_refused(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", budget_bytes=25)
    with pytest.raises(OutboxFull):
        box.put_many([("a", "t", b"1" * 10, "raw"), ("b", "t", b"2" * 10, "raw"), ("c", "t", b"3" * 10, "raw")])
    assert [i.msg_id for i in box.pending()] == ["a", "b"]


def test_bad_settings_and_corrupt_file(tmp_path: Path) -> None:
    with pytest.raises(OutboxError):
        Outbox(tmp_path / "o.db", synchronous="OFF")
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises((OutboxCorrupt, Exception)):
        Outbox(bad)
    assert not is_retryable(OutboxCorrupt("x"))


_WRITER = textwrap.dedent(
    """
    import sys
    from sensor_gateway.outbox import Outbox
    box = Outbox(sys.argv[1])
    i = 0
    while True:
        box.put_many([(f"raw:S:1:{i * 100 + k}", "t", bytes(200), "raw") for k in range(3)])
        print(i, flush=True)
        i += 1
        if i % 7 == 0:
            box.ack([f"raw:S:1:{(i - 7) * 100}"])
    """
)


@pytest.mark.parametrize("after_commits", [5, 60])
def test_survives_sigkill_mid_write(tmp_path: Path, after_commits: int) -> None:
    """Everything a killed writer reported as committed is there, intact, after reopening."""
    db = tmp_path / "o.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    committed = -1
    for line in proc.stdout:
        committed = int(line)
        if committed >= after_commits:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # the writer ran on while this process read: the last commit it reported before it died is in the pipe still,
    # and after reporting commit n it may have acknowledged (deleted) the first message of commit n + 1 - 7
    for line in proc.stdout:
        committed = int(line)
    box = Outbox(db)  # runs quick_check
    ids = {i.msg_id for i in box.pending(limit=100_000)}
    for i in range(committed + 1):
        for k in range(3):
            msg = f"raw:S:1:{i * 100 + k}"
            acked = k == 0 and i % 7 == 0 and i + 7 <= committed + 1
            assert (msg in ids) or acked, msg
    assert box.stats().bytes == 200 * len(ids)
