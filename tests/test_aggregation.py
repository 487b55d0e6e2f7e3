"""Aggregation against a brute-force computation done here."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from statistics import fmean

import httpx
import pytest

from tests.conftest import MAX_RECORDS, ok, put
from tests.helpers import JsonObject

# This module's own epoch, apart from the shared tests.helpers.T0: the timestamps its data was first written with.
AGGREGATION_T0 = 1_700_000_000_000
PERIOD_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
FUNCTIONS: dict[str, Callable[[list[float]], float]] = {"min": min, "max": max, "avg": fmean}


def brute_force(
    records: list[JsonObject], attributes: list[str], start: int, end: int, period_ms: int, function: str
) -> list[JsonObject]:
    buckets: dict[int, list[JsonObject]] = defaultdict(list)
    for record in records:
        if start <= record["timestamp"] < end:
            buckets[record["timestamp"] // period_ms * period_ms].append(record)
    results = []
    for bucket in sorted(buckets):
        result: JsonObject = {"timestamp": bucket, "id": buckets[bucket][0]["id"]}
        for attribute in attributes:
            values = [r[attribute] for r in buckets[bucket] if r.get(attribute) is not None]
            result[attribute] = FUNCTIONS[function](values) if values else None
        results.append(result)
    return results


def assert_close(actual: list[JsonObject], expected: list[JsonObject]) -> None:
    assert [r["timestamp"] for r in actual] == [r["timestamp"] for r in expected]
    for got, want in zip(actual, expected):
        assert got.keys() == want.keys()
        for key, value in want.items():
            if value is None or key in ("timestamp", "id"):
                assert got[key] == value, (key, got, want)
            else:
                assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-9), (key, got, want)


@pytest.fixture(scope="module")
def battery_site(admin: httpx.Client) -> tuple[int, list[JsonObject]]:
    """Battery 4 of one site: 3 days of irregular records, some attributes null, some absent."""
    rng = random.Random(42)
    site = 3_000_000_000
    records, timestamp = [], AGGREGATION_T0 + 123
    while timestamp < AGGREGATION_T0 + 3 * 86_400_000:
        record: JsonObject = {"timestamp": timestamp, "id": 4, "soc": round(rng.uniform(0, 100), 2), "state": rng.randrange(8)}
        if rng.random() < 0.7:
            record["p"] = round(rng.uniform(-500, 500), 3)
        if rng.random() < 0.1:
            record["soc"] = None
        records.append(record)
        timestamp += rng.randrange(1_000, 900_000)
    ok(put(admin, f"/v1/{site}/production/battery", records), 201)
    return site, records


@pytest.mark.parametrize("function", ["min", "max", "avg"])
@pytest.mark.parametrize("period", ["30s", "7m", "1h", "5h", "1d"])
def test_aggregates_match_brute_force(
    admin: httpx.Client, battery_site: tuple[int, list[JsonObject]], function: str, period: str
) -> None:
    site, records = battery_site
    # from and to deliberately not aligned to any period.
    start, end = AGGREGATION_T0 + 3_600_000 + 17_321, AGGREGATION_T0 + 2 * 86_400_000 + 999_999
    period_ms = int(period[:-1]) * PERIOD_MS[period[-1]]
    response = admin.get(f"/v1/{site}/production/battery/4", params={"from": start, "to": end, "agg": function, "period": period})
    results = ok(response)["results"]
    attributes = ["soc", "e", "p", "p_ch", "p_disch", "q", "q_max", "q_min", "state"]
    assert_close(results, brute_force(records, attributes, start, end, period_ms, function))
    # Every attribute of the type is there, null when nothing was stored.
    assert all(r["e"] is None and r["q"] is None for r in results)
    expected_state_type = float if function == "avg" else int
    assert all(type(r["state"]) is expected_state_type for r in results)


def test_an_average_beyond_the_float_range_is_null_never_inf(admin: httpx.Client, site: int) -> None:
    # Each value is finite; their sum is not. JSON has no inf, so the average is null, and the body stays JSON.
    big = 1.7e308
    ok(
        put(admin, f"/v1/{site}/production/metric", [{"timestamp": AGGREGATION_T0 + i, "id": 1, "value": big} for i in range(2)]),
        201,
    )
    window: dict[str, str | int] = {"from": AGGREGATION_T0, "to": AGGREGATION_T0 + 1000, "period": "1s"}
    assert ok(admin.get(f"/v1/{site}/production/metric/1", params={**window, "agg": "avg"}))["results"][0]["value"] is None
    assert ok(admin.get(f"/v1/{site}/production/metric/1", params={**window, "agg": "max"}))["results"][0]["value"] == big
    periods = [{"timestamp": AGGREGATION_T0 + i, "p": big, "quality": 1} for i in range(2)]
    ok(put(admin, f"/v1/{site}/forecast/solar", [{"creation_timestamp": AGGREGATION_T0, "id": 1, "values": periods}]), 201)
    forecast = ok(admin.get(f"/v1/{site}/forecast/solar/1", params={**window, "agg": "avg"}))["results"][0]
    assert forecast["values"][0]["p"] is None


def test_first_bucket_starts_before_an_unaligned_from(admin: httpx.Client, site: int) -> None:
    records = [{"timestamp": AGGREGATION_T0 + s * 1000, "id": 1, "value": float(s)} for s in range(0, 120)]
    ok(put(admin, f"/v1/{site}/production/metric", records), 201)
    results = ok(
        admin.get(
            f"/v1/{site}/production/metric/1",
            params={"from": AGGREGATION_T0 + 50_000, "to": AGGREGATION_T0 + 70_000, "agg": "avg", "period": "1m"},
        )
    )["results"]
    # AGGREGATION_T0 + 50 s is not on a minute: the first bucket is the minute that holds it.
    assert results[0]["timestamp"] == (AGGREGATION_T0 + 50_000) // 60_000 * 60_000 < AGGREGATION_T0 + 50_000
    assert_close(results, brute_force(records, ["value"], AGGREGATION_T0 + 50_000, AGGREGATION_T0 + 70_000, 60_000, "avg"))


def test_aggregated_partial_responses_resume_at_next_from(admin: httpx.Client, site: int) -> None:
    total_buckets = MAX_RECORDS + 10
    records = [{"timestamp": AGGREGATION_T0 + i * 1000, "id": 1, "value": float(i)} for i in range(total_buckets * 2)]
    ok(put(admin, f"/v1/{site}/production/metric", records), 201)
    start, end = AGGREGATION_T0, AGGREGATION_T0 + total_buckets * 2000
    first = admin.get(f"/v1/{site}/production/metric/1", params={"from": start, "to": end, "agg": "max", "period": "2s"})
    assert first.status_code == 206
    body = first.json()
    assert len(body["results"]) == MAX_RECORDS
    rest = ok(
        admin.get(f"/v1/{site}/production/metric/1", params={"from": body["next_from"], "to": end, "agg": "max", "period": "2s"})
    )
    values = [r["value"] for r in body["results"] + rest["results"]]
    assert values == [float(i * 2 + 1) for i in range(total_buckets)]
