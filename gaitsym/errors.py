"""Errors of the gaitsym package (the command line, the gateway process wiring, the clinic set-up): one root,
typed subclasses. Each names the file, setting or user that was wrong."""

from __future__ import annotations


class GaitsymError(Exception):
    """Root of every error raised by the gaitsym package."""


class InsecureFile(GaitsymError):
    """A configuration or secret file that other local users could read or change (names the file and its mode)."""


class ConfigError(GaitsymError, ValueError):
    """A setting of a gateway configuration file is missing or malformed (names the file and the setting)."""


class KitMismatch(GaitsymError):
    """The kit pinned on this gateway is not the kit its configuration names (names placement and serials)."""


class ClinicSetupError(GaitsymError):
    """`gaitsym clinic init` or `gaitsym enrol` cannot go on (names the file, user or tool at fault); nothing it
    had already written is left half-written."""
