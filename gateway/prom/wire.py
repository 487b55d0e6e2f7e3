"""Prometheus's HTTP API on the wire: its time and duration parameters, its JSON answers.

As Prometheus's web/api/v1 reads and writes them: a time is float seconds or
RFC 3339, kept to the millisecond (rounded, as Prometheus rounds it); a
duration is float seconds or a PromQL duration (`15s`, `1h30m`); a sample is
`[<seconds>, "<value>"]`, the value as Go's `strconv.FormatFloat(v, 'f', -1, 64)`
writes it (`NaN`, `+Inf`, `-Inf`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import msgspec
import numpy as np
import promql_parser

from storecast.v1 import query_pb2

# Prometheus's bounds of a time parameter left out: minTime and maxTime (math.MinInt64/4 and MaxInt64/4, in ms).
MIN_TIME_MS = -9223309901257974
MAX_TIME_MS = 9223309901257974


class BadParameter(ValueError):
    pass


def parse_time(name: str, text: str) -> int:
    """A time parameter, in epoch milliseconds."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    else:
        if math.isfinite(seconds):
            whole = math.trunc(seconds)
            return int(whole) * 1000 + round((seconds - whole) * 1000)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadParameter(f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp') from None
    if moment.tzinfo is None:
        raise BadParameter(f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp')
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


def parse_duration(name: str, text: str) -> int:
    """A duration parameter, in milliseconds."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds) and abs(seconds) < 2**53 / 1000:
            return round(seconds * 1000)
        raise BadParameter(f'invalid parameter "{name}": cannot parse "{text}" to a valid duration. It overflows int64')
    try:
        return round(promql_parser.parse_duration(text).total_seconds() * 1000)
    except (ValueError, OverflowError):
        raise BadParameter(f'invalid parameter "{name}": cannot parse "{text}" to a valid duration') from None


def value_text(value: float) -> str:
    """Go's shortest positional text of a float: Python's repr where it is positional, less its ".0"."""
    magnitude = abs(value)
    if 1e-4 <= magnitude < 1e16 or magnitude == 0:
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return np.format_float_positional(value, unique=True, trim="-")


def _metric(series: query_pb2.PromSeries) -> dict[str, str]:
    return {label.name: label.value for label in series.labels}


def _points(series: query_pb2.PromSeries) -> list[tuple[float, str]]:
    return [(stamp / 1000, value_text(value)) for stamp, value in zip(series.timestamps, series.values)]


_RESULT_TYPES = {query_pb2.PROM_MATRIX: "matrix", query_pb2.PROM_VECTOR: "vector", query_pb2.PROM_SCALAR: "scalar"}


def query_data(reply: query_pb2.PromQueryReply) -> dict[str, object]:
    result_type = _RESULT_TYPES[reply.result_type]
    result: object
    if result_type == "scalar":
        (result,) = _points(reply.series[0])
    elif result_type == "vector":
        result = [{"metric": _metric(s), "value": _points(s)[0]} for s in reply.series]
    else:
        result = [{"metric": _metric(s), "values": _points(s)} for s in reply.series]
    return {"resultType": result_type, "result": result}


def success(data: object, warnings: Sequence[str] = ()) -> bytes:
    body: dict[str, object] = {"status": "success", "data": data}
    if warnings:
        body["warnings"] = list(warnings)
    return msgspec.json.encode(body)


def error(error_type: str, message: str) -> bytes:
    return msgspec.json.encode({"status": "error", "errorType": error_type, "error": message})
