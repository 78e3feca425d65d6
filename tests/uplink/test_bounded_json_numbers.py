"""Bounded JSON's number limits without a Python call per number: an honest payload is parsed by the C scanner
alone, and the limits hold exactly as before at their edges, whether a long run of number characters is a number
or sits in a string."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from gaitsym_common.errors import UplinkError
from gaitsym_common.uplink import envelope as env
from gaitsym_common.uplink import limits

VECTORS = json.loads(resources.files("gaitsym_common.uplink.vectors").joinpath("uplink.json").read_text())


def _raw_text() -> str:
    payload = next(v["payload"] for v in VECTORS["valid"] if json.loads(v["payload"])["kind"] == "raw")
    return json.dumps(json.loads(payload), separators=(",", ":"))


@pytest.fixture
def number_hooks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The numbers handed to the per-number hooks (the bounded parse's slow path)."""
    seen: list[str] = []
    int_hook, float_hook = limits._bounded_int, limits._bounded_float

    def counted_int(digits: str) -> int:
        seen.append(digits)
        return int_hook(digits)

    def counted_float(digits: str) -> float:
        seen.append(digits)
        return float_hook(digits)

    monkeypatch.setattr(limits, "_bounded_int", counted_int)
    monkeypatch.setattr(limits, "_bounded_float", counted_float)
    return seen


def test_an_honest_raw_batch_is_parsed_without_a_call_per_number(number_hooks: list[str]) -> None:
    text = _raw_text()
    assert env.decode(text) == env.decode(text.encode())
    assert number_hooks == []
    assert limits.load_bounded_json(text) == json.loads(text)


@pytest.mark.parametrize(
    ("number", "accepted"),
    [
        ("7" * 40, True),
        ("-" + "7" * 40, True),
        ("7" * 41, False),
        ("0." + "4" * 30, True),  # 32 characters
        ("0." + "4" * 31, False),  # 33
        ("1.5e" + "0" * 28, True),
        ("1.5e" + "0" * 29, False),
    ],
)
def test_the_number_limits_hold_at_their_edges(number: str, accepted: bool) -> None:
    text = '{"a":[1,2.5,' + number + '],"b":"x"}'
    if accepted:
        assert limits.load_bounded_json(text) == json.loads(text)
    else:
        with pytest.raises(UplinkError) as info:
            limits.load_bounded_json(text)
        assert info.value.field == "payload" and len(str(info.value)) < 300


def test_a_long_run_of_digits_inside_a_string_is_only_a_string(number_hooks: list[str]) -> None:
    doc: dict[str, Any] = {"id": "1" * 5_000, "n": 12, "x": -0.25, "e": "e+" * 100}
    text = json.dumps(doc)
    assert limits.load_bounded_json(text) == doc
    assert number_hooks  # the careful path was taken, and gave the same document


def test_an_ack_is_encoded_as_the_document_of_all_its_fields():
    """The ack's flat encoding (no deep copy) writes every field the dataclass has, as `asdict` would."""
    from dataclasses import asdict

    from gaitsym_common.uplink import envelope as env

    ack = env.Ack(kind="ack", subject="S001", msg_ids=("raw:GS1:1:100", "marker:x"), worker="worker-1")
    doc = json.loads(env.encode(ack))
    assert doc == {"v": env.VERSION, **asdict(ack), "msg_ids": list(ack.msg_ids)}
    assert env.decode(env.encode(ack)) == ack
