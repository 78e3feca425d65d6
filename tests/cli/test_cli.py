"""The `gaitsym` command as a user meets it: every subcommand has --help, and building the parser is light."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gaitsym.cli import build_parser, command_modules, main


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)  # type: ignore[arg-type]


def test_every_subcommand_has_help(capsys):
    names = _subcommands()
    assert {"protocol", "simulate", "recording", "demo"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        assert "usage: gaitsym " + name in capsys.readouterr().out


def test_building_the_parser_imports_no_numerics():
    """`gaitsym protocol decode` on a gateway must not pay for numpy/pandas; the registry stays light."""
    code = (
        "import sys, gaitsym.cli as c; c.build_parser();"
        "heavy = [m for m in ('numpy', 'pandas', 'scipy') if m in sys.modules];"
        "sys.exit(', '.join(heavy) or None)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"imported at parser build: {result.stderr.strip()}"
    assert len(command_modules()) == len(set(command_modules()))


def test_an_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
