"""Conformance of the worker with a gateway written from UPLINK.md and SPEC.md alone (testing/thirdparty_gateway.py):
a real Mosquitto (the project's configuration), a real `gaitsym worker` process, its embedded store (the scenario:
testing/hostile/conformance.py).

That gateway does what the documents allow and a first implementation does: a plain running clock fit re-fitted
per batch (early batches' mappings wander by tens of ms and overlap their neighbours' mapped times; the first
fits' rates are far from 1), UTC to the millisecond, lost packets reported as gaps, no continuity rule.

Asserted, sample by sample (serial, boot, seq): every sample it sent is stored exactly once, or reported: inside a
recorded gap, or in a quarantine record that gives a reason. Nothing silently overwritten, duplicated or lost;
every gap it reported is recorded; nothing of its stays unacknowledged unless quarantined. All problems found
are listed together in the failure message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.hostile.conformance import run_conformance
from testing.servers import Mosquitto

pytestmark = pytest.mark.slow

SEED = 7


def test_every_sample_of_a_gateway_built_from_the_contract_is_stored_once_or_reported(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    outcome = run_conformance(tmp_path, mosquitto.port, SEED)
    print(outcome.summary())
    problems = outcome.problems
    assert not problems, "\n".join(problems)
    assert outcome.overlaps > 0 and outcome.gaps > 0, "the scenario lost its point: " + outcome.summary()


def test_a_replay_re_encoded_with_a_later_fit_after_a_worker_restart_is_not_stored_twice(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """The gateway was offline while the worker acknowledged (a clean MQTT session: those acks are gone), the
    worker was restarted meanwhile (an update), and the gateway, back, re-sends everything unacknowledged under
    the same msg_ids, built with its clock fit as it is by then: it breaks UPLINK.md's rule that a re-sent batch
    is the identical payload, and the worker must still store each sample once."""
    outcome = run_conformance(tmp_path, mosquitto.port, SEED, seconds=20.0, replay_refit=True)
    print(outcome.summary())
    problems = outcome.problems
    assert not problems, "\n".join(problems)
