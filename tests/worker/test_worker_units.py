"""Unit tests of the worker's pure parts: the retry-vs-drop rule, backoff, decoding against the golden uplink
vectors (including a raw batch across a u32 sequence wrap), and the command line's argument handling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics.errors import AnalyticsError
from analytics.stores.errors import InvalidBatch, StoreUnavailable
from analytics.worker.decode import batch_samples, decode_message
from analytics.worker.errors import MalformedMessage, SegmentIncomplete, Verdict, backoff_s, sort_failure
from analytics.worker.live_session import estimate_phase_s
from gaitsym.cli import build_parser
from gaitsym_common.uplink import envelope as env

VECTORS = Path(__file__).resolve().parents[2] / "gaitsym_common" / "uplink" / "vectors" / "uplink.json"


@pytest.mark.parametrize(
    ("exc", "verdict"),
    [
        (MalformedMessage("t", "bad"), Verdict.QUARANTINE),
        (InvalidBatch("bad values"), Verdict.QUARANTINE),
        (AnalyticsError("bad data"), Verdict.QUARANTINE),
        (SegmentIncomplete("not yet", missing=3), Verdict.DEFER),
        (StoreUnavailable("down"), Verdict.RETRY),
        (OSError("reset"), Verdict.RETRY),
        (TimeoutError(), Verdict.RETRY),
        (KeyError("a bug"), Verdict.RETRY),
    ],
)
def test_sort_failure_is_a_pure_function_of_the_exception_type(exc: BaseException, verdict: Verdict) -> None:
    assert sort_failure(exc) is verdict


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_s(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff_s(50) == 30.0 and backoff_s(0) == 0.5
    assert backoff_s(3, base_s=1.0, max_s=3.0) == 3.0


def _vectors() -> list[dict[str, str]]:
    return list(json.loads(VECTORS.read_text())["valid"])


def test_every_valid_uplink_vector_decodes_on_its_topic() -> None:
    kinds = set()
    for v in _vectors():
        message = decode_message(v["topic"], v["payload"].encode())
        kinds.add(message.kind)
        if isinstance(message, env.RawBatch):
            samples = batch_samples(message, v["topic"])
            assert len(samples) == message.n_samples
            assert int(samples.seq[0]) == message.seq_first and int(samples.seq[-1]) == message.seq_last
            assert (samples.seq[1:] > samples.seq[:-1]).all()  # unwrapped across the u32 wrap
    assert {"raw", "gap", "marker"} <= kinds


def test_a_payload_on_the_wrong_topic_is_malformed_and_named() -> None:
    raw = next(v for v in _vectors() if v["topic"].split("/")[3] == "raw")
    subject = raw["topic"].split("/")[2]
    with pytest.raises(MalformedMessage, match="differs from the topic"):
        decode_message(raw["topic"].replace(subject, "other-subject"), raw["payload"].encode())
    with pytest.raises(MalformedMessage, match="placement"):
        decode_message(raw["topic"].rsplit("/", 1)[0] + "/left_thigh", raw["payload"].encode())
    with pytest.raises(MalformedMessage):
        decode_message(raw["topic"], b"\xff not json")
    with pytest.raises(MalformedMessage):
        decode_message("not/a/gaitsym/topic", raw["payload"].encode())


def test_a_raw_batch_with_a_corrupted_packet_is_malformed() -> None:
    raw = next(v for v in _vectors() if v["topic"].split("/")[3] == "raw")
    message = decode_message(raw["topic"], raw["payload"].encode())
    assert isinstance(message, env.RawBatch)
    bad = bytearray(message.packets[0])
    bad[-1] ^= 0xFF  # CRC no longer matches
    broken = env.RawBatch(**{**message.__dict__, "packets": (bytes(bad), *message.packets[1:])})
    with pytest.raises(MalformedMessage, match=r"packets\[0\]"):
        batch_samples(broken, raw["topic"])


def test_worker_command_line_defaults_to_live_results() -> None:
    parser = build_parser()
    args = parser.parse_args(["worker"])
    assert args.live is True and args.mqtt == "127.0.0.1:1883" and args.segment_wait == 10.0
    assert parser.parse_args(["worker", "--no-live"]).live is False
    r = parser.parse_args(["reanalyze", "--subject", "S1", "--since", "2026-01-01"])
    assert (r.subject, r.since, r.store) == ("S1", "2026-01-01", None)
    with pytest.raises(SystemExit):
        parser.parse_args(["reanalyze", "--since", "2026-01-01"])  # --subject is required


def test_coverage_counts_stored_and_known_missing_samples() -> None:
    from analytics.stores.model import RawIndex
    from analytics.worker.segments import coverage

    whole = RawIndex(((0, 99, 100), (100, 199, 100)), ())
    assert coverage(0, 199, whole) == (0, [])
    hole = RawIndex(((0, 99, 100), (150, 199, 50)), ())
    assert coverage(0, 199, hole) == (50, [])  # 100..149 neither stored nor known missing: wait
    named = RawIndex(((0, 99, 100), (150, 199, 50)), ((100, 149),))
    assert coverage(0, 199, named) == (0, [(100, 149)])  # a recorded gap: analyse across it, named
    inside = RawIndex(((0, 199, 190),), ())  # 10 samples lost inside one batch, the gap not arrived yet
    assert coverage(0, 199, inside)[0] == 10
    assert coverage(0, 199, RawIndex(((0, 199, 190),), ((50, 59),))) == (0, [(50, 59)])
    assert coverage(120, 160, named) == (0, [(120, 149)])  # clipped to the range asked


def test_batch_decoding_matches_the_packet_decoder_sample_by_sample() -> None:
    """The batch-at-once conversion gives exactly what decoding each packet does (firmware_protocol)."""
    import numpy as np

    from firmware_protocol.packet import decode_packet

    for v in _vectors():
        message = decode_message(v["topic"], v["payload"].encode())
        if not isinstance(message, env.RawBatch):
            continue
        samples = batch_samples(message, v["topic"])
        accs, gyrs = zip(*(decode_packet(p).to_physical() for p in message.packets), strict=True)
        np.testing.assert_array_equal(samples.acc_mps2, np.concatenate(accs))
        np.testing.assert_array_equal(samples.gyr_dps, np.concatenate(gyrs))
        first = decode_packet(message.packets[0])
        rate = message.sensor.sample_rate_hz
        assert int(samples.t_sensor_us[1] - samples.t_sensor_us[0]) == round(1e6 / rate) or first.sample_count == 1


def test_a_live_window_keeps_only_strides_inside_its_sessions_samples() -> None:
    """A window's context may reach back before the session opened (samples of no session, or of the previous
    one): its provisional strides are kept only from the first instant every placement has samples of its own
    session, the range the session's final analysis (which reads only those samples) replaces. A stride kept
    from earlier would never be replaced."""
    import numpy as np

    from analytics.stores.model import STRIDE_LIVE, RawSeries
    from analytics.worker.results import segment_results
    from analytics.worker.segments import Segment, load_segment

    n, base = 1500, 1_795_000_000_000_000
    sessions = ["S1-0"] * 300 + [None] * 400 + ["S1-1"] * 800
    series = {
        placement: RawSeries(
            time_us=base + 10_000 * np.arange(n, dtype=np.int64) + k,
            seq=np.arange(n, dtype=np.int64),
            t_sensor_us=10_000 * np.arange(n, dtype=np.int64),
            boot_epoch=np.full(n, 4, dtype=np.int64),
            serial=(f"GS-{k}",) * n,
            session=tuple(sessions),
            acc_mps2=np.tile([0.0, 0.0, 9.81], (n, 1)),
            gyr_dps=np.zeros((n, 3)),
        )
        for k, placement in enumerate(("pelvis", "left_thigh", "right_thigh"))
    }
    positions = {p: env.SensorPosition(f"GS-{k}", 4, n - 1) for k, p in enumerate(series)}
    window = Segment("S1", "S1-1", "window", "m1", positions, None, lookback_s=12.0)
    loaded = load_segment(None, window, series_for=lambda p, pos, first: series[p])  # type: ignore[arg-type]
    assert loaded is not None
    assert {(c["seq_first"], c["seq_last"]) for c in loaded.clock.values()} == {(300, n - 1)}  # context kept
    assert loaded.session_from_us == base + 700 * 10_000 + 2  # S1-1's first sample on every placement

    def stride(start_s: float) -> dict[str, object]:
        return {"side": "left", "start_s": start_s, "end_s": start_s + 1.1, "bout": 0, "included": True}

    doc = {
        "schema": "gaitsym.result/1",
        "gait": {"strides": [stride(2.0), stride(3.9), stride(4.1), stride(9.0)], "summary": {}},
        "exercises": [],
        "recording": {"duration_s": 12.0},
        "quality": {"flags": []},
    }
    doc["gait"]["summary"] = {"n_strides": {"left": 4, "right": 0}}  # type: ignore[index]
    results = segment_results(window, loaded, doc, 1, "test")
    kept = sorted(round((p.time_us - loaded.t0_us) / 1e6, 1) for p in results.points if p.measurement == STRIDE_LIVE)
    assert kept == [4.1, 9.0]  # S1-1 starts 4.0 s into the window (seq 700 of 300..1499)

    earlier = Segment("S1", "S1-0", "window", "m0", positions, None, lookback_s=15.0)
    loaded = load_segment(None, earlier, series_for=lambda p, pos, first: series[p])  # type: ignore[arg-type]
    assert loaded is not None and loaded.session_from_us is None  # the window starts inside S1-0
    unknown = replace_session(earlier, "S1-9")
    assert load_segment(None, unknown, series_for=lambda p, pos, first: series[p]) is None  # type: ignore[arg-type]


def replace_session(segment: object, session: str) -> object:
    from dataclasses import replace

    return replace(segment, session=session)  # type: ignore[type-var]


def test_a_segment_read_back_short_or_with_a_hole_is_retried_not_analysed() -> None:
    """The store said every sample is stored (or known missing), but its answer came back cut short or with a
    hole: the segment is retried (SegmentIncomplete), never analysed on part of its data."""
    import numpy as np

    from analytics.stores.model import RawSeries
    from analytics.worker.segments import Segment, load_segment

    def series(seqs: np.ndarray, k: int) -> RawSeries:
        n = len(seqs)
        return RawSeries(
            time_us=1_795_000_000_000_000 + 10_000 * seqs.astype(np.int64) + k,
            seq=seqs.astype(np.int64),
            t_sensor_us=10_000 * seqs.astype(np.int64),
            boot_epoch=np.full(n, 4, dtype=np.int64),
            serial=(f"GS-{k}",) * n,
            session=("S1-1",) * n,
            acc_mps2=np.tile([0.0, 0.0, 9.81], (n, 1)),
            gyr_dps=np.zeros((n, 3)),
        )

    placements = ("pelvis", "left_thigh", "right_thigh")
    positions = {p: env.SensorPosition(f"GS-{k}", 4, 999) for k, p in enumerate(placements)}
    final = Segment("S1", "S1-1", "session", "end", positions, None)
    full = np.arange(1000)
    holed = np.concatenate([full[:500], full[510:]])
    cases = {
        "complete": (full, [], True),
        "a hole": (holed, [], False),
        "a hole that is a known gap": (holed, [(500, 509)], True),
        "cut short": (full[:900], [], False),
    }
    for what, (pelvis_seqs, missing, ok) in cases.items():
        data = {p: series(pelvis_seqs if p == "pelvis" else full, k) for k, p in enumerate(placements)}
        kwargs = {
            "first_seq": dict.fromkeys(placements, 0),
            "known_missing": {p: (missing if p == "pelvis" else []) for p in placements},
            "series_for": lambda p, pos, first, data=data: data[p],
        }
        if ok:
            assert load_segment(None, final, **kwargs) is not None, what  # type: ignore[arg-type]
        else:
            with pytest.raises(SegmentIncomplete, match="read back"):
                load_segment(None, final, **kwargs)  # type: ignore[arg-type]


def test_a_sessions_estimate_phase_is_the_same_for_every_worker_and_spread_over_sessions() -> None:
    """The phase is a pure function of the session (every worker picks the same instants), within the period, and
    a clinic's sessions spread over it."""
    phases = [estimate_phase_s(f"S{i:03d}", f"S{i:03d}-2026-12-06T08:00:00Z", 60.0) for i in range(600)]
    assert phases == [estimate_phase_s(f"S{i:03d}", f"S{i:03d}-2026-12-06T08:00:00Z", 60.0) for i in range(600)]
    assert all(0 <= p < 60 for p in phases)
    # the same in every process (a hash salted per process would let two workers pick different instants)
    assert estimate_phase_s("S001", "S001-2026-12-06T08:00:00Z", 60.0) == 32
    assert estimate_phase_s("A", "B", 60.0) == 39
    counts = [phases.count(p) for p in range(60)]
    assert max(counts) <= 25 and min(counts) >= 1  # about 10 a second, none empty, none crowded
