"""The committed provisioning files are what the code generates; every dashboard reads back through the Grafana
SDK's own models unchanged; units on every axis; the data source keeps its password out of the file; Grafana's
variable and interval substitution as the dashboards' query tests apply it. No server needed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from dashboards import provisioning, queries
from dashboards.errors import InvalidDashboard, StaleProvisioning
from testing.grafana_queries import ALL, Variable, format_interval, interval_ms, substitute

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "deploy" / "grafana" / "provisioning"


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return provisioning.render()


def _dashboards(files: dict[str, str]) -> list[dict[str, Any]]:
    return [json.loads(text) for name, text in files.items() if name.endswith(".json")]


def test_committed_provisioning_files_are_what_the_code_generates() -> None:
    provisioning.check(COMMITTED)  # raises StaleProvisioning naming the files: regenerate with the module


def test_a_changed_or_left_over_file_is_reported(tmp_path: Path) -> None:
    provisioning.write(tmp_path)
    provisioning.check(tmp_path)
    one = tmp_path / provisioning.DASHBOARD_DIR / "one-patient.json"
    one.write_text(one.read_text().replace("percent", "percentunit", 1))
    (tmp_path / provisioning.DASHBOARD_DIR / "old.json").write_text("{}")
    with pytest.raises(StaleProvisioning, match=r"one-patient\.json.*old\.json"):
        provisioning.check(tmp_path)


def test_every_dashboard_reads_back_through_the_sdk_models_unchanged(files: dict[str, str]) -> None:
    docs = _dashboards(files)
    assert {d["uid"] for d in docs} == {"gaitsym-clinic", "gaitsym-patient", "gaitsym-session"}
    for doc in docs:
        provisioning.validate(doc)
        assert doc["schemaVersion"] == provisioning.SCHEMA_VERSION


@pytest.mark.parametrize(
    "spoil",
    [
        lambda d: d["panels"][1].__setitem__("colour", "red"),  # an option Grafana does not know
        lambda d: d["panels"][1]["fieldConfig"]["defaults"]["custom"].__setitem__("pointSise", 6),  # misspelled
        lambda d: d["panels"][1]["targets"][0].__setitem__("rawQuerry", True),  # misspelled target key
        lambda d: d.__setitem__("schemaVersion", 39),
    ],
)
def test_validation_catches_what_grafana_would_ignore(files: dict[str, str], spoil: Any) -> None:
    doc = copy.deepcopy(json.loads(files[f"{provisioning.DASHBOARD_DIR}/one-patient.json"]))
    spoil(doc)
    with pytest.raises(InvalidDashboard):
        provisioning.validate(doc)


def test_units_on_every_value_axis(files: dict[str, str]) -> None:
    for doc in _dashboards(files):
        for panel in doc["panels"]:
            if panel["type"] == "timeseries":
                defaults = panel["fieldConfig"]["defaults"]
                assert defaults.get("unit") and defaults.get("custom", {}).get("axisLabel"), panel["title"]


def test_band_default_is_the_reading_rule_and_cited(files: dict[str, str]) -> None:
    for doc in _dashboards(files):
        band = {v["name"]: v for v in doc["templating"]["list"]}["band"]
        assert band["current"]["value"] == f"{queries.DEFAULT_BAND:g}" == "10"
        assert "arbitrary" in band["description"] and "DEFAULT_SI_BAND_PCT" in band["description"]


def test_datasource_password_comes_from_the_environment(files: dict[str, str]) -> None:
    text = files["datasources/gaitsym.yaml"]
    assert f"password: ${{{provisioning.PASSWORD_ENV}}}" in text
    assert "version: InfluxQL" in text and "uid: gaitsym-influxdb" in text
    assert "password:" not in text.replace(f"password: ${{{provisioning.PASSWORD_ENV}}}", "")
    assert f"path: {provisioning.INSTALLED_DASHBOARD_DIR}" in files["dashboards/gaitsym.yaml"]


def test_grafana_substitution_rules() -> None:
    q = "SELECT x FROM m WHERE s = '$subject' AND e =~ /^$exercise$/ AND $timeFilter GROUP BY time($__interval)"
    text = substitute(
        q,
        {"subject": Variable("p.1"), "exercise": Variable(("clam", "single_leg_bridge"), multi=True)},
        from_ms=0,
        to_ms=86_400_000,
    )
    assert text == (
        "SELECT x FROM m WHERE s = 'p.1' AND e =~ /^(clam|single_leg_bridge)$/ AND time >= 0ms and time <= "
        "86400000ms GROUP BY time(1m)"
    )
    regex = substitute("s =~ /^$subject$/", {"subject": Variable("p.1")}, from_ms=0, to_ms=1)
    assert regex == r"s =~ /^p\.1$/"
    assert (
        substitute(
            "e =~ /^$e$/", {"e": Variable(ALL, multi=True, include_all=True, all_value=".*")}, from_ms=0, to_ms=1
        )
        == "e =~ /^.*$/"
    )
    assert substitute("t > ${__to}ms - 7d", {}, from_ms=0, to_ms=123) == "t > 123ms - 7d"
    assert format_interval(interval_ms(0, 702_000, 2000, 10)) == "500ms"
    assert format_interval(interval_ms(0, 60_000, 2000, 10)) == "20ms"
    assert format_interval(interval_ms(0, 180 * 86_400_000, 1000, 10)) == "3h"
    assert format_interval(interval_ms(0, 180 * 86_400_000, 100, 10)) == "1d"
    with pytest.raises(ValueError, match="unsubstituted"):
        substitute("x = '$missing'", {}, from_ms=0, to_ms=1)
