"""Uplink v1 contract: golden vectors both ways, the JSON Schema agrees with the decoder, topics, fuzzing."""

from __future__ import annotations

import contextlib
import json
import os
import random
from dataclasses import asdict
from importlib import resources

import jsonschema
import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from gaitsym_common.errors import UplinkError
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink import topics
from gaitsym_common.uplink.vectors.make_vectors import _jsonable

VECTORS = json.loads(resources.files("gaitsym_common.uplink.vectors").joinpath("uplink.json").read_text())
SCHEMA = json.loads(resources.files("gaitsym_common.uplink").joinpath("uplink-v1.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
FUZZ_SEED = int(os.environ.get("GAITSYM_FUZZ_SEED", random.randrange(2**32)))


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["name"])
def test_valid_vector_decodes_and_reencodes_byte_for_byte(vector):
    message = env.decode(vector["payload"].encode())
    assert _jsonable(message) == vector["decoded"]
    assert env.encode(message).decode() == vector["payload"]
    assert topics.parse_topic(vector["topic"]).kind == message.kind
    assert topics.parse_topic(vector["topic"]).subject == message.subject
    VALIDATOR.validate(json.loads(vector["payload"]))


@pytest.mark.parametrize("vector", VECTORS["malformed"], ids=lambda v: v["name"])
def test_malformed_vector_raises_naming_the_field(vector):
    with pytest.raises(UplinkError) as info:
        env.decode(vector["payload"])
    assert type(info.value).__name__ == vector["error"] or isinstance(info.value, UplinkError)
    assert info.value.field == vector["field"], str(info.value)
    assert vector["field"].split("[")[0].split(".")[0] in str(info.value)


def test_schema_rejects_what_the_decoder_rejects_structurally():
    """Schema and decoder are two statements of one contract: structural faults fail both."""
    raw = json.loads(VECTORS["valid"][0]["payload"])
    for field in ("msg_id", "clock", "packets", "sensor", "seq_first"):
        broken = {k: v for k, v in raw.items() if k != field}
        assert not VALIDATOR.is_valid(broken), field
        with pytest.raises(UplinkError):
            env.decode(json.dumps(broken))


def test_clock_mapping_formula():
    clock = env.ClockMapping(True, 1_000_000, 100.0, 1.00002, 20.0, 0.1)
    assert clock.to_utc_s(1_000_000) == 100.0
    assert clock.to_utc_s(2_000_000) == pytest.approx(101.00002, abs=1e-9)
    assert env.ClockMapping(False, 0, None, 1.0, 0.0, 0.0).to_utc_s(5) is None


def test_topics_round_trip_and_confine_a_subject():
    for kind in topics.KINDS:
        placement = "left_thigh" if kind in topics.KINDS_WITH_PLACEMENT else None
        name = topics.topic("p-17", kind, placement)
        assert name.startswith("gaitsym/v1/p-17/")
        assert topics.parse_topic(name) == topics.TopicParts("p-17", kind, placement)
    for bad in ("a/b", "+", "#", "", "x" * 65, "-lead"):
        with pytest.raises(UplinkError) as info:
            topics.topic(bad, "status")
        assert info.value.field == "subject"
    for bad_topic in (
        "gaitsym/v2/a/status",
        "gaitsym/v1/a/raw/head",
        "gaitsym/v1/a/raw",
        "gaitsym/v1/a/nope",
    ):
        with pytest.raises(UplinkError):
            topics.parse_topic(bad_topic)
    assert all(s.startswith("$share/gaitsym-workers/gaitsym/v1/+/") for s in topics.worker_subscriptions())


def test_encode_refuses_what_decode_would_reject():
    message = env.decode(VECTORS["valid"][0]["payload"])
    assert isinstance(message, env.RawBatch)
    bad = env.RawBatch(**{**asdict(message), "sensor": message.sensor, "clock": message.clock, "msg_id": "raw:x:1:1"})
    with pytest.raises(UplinkError) as info:
        env.encode(bad)
    assert info.value.field == "msg_id"


@seed(FUZZ_SEED)
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
def test_fuzz_random_payloads_only_raise_uplink_errors(data):
    print(f"fuzz seed: {FUZZ_SEED} (replay with GAITSYM_FUZZ_SEED={FUZZ_SEED})")
    with contextlib.suppress(UplinkError):
        env.decode(data)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@seed(FUZZ_SEED)
@settings(max_examples=400, deadline=None)
@given(vector=st.sampled_from(VECTORS["valid"]), data=st.data())
def test_fuzz_mutated_vectors_decode_consistently_or_raise_uplink_errors(vector, data):
    """Replace one field of a valid payload with arbitrary JSON: a clean UplinkError or a consistent message."""
    print(f"fuzz seed: {FUZZ_SEED} (replay with GAITSYM_FUZZ_SEED={FUZZ_SEED})")
    doc = json.loads(vector["payload"])
    key = data.draw(st.sampled_from(sorted(doc)))
    doc[key] = data.draw(_JSON)
    try:
        message = env.decode(json.dumps(doc))
    except UplinkError:
        return
    assert env.decode(env.encode(message)) == message
