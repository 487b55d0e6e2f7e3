"""The options of a read (docs/api/v1.md §6) and their two spellings: v1 query parameters and gRPC request fields.

Both come from the parameters' rows (storecast/query_parameters.py): a
`Query` holds each option given by its keyword, converted to the parameter's
value (milliseconds, a bool, an aggregation), and spells them either way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Unpack

import numpy as np
import pandas as pd

from storecast import aggregations
from storecast.aggregations import AGGREGATIONS, AggregationName, of_period, spelled
from storecast.catalog import Kind
from storecast.client.series import READ_END_MS, Series
from storecast.query_parameters import (
    DURATION,
    DURATION_UNIT_MS,
    INTERVALS,
    PARAMETERS,
    Parameter,
    ReadOptions,
    Value,
    ValueType,
    request_fields,
)

# An instant: epoch milliseconds, or anything pandas reads as a time (naive means UTC).
Instant = int | dt.datetime | pd.Timestamp | np.datetime64 | str
# A bucket width: `15m`, `30s`, `1h`, `1d`, milliseconds (whole seconds), or a timedelta.
Period = str | int | dt.timedelta | pd.Timedelta
Aggregation = AggregationName

_RANGE = INTERVALS["range"]
_AGG = next(p for p in PARAMETERS if p.value is ValueType.AGGREGATION)
_BY_KEYWORD = {p.keyword: p for p in PARAMETERS}


def to_ms(instant: Instant) -> int:
    """Epoch milliseconds of an instant; an int is taken as milliseconds already."""
    if isinstance(instant, bool):
        raise TypeError("a timestamp cannot be a bool")
    if isinstance(instant, int | np.integer):
        return int(instant)
    stamp = pd.Timestamp(instant)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value // 1_000_000)


def period_ms(period: Period) -> int:
    if isinstance(period, str):
        match = DURATION.fullmatch(period)
        if match is None:
            raise ValueError(f"period must be a positive integer followed by s, m, h or d, got {period!r}")
        return int(match[1]) * DURATION_UNIT_MS[match[2]]
    if isinstance(period, dt.timedelta):
        return int(pd.Timedelta(period).value // 1_000_000)
    return int(period)


def period_text(milliseconds: int) -> str:
    """The v1 spelling of a period in milliseconds (whole seconds): the largest unit that divides it."""
    if milliseconds <= 0 or milliseconds % 1000:
        raise ValueError(f"a period is a positive whole number of seconds, got {milliseconds} ms")
    unit = next(unit for unit, size in DURATION_UNIT_MS.items() if milliseconds % size == 0)
    return f"{milliseconds // DURATION_UNIT_MS[unit]}{unit}"


@dataclass(frozen=True, slots=True)
class Query:
    """The options of a read by keyword (`ReadOptions`): [start, end[ on period timestamps;
    [generated_after, generated_before[ on creation timestamps (vectors), with every vector in
    it if generate_all; aggregation `agg` per bucket of `period`. Build it with `Query.of`."""

    values: Mapping[str, Value] = field(default_factory=dict)

    @classmethod
    def of(cls, *, as_of: Instant | None = None, **options: Unpack[ReadOptions]) -> Query:
        """`as_of`: the latest vector created at or before it (generated in [0, as_of]), as tshistory's revision_date."""
        given: dict[str, Any] = {keyword: value for keyword, value in options.items() if value is not None}
        unknown = [keyword for keyword in given if keyword not in _BY_KEYWORD]
        if unknown:
            raise TypeError(f"unexpected keyword argument(s) {', '.join(unknown)}; a read takes {', '.join(_BY_KEYWORD)}")
        if as_of is not None:
            if "generated_after" in given or "generated_before" in given:
                raise ValueError("as_of replaces generated_after and generated_before")
            given |= {"generated_after": 0, "generated_before": to_ms(as_of) + 1}
        # gRPC requests carry intervals whole; both transports refuse half of one alike.
        for lower, upper in INTERVALS.values():
            if (lower.keyword in given) != (upper.keyword in given):
                raise ValueError(f"{lower.keyword} and {upper.keyword} come together or not at all")
        return cls({keyword: _value(_BY_KEYWORD[keyword], value) for keyword, value in given.items()})

    @property
    def aggregation(self) -> aggregations.Aggregation | None:
        value = self.values.get(_AGG.keyword)
        return value if isinstance(value, aggregations.Aggregation) else None

    @property
    def beyond_v1(self) -> bool:
        """Whether an aggregation v1 does not serve was asked: REST reads it under /ext/v1."""
        return self.aggregation is not None and not self.aggregation.v1

    def resumed(self, next_from: int) -> Query:
        """The same read from `next_from` on (a read with no range resumes up to READ_END_MS)."""
        lower, upper = _RANGE
        end = self.values.get(upper.keyword, READ_END_MS)
        return replace(self, values={**self.values, lower.keyword: next_from, upper.keyword: end})

    def check(self, category: str) -> None:
        """A ValueError unless a read of the category takes every option given."""
        for keyword in self.values:
            if category not in _BY_KEYWORD[keyword].categories:
                raise ValueError(f"a {category} read takes no {keyword}")

    def params(self) -> dict[str, str]:
        """v1 query parameters."""
        return {p.name: _text(p, self.values[p.keyword]) for p in PARAMETERS if p.keyword in self.values}

    def request_fields(self) -> dict[str, Any]:
        """gRPC Get*Request fields."""
        return request_fields(self.values)


def _value(parameter: Parameter, given: Any) -> Value:
    """An option as its parameter's value."""
    if parameter.value is ValueType.TIMESTAMP:
        return to_ms(given)
    if parameter.value is ValueType.DURATION:
        return period_ms(given)
    if parameter.value is ValueType.BOOLEAN:
        return bool(given)
    if given not in AGGREGATIONS:
        raise ValueError(f"{parameter.keyword} must be {spelled(list(AGGREGATIONS))}, got {given!r}")
    return AGGREGATIONS[given]


def _text(parameter: Parameter, value: Value) -> str:
    """A parameter's value as the query string spells it."""
    if isinstance(value, aggregations.Aggregation):
        return value.name
    if isinstance(value, bool):
        return "true" if value else "false"
    return period_text(value) if parameter.value is ValueType.DURATION else str(value)


def result_kinds(series: Series, query: Query) -> dict[str, Kind]:
    """The kind of each row attribute whose kind the query's aggregation changes (an average
    is a float); a vector's own attributes (a commitment's quality) are returned as stored."""
    asked = query.aggregation
    if asked is None:
        return {}
    kinds = {}
    for attribute in series.attributes:
        aggregation = of_period(asked, attribute) if series.is_vector else asked
        if aggregation.kind(attribute) is not attribute.kind:
            kinds[attribute.name] = aggregation.kind(attribute)
    return kinds
