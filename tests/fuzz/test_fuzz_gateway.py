"""Fuzz the production gateway's untrusted inputs: what arrives on its cmd and ack topics (any client on the
broker can publish there), and the packets of a buggy sensor (valid CRC, any header values, any spacing).
Seeded and printed (tests/fuzz/conftest.py); replay with GAITSYM_FUZZ_SEED=<seed>."""

from __future__ import annotations

from pathlib import Path

from testing.fuzz.runner import run_target


def test_cmd_and_ack_payloads_never_stop_the_gateway_nor_act_for_another_subject(tmp_path: Path) -> None:
    assert run_target("gateway cmd and ack handling", tmp_path, examples=500) >= 500


def test_a_buggy_sensors_packets_never_become_a_batch_the_worker_refuses(tmp_path: Path) -> None:
    assert run_target("gateway on a buggy sensor's packets", tmp_path, examples=150) >= 150
