"""A hostile neighbour on the same broker, on its own topics, while an honest subject streams: end to end on a real
Mosquitto (the project's configuration), the production gateway on the virtual kit, a real `gaitsym worker`
process, and its embedded store or a real InfluxDB 1.6 (the scenario: testing/hostile/neighbour.py).

The neighbour first sends valid-looking raw batches carrying the honest kit's serials, boot epochs and sequence
numbers (hence the honest batches' msg_ids: BLE v1 is open, any central nearby reads a sensor's info) mapped onto
the honest stream's times, then poison while the honest subject streams.

Asserted: every sample the honest gateway published is stored exactly once; the honest outbox drains; the worker
process is alive at the end; every poison payload is in the worker's quarantine, and nothing of the honest
subject is. Every problem found is listed together in the failure message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.hostile.neighbour import run_neighbour
from testing.servers import Mosquitto
from testing.worker.scenario import fresh_database

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("store_kind", ["embedded", "influxdb"])
def test_a_hostile_neighbour_on_its_own_topics_costs_the_honest_subject_nothing(
    tmp_path: Path, mosquitto: Mosquitto, store_kind: str, request: pytest.FixtureRequest
) -> None:
    if store_kind == "influxdb":
        store = fresh_database(request.getfixturevalue("influxdb"))
    else:
        store = str(tmp_path / "state" / "store.sqlite")
    outcome = run_neighbour(tmp_path, mosquitto.port, store)
    print(
        f"honest samples published {outcome.published}, stored {outcome.stored}, lost {outcome.lost}; "
        f"poison quarantined {outcome.poison_quarantined} of {outcome.poison}"
    )
    problems = outcome.problems
    assert not problems, "\n".join(problems)
    assert outcome.published > 10_000, "the honest subject streamed less than planned"
