"""Writes that are not a valid command: the one reply a sensor sends (SPEC.md section 8), and that the gateway can
read it. An UNSUPPORTED reply to an undefined opcode must decode, or "give up, not retried" could never happen."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fp_testlib import VECTORS_DIR, load_vectors

from firmware_protocol import control
from firmware_protocol.errors import CommandRejected, InvalidField, is_retryable
from testing.ble_peripheral import EmulatedSensor, SensorIdentity

MALFORMED_COMMANDS = [
    pytest.param(v, id=v["name"])
    for v in load_vectors("control.json")
    if v.get("message") == "command" and "error" in v
]


def test_every_malformed_command_vector_names_the_reply() -> None:
    assert MALFORMED_COMMANDS
    for param in MALFORMED_COMMANDS:
        vector: dict[str, Any] = param.values[0]
        assert re.fullmatch(r"(?:[0-9a-f]{2}){2}|(?:[0-9a-f]{2}){10}", vector.get("reply", "")), vector["name"]


@pytest.mark.parametrize("vector", MALFORMED_COMMANDS)
def test_sensor_reply_to_a_malformed_command_is_the_vector_and_the_gateway_reads_it(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    reply = control.reply_for_invalid_command(data)
    assert control.encode_reply(reply).hex() == vector["reply"]
    decoded = control.decode_reply(bytes.fromhex(vector["reply"]))
    assert decoded == reply
    assert decoded.status in (control.Status.UNSUPPORTED, control.Status.BAD_ARGUMENT)


@pytest.mark.parametrize("vector", MALFORMED_COMMANDS)
def test_emulated_sensor_answers_malformed_commands_as_specified(vector: dict[str, Any]) -> None:
    sensor = EmulatedSensor(
        SensorIdentity(serial="T-9", placement=control.Placement.PELVIS, boot_epoch=1), clock_ns=lambda: 10**9
    )
    assert sensor.handle_control(bytes.fromhex(vector["hex"])).hex() == vector["reply"]


def test_unsupported_undefined_opcode_is_read_and_given_up_not_retried() -> None:
    reply = control.decode_reply(bytes.fromhex("8701"))
    assert reply == control.UnsupportedOpcodeReply(0x07)
    assert control.reply_to_dict(reply) == {"opcode": "0x07", "status": "UNSUPPORTED"}
    with pytest.raises(CommandRejected) as info:
        control.check_reply(reply)
    assert "0x07" in str(info.value) and "UNSUPPORTED" in str(info.value)
    assert not is_retryable(info.value)


def test_undefined_opcode_with_another_status_stays_malformed() -> None:
    for hex_text in ("8700", "8702", "8703"):
        with pytest.raises(InvalidField) as info:
            control.decode_reply(bytes.fromhex(hex_text))
        assert info.value.field == "opcode"
    with pytest.raises(InvalidField):
        control.encode_reply(control.UnsupportedOpcodeReply(0x07, control.Status.OK))
    with pytest.raises(InvalidField):
        control.encode_reply(control.UnsupportedOpcodeReply(int(control.Opcode.SET_PLACEMENT)))


def test_a_valid_command_has_no_error_reply() -> None:
    with pytest.raises(ValueError):
        control.reply_for_invalid_command(control.encode_control(control.StartStreaming()))


def _spec_section(number: int) -> str:
    spec = (VECTORS_DIR.parent / "SPEC.md").read_text(encoding="utf-8")
    return spec.split(f"## {number}. ", 1)[1].split("\n## ", 1)[0]


def test_spec_table_of_invalid_writes_matches_the_reference() -> None:
    """Every `written` -> `reply` example in SPEC.md section 8 is what the reference sensor answers."""
    examples = re.findall(r"`([0-9a-f ]+)` → `([0-9a-f ]+)`", _spec_section(8))
    assert len(examples) >= 4
    for written, reply in examples:
        got = control.encode_reply(control.reply_for_invalid_command(bytes.fromhex(written.replace(" ", ""))))
        assert got.hex() == reply.replace(" ", ""), written


def test_drift_figures_agree_between_spec_and_gateway_doc() -> None:
    """The crystal drift a firmware author reads (SPEC section 5) is the one the gateway states (GATEWAY.md)."""
    gateway_doc = (VECTORS_DIR.parents[1] / "sensor_gateway" / "GATEWAY.md").read_text(encoding="utf-8")
    time_section = gateway_doc.split("## Time", 1)[1].split("\n## ", 1)[0]

    def figures(text: str) -> set[int]:
        found = re.findall(r"±?(\d+)(?:-(\d+))? ?(?:ppm|parts per million)", text)
        return {int(n) for pair in found for n in pair if n}

    spec_figures = figures(_spec_section(5))
    assert spec_figures, "SPEC section 5 states the crystal drift"
    crystal = {n for n in spec_figures if n <= 100}
    assert crystal and crystal == {n for n in figures(time_section) if n <= 100}
