"""Session-wide test settings: nothing a test runs may write into the working tree or the user's home."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _state_dir_outside_the_repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    mp = pytest.MonkeyPatch()
    mp.setenv("GAITSYM_STATE_DIR", str(tmp_path_factory.mktemp("gaitsym-state")))
    yield
    mp.undo()
