"""Query strings to typed values (CONTRACT §6), before any gRPC call.

Only the text form is checked here (unknown or repeated parameters, digits,
`agg` and `period` spelling, pairs that come together); the services check
what values mean (ranges, order, which parameters need which), so gRPC
callers get the same rules.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from storecast.status import ApiFailure, ApiStatus
from storecast.v1 import records_pb2

RANGE = ("from", "to")
AGGREGATION = ("agg", "period")
VINTAGE = ("generated-after", "generated-before", "generate-all")

# The reference spells the vintage parameters both ways.
_ALIASES = {"generated_after": "generated-after", "generated_before": "generated-before", "generate_all": "generate-all"}
_DIGITS = re.compile(r"[0-9]{1,18}")
# 9 digits of days still fit the int64 period_ms of the gRPC request.
PERIOD_MAX_DIGITS = 9
_PERIOD = re.compile(rf"([0-9]{{1,{PERIOD_MAX_DIGITS}}})([smhd])")
_PERIOD_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_AGGREGATIONS = {"min": records_pb2.MIN, "max": records_pb2.MAX, "avg": records_pb2.AVG}
_CODES = {
    "from": ApiStatus.INVALID_FROM,
    "to": ApiStatus.INVALID_TO,
    "generated-after": ApiStatus.INVALID_GENERATED_AFTER,
    "generated-before": ApiStatus.INVALID_GENERATED_BEFORE,
}


def parse(query_string: bytes, allowed: tuple[str, ...], where: str) -> dict[str, str]:
    """Each allowed parameter at most once, under its canonical name."""
    params: dict[str, str] = {}
    for raw_name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        name = _ALIASES.get(raw_name, raw_name)
        if name not in allowed:
            raise ApiFailure(ApiStatus.INVALID_PARAMETERS, f"{raw_name!r} is not a parameter of {where}")
        if name in params:
            raise ApiFailure(ApiStatus.INVALID_PARAMETERS, f"{name} is given more than once")
        params[name] = value
    return params


def timestamp(params: dict[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    if not _DIGITS.fullmatch(text):
        raise ApiFailure(_CODES[name], f"{name} must be an integer millisecond timestamp, got {text!r}")
    return int(text)


def interval(params: dict[str, str], lower: str, upper: str) -> records_pb2.Interval | None:
    start, end = timestamp(params, lower), timestamp(params, upper)
    if start is not None and end is not None:
        return records_pb2.Interval(start_ms=start, end_ms=end)
    if start is not None or end is not None:
        raise ApiFailure(ApiStatus.INVALID_PARAMETERS, f"{lower} and {upper} come together or not at all")
    return None


def aggregation(params: dict[str, str]) -> records_pb2.Aggregation.ValueType:
    text = params.get("agg")
    if text is None:
        return records_pb2.AGGREGATION_UNSPECIFIED
    if text not in _AGGREGATIONS:
        raise ApiFailure(ApiStatus.INVALID_AGG, f"agg must be min, max or avg, got {text!r}")
    return _AGGREGATIONS[text]


def period_ms(params: dict[str, str]) -> int | None:
    return duration_ms(params, "period")


def duration_ms(params: dict[str, str], name: str, *, zero: bool = False, example: str = "15m") -> int | None:
    """A duration in `period`'s syntax (1206 if bad), positive unless `zero` allows 0."""
    text = params.get(name)
    if text is None:
        return None
    match = _PERIOD.fullmatch(text)
    if match is None or (int(match[1]) == 0 and not zero):
        sign = "non-negative" if zero else "positive"
        raise ApiFailure(
            ApiStatus.INVALID_PERIOD,
            f"{name} must be a {sign} integer followed by s, m, h or d (e.g. {example}), got {text!r}",
        )
    return int(match[1]) * _PERIOD_UNIT_MS[match[2]]


def generate_all(params: dict[str, str]) -> bool | None:
    text = params.get("generate-all")
    if text is None:
        return None
    if text not in ("true", "false"):
        raise ApiFailure(ApiStatus.INVALID_PARAMETERS, f"generate-all must be true or false, got {text!r}")
    return text == "true"
