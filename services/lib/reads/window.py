"""Validation of a read's time range, vintage selection and aggregation, shared by every reader."""

from __future__ import annotations

from dataclasses import dataclass

from storecast.aggregations import BY_WIRE, Aggregation
from storecast.catalog import TIMESTAMP_LIMIT_MS
from storecast.status import ApiFailure, ApiStatus
from storecast.v1 import query_pb2, records_pb2


@dataclass(frozen=True, slots=True)
class Window:
    """[start, end[ (both None: unbounded), and the aggregation (None: raw records)."""

    start: int | None
    end: int | None
    aggregation: Aggregation | None
    period_ms: int | None

    def bucket_count(self) -> int:
        """How many buckets [start, end[ overlaps, the most an aggregated read returns (0 unaggregated)."""
        if self.start is None or self.end is None or self.period_ms is None:
            return 0
        return (self.end - 1) // self.period_ms - self.start // self.period_ms + 1


def check_timestamp(value: int, code: ApiStatus.ValueType, name: str) -> None:
    if not 0 <= value < TIMESTAMP_LIMIT_MS:
        raise ApiFailure(code, f"{name} must be an integer millisecond timestamp in [0, {TIMESTAMP_LIMIT_MS}[, got {value}")


def check_window(
    range_: records_pb2.Interval | None, aggregation: records_pb2.Aggregation.ValueType, period_ms: int | None
) -> Window:
    start = end = None
    if range_ is not None:
        check_timestamp(range_.start_ms, ApiStatus.INVALID_FROM, "from")
        check_timestamp(range_.end_ms, ApiStatus.INVALID_TO, "to")
        if range_.start_ms >= range_.end_ms:
            raise ApiFailure(ApiStatus.INVALID_PARAMETERS, "from must be lower than to")
        start, end = range_.start_ms, range_.end_ms
    if aggregation != records_pb2.AGGREGATION_UNSPECIFIED and aggregation not in BY_WIRE:
        raise ApiFailure(ApiStatus.INVALID_AGG, f"unknown aggregation {aggregation}")
    if period_ms is not None and period_ms <= 0:
        raise ApiFailure(ApiStatus.INVALID_PERIOD, "period must be positive")
    chosen = BY_WIRE.get(aggregation)
    if chosen is not None:
        if range_ is None:
            raise ApiFailure(ApiStatus.INVALID_PARAMETERS, "agg needs from and to")
        if period_ms is None:
            raise ApiFailure(ApiStatus.INVALID_PARAMETERS, "agg needs period")
    elif period_ms is not None:
        raise ApiFailure(ApiStatus.INVALID_PARAMETERS, "period needs agg")
    return Window(start, end, chosen, period_ms)


def production_window(request: query_pb2.GetProductionRequest) -> Window:
    """A production read's window, checked."""
    return check_window(
        request.range if request.HasField("range") else None,
        request.aggregation,
        request.period_ms if request.HasField("period_ms") else None,
    )


@dataclass(frozen=True, slots=True)
class Vintage:
    """Which vectors of an id a read selects, by creation_timestamp.

    start and end None: the most recent one; else the most recent created in
    [start, end[, or every one created there when `every` is set.
    """

    start: int | None
    end: int | None
    every: bool


def check_vintage(generated: records_pb2.Interval | None, generate_all: bool | None) -> Vintage:
    """generate_all None: not given, which differs from false only in needing no interval."""
    if generated is None:
        if generate_all is not None:
            raise ApiFailure(ApiStatus.INVALID_PARAMETERS, "generate-all needs generated-after and generated-before")
        return Vintage(None, None, False)
    check_timestamp(generated.start_ms, ApiStatus.INVALID_GENERATED_AFTER, "generated-after")
    check_timestamp(generated.end_ms, ApiStatus.INVALID_GENERATED_BEFORE, "generated-before")
    if generated.start_ms >= generated.end_ms:
        raise ApiFailure(ApiStatus.INVALID_PARAMETERS, "generated-after must be lower than generated-before")
    return Vintage(generated.start_ms, generated.end_ms, bool(generate_all))


def record_limit(requested: int, cap: int) -> int:
    return min(requested, cap) if requested else cap
