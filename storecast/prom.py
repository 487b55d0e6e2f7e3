"""The Prometheus names of the catalog's series (docs/api/prometheus.md), derived once from it.

A metric per equipment type and numeric attribute, `storecast_<type, - as _>_<attribute>`
(`storecast_meter_3p_l1_p`), and per forecast type and numeric period attribute,
`storecast_forecast_<type>_<attribute>` (`storecast_forecast_solar_p`), whose series
are labelled with the site (`site_id`) and the equipment or forecast id (`id`).
A forecast series is, at each period, the value of the newest vintage holding
it; selected with `horizon="24h"`, that of the newest vintage created at least
24 h before the period (the staircase: "as known a day ahead"), and the series
carries the label. The query service evaluates PromQL over them; the gateway
serves their metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from storecast.catalog import EQUIPMENT_TYPES, FORECAST_TYPES, Attribute, Kind, RecordType

PREFIX = "storecast_"
FORECAST_PREFIX = "storecast_forecast_"
NAME_LABEL = "__name__"
SITE_LABEL = "site_id"
ID_LABEL = "id"
# A forecast's staircase at a horizon (a PromQL duration); absent: the newest vintage of each period.
HORIZON_LABEL = "horizon"
# Every label a series has, in the order a series' labels are listed.
LABELS = (NAME_LABEL, ID_LABEL, SITE_LABEL)


Category = Literal["production", "forecast"]


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    category: Category
    equipment: RecordType  # the equipment type, or the forecast type
    attribute: Attribute

    @property
    def help(self) -> str:
        kind = "forecast " if self.category == "forecast" else ""
        return f"{kind}{self.equipment.name} ({self.equipment.description}): {self.attribute.description}"


def metric_name(category: Category, record_type: RecordType, attribute: Attribute) -> str:
    prefix = FORECAST_PREFIX if category == "forecast" else PREFIX
    return f"{prefix}{record_type.table_suffix}_{attribute.name}"


def _metrics(category: Category, types: dict[str, RecordType]) -> list[Metric]:
    return [
        Metric(metric_name(category, record_type, attribute), category, record_type, attribute)
        for record_type in types.values()
        for attribute in record_type.attributes
        if attribute.kind in (Kind.FLOAT, Kind.UNSIGNED_INT)
    ]


_ALL = _metrics("production", EQUIPMENT_TYPES) + _metrics("forecast", FORECAST_TYPES)
METRICS: dict[str, Metric] = {metric.name: metric for metric in _ALL}
# No equipment type is named `forecast`; attribute names hold no `-`, type names no `_`.
if len(METRICS) != len(_ALL):
    raise ImportError("two catalog attributes map to one Prometheus metric name")
