"""Query strings to typed values and gRPC request fields (docs/api/v1.md §6), before any gRPC call.

A read's parameters are the rows of storecast/query_parameters.py: `read_fields`
takes those its category takes and fills the gRPC request from them. Only the
text form is checked here (unknown or repeated parameters, digits, `agg` and
`period` spelling, bounds that come together); the services check what values
mean (ranges, order, which parameters need which), so gRPC callers get the
same rules.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import parse_qsl

from storecast.aggregations import Aggregation, spelled
from storecast.query_parameters import (
    BY_NAME,
    DURATION,
    DURATION_UNIT_MS,
    INTERVALS,
    Parameter,
    Value,
    ValueType,
    request_fields,
    taken_by,
)
from storecast.status import ApiFailure, ApiStatus
from storecast.v1 import records_pb2

RANGE = tuple(p.name for p in INTERVALS["range"])

_DIGITS = re.compile(r"[0-9]{1,18}")


def parse(query_string: bytes, allowed: Collection[str], where: str) -> dict[str, str]:
    """Each allowed parameter at most once, under its canonical name."""
    params: dict[str, str] = {}
    for raw_name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        known = BY_NAME.get(raw_name)
        name = raw_name if known is None else known.name
        if name not in allowed:
            raise ApiFailure(ApiStatus.INVALID_PARAMETERS, f"{raw_name!r} is not a parameter of {where}")
        if name in params:
            raise ApiFailure(ApiStatus.INVALID_PARAMETERS, f"{name} is given more than once")
        params[name] = value
    return params


def read_fields(query_string: bytes, category: str, aggregations: Mapping[str, Aggregation]) -> dict[str, Any]:
    """The gRPC request fields of a read's query string, `agg` one of `aggregations`; in the
    parameters' order, each interval's bounds checked together once both were read."""
    taken = taken_by(category)
    query = parse(query_string, [p.name for p in taken], category)
    values: dict[str, Value] = {}
    for parameter in taken:
        text = query.get(parameter.name)
        if text is not None:
            values[parameter.keyword] = _value(parameter, text, aggregations)
        lower, upper = INTERVALS.get(parameter.field, (None, None))
        if parameter is upper and lower is not None and (lower.keyword in values) != (upper.keyword in values):
            raise ApiFailure(ApiStatus.INVALID_PARAMETERS, f"{lower.name} and {upper.name} come together or not at all")
    return request_fields(values)


def _value(parameter: Parameter, text: str, aggregations: Mapping[str, Aggregation]) -> Value:
    if parameter.value is ValueType.TIMESTAMP:
        return _timestamp(parameter, text)
    if parameter.value is ValueType.DURATION:
        return _duration(parameter.name, parameter.code, text)
    if parameter.value is ValueType.AGGREGATION:
        aggregation = aggregations.get(text)
        if aggregation is None:
            raise ApiFailure(parameter.code, f"{parameter.name} must be {spelled(list(aggregations))}, got {text!r}")
        return aggregation
    if text not in ("true", "false"):
        raise ApiFailure(parameter.code, f"{parameter.name} must be true or false, got {text!r}")
    return text == "true"


def _timestamp(parameter: Parameter, text: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise ApiFailure(parameter.code, f"{parameter.name} must be an integer millisecond timestamp, got {text!r}")
    return int(text)


def _duration(name: str, code: ApiStatus.ValueType, text: str, *, zero: bool = False, example: str = "15m") -> int:
    """A duration in `period`'s syntax (`code` if bad), positive unless `zero` allows 0."""
    match = DURATION.fullmatch(text)
    if match is None or (int(match[1]) == 0 and not zero):
        sign = "non-negative" if zero else "positive"
        raise ApiFailure(code, f"{name} must be a {sign} integer followed by s, m, h or d (e.g. {example}), got {text!r}")
    return int(match[1]) * DURATION_UNIT_MS[match[2]]


# ---- the /ext/v1 endpoints' own parameters (gateway/ext.py) ----------------------------------


def interval(params: dict[str, str], lower: str, upper: str) -> records_pb2.Interval | None:
    """An interval of two timestamp parameters of storecast/query_parameters.py."""
    start, end = (None if params.get(name) is None else _timestamp(BY_NAME[name], params[name]) for name in (lower, upper))
    if start is not None and end is not None:
        return records_pb2.Interval(start_ms=start, end_ms=end)
    if start is not None or end is not None:
        raise ApiFailure(ApiStatus.INVALID_PARAMETERS, f"{lower} and {upper} come together or not at all")
    return None


def duration_ms(params: dict[str, str], name: str, *, zero: bool = False, example: str = "15m") -> int | None:
    """A duration in `period`'s syntax (1206 if bad), positive unless `zero` allows 0."""
    text = params.get(name)
    return None if text is None else _duration(name, ApiStatus.INVALID_PERIOD, text, zero=zero, example=example)
