"""The gateway's configuration file: ``bundle`` (file only) turns bundles off for a clinic not yet upgraded to them;
anything but true or false is refused, naming the file and the key."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from gaitsym.errors import ConfigError
from gaitsym.gateway_settings import resolve_settings


def settings(tmp_path: Path, text: str) -> dict[str, object]:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return resolve_settings(argparse.Namespace(config=str(path)))


def test_bundle_off_in_the_file_reaches_the_settings(tmp_path: Path) -> None:
    assert settings(tmp_path, 'subject = "S001"\nbundle = false\n')["bundle"] is False
    assert "bundle" not in settings(tmp_path, 'subject = "S001"\n')  # the gateway's default: on


def test_a_bundle_setting_that_is_not_a_boolean_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bundle must be true or false"):
        settings(tmp_path, 'subject = "S001"\nbundle = "no"\n')
