"""InfluxQL for the Grafana foundation SDK, which has no InfluxDB query type: a raw InfluxQL target, the InfluxDB
annotation query, and the one data source reference every panel uses.

The JSON written is what Grafana's InfluxDB data source (InfluxQL mode) reads: a target is ``{refId, datasource,
query, rawQuery: true, resultFormat, alias?}``; an annotation carries the data source's own keys ``query``,
``textColumn``, ``titleColumn``, ``tagsColumn``, ``timeEndColumn`` next to the dashboard schema's ones (the schema
leaves an annotation query open for data-source fields; the SDK models only the ``grafana`` data source's).
`register` teaches the SDK's runtime to read the target back, so a dashboard round-trips through the SDK's models.
"""

from __future__ import annotations

import typing
from typing import Any, Literal

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

DATASOURCE_TYPE = "influxdb"
DATASOURCE_UID = "gaitsym-influxdb"
"""The provisioned data source (deploy/grafana/provisioning/datasources/gaitsym.yaml) every panel refers to."""
ResultFormat = Literal["time_series", "table"]
ANNOTATION_KEYS = ("query", "textColumn", "titleColumn", "tagsColumn", "timeEndColumn")
"""The InfluxDB data source's own annotation keys (read by its ``prepareAnnotation``)."""


def datasource() -> dashboard.DataSourceRef:
    return dashboard.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL target (the query text as written, variables substituted by Grafana)."""

    def __init__(
        self,
        ref_id: str = "A",
        query: str = "",
        result_format: ResultFormat = "time_series",
        alias: str | None = None,
        hide: bool | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.alias = alias
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "datasource": datasource(),
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            payload["alias"] = self.alias
        if self.hide is not None:
            payload["hide"] = self.hide
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> typing.Self:
        return cls(
            ref_id=str(data.get("refId", "A")),
            query=str(data.get("query", "")),
            result_format=data.get("resultFormat", "time_series"),
            alias=data.get("alias"),
            hide=data.get("hide"),
        )


class InfluxQL(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of an `InfluxQLQuery` for ``Panel.with_target``."""

    def __init__(
        self, query: str, ref_id: str = "A", result_format: ResultFormat = "time_series", alias: str | None = None
    ) -> None:
        self._internal = InfluxQLQuery(ref_id, query, result_format, alias)

    def build(self) -> InfluxQLQuery:
        return self._internal


class InfluxAnnotation(dashboard.AnnotationQuery):
    """An annotation from an InfluxQL query: one event per row (``timeEndColumn``: a region to that ms time)."""

    def __init__(
        self,
        name: str,
        query: str,
        icon_color: str,
        text_column: str = "",
        title_column: str = "",
        tags_column: str = "",
        time_end_column: str = "",
    ) -> None:
        super().__init__(name=name, datasource=datasource(), enable=True, hide=False, icon_color=icon_color)
        self.query = query
        self.text_column = text_column
        self.title_column = title_column
        self.tags_column = tags_column
        self.time_end_column = time_end_column

    def to_json(self) -> dict[str, object]:
        payload = super().to_json()
        payload.update(
            {
                "query": self.query,
                "textColumn": self.text_column,
                "titleColumn": self.title_column,
                "tagsColumn": self.tags_column,
                "timeEndColumn": self.time_end_column,
            }
        )
        return payload


class Annotation(cogbuilder.Builder[dashboard.AnnotationQuery]):
    def __init__(self, annotation: InfluxAnnotation) -> None:
        self._internal = annotation

    def build(self) -> dashboard.AnnotationQuery:
        return self._internal


def register() -> None:
    """Let the SDK's models read InfluxDB targets back (``Dashboard.from_json``), as it does its own types."""
    cogruntime.register_dataquery_variant(cogruntime.DataqueryConfig(DATASOURCE_TYPE, InfluxQLQuery.from_json))
