"""The catalog declared in catalog.proto, as plain Python values.

Everything that depends on an equipment or forecast type (validation, table
schemas, JSON rendering, OpenAPI, docs) reads it from here, and this module
reads it from the proto options, so a type exists in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from google.protobuf.descriptor import EnumDescriptor

from storecast.v1 import catalog_pb2


class Kind(Enum):
    FLOAT = catalog_pb2.FLOAT
    UNSIGNED_INT = catalog_pb2.UNSIGNED_INT


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    kind: Kind
    unit: str
    description: str


@dataclass(frozen=True, slots=True)
class RecordType:
    """An equipment type or a forecast type: a name and its attributes."""

    enum_value: int
    name: str
    description: str
    attributes: tuple[Attribute, ...]

    @property
    def table_suffix(self) -> str:
        return self.name.replace("-", "_")


def _types_of(enum: EnumDescriptor) -> dict[str, RecordType]:
    types: dict[str, RecordType] = {}
    for value in enum.values:
        if value.number == 0:
            continue
        spec = value.GetOptions().Extensions[catalog_pb2.spec]
        attributes = tuple(Attribute(a.name, Kind(a.kind), a.unit, a.description) for a in spec.attributes)
        types[spec.name] = RecordType(value.number, spec.name, spec.description, attributes)
    return types


EQUIPMENT_TYPES: dict[str, RecordType] = _types_of(catalog_pb2.EquipmentType.DESCRIPTOR)
FORECAST_TYPES: dict[str, RecordType] = _types_of(catalog_pb2.ForecastType.DESCRIPTOR)

EQUIPMENT_BY_ENUM: dict[int, RecordType] = {t.enum_value: t for t in EQUIPMENT_TYPES.values()}
FORECAST_BY_ENUM: dict[int, RecordType] = {t.enum_value: t for t in FORECAST_TYPES.values()}

# Timestamps are integer epoch milliseconds before 2200-01-01T00:00:00Z.
TIMESTAMP_LIMIT_MS = 7_258_118_400_000
UINT32_MAX = 2**32 - 1
