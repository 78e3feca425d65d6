"""The two text formats of the clinic folder's own files besides JSON: TOML strings (gateway and session-command
configuration) and compose env files (each service's secrets, the compose variables)."""

from __future__ import annotations

import json
import re

from gaitsym.errors import ClinicSetupError


def toml_str(value: str) -> str:
    """A TOML basic string (JSON's escapes are a subset of TOML's)."""
    return json.dumps(value, ensure_ascii=True)


def env_text(values: dict[str, str]) -> str:
    """A compose ``env_file`` (KEY=VALUE lines); no value here holds a quote, a newline or a ``$``."""
    for key, value in values.items():
        if re.search(r"[\s'\"$\\#]", value):
            raise ClinicSetupError(f"{key}: value not safe for an env file")
    return "".join(f"{key}={value}\n" for key, value in values.items())
