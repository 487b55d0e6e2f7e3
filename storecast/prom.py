"""The Prometheus names of the catalog's production series (docs/api/prometheus.md), derived once from it.

A metric per equipment type and numeric attribute, `storecast_<type, - as _>_<attribute>`
(`storecast_meter_3p_l1_p`), whose series are labelled with the site (`site_id`) and
the equipment id (`id`). The query service evaluates PromQL over them; the gateway
serves their metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

from storecast.catalog import EQUIPMENT_TYPES, Attribute, Kind, RecordType

PREFIX = "storecast_"
NAME_LABEL = "__name__"
SITE_LABEL = "site_id"
ID_LABEL = "id"
# Every label a series has, in the order a series' labels are listed.
LABELS = (NAME_LABEL, ID_LABEL, SITE_LABEL)


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    equipment: RecordType
    attribute: Attribute

    @property
    def help(self) -> str:
        return f"{self.equipment.name} ({self.equipment.description}): {self.attribute.description}"


def metric_name(equipment: RecordType, attribute: Attribute) -> str:
    return f"{PREFIX}{equipment.table_suffix}_{attribute.name}"


# Attribute names hold no `-`, type names no `_`: no two (type, attribute) share a name (checked below).
METRICS: dict[str, Metric] = {
    metric_name(equipment, attribute): Metric(metric_name(equipment, attribute), equipment, attribute)
    for equipment in EQUIPMENT_TYPES.values()
    for attribute in equipment.attributes
    if attribute.kind in (Kind.FLOAT, Kind.UNSIGNED_INT)
}
if len(METRICS) != sum(1 for e in EQUIPMENT_TYPES.values() for a in e.attributes if a.kind is not Kind.STRING):
    raise ImportError("two catalog attributes map to one Prometheus metric name")
