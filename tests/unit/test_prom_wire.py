"""The Prometheus API's wire forms (gateway/prom/wire.py): values as Go writes them, times as Prometheus reads them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.prom.wire import BadParameter, parse_duration, parse_time, value_text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_values_are_the_shortest_positional_text(value: float) -> None:
    text = value_text(value)
    assert text == np.format_float_positional(value, unique=True, trim="-")
    assert float(text) == value and "e" not in text


def test_special_values() -> None:
    assert [value_text(v) for v in (math.nan, math.inf, -math.inf, -0.0, 2.0, 0.1 + 0.2, 1e21)] == [
        "NaN",
        "+Inf",
        "-Inf",
        "-0",
        "2",
        "0.30000000000000004",
        "1000000000000000000000",
    ]


def test_times_are_kept_to_the_millisecond_as_prometheus_rounds_them() -> None:
    assert parse_time("time", "4") == 4000
    assert parse_time("time", "1.5555") == 1556
    assert parse_time("time", "-1.5") == -1500
    assert parse_time("time", "2018-08-24T10:00:00.123Z") == 1_535_104_800_123
    assert parse_time("time", "2018-08-24T12:00:00+02:00") == 1_535_104_800_000
    for bad in ("", "x", "2018-08-24T10:00:00", "nan", "inf"):
        with pytest.raises(BadParameter, match='invalid parameter "time"'):
            parse_time("time", bad)


def test_durations_are_seconds_or_promql_durations() -> None:
    assert [parse_duration("step", text) for text in ("15", "0.5", "15s", "1h30m", "1d")] == [
        15_000,
        500,
        15_000,
        5_400_000,
        86_400_000,
    ]
    for bad in ("", "x", "1e300", "15 s"):
        with pytest.raises(BadParameter, match='invalid parameter "step"'):
            parse_duration("step", bad)
