"""Session-wide test settings: nothing a test runs may write into the working tree or the user's home. And the
servers every folder uses: `mosquitto`, a broker from the project's conf per test, and `influxdb`, a real InfluxDB
1.6 (auth on, the ``gaitsym`` database set up) per test module; each killed after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.influxdb_server import InfluxDB
from testing.servers import Mosquitto, killed_after


@pytest.fixture(autouse=True, scope="session")
def _state_dir_outside_the_repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    mp = pytest.MonkeyPatch()
    mp.setenv("GAITSYM_STATE_DIR", str(tmp_path_factory.mktemp("gaitsym-state")))
    yield
    mp.undo()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    yield from killed_after(Mosquitto(tmp_path / "mosquitto").start())


@pytest.fixture(scope="module")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB]:
    """One server per module: a module may write into the ``gaitsym`` database freely (another module's data is
    never there); for several stores in a module, `testing.worker.scenario.fresh_database`."""
    yield from killed_after(InfluxDB(tmp_path_factory.mktemp("influxdb")).start())
