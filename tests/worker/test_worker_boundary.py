"""The worker's untrusted-input boundary, turn by turn (no broker: an in-memory link; the real embedded store):
poison never escapes as anything but a quarantined MalformedMessage, identity includes the subject, one
subject's budget and backlog never hold back another's, one batch's failure never holds back the turn's others,
and the quarantine is capped per subject."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from analytics.stores import Store
from analytics.stores.errors import InvalidBatch, StoreUnavailable
from analytics.stores.model import RawSamples, WriteReport
from analytics.stores.quarantine import Quarantine
from analytics.worker.budget import BudgetConfig, LogLimiter, SubjectBudgets, TokenBucket
from analytics.worker.decode import batch_samples, decode_message, topic_subject
from analytics.worker.errors import MalformedMessage
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink.topics import topic
from testing.worker.hostile import Clock, ScriptedLink, make_worker, poison, raw_batch, raw_topic


def stored(store: Store, batch: env.RawBatch) -> int:
    return store.count_raw(
        batch.subject, batch.placement, batch.sensor.serial, batch.sensor.boot_epoch, batch.seq_first, batch.seq_last
    )


def test_every_poison_payload_is_a_malformed_message_and_nothing_else() -> None:
    """Poison payloads: none may escape as RecursionError, ValueError or OverflowError (a crash loop for every
    subject), and a boot_epoch of 2**64 must never reach the store (a retry loop)."""
    for name, payload in poison("S-BAD").items():
        with pytest.raises(MalformedMessage):
            message = decode_message(raw_topic("S-BAD"), payload)
            assert isinstance(message, env.RawBatch), name
            batch_samples(message, raw_topic("S-BAD"))
    assert topic_subject("gaitsym/v1/S-BAD/raw/pelvis") == "S-BAD"
    assert topic_subject("gaitsym/v1/" + "x" * 500 + "/raw/pelvis") == ""
    with pytest.raises(MalformedMessage):
        decode_message("gaitsym/v1/" + "x" * 50_000 + "/raw/pelvis", env.encode(raw_batch("S-OK", 0)))


def test_poison_is_quarantined_once_and_the_other_subjects_batches_are_stored(tmp_path: Path, store: Store) -> None:
    link = ScriptedLink()
    worker = make_worker(tmp_path, store, link)
    bad = poison("S-BAD")
    tokens = [link.deliver(raw_topic("S-BAD"), payload) for payload in bad.values()]
    good = [raw_batch("S-OK", 100 * i) for i in range(5)]
    tokens += [link.deliver(raw_topic("S-OK"), env.encode(b)) for b in good]
    worker.step(0)
    assert sorted(link.acked) == sorted(tokens)  # every delivery acknowledged to the broker: none redelivered
    assert link.acked_ids("S-OK") == [b.msg_id for b in good]
    assert link.acked_ids("S-BAD") == []  # never acknowledged end to end
    assert all(stored(store, b) == 100 for b in good)
    assert worker.stats.malformed == len(bad) and worker.stats.store_retries == 0
    entries = worker.quarantine.entries()
    assert len(entries) == len(bad) and {e.subject for e in entries} == {"S-BAD"}
    # the same poison again (a hostile gateway re-publishing it): acknowledged, counted, not kept twice
    for payload in bad.values():
        link.deliver(raw_topic("S-BAD"), payload)
    worker.step(0)
    assert len(worker.quarantine.entries()) == len(bad)
    assert worker.stats.malformed_repeats == len(bad)
    worker.close()


def test_two_subjects_whose_kits_share_serials_both_get_every_sample_stored(tmp_path: Path, store: Store) -> None:
    """Same serial, boot epoch and sequence (two kits with the same seed, or a kit handed on): same msg_ids. Before,
    the replay cache was keyed by msg_id alone and the second subject's batches were skipped and acknowledged."""
    link = ScriptedLink()
    worker = make_worker(tmp_path, store, link)
    for subject in ("KIT-A", "KIT-B"):  # one subject's batches, then (a turn later) the other's
        for i in range(3):
            link.deliver(raw_topic(subject), env.encode(raw_batch(subject, 100 * i)))
        worker.step(0)
    for subject in ("KIT-A", "KIT-B"):
        assert [stored(store, raw_batch(subject, 100 * t)) for t in range(3)] == [100, 100, 100], subject
        assert link.acked_ids(subject) == [raw_batch(subject, 100 * t).msg_id for t in range(3)]
    assert worker.stats.replays_skipped == 0
    # a real replay (the same subject's batch again) is still skipped
    link.deliver(raw_topic("KIT-B"), env.encode(raw_batch("KIT-B", 0)))
    worker.step(0)
    assert worker.stats.replays_skipped == 1 and link.acked_ids("KIT-B")[-1] == raw_batch("KIT-B", 0).msg_id
    # markers: the same marker id from two subjects is two segments, not a replay
    for subject in ("KIT-A", "KIT-B"):
        marker = env.Marker(
            "marker", "marker:s-1:session_end:x", subject, "s-1", "session_end", None,
            {"pelvis": env.SensorPosition("GS-SYN-1", 7, 299)},
        )  # fmt: skip
        link.deliver(topic(subject, "marker"), env.encode(marker))
    worker.step(0)
    for subject in ("KIT-A", "KIT-B"):  # each subject's session end handled (analysed) and acknowledged
        assert "marker:s-1:session_end:x" in link.acked_ids(subject), subject
    worker.close()


def test_a_subject_past_its_budget_is_shed_before_decoding_and_its_batches_stored_when_resent(
    tmp_path: Path, store: Store
) -> None:
    clock = Clock()
    link = ScriptedLink()
    budget = BudgetConfig(work_per_s=100.0, work_burst=1_000.0, bytes_per_s=1e9, bytes_burst=1e9)
    worker = make_worker(tmp_path, store, link, clock, budget=budget)
    flood = [raw_batch("FLOOD", 100 * i) for i in range(20)]
    flood_tokens = [link.deliver(raw_topic("FLOOD"), env.encode(b)) for b in flood]
    honest_token = link.deliver(raw_topic("HONEST"), env.encode(raw_batch("HONEST", 0)))
    worker.step(0)
    assert set(link.acked) == {*flood_tokens, honest_token}  # everything acknowledged to the broker at once
    assert link.acked_ids("HONEST") == [raw_batch("HONEST", 0).msg_id]
    assert link.acked_ids("FLOOD") == [b.msg_id for b in flood[:10]]  # the burst; the rest shed, not stored
    assert stored(store, flood[10]) == 0
    assert worker.shed_by_subject == {"FLOOD": 10} and worker.stats.shed == 10
    # the gateway re-sends what stayed unacknowledged end to end; by then the bucket has refilled (from the debt
    # of the boot's first move to UTC, `WORK_PER_REMAP`)
    clock.t += 20.0
    for b in flood[10:]:
        link.deliver(raw_topic("FLOOD"), env.encode(b))
    worker.step(0)
    assert all(stored(store, b) == 100 for b in flood)
    assert sorted(link.acked_ids("FLOOD")) == sorted(b.msg_id for b in flood)
    # a byte budget sheds before anything is parsed: garbage past it is not even quarantined
    tiny_link = ScriptedLink()
    tiny = make_worker(tmp_path / "tiny", store, tiny_link, clock, budget=BudgetConfig(bytes_burst=100.0))
    for _ in range(3):
        tiny_link.deliver(raw_topic("JUNK"), b"x" * 80)
    tiny.step(0)
    assert tiny.stats.malformed == 1 and tiny.stats.shed == 2
    worker.close()
    tiny.close()


def test_a_turn_serves_subjects_round_robin_and_carries_the_rest(tmp_path: Path, store: Store) -> None:
    """A subject's backlog never delays another subject's batch by more than a turn."""
    link = ScriptedLink()
    worker = make_worker(tmp_path, store, link, turn_max_work=2_000)
    backlog = [raw_batch("BACKLOG", 1_000 * i, n_packets=100) for i in range(8)]
    for b in backlog:
        link.deliver(raw_topic("BACKLOG"), env.encode(b))
    honest_token = link.deliver(raw_topic("HONEST"), env.encode(raw_batch("HONEST", 0)))
    worker.step(0)
    assert honest_token in link.acked and link.acked_ids("HONEST") == [raw_batch("HONEST", 0).msg_id]
    assert len(link.acked_ids("BACKLOG")) == 2 and worker.busy  # 2 x 1,000 samples: the turn's share
    for _ in range(3):
        worker.step(0)
    assert link.acked_ids("BACKLOG") == [b.msg_id for b in backlog]  # in order, nothing shed
    assert worker.stats.shed == 0 and not worker.busy
    worker.close()


class FailingStore:
    """The embedded store, refusing the batches of some msg_ids (as bad data, or as a bug), or unavailable."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.refuse: dict[str, Exception] = {}
        self.down = False

    def write_raw_many(self, batches: Sequence[RawSamples]) -> WriteReport:
        if self.down:
            raise StoreUnavailable("down for the test", retry_after_s=0.0)
        for b in batches:
            if b.msg_id in self.refuse:
                raise self.refuse[b.msg_id]
        return self.store.write_raw_many(batches)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_one_batch_failing_in_the_store_never_holds_back_the_others(tmp_path: Path, store: Store) -> None:
    clock = Clock()
    link = ScriptedLink()
    failing = FailingStore(store)
    worker = make_worker(tmp_path, failing, link, clock)  # type: ignore[arg-type]
    batches = [raw_batch(s, 0) for s in ("A", "B", "C", "D")]
    odd_b = raw_batch("B", 0, serial="GS-ODD")
    odd_c = raw_batch("C", 0, serial="GS-BUG")
    failing.refuse = {odd_b.msg_id: InvalidBatch("refused as bad data"), odd_c.msg_id: RuntimeError("a bug")}
    tokens = [link.deliver(raw_topic(b.subject), env.encode(b)) for b in (*batches, odd_b, odd_c)]
    worker.step(0)
    assert sorted(link.acked) == sorted(tokens)
    for b in batches:
        assert stored(store, b) == 100 and b.msg_id in link.acked_ids(b.subject)
    assert odd_b.msg_id not in link.acked_ids("B") and odd_c.msg_id not in link.acked_ids("C")
    assert sorted(e.subject for e in worker.quarantine.entries()) == ["B", "C"]
    assert worker.stats.store_retries == 0
    # the store itself unavailable: nothing acknowledged, everything kept and stored once it is back
    failing.refuse = {}
    failing.down = True
    later = [raw_batch(s, 100) for s in ("A", "B")]
    later_tokens = [link.deliver(raw_topic(b.subject), env.encode(b)) for b in later]
    worker.step(0)
    assert not set(later_tokens) & set(link.acked) and worker.busy and worker.stats.store_retries == 1
    failing.down = False
    clock.t += 60.0
    worker.step(0)
    assert set(later_tokens) <= set(link.acked) and all(stored(store, b) == 100 for b in later)
    worker.close()


def test_acks_are_split_to_stay_under_the_payload_limit(tmp_path: Path, store: Store) -> None:
    link = ScriptedLink()
    worker = make_worker(tmp_path, store, link)
    long_ids = [f"marker:{'p' * 64}-20261126T184233Z-1000:window:{'x' * 150}:{i}" for i in range(1_200)]
    worker.acks.pending["P1"].extend(long_ids)
    worker.acks.send_due()
    assert len(link.published) > 3
    assert all(len(payload) <= env.MAX_PAYLOAD_BYTES // 2 + 1_000 for _, payload in link.published)
    assert link.acked_ids("P1") == long_ids
    worker.close()


def test_token_bucket_and_log_limiter() -> None:
    bucket = TokenBucket(rate=10.0, burst=100.0, now=0.0)
    assert bucket.take(60, 0.0) and not bucket.take(60, 0.0) and bucket.take(40, 0.0)
    assert not bucket.take(1, 0.0) and bucket.take(10, 1.0)  # refilled 10 in a second
    assert bucket.take(1000, 100.0) and bucket.tokens < 0  # larger than the burst: from a full bucket, in debt
    budgets = SubjectBudgets(BudgetConfig(work_per_s=1.0, work_burst=5.0))
    assert budgets.take_work("a", 5, 0.0) and not budgets.take_work("a", 1, 0.0) and budgets.take_work("b", 5, 0.0)
    budgets.forget_idle(100.0)
    assert len(budgets) == 0  # refilled buckets are forgotten
    limiter = LogLimiter(interval_s=10.0)
    assert limiter.allow(("s", "x"), 0.0) == 0
    assert limiter.allow(("s", "x"), 1.0) is None and limiter.allow(("s", "x"), 2.0) is None
    assert limiter.allow(("t", "x"), 2.0) == 0  # per subject
    assert limiter.allow(("s", "x"), 11.0) == 2  # the line says how many were held back


def test_the_quarantine_is_capped_per_subject_and_counts_what_it_drops(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    q = Quarantine(path, max_entries_per_subject=3, max_bytes_per_subject=10_000)
    for i in range(5):
        q.put("mqtt topic=x", None, "malformed", "bad", [f"line {i}"], subject="FLOOD", log_line=False)
    assert q.put("raw subject=CALM placement=pelvis", 400, "bad", "server", ["l"]) > 0  # subject from `what`
    assert q.put("big", None, "malformed", "", ["x" * 20_000], subject="BIG") == 0  # over the byte cap
    assert [e.subject for e in q.entries()] == ["FLOOD", "FLOOD", "FLOOD", "CALM"]
    assert [e.lines for e in q.entries()[:3]] == [("line 0",), ("line 1",), ("line 2",)]  # the first ones stay
    assert q.dropped() == {"FLOOD": 2, "BIG": 1}
    q.close()
    again = Quarantine(path, max_entries_per_subject=3)
    assert again.dropped() == {"FLOOD": 2, "BIG": 1}  # saved on close
    assert again.put("mqtt", None, "malformed", "", ["more"], subject="FLOOD") == 0  # the cap holds after a restart
    assert again.put("mqtt", None, "malformed", "", ["more"], subject="OTHER") > 0
    total = Quarantine(tmp_path / "total.sqlite", max_bytes_total=1_000)
    assert total.put("a", None, "r", "", ["x" * 900], subject="A") > 0
    assert total.put("b", None, "r", "", ["x" * 200], subject="B") == 0  # the file's own cap
    again.close()
    total.close()


def test_a_quarantine_file_from_before_the_caps_is_read_and_capped(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE quarantine (id INTEGER PRIMARY KEY AUTOINCREMENT, created_utc_s REAL NOT NULL, what TEXT NOT "
        "NULL, status INTEGER, reason TEXT NOT NULL, server_message TEXT NOT NULL, n_lines INTEGER NOT NULL, "
        "lines TEXT NOT NULL)"
    )
    db.execute("INSERT INTO quarantine VALUES (1, 0.0, 'old', NULL, 'r', 'm', 1, 'line')")
    db.commit()
    db.close()
    q = Quarantine(path, max_entries_per_subject=1)
    assert [(e.what, e.subject) for e in q.entries()] == [("old", "")]
    assert q.put("new", None, "r", "", ["l"]) == 0  # "" holds its one entry already
    q.close()
