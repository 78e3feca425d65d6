"""The scenario harness goes on only on evidence: it refuses to start the gateways before a worker is connected,
and refuses to hand back an outcome whose final results never came, each with an error naming what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.servers import free_port
from testing.worker.harness import WorkerProcess
from testing.worker.scenario import ScenarioIncomplete, wait_for_final_results, wait_for_workers


def test_a_worker_that_never_connects_stops_the_scenario_naming_it(tmp_path: Path) -> None:
    worker = WorkerProcess(free_port(), str(tmp_path / "store.sqlite"), "worker-lonely", tmp_path).start()
    try:  # nothing listens on the port: the worker keeps retrying and never logs that it is connected
        with pytest.raises(ScenarioIncomplete, match="worker-lonely not connected to the broker after 2 s"):
            wait_for_workers([worker], timeout_s=2.0)
    finally:
        worker.kill()


def test_a_worker_that_exits_stops_the_scenario_with_its_log(tmp_path: Path) -> None:
    worker = WorkerProcess(1, "nosuchscheme://x", "worker-broken", tmp_path).start()
    try:
        with pytest.raises(ScenarioIncomplete, match=r"(?s)worker-broken exited \(code [1-9].*nosuchscheme"):
            wait_for_workers([worker], timeout_s=60.0)
    finally:
        worker.kill()


def test_final_results_that_never_come_stop_the_scenario_naming_the_subjects(tmp_path: Path) -> None:
    url = str(tmp_path / "store.sqlite")
    with pytest.raises(ScenarioIncomplete, match=r"no final session summary .* stored for S001, S002"):
        wait_for_final_results(url, ["S001", "S002"], timeout_s=0.0)
