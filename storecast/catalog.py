"""The catalog declared in catalog.proto, as plain Python values.

Everything that depends on an equipment or forecast type (validation, table
schemas, JSON rendering, OpenAPI, docs) reads it from here, and this module
reads it from the proto options, so a type exists in exactly one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from google.protobuf.descriptor import EnumDescriptor

from storecast.v1 import catalog_pb2


class Kind(Enum):
    FLOAT = catalog_pb2.FLOAT
    UNSIGNED_INT = catalog_pb2.UNSIGNED_INT
    STRING = catalog_pb2.STRING


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    kind: Kind
    unit: str
    description: str
    max_length: int = 0


@dataclass(frozen=True, slots=True)
class RecordType:
    """An equipment type, a forecast type or a vector category: a name and its attributes."""

    enum_value: int
    name: str
    description: str
    attributes: tuple[Attribute, ...]
    vector_attributes: tuple[Attribute, ...] = ()

    @property
    def table_suffix(self) -> str:
        return self.name.replace("-", "_")


def _attributes(specs: Iterable[catalog_pb2.AttributeSpec]) -> tuple[Attribute, ...]:
    return tuple(Attribute(a.name, Kind(a.kind), a.unit, a.description, a.max_length) for a in specs)


def _types_of(enum: EnumDescriptor) -> dict[str, RecordType]:
    types: dict[str, RecordType] = {}
    for value in enum.values:
        if value.number == 0:
            continue
        spec = value.GetOptions().Extensions[catalog_pb2.spec]
        types[spec.name] = RecordType(
            value.number, spec.name, spec.description, _attributes(spec.attributes), _attributes(spec.vector_attributes)
        )
    return types


EQUIPMENT_TYPES: dict[str, RecordType] = _types_of(catalog_pb2.EquipmentType.DESCRIPTOR)
FORECAST_TYPES: dict[str, RecordType] = _types_of(catalog_pb2.ForecastType.DESCRIPTOR)
COMMITMENT: RecordType = _types_of(catalog_pb2.VectorCategory.DESCRIPTOR)["commitment"]
TARIFF: RecordType = _types_of(catalog_pb2.VectorCategory.DESCRIPTOR)["tariff"]

EQUIPMENT_BY_ENUM: dict[int, RecordType] = {t.enum_value: t for t in EQUIPMENT_TYPES.values()}
FORECAST_BY_ENUM: dict[int, RecordType] = {t.enum_value: t for t in FORECAST_TYPES.values()}

# Timestamps are integer epoch milliseconds before 2200-01-01T00:00:00Z.
TIMESTAMP_LIMIT_MS = 7_258_118_400_000
UINT32_MAX = 2**32 - 1
