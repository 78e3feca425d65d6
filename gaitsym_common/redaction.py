"""Secrets out of what gaitsym prints and logs: one function, `redact_url`, for every store or broker URL.

A store URL may carry a password (``influx://worker:secret@host/gaitsym``) or a token (``...?token=...``), a
broker URL the same; printed in a banner or an error message, they would end up in terminals, journald and
support tickets. `redact_url` keeps what an operator needs to recognise the URL (scheme, user, host, port,
path, the other settings) and replaces each secret with ``***``. It takes any text: a bare URL, or a message
with URLs inside it. It never raises.

Used by the analytics side as well (the lowest package that prints such URLs): standard library only.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "SECRET_PARAMETERS", "redact_url"]

MASK = "***"
SECRET_PARAMETERS = ("password", "passwd", "pass", "pwd", "token", "secret", "key", "api_key", "access_token", "p")
"""Query parameters whose value is a secret (``p`` is InfluxDB 1.x's password parameter)."""

# scheme://authority: the authority runs to the first '/', '?', '#' or whitespace, except that a password may hold
# an unencoded '/', '?' or '#' before the last '@': so the userinfo is everything up to the last '@' of the
# URL's first whitespace-free run, when there is one
_URL = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<rest>[^\s'\"<>]*)")
_SECRET_PARAM = re.compile(
    r"(?P<lead>[?&;])(?P<name>" + "|".join(SECRET_PARAMETERS) + r")=(?P<value>[^&;#\s'\"<>]*)", re.IGNORECASE
)


def _redact_one(match: re.Match[str]) -> str:
    scheme, rest = match.group("scheme"), match.group("rest")
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, _password = userinfo.partition(":")
        # a '/' before the '@' with no ':' is a path, not userinfo (e.g. a path holding an '@')
        if colon or "/" not in userinfo:
            userinfo = f"{user}:{MASK}" if colon else user
            return f"{scheme}{userinfo}@{_redact_query(rest)}"
        rest = f"{userinfo}@{rest}"
    return f"{scheme}{_redact_query(rest)}"


def _redact_query(rest: str) -> str:
    return _SECRET_PARAM.sub(lambda m: f"{m.group('lead')}{m.group('name')}={MASK}", rest)


def redact_url(text: object) -> str:
    """``text`` (a URL, or a message holding URLs) with every URL's password and secret parameters replaced by
    ``***``; the user name and everything else are kept. ``influx://worker:s3cret@db:8086/gaitsym`` ->
    ``influx://worker:***@db:8086/gaitsym``."""
    try:
        return _URL.sub(_redact_one, str(text))
    except Exception:  # a message that cannot be redacted is not printed at all
        return "<URL withheld: it could not be redacted>"
