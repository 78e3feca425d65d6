"""Errors of the dashboards package: one root, typed subclasses."""

from __future__ import annotations


class DashboardError(Exception):
    """Root of every error raised by the dashboards package."""


class InvalidDashboard(DashboardError):
    """A generated dashboard does not read back through the Grafana SDK's models unchanged (names the paths)."""


class StaleProvisioning(DashboardError):
    """The committed provisioning files differ from what the code generates (names the files)."""
