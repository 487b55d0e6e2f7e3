"""A read's time range, aggregation and vintage selection: every refusal's code and message, and bucket counts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.lib.reads.window import Vintage, Window, check_vintage, check_window, record_limit
from storecast.aggregations import AGGREGATIONS
from storecast.catalog import TIMESTAMP_LIMIT_MS
from storecast.status import ApiFailure, ApiStatus
from storecast.v1 import records_pb2

Interval = records_pb2.Interval
Aggregation = records_pb2.Aggregation
UNSPECIFIED, MIN, MAX, AVG = records_pb2.AGGREGATION_UNSPECIFIED, records_pb2.MIN, records_pb2.MAX, records_pb2.AVG
LAST = TIMESTAMP_LIMIT_MS - 1
IN_RANGE = f"must be an integer millisecond timestamp in [0, {TIMESTAMP_LIMIT_MS}["


def refusal(call: Callable[..., object], *arguments: object) -> tuple[int, str]:
    with pytest.raises(ApiFailure) as caught:
        call(*arguments)
    return caught.value.code, caught.value.message


# ---- check_window ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("range_", "aggregation", "period_ms", "window"),
    [
        (None, UNSPECIFIED, None, Window(None, None, None, None)),
        (Interval(start_ms=0, end_ms=1), UNSPECIFIED, None, Window(0, 1, None, None)),
        (Interval(start_ms=0, end_ms=LAST), UNSPECIFIED, None, Window(0, LAST, None, None)),
        (Interval(start_ms=LAST - 1, end_ms=LAST), UNSPECIFIED, None, Window(LAST - 1, LAST, None, None)),
        (Interval(start_ms=1000, end_ms=9000), MIN, 1, Window(1000, 9000, AGGREGATIONS["min"], 1)),
        (Interval(start_ms=1000, end_ms=9000), MAX, 60_000, Window(1000, 9000, AGGREGATIONS["max"], 60_000)),
        (Interval(start_ms=1000, end_ms=9000), AVG, 86_400_000, Window(1000, 9000, AGGREGATIONS["avg"], 86_400_000)),
    ],
)
def test_valid_windows(
    range_: Interval | None, aggregation: Aggregation.ValueType, period_ms: int | None, window: Window
) -> None:
    assert check_window(range_, aggregation, period_ms) == window


@pytest.mark.parametrize(
    ("range_", "aggregation", "period_ms", "code", "message"),
    [
        (Interval(start_ms=-1, end_ms=10), UNSPECIFIED, None, ApiStatus.INVALID_FROM, f"invalid from: from {IN_RANGE}, got -1"),
        (
            Interval(start_ms=TIMESTAMP_LIMIT_MS, end_ms=TIMESTAMP_LIMIT_MS + 1),
            UNSPECIFIED,
            None,
            ApiStatus.INVALID_FROM,
            f"invalid from: from {IN_RANGE}, got {TIMESTAMP_LIMIT_MS}",
        ),
        (
            Interval(start_ms=0, end_ms=TIMESTAMP_LIMIT_MS),
            UNSPECIFIED,
            None,
            ApiStatus.INVALID_TO,
            f"invalid to: to {IN_RANGE}, got {TIMESTAMP_LIMIT_MS}",
        ),
        (Interval(start_ms=0, end_ms=-5), UNSPECIFIED, None, ApiStatus.INVALID_TO, f"invalid to: to {IN_RANGE}, got -5"),
        # from before to; then the order of the checks: from, to, their order, agg, period, their pairing
        (Interval(start_ms=-1, end_ms=-2), UNSPECIFIED, None, ApiStatus.INVALID_FROM, f"invalid from: from {IN_RANGE}, got -1"),
        (
            Interval(start_ms=5, end_ms=5),
            UNSPECIFIED,
            None,
            ApiStatus.INVALID_PARAMETERS,
            "invalid parameters: from must be lower than to",
        ),
        (Interval(start_ms=6, end_ms=5), AVG, -1, ApiStatus.INVALID_PARAMETERS, "invalid parameters: from must be lower than to"),
        (
            Interval(start_ms=0, end_ms=5),
            Aggregation.ValueType(9),
            1000,
            ApiStatus.INVALID_AGG,
            "invalid agg: unknown aggregation 9",
        ),
        (
            Interval(start_ms=0, end_ms=5),
            Aggregation.ValueType(-1),
            0,
            ApiStatus.INVALID_AGG,
            "invalid agg: unknown aggregation -1",
        ),
        (Interval(start_ms=0, end_ms=5), AVG, 0, ApiStatus.INVALID_PERIOD, "invalid period: period must be positive"),
        (Interval(start_ms=0, end_ms=5), MIN, -1000, ApiStatus.INVALID_PERIOD, "invalid period: period must be positive"),
        (None, UNSPECIFIED, 0, ApiStatus.INVALID_PERIOD, "invalid period: period must be positive"),
        (None, AVG, 1000, ApiStatus.INVALID_PARAMETERS, "invalid parameters: agg needs from and to"),
        (None, MAX, None, ApiStatus.INVALID_PARAMETERS, "invalid parameters: agg needs from and to"),
        (Interval(start_ms=0, end_ms=5), AVG, None, ApiStatus.INVALID_PARAMETERS, "invalid parameters: agg needs period"),
        (Interval(start_ms=0, end_ms=5), UNSPECIFIED, 1000, ApiStatus.INVALID_PARAMETERS, "invalid parameters: period needs agg"),
        (None, UNSPECIFIED, 1000, ApiStatus.INVALID_PARAMETERS, "invalid parameters: period needs agg"),
    ],
)
def test_refused_windows(
    range_: Interval | None, aggregation: Aggregation.ValueType, period_ms: int | None, code: int, message: str
) -> None:
    assert refusal(check_window, range_, aggregation, period_ms) == (code, message)


def test_refusals_carry_their_http_status() -> None:
    with pytest.raises(ApiFailure) as caught:
        check_window(Interval(start_ms=0, end_ms=5), Aggregation.ValueType(9), 1000)
    assert caught.value.http_status == 400
    assert str(caught.value) == caught.value.message


# ---- Window.bucket_count --------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "period_ms", "count"),
    [
        (0, 1, 1000, 1),
        (0, 1000, 1000, 1),  # end is excluded: [0, 1000[ is one bucket
        (0, 1001, 1000, 2),
        (999, 1000, 1000, 1),
        (999, 1001, 1000, 2),  # one millisecond each side of a boundary
        (1000, 2000, 1000, 1),
        (1000, 2001, 1000, 2),
        (1, 2999, 1000, 3),
        (0, 10_000, 5000, 2),
        (0, 10_000, 1, 10_000),
        (0, TIMESTAMP_LIMIT_MS - 1, 1, TIMESTAMP_LIMIT_MS - 1),
        (0, TIMESTAMP_LIMIT_MS - 1, 86_400_000, 84_006),  # 1970-01-01 to 2200-01-01, in days
        (123, 124, TIMESTAMP_LIMIT_MS * 10, 1),  # a period longer than every range
    ],
)
def test_bucket_count_is_the_epoch_aligned_buckets_the_range_overlaps(start: int, end: int, period_ms: int, count: int) -> None:
    assert Window(start, end, AGGREGATIONS["avg"], period_ms).bucket_count() == count
    if end - start <= 10_000:  # small enough to count bucket by bucket
        assert count == len({t // period_ms for t in range(start, end)})


@pytest.mark.parametrize(
    "window",
    [
        Window(None, None, None, None),
        Window(0, 1000, None, None),
        Window(None, None, AGGREGATIONS["avg"], 1000),
        Window(0, None, AGGREGATIONS["avg"], 1000),
    ],
)
def test_bucket_count_is_zero_without_a_range_and_a_period(window: Window) -> None:
    assert window.bucket_count() == 0


# ---- check_vintage -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("generated", "generate_all", "vintage"),
    [
        (None, None, Vintage(None, None, False)),
        (Interval(start_ms=100, end_ms=200), None, Vintage(100, 200, False)),
        (Interval(start_ms=100, end_ms=200), False, Vintage(100, 200, False)),
        (Interval(start_ms=100, end_ms=200), True, Vintage(100, 200, True)),
        (Interval(start_ms=0, end_ms=LAST), True, Vintage(0, LAST, True)),
    ],
)
def test_valid_vintages(generated: Interval | None, generate_all: bool | None, vintage: Vintage) -> None:
    assert check_vintage(generated, generate_all) == vintage


@pytest.mark.parametrize(
    ("generated", "generate_all", "code", "message"),
    [
        (None, True, ApiStatus.INVALID_PARAMETERS, "invalid parameters: generate-all needs generated-after and generated-before"),
        (
            None,
            False,
            ApiStatus.INVALID_PARAMETERS,
            "invalid parameters: generate-all needs generated-after and generated-before",
        ),
        (
            Interval(start_ms=-1, end_ms=200),
            None,
            ApiStatus.INVALID_GENERATED_AFTER,
            f"invalid generated-after: generated-after {IN_RANGE}, got -1",
        ),
        (
            Interval(start_ms=TIMESTAMP_LIMIT_MS, end_ms=200),
            True,
            ApiStatus.INVALID_GENERATED_AFTER,
            f"invalid generated-after: generated-after {IN_RANGE}, got {TIMESTAMP_LIMIT_MS}",
        ),
        (
            Interval(start_ms=0, end_ms=TIMESTAMP_LIMIT_MS),
            None,
            ApiStatus.INVALID_GENERATED_BEFORE,
            f"invalid generated-before: generated-before {IN_RANGE}, got {TIMESTAMP_LIMIT_MS}",
        ),
        (
            Interval(start_ms=0, end_ms=-1),
            False,
            ApiStatus.INVALID_GENERATED_BEFORE,
            f"invalid generated-before: generated-before {IN_RANGE}, got -1",
        ),
        (
            Interval(start_ms=200, end_ms=200),
            None,
            ApiStatus.INVALID_PARAMETERS,
            "invalid parameters: generated-after must be lower than generated-before",
        ),
        (
            Interval(start_ms=201, end_ms=200),
            True,
            ApiStatus.INVALID_PARAMETERS,
            "invalid parameters: generated-after must be lower than generated-before",
        ),
    ],
)
def test_refused_vintages(generated: Interval | None, generate_all: bool | None, code: int, message: str) -> None:
    assert refusal(check_vintage, generated, generate_all) == (code, message)


# ---- record_limit -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "cap", "limit"), [(0, 1000, 1000), (1, 1000, 1), (999, 1000, 999), (1000, 1000, 1000), (1001, 1000, 1000)]
)
def test_record_limit_is_the_request_capped_or_the_cap(requested: int, cap: int, limit: int) -> None:
    assert record_limit(requested, cap) == limit
