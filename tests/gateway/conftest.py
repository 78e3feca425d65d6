from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testing.servers import Mosquitto


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto").start()
    try:
        yield broker
    finally:
        broker.kill()
