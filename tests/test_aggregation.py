"""Aggregation against a brute-force computation done here: v1's (min, max, avg) on /v1, and every
aggregation of storecast/aggregations.py on /ext/v1, which v1 refuses (1205)."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from statistics import fmean

import httpx
import pytest

from services.lib.reads.rollup import ROUND_INTERVAL_S
from storecast.aggregations import AGGREGATIONS
from tests.conftest import MAX_RECORDS, assert_error, ok, put
from tests.helpers import JsonObject

# This module's own epoch, apart from the shared tests.helpers.T0: the timestamps its data was first written with.
AGGREGATION_T0 = 1_700_000_000_000
PERIOD_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
# Over a bucket's non-null values of one attribute, in timestamp order.
FUNCTIONS: dict[str, Callable[[Sequence[float]], float]] = {
    "min": min,
    "max": max,
    "avg": fmean,
    "sum": sum,
    "first": lambda values: values[0],
    "last": lambda values: values[-1],
}
# The aggregations only /ext/v1 serves.
BEYOND_V1 = [name for name, aggregation in AGGREGATIONS.items() if not aggregation.v1]
BATTERY_ATTRIBUTES = ["soc", "e", "p", "p_ch", "p_disch", "q", "q_max", "q_min", "state"]
# A bucket's non-null values of one attribute, in timestamp order.
Values = list[float]


def aggregate(function: str, values: Values) -> float | None:
    """The contract's aggregation of a bucket's non-null values: null when there are none, but a count."""
    if function == "count":
        return len(values)
    return FUNCTIONS[function](values) if values else None


def brute_force(
    records: list[JsonObject], attributes: list[str], start: int, end: int, period_ms: int, function: str
) -> list[JsonObject]:
    buckets: dict[int, list[JsonObject]] = defaultdict(list)
    for record in sorted(records, key=lambda r: int(r["timestamp"])):
        if start <= record["timestamp"] < end:
            buckets[record["timestamp"] // period_ms * period_ms].append(record)
    results = []
    for bucket in sorted(buckets):
        result: JsonObject = {"timestamp": bucket, "id": buckets[bucket][0]["id"]}
        for attribute in attributes:
            result[attribute] = aggregate(function, [r[attribute] for r in buckets[bucket] if r.get(attribute) is not None])
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
    assert_close(results, brute_force(records, BATTERY_ATTRIBUTES, start, end, period_ms, function))
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


# --- beyond v1: /ext/v1 ----------------------------------------------------------------


def assert_kinds(results: list[JsonObject], function: str, integers: set[str]) -> None:
    """Counts are integers; a sum, first or last of an integer attribute stays one; else floats."""
    for result in results:
        for name, value in result.items():
            if name not in ("timestamp", "id", "creation_timestamp", "values") and value is not None:
                assert type(value) is (int if function == "count" or name in integers else float), (name, result)


@pytest.fixture(scope="module")
def replaced_battery(admin: httpx.Client) -> tuple[int, list[JsonObject]]:
    """Battery 4 of a site of its own: 3 days of irregular records, some attributes null, some absent,
    then a second PUT replacing one record in five (an attribute now null, another changed) and giving
    one of them twice (the last wins); read once the rollup maintainer has recomputed their cells."""
    rng = random.Random(21)
    site = 3_000_000_001
    model: dict[int, JsonObject] = {}
    timestamp = AGGREGATION_T0 + 77
    while timestamp < AGGREGATION_T0 + 3 * 86_400_000:
        record: JsonObject = {"timestamp": timestamp, "id": 4, "soc": round(rng.uniform(0, 100), 2), "state": rng.randrange(8)}
        if rng.random() < 0.7:
            record["p"] = round(rng.uniform(-500, 500), 3)
        if rng.random() < 0.1:
            record["soc"] = None
        model[timestamp] = record
        timestamp += rng.randrange(1_000, 900_000)
    ok(put(admin, f"/v1/{site}/production/battery", list(model.values())), 201)
    replaced = [{**r, "soc": None, "state": rng.randrange(8), "p": 1.5} for r in model.values() if rng.random() < 0.2]
    twice = {**replaced[0], "state": 7, "p": None}
    ok(put(admin, f"/v1/{site}/production/battery", [*replaced, twice]), 201)
    model |= {r["timestamp"]: r for r in [*replaced, twice]}
    time.sleep(ROUND_INTERVAL_S + 1)
    return site, list(model.values())


@pytest.mark.parametrize("function", BEYOND_V1)
@pytest.mark.parametrize("period", ["30s", "7m", "1h", "5h", "1d"])
def test_ext_aggregates_match_brute_force(
    admin: httpx.Client, replaced_battery: tuple[int, list[JsonObject]], function: str, period: str
) -> None:
    site, records = replaced_battery
    # Not aligned to any period: whole cells in the middle (1 min, 1 h, 1 d; none for 30s), finer cells
    # and records towards the edges.
    start, end = AGGREGATION_T0 + 3_600_000 + 17_321, AGGREGATION_T0 + 2 * 86_400_000 + 999_999
    period_ms = int(period[:-1]) * PERIOD_MS[period[-1]]
    query: dict[str, str | int] = {"from": start, "to": end, "agg": function, "period": period}
    results = ok(admin.get(f"/ext/v1/{site}/production/battery/4", params=query))["results"]
    assert_close(results, brute_force(records, BATTERY_ATTRIBUTES, start, end, period_ms, function))
    assert_kinds(results, function, {"state"})
    # Attributes never stored: a count of 0, else null.
    assert all(r["e"] == (0 if function == "count" else None) for r in results)
    # v1 serves min, max and avg only (docs/api/v1.md §6, §10).
    assert_error(admin.get(f"/v1/{site}/production/battery/4", params=query), 400, 1205, "min, max or avg", repr(function))


@pytest.mark.parametrize("function", BEYOND_V1)
def test_ext_aggregates_of_records_not_yet_in_rollup_cells(admin: httpx.Client, site: int, function: str) -> None:
    # Read at once: the maintainer has not run, the minutes are pending and read from the records.
    records: list[JsonObject] = [
        {"timestamp": AGGREGATION_T0 + s * 7_000, "id": 1, "state": s % 3, "soc": None if s % 4 else float(s)} for s in range(60)
    ]
    ok(put(admin, f"/v1/{site}/production/battery", records), 201)
    ok(put(admin, f"/v1/{site}/production/battery", [{**records[5], "state": 9}]), 201)
    records[5] = {**records[5], "state": 9}
    start, end = AGGREGATION_T0 - 3_600_000, AGGREGATION_T0 + 3_600_000
    query: dict[str, str | int] = {"from": start, "to": end, "agg": function, "period": "1h"}
    results = ok(admin.get(f"/ext/v1/{site}/production/battery/1", params=query))["results"]
    assert_close(results, brute_force(records, BATTERY_ATTRIBUTES, start, end, 3_600_000, function))
    assert_kinds(results, function, {"state"})


def vintage(rng: random.Random, start: int, count: int) -> list[JsonObject]:
    """Periods every 5 to 35 minutes from `start`, p and quality each null one time in five."""
    periods, t = [], start
    for _ in range(count):
        t += rng.choice([5, 5, 10, 35]) * 60_000
        periods.append(
            {
                "timestamp": t,
                "p": round(rng.uniform(-500, 500), 3) if rng.random() < 0.8 else None,
                "quality": rng.randrange(5) if rng.random() < 0.8 else None,
            }
        )
    return periods


@pytest.mark.parametrize("function", BEYOND_V1)
def test_ext_vector_aggregates_match_brute_force(admin: httpx.Client, site: int, function: str) -> None:
    rng = random.Random(function)
    path = f"/{site}/forecast/demand"
    vintages = {AGGREGATION_T0 + k: vintage(rng, AGGREGATION_T0, 120) for k in range(3)}
    ok(put(admin, f"/v1{path}", [{"creation_timestamp": c, "id": 1, "values": v} for c, v in vintages.items()]), 201)
    # A vector stored again replaces the whole of it.
    vintages[AGGREGATION_T0 + 1] = vintage(rng, AGGREGATION_T0 + 60_000, 90)
    ok(
        put(admin, f"/v1{path}", [{"creation_timestamp": AGGREGATION_T0 + 1, "id": 1, "values": vintages[AGGREGATION_T0 + 1]}]),
        201,
    )
    start, end, period_ms = AGGREGATION_T0 + 97 * 60_000, AGGREGATION_T0 + 11 * 3_600_000 + 180_000, 45 * 60_000
    query: dict[str, str | int] = {"from": start, "to": end, "agg": function, "period": "45m"}
    every: dict[str, str | int] = {**query, "generated-after": 0, "generated-before": AGGREGATION_T0 + 3, "generate-all": "true"}
    results = ok(admin.get(f"/ext/v1{path}/1", params=every))["results"]
    assert [r["creation_timestamp"] for r in results] == list(vintages)
    for result, periods in zip(results, vintages.values()):
        expected = brute_force([{**p, "id": 1} for p in periods], ["p"], start, end, period_ms, function)
        # A forecast's quality is a grade: its minimum whatever the aggregation (docs/api/v1.md §7).
        grades = brute_force([{**p, "id": 1} for p in periods], ["quality"], start, end, period_ms, "min")
        wanted = [{"timestamp": e["timestamp"], "p": e["p"], "quality": g["quality"]} for e, g in zip(expected, grades)]
        assert_close([{**v, "id": 1} for v in result["values"]], [{**w, "id": 1} for w in wanted])
        assert_kinds(result["values"], function, {"quality"})
    assert_error(admin.get(f"/v1{path}/1", params=every), 400, 1205, "min, max or avg")


@pytest.mark.parametrize("function", BEYOND_V1)
def test_ext_commitment_aggregates_keep_the_vectors_quality(admin: httpx.Client, site: int, function: str) -> None:
    periods = [{"timestamp": AGGREGATION_T0 + i * 600_000, "value": None if i % 5 == 0 else float(i)} for i in range(30)]
    ok(
        put(admin, f"/v1/{site}/commitment", [{"creation_timestamp": AGGREGATION_T0, "id": 3, "quality": 2, "values": periods}]),
        201,
    )
    start, end = AGGREGATION_T0, AGGREGATION_T0 + 5 * 3_600_000
    query: dict[str, str | int] = {"from": start, "to": end, "agg": function, "period": "1h"}
    (result,) = ok(admin.get(f"/ext/v1/{site}/commitment/3", params=query))["results"]
    assert result["quality"] == 2
    expected = brute_force([{**p, "id": 3} for p in periods], ["value"], start, end, 3_600_000, function)
    assert_close([{**v, "id": 3} for v in result["values"]], [{**e, "id": 3} for e in expected])
    assert_error(admin.get(f"/v1/{site}/commitment/3", params=query), 400, 1205, "min, max or avg")
