"""How long each kind of data is kept: STORECAST_RETENTION, enforced with ClickHouse TTL.

The setting is a comma-separated list of `<key>=<days>`, a key being a category
(`production`, `rollup`, `forecast`, `commitment`, `tariff`) or a category and a
type (`production/meter-3p`, `rollup/meter-3p`, `forecast/solar`); the most
specific key wins, and data no key names is kept for good. Production and
tariffs expire by their record's timestamp, rollups by their cell's, forecasts
and commitments by their vintage's creation_timestamp:

    STORECAST_RETENTION=production=400,production/meter-3p=90,rollup=3650,forecast=365
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from storecast.catalog import EQUIPMENT_TYPES, FORECAST_TYPES

DAY_MS = 86_400_000
_TYPES = {"production": EQUIPMENT_TYPES, "rollup": EQUIPMENT_TYPES, "forecast": FORECAST_TYPES, "commitment": {}, "tariff": {}}


@dataclass(frozen=True, slots=True)
class Retention:
    days: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> Retention:
        """The setting's keys and days; a key or a number that means nothing is refused at start-up."""
        days: dict[str, int] = {}
        for item in filter(None, (part.strip() for part in (text or "").split(","))):
            key, _, value = item.partition("=")
            category, _, type_name = key.strip().partition("/")
            if category not in _TYPES or (type_name and type_name not in _TYPES[category]):
                raise ValueError(f"STORECAST_RETENTION: unknown key {key.strip()!r}")
            if not value.strip().isdigit() or int(value) <= 0:
                raise ValueError(f"STORECAST_RETENTION: {key.strip()} must be a positive number of days, got {value!r}")
            days[key.strip()] = int(value)
        return cls(days)

    def days_of(self, category: str, type_name: str | None = None) -> int | None:
        """Days kept of the category's type (the type's own key, else the category's), None: for good."""
        if type_name is not None and f"{category}/{type_name}" in self.days:
            return self.days[f"{category}/{type_name}"]
        return self.days.get(category)

    def horizon_ms(self, category: str, type_name: str | None = None) -> int:
        """The oldest timestamp still kept: data before it is gone or about to be (0: all is kept)."""
        days = self.days_of(category, type_name)
        return 0 if days is None else int(time.time() * 1000) - days * DAY_MS
