"""Grafana dashboards as code: the clinic overview, one patient over weeks, one session."""
