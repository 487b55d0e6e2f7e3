"""What a series name means: its category, its catalog type, its columns.

A series is named as in the v1 URL space: `production/<equipment type>`,
`forecast/<forecast type>`, `commitment` or `tariff`. Its flat layout, one
row per record (per period for vectors), is the layout of DataFrames and of
import/export files alike:

- production: timestamp, id, <attributes>
- forecast, commitment: creation_timestamp, id, timestamp, <vector attributes>, <period attributes>
- tariff: id, timestamp, <attributes>
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from storecast.catalog import COMMITMENT, EQUIPMENT_TYPES, FORECAST_TYPES, TARIFF, Attribute, RecordType

TIMESTAMP = "timestamp"
CREATION_TIMESTAMP = "creation_timestamp"
ID = "id"
# The largest `to` of a read; a read with no range resumes up to it (docs/api/v1.md §7, "Resuming a read that had no range").
READ_END_MS = 7_258_118_399_999


class Category(StrEnum):
    PRODUCTION = "production"
    FORECAST = "forecast"
    COMMITMENT = "commitment"
    TARIFF = "tariff"


@dataclass(frozen=True, slots=True)
class Series:
    category: Category
    record_type: RecordType

    @classmethod
    def parse(cls, name: str) -> Series:
        """`production/renewable`, `forecast/solar`, `commitment` or `tariff`."""
        category, _, type_name = name.strip("/").partition("/")
        if category == Category.PRODUCTION and type_name in EQUIPMENT_TYPES:
            return cls(Category.PRODUCTION, EQUIPMENT_TYPES[type_name])
        if category == Category.FORECAST and type_name in FORECAST_TYPES:
            return cls(Category.FORECAST, FORECAST_TYPES[type_name])
        if category == Category.COMMITMENT and not type_name:
            return cls(Category.COMMITMENT, COMMITMENT)
        if category == Category.TARIFF and not type_name:
            return cls(Category.TARIFF, TARIFF)
        raise ValueError(f"unknown series {name!r}: expected one of {', '.join(all_series_names())}")

    @property
    def name(self) -> str:
        if self.category in (Category.PRODUCTION, Category.FORECAST):
            return f"{self.category}/{self.record_type.name}"
        return str(self.category)

    def __str__(self) -> str:
        return self.name

    @property
    def is_vector(self) -> bool:
        """Forecasts and commitments: vectors keyed by (id, creation_timestamp), replaced whole."""
        return self.category in (Category.FORECAST, Category.COMMITMENT)

    @property
    def has_entries(self) -> bool:
        """Vectors and tariffs travel as entries (id, ...) each holding periods."""
        return self.category is not Category.PRODUCTION

    @property
    def entry_keys(self) -> tuple[str, ...]:
        """The columns that identify an entry: (id, creation_timestamp) for vectors, (id) for tariffs."""
        if self.is_vector:
            return (ID, CREATION_TIMESTAMP)
        return (ID,) if self.has_entries else ()

    @property
    def key_columns(self) -> tuple[str, ...]:
        if self.category is Category.PRODUCTION:
            return (TIMESTAMP, ID)
        if self.is_vector:
            return (CREATION_TIMESTAMP, ID, TIMESTAMP)
        return (ID, TIMESTAMP)

    @property
    def index_columns(self) -> tuple[str, ...]:
        """The DataFrame index: timestamp, or (creation_timestamp, timestamp) for vectors."""
        return (CREATION_TIMESTAMP, TIMESTAMP) if self.is_vector else (TIMESTAMP,)

    @property
    def entry_attributes(self) -> tuple[Attribute, ...]:
        """A vector's own attributes (a commitment's quality), repeated on each of its period rows."""
        return self.record_type.vector_attributes

    @property
    def attributes(self) -> tuple[Attribute, ...]:
        """The attributes of a row: of a record, or of a period."""
        return self.record_type.attributes

    @property
    def all_attributes(self) -> tuple[Attribute, ...]:
        return self.entry_attributes + self.attributes

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column of the flat layout, in file order."""
        return self.key_columns + tuple(a.name for a in self.all_attributes)

    def attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.all_attributes if a.name == name), None)

    def path(self, site: int) -> str:
        """The v1 PUT path; a GET path adds /<id>."""
        return f"/v1/{site}/{self.name}"


def all_series_names() -> list[str]:
    return (
        [f"production/{name}" for name in EQUIPMENT_TYPES]
        + [f"forecast/{name}" for name in FORECAST_TYPES]
        + [str(Category.COMMITMENT), str(Category.TARIFF)]
    )
