"""The query parameters of a read (docs/api/v1.md §6), each declared once, here.

A row gives a parameter's name in the query string (and the other spellings
the reference uses), the type of its value, the categories whose reads take
it, the API status code of a bad value, what the OpenAPI document says of it,
the client's keyword for it, and the gRPC request field it fills (the two
bounds of an interval fill one field). From these rows the gateway parses a
query string into a gRPC request (gateway/params.py) and documents it
(gateway/openapi.py), and the Python client takes its keyword arguments
(`ReadOptions`) and sends them as a query string or a gRPC request
(storecast/client/query.py). It imports nothing of the server or the client.

The services check what values mean (ranges, order, which parameter needs
which: services/lib/reads/window.py), so gRPC callers get the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from storecast.aggregations import Aggregation, AggregationName
from storecast.status import ApiStatus
from storecast.v1 import records_pb2

if TYPE_CHECKING:
    from storecast.client.query import Instant, Period


class ValueType(Enum):
    TIMESTAMP = "an integer millisecond timestamp"
    DURATION = "a positive integer followed by s, m, h or d"
    AGGREGATION = "an aggregation's name"
    BOOLEAN = "true or false"


# A duration's syntax (`period`): an integer of at most 9 digits (9 digits of days still
# fit an int64 of milliseconds) and a unit.
DURATION_MAX_DIGITS = 9
DURATION = re.compile(rf"([0-9]{{1,{DURATION_MAX_DIGITS}}})([smhd])")
DURATION_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000}

_EVERY = frozenset({"production", "forecast", "commitment", "tariff"})
_AGGREGATED = frozenset({"production", "forecast", "commitment"})
_VECTORS = frozenset({"forecast", "commitment"})


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str  # as the query string spells it
    keyword: str  # the client's keyword argument (`from` is a Python keyword)
    value: ValueType
    categories: frozenset[str]  # the categories whose reads take it
    code: ApiStatus.ValueType  # of a bad value
    description: str  # for the OpenAPI document
    field: str  # the gRPC request field it fills (Get*Request)
    bound: Literal["start_ms", "end_ms"] | None = None  # which bound of that Interval field
    aliases: tuple[str, ...] = ()  # other spellings


# In the order a query string is checked, which the OpenAPI document lists them in.
PARAMETERS = (
    Parameter(
        "from",
        "start",
        ValueType.TIMESTAMP,
        _EVERY,
        ApiStatus.INVALID_FROM,
        "keep the timestamps in [from, to[; comes with `to`",
        field="range",
        bound="start_ms",
    ),
    Parameter(
        "to",
        "end",
        ValueType.TIMESTAMP,
        _EVERY,
        ApiStatus.INVALID_TO,
        "keep the timestamps in [from, to[; comes with `from`",
        field="range",
        bound="end_ms",
    ),
    Parameter(
        "generated-after",
        "generated_after",
        ValueType.TIMESTAMP,
        _VECTORS,
        ApiStatus.INVALID_GENERATED_AFTER,
        "select vectors created in [generated-after, generated-before[ (also spelt generated_after); comes with"
        " `generated-before`",
        field="generated",
        bound="start_ms",
        aliases=("generated_after",),
    ),
    Parameter(
        "generated-before",
        "generated_before",
        ValueType.TIMESTAMP,
        _VECTORS,
        ApiStatus.INVALID_GENERATED_BEFORE,
        "select vectors created in [generated-after, generated-before[ (also spelt generated_before); comes with"
        " `generated-after`",
        field="generated",
        bound="end_ms",
        aliases=("generated_before",),
    ),
    Parameter(
        "generate-all",
        "generate_all",
        ValueType.BOOLEAN,
        _VECTORS,
        ApiStatus.INVALID_PARAMETERS,
        "true: every vector selected by generated-after/-before, ascending by creation time; false (the default):"
        " the most recent only (also spelt generate_all); needs `generated-after` and `generated-before`",
        field="generate_all",
        aliases=("generate_all",),
    ),
    Parameter(
        "agg",
        "agg",
        ValueType.AGGREGATION,
        _AGGREGATED,
        ApiStatus.INVALID_AGG,
        "aggregate every numeric attribute with this function over buckets of `period`, ignoring nulls (null when"
        " a bucket has no value of it, but for a count); needs `from`, `to` and `period`",
        field="aggregation",
    ),
    Parameter(
        "period",
        "period",
        ValueType.DURATION,
        _AGGREGATED,
        ApiStatus.INVALID_PERIOD,
        "bucket length for `agg`, aligned to the Unix epoch: an integer and s, m, h or d; needs `agg`",
        field="period_ms",
    ),
)
BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS} | {a: p for p in PARAMETERS for a in p.aliases}


class ReadOptions(TypedDict, total=False):
    """The client's keyword arguments of a read, one per parameter (its `keyword`); None: not given."""

    start: Instant | None
    end: Instant | None
    generated_after: Instant | None
    generated_before: Instant | None
    generate_all: bool | None
    agg: AggregationName | None
    period: Period | None


# A parameter's value once read: a timestamp or a duration in ms, a bool, an aggregation.
Value = int | bool | Aggregation


def taken_by(category: str) -> tuple[Parameter, ...]:
    return tuple(p for p in PARAMETERS if category in p.categories)


# The parameters that are the two bounds of an interval field, by field: (lower, upper).
INTERVALS: dict[str, tuple[Parameter, Parameter]] = {
    p.field: (p, next(q for q in PARAMETERS if q.field == p.field and q.bound == "end_ms"))
    for p in PARAMETERS
    if p.bound == "start_ms"
}


def request_fields(values: Mapping[str, Value]) -> dict[str, Any]:
    """The gRPC request fields (Get*Request's keyword arguments) of the values given by keyword,
    each interval's bounds both given."""
    fields: dict[str, Any] = {}
    for parameter in PARAMETERS:
        value = values.get(parameter.keyword)
        if value is None or parameter.bound is not None:
            continue
        fields[parameter.field] = value.wire if isinstance(value, Aggregation) else value
    for field, (lower, upper) in INTERVALS.items():
        start, end = values.get(lower.keyword), values.get(upper.keyword)
        if isinstance(start, int) and isinstance(end, int):
            fields[field] = records_pb2.Interval(start_ms=start, end_ms=end)
    return fields


def _check() -> None:
    """Every parameter has its keyword argument, and the other way round."""
    if set(ReadOptions.__annotations__) != {p.keyword for p in PARAMETERS}:
        raise ImportError(f"ReadOptions {sorted(ReadOptions.__annotations__)} and PARAMETERS' keywords differ")


_check()
