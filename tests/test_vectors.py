"""Forecasts, commitments and tariffs end to end: shapes, vintages, replacement,
tariffs in force, isolation, aggregation and partial responses."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import pytest

from storecast.catalog import FORECAST_TYPES, TIMESTAMP_LIMIT_MS
from tests.conftest import MAX_RECORDS, assert_error, ok, put
from tests.helpers import HOUR, MINUTE, T0, JsonObject, Query, QueryValue

# The two vector categories, by the path of their PUT and GET (site to fill in),
# and how a vector of each is written.
VECTOR_CATEGORIES = {"forecast": "/v1/{site}/forecast/solar", "commitment": "/v1/{site}/commitment"}


def vector(category: str, creation: int, periods: Sequence[tuple[int, float | None]], vector_id: int = 1) -> JsonObject:
    """A forecast (p, quality 1) or commitment (value, quality 1) vector."""
    if category == "forecast":
        values = [{"timestamp": t, "p": v, "quality": 1} for t, v in periods]
        return {"creation_timestamp": creation, "id": vector_id, "values": values}
    values = [{"timestamp": t, "value": v} for t, v in periods]
    return {"creation_timestamp": creation, "id": vector_id, "quality": 1, "values": values}


def periods_of(result: JsonObject, attribute: str) -> list[tuple[int, Any]]:
    return [(p["timestamp"], p[attribute]) for p in result["values"]]


# --- shapes ---------------------------------------------------------------


@pytest.mark.parametrize("forecast_type", FORECAST_TYPES)
def test_every_forecast_type_round_trips(admin: httpx.Client, site: int, forecast_type: str) -> None:
    path = f"/v1/{site}/forecast/{forecast_type}"
    # Periods out of order, a float given as an integer, absent attributes.
    sent = {
        "creation_timestamp": T0,
        "id": 1,
        "values": [
            {"timestamp": T0 + HOUR, "p": 1650.94, "quality": 1},
            {"timestamp": T0, "p": 1572, "quality": 2},
            {"timestamp": T0 + 2 * HOUR},
        ],
    }
    ok(put(admin, path, [sent]), 201)
    body = ok(admin.get(f"{path}/1"))
    assert body == {
        "status_code": 1000,
        "status_message": "success",
        "results": [
            {
                "creation_timestamp": T0,
                "id": 1,
                "values": [
                    {"timestamp": T0, "p": 1572.0, "quality": 2},
                    {"timestamp": T0 + HOUR, "p": 1650.94, "quality": 1},
                    {"timestamp": T0 + 2 * HOUR, "p": None, "quality": None},
                ],
            }
        ],
    }
    (result,) = body["results"]
    assert list(result) == ["creation_timestamp", "id", "values"]
    assert list(result["values"][0]) == ["timestamp", "p", "quality"]
    assert type(result["values"][0]["p"]) is float and type(result["values"][0]["quality"]) is int


def test_commitment_round_trips_with_its_quality(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/commitment"
    sent = [
        {
            "creation_timestamp": T0,
            "id": 1,
            "quality": 1,
            "values": [{"timestamp": T0, "value": 1100}, {"timestamp": T0 + HOUR, "value": 950.4}],
        },
        {"creation_timestamp": T0, "id": 2, "values": [{"timestamp": T0}]},
    ]
    ok(put(admin, path, sent), 201)
    (first,) = ok(admin.get(f"{path}/1"))["results"]
    assert first == {
        "creation_timestamp": T0,
        "id": 1,
        "quality": 1,
        "values": [{"timestamp": T0, "value": 1100.0}, {"timestamp": T0 + HOUR, "value": 950.4}],
    }
    assert list(first) == ["creation_timestamp", "id", "quality", "values"]
    assert type(first["values"][0]["value"]) is float
    assert ok(admin.get(f"{path}/2"))["results"] == [
        {"creation_timestamp": T0, "id": 2, "quality": None, "values": [{"timestamp": T0, "value": None}]}
    ]


def test_tariff_round_trips_labels_as_strings(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/tariff"
    labels = ["on-peak", 'say "hi"\t\n\\', "é" * 64, "", "🙂"]
    sent = [{"timestamp": T0 + i * HOUR, "label": label, "value": 9.85 if i else 5} for i, label in enumerate(labels)]
    sent.append({"timestamp": T0 + 9 * HOUR})
    ok(put(admin, path, [{"id": 1, "values": sent}]), 201)
    body = ok(admin.get(f"{path}/1"))
    expected = [{"timestamp": T0 + i * HOUR, "label": label, "value": 9.85 if i else 5.0} for i, label in enumerate(labels)]
    expected.append({"timestamp": T0 + 9 * HOUR, "label": None, "value": None})
    assert body["results"] == [{"id": 1, "values": expected}]
    assert list(body["results"][0]["values"][0]) == ["timestamp", "label", "value"]
    assert type(body["results"][0]["values"][0]["value"]) is float


# --- vintages -------------------------------------------------------------

# Three vectors of id 1, created at T0 + 1000, + 2000 and + 3000, each with one
# period whose value tells which vector it is.
VINTAGES = (1000, 2000, 3000)
VINTAGE_CASES: list[tuple[Query, list[int]]] = [
    ({}, [3000]),
    ({"generated-after": T0 + 1000, "generated-before": T0 + 3000}, [2000]),
    ({"generated-after": T0 + 1000, "generated-before": T0 + 1001}, [1000]),
    ({"generated-after": T0 + 2001, "generated-before": T0 + 3001}, [3000]),
    ({"generated-after": T0 + 1001, "generated-before": T0 + 2000}, []),
    ({"generated-after": T0 + 1000, "generated-before": T0 + 3000, "generate-all": "true"}, [1000, 2000]),
    ({"generated-after": T0 + 1000, "generated-before": T0 + 3000, "generate-all": "false"}, [2000]),
    ({"generated-after": 0, "generated-before": TIMESTAMP_LIMIT_MS - 1, "generate-all": "true"}, [1000, 2000, 3000]),
    ({"generated-after": T0 + 3001, "generated-before": T0 + 9000, "generate-all": "true"}, []),
    ({"generated_after": T0 + 999, "generated_before": T0 + 2001, "generate_all": "true"}, [1000, 2000]),
]


@pytest.mark.parametrize("category", VECTOR_CATEGORIES)
@pytest.mark.parametrize(("query", "expected"), VINTAGE_CASES)
def test_vintage_selection(admin: httpx.Client, site: int, category: str, query: Query, expected: list[int]) -> None:
    path = VECTOR_CATEGORIES[category].format(site=site)
    ok(put(admin, path, [vector(category, T0 + c, [(T0, float(c))]) for c in VINTAGES]), 201)
    results = ok(admin.get(f"{path}/1", params=query))["results"]
    assert [r["creation_timestamp"] - T0 for r in results] == expected
    attribute = "p" if category == "forecast" else "value"
    assert [r["values"][0][attribute] for r in results] == [float(c) for c in expected]


@pytest.mark.parametrize("category", VECTOR_CATEGORIES)
def test_an_id_never_stored_is_1107(admin: httpx.Client, site: int, category: str) -> None:
    path = VECTOR_CATEGORIES[category].format(site=site)
    ok(put(admin, path, [vector(category, T0, [(T0, 1.0)], vector_id=1)]), 201)
    assert_error(admin.get(f"{path}/2"), 400, 1107, "id 2")
    assert_error(admin.get(f"{path}/2", params={"generated-after": 0, "generated-before": T0}), 400, 1107)
    other_site = VECTOR_CATEGORIES[category].format(site=site + 1_000_000)
    assert_error(admin.get(f"{other_site}/1"), 400, 1107)


def test_a_forecast_id_is_known_per_type_and_a_tariff_id_per_site(admin: httpx.Client, site: int) -> None:
    ok(put(admin, f"/v1/{site}/forecast/wind", [vector("forecast", T0, [(T0, 1.0)])]), 201)
    assert_error(admin.get(f"/v1/{site}/forecast/demand/1"), 400, 1107, "demand forecast")
    assert_error(admin.get(f"/v1/{site}/commitment/1"), 400, 1107, "commitment")
    ok(put(admin, f"/v1/{site}/tariff", [{"id": 1, "values": [{"timestamp": T0, "value": 1.0}]}]), 201)
    assert_error(admin.get(f"/v1/{site}/tariff/2"), 400, 1107, "tariff")
    assert_error(admin.get(f"/v1/{site + 1_000_000}/tariff/1"), 400, 1107)


@pytest.mark.parametrize("category", VECTOR_CATEGORIES)
def test_from_to_filters_the_selected_vectors_half_open(admin: httpx.Client, site: int, category: str) -> None:
    path = VECTOR_CATEGORIES[category].format(site=site)
    old = vector(category, T0, [(T0 + i * HOUR, float(i)) for i in range(5)])
    new = vector(category, T0 + 1, [(T0 + 10 * HOUR, 10.0)])
    ok(put(admin, path, [old, new]), 201)
    attribute = "p" if category == "forecast" else "value"
    window: dict[str, str | int] = {"from": T0 + HOUR, "to": T0 + 3 * HOUR}
    (latest,) = ok(admin.get(f"{path}/1", params=window))["results"]
    # Selection comes first: the latest vector is selected, then left with no period.
    assert latest["creation_timestamp"] == T0 + 1 and latest["values"] == []
    every: dict[str, str | int] = {**window, "generated-after": T0, "generated-before": T0 + 2, "generate-all": "true"}
    results = ok(admin.get(f"{path}/1", params=every))["results"]
    assert [periods_of(r, attribute) for r in results] == [[(T0 + HOUR, 1.0), (T0 + 2 * HOUR, 2.0)], []]


# --- replacement ------------------------------------------------------------


@pytest.mark.parametrize("category", VECTOR_CATEGORIES)
def test_a_later_put_replaces_the_whole_vector(admin: httpx.Client, site: int, category: str) -> None:
    path = VECTOR_CATEGORIES[category].format(site=site)
    attribute = "p" if category == "forecast" else "value"
    other_vintage = vector(category, T0 - 1, [(T0, -1.0)])
    ok(put(admin, path, [other_vintage, vector(category, T0, [(T0 + i * HOUR, float(i)) for i in range(5)])]), 201)
    ok(put(admin, path, [vector(category, T0, [(T0 + HOUR, 10.0), (T0 + 7 * HOUR, 70.0)])]), 201)
    (result,) = ok(admin.get(f"{path}/1"))["results"]
    assert periods_of(result, attribute) == [(T0 + HOUR, 10.0), (T0 + 7 * HOUR, 70.0)]
    everything: dict[str, str | int] = {"generated-after": 0, "generated-before": T0 + 1, "generate-all": "true"}
    results = ok(admin.get(f"{path}/1", params=everything))["results"]
    assert [(r["creation_timestamp"], len(r["values"])) for r in results] == [(T0 - 1, 1), (T0, 2)]


@pytest.mark.parametrize("category", VECTOR_CATEGORIES)
def test_within_one_request_the_last_vector_of_a_key_wins_whole(admin: httpx.Client, site: int, category: str) -> None:
    path = VECTOR_CATEGORIES[category].format(site=site)
    attribute = "p" if category == "forecast" else "value"
    sent = [
        vector(category, T0, [(T0, 1.0), (T0 + HOUR, 2.0), (T0 + 2 * HOUR, 3.0)]),
        vector(category, T0, [(T0, 5.0)], vector_id=2),
        vector(category, T0, [(T0 + HOUR, 4.0)]),
    ]
    ok(put(admin, path, sent), 201)
    (one,) = ok(admin.get(f"{path}/1"))["results"]
    assert periods_of(one, attribute) == [(T0 + HOUR, 4.0)]
    (two,) = ok(admin.get(f"{path}/2"))["results"]
    assert periods_of(two, attribute) == [(T0, 5.0)]


def test_tariff_periods_merge_by_timestamp(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/tariff"
    first = [{"timestamp": T0 + i * HOUR, "label": f"p{i}", "value": float(i)} for i in range(3)]
    ok(put(admin, path, [{"id": 1, "values": first}]), 201)
    # Replaces the period at T0 + 1h, adds T0 + 5h; the last occurrence of a key wins,
    # within one entry as across two entries of one id.
    second = [
        {
            "id": 1,
            "values": [
                {"timestamp": T0 + HOUR, "label": "lost", "value": 0.0},
                {"timestamp": T0 + 5 * HOUR, "label": "p5", "value": 5.0},
            ],
        },
        {"id": 1, "values": [{"timestamp": T0 + HOUR, "label": "new", "value": 10.0}]},
        {
            "id": 2,
            "values": [{"timestamp": T0, "label": "other", "value": 1.0}, {"timestamp": T0, "label": "other", "value": 99.0}],
        },
    ]
    ok(put(admin, path, second), 201)
    (result,) = ok(admin.get(f"{path}/1"))["results"]
    assert result == {
        "id": 1,
        "values": [
            {"timestamp": T0, "label": "p0", "value": 0.0},
            {"timestamp": T0 + HOUR, "label": "new", "value": 10.0},
            {"timestamp": T0 + 2 * HOUR, "label": "p2", "value": 2.0},
            {"timestamp": T0 + 5 * HOUR, "label": "p5", "value": 5.0},
        ],
    }
    assert ok(admin.get(f"{path}/2"))["results"] == [{"id": 2, "values": [{"timestamp": T0, "label": "other", "value": 99.0}]}]


TARIFF_IN_FORCE_CASES: list[tuple[tuple[float, float], list[int]]] = [
    # (from, to) offsets in hours from T0; periods start at 1h, 2h and 3h.
    ((2, 3), [2]),  # from exactly on a start: that period, not the one before
    ((2, 4), [2, 3]),
    ((1.5, 2.5), [1, 2]),  # between starts: the one in force at from, then those starting before to
    ((1.5, 3), [1, 2]),  # to exactly on a start: that period is not in force during [from, to[
    ((0, 2), [1]),  # before the first period: only those starting in ]from, to[
    ((0, 1), []),  # nothing in force yet: a known id with no data
    ((5, 6), [3]),  # after the last start: the last one is still in force
]


@pytest.mark.parametrize(("window", "expected"), TARIFF_IN_FORCE_CASES)
def test_tariff_periods_in_force_during_the_interval(
    admin: httpx.Client, site: int, window: tuple[float, float], expected: list[int]
) -> None:
    path = f"/v1/{site}/tariff"
    ok(
        put(
            admin,
            path,
            [{"id": 1, "values": [{"timestamp": T0 + h * HOUR, "label": f"p{h}", "value": float(h)} for h in (3, 1, 2)]}],
        ),
        201,
    )
    start, end = (T0 + int(h * HOUR) for h in window)
    results = ok(admin.get(f"{path}/1", params={"from": start, "to": end}))["results"]
    if not expected:
        assert results == []
    else:
        assert results == [
            {"id": 1, "values": [{"timestamp": T0 + h * HOUR, "label": f"p{h}", "value": float(h)} for h in expected]}
        ]


# --- isolation --------------------------------------------------------------


def test_sites_types_and_ids_are_isolated(admin: httpx.Client, site: int) -> None:
    other = site + 1_000_000
    writes = [
        (f"/v1/{site}/forecast/solar", vector("forecast", T0, [(T0, 1.0)], 1)),
        (f"/v1/{site}/forecast/solar", vector("forecast", T0, [(T0, 2.0)], 2)),
        (f"/v1/{site}/forecast/wind", vector("forecast", T0, [(T0, 3.0)], 1)),
        (f"/v1/{other}/forecast/solar", vector("forecast", T0, [(T0, 4.0)], 1)),
        (f"/v1/{site}/commitment", vector("commitment", T0, [(T0, 5.0)], 1)),
        (f"/v1/{other}/commitment", vector("commitment", T0, [(T0, 6.0)], 1)),
    ]
    for path, sent in writes:
        ok(put(admin, path, [sent]), 201)
    ok(put(admin, f"/v1/{site}/tariff", [{"id": 1, "values": [{"timestamp": T0, "value": 7.0}]}]), 201)
    ok(put(admin, f"/v1/{other}/tariff", [{"id": 1, "values": [{"timestamp": T0, "value": 8.0}]}]), 201)
    for (path, sent), expected in zip(writes, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]):
        attribute = "p" if "forecast" in path else "value"
        (result,) = ok(admin.get(f"{path}/{sent['id']}"))["results"]
        assert result["values"][0][attribute] == expected, path
    assert ok(admin.get(f"/v1/{site}/tariff/1"))["results"][0]["values"][0]["value"] == 7.0
    assert ok(admin.get(f"/v1/{other}/tariff/1"))["results"][0]["values"][0]["value"] == 8.0


# --- aggregation ------------------------------------------------------------


def brute_force(
    periods: list[JsonObject], attributes: list[str], start: int, end: int, period_ms: int, function: str
) -> list[JsonObject]:
    """The contract's aggregation, computed the obvious way."""
    buckets: dict[int, list[JsonObject]] = defaultdict(list)
    for p in periods:
        if start <= p["timestamp"] < end:
            buckets[p["timestamp"] // period_ms * period_ms].append(p)
    functions: dict[str, Callable[[list[float]], float]] = {"min": min, "max": max, "avg": lambda xs: sum(xs) / len(xs)}
    out = []
    for bucket in sorted(buckets):
        record: JsonObject = {"timestamp": bucket}
        for attribute in attributes:
            present = [p[attribute] for p in buckets[bucket] if p.get(attribute) is not None]
            chosen = functions["min" if attribute == "quality" else function]
            record[attribute] = chosen(present) if present else None
        out.append(record)
    return out


def assert_same_periods(actual: list[JsonObject], expected: list[JsonObject]) -> None:
    assert [p["timestamp"] for p in actual] == [p["timestamp"] for p in expected]
    for got, want in zip(actual, expected):
        assert list(got) == list(want)
        for key, value in want.items():
            if isinstance(value, float):
                assert type(got[key]) is float and got[key] == pytest.approx(value, rel=1e-12), (key, got, want)
            else:
                assert got[key] == value and type(got[key]) is type(value), (key, got, want)


def random_periods(rng: random.Random, attributes: dict[str, str], count: int) -> list[JsonObject]:
    """Periods every 5 minutes from T0 with random gaps; each attribute null one time in five."""
    periods, t = [], T0
    for _ in range(count):
        t += rng.choice([5, 5, 5, 10, 35]) * MINUTE
        period: JsonObject = {"timestamp": t}
        for name, kind in attributes.items():
            if rng.random() < 0.8:
                period[name] = rng.randrange(0, 5) if kind == "int" else round(rng.uniform(-500, 500), 3)
        periods.append(period)
    return periods


@pytest.mark.parametrize("function", ["min", "max", "avg"])
def test_forecast_aggregation_matches_brute_force(admin: httpx.Client, site: int, function: str) -> None:
    rng = random.Random(function)
    path = f"/v1/{site}/forecast/demand"
    vintages = {T0 + k: random_periods(rng, {"p": "float", "quality": "int"}, 120) for k in range(3)}
    ok(put(admin, path, [{"creation_timestamp": c, "id": 1, "values": v} for c, v in vintages.items()]), 201)
    # An unaligned from: the first bucket starts before it and holds only periods from it on.
    start, end, period_ms = T0 + 97 * MINUTE, T0 + 11 * HOUR + 3 * MINUTE, 45 * MINUTE
    query: dict[str, str | int] = {"from": start, "to": end, "agg": function, "period": "45m"}
    everything: dict[str, str | int] = {**query, "generated-after": T0, "generated-before": T0 + 3, "generate-all": "true"}
    results = ok(admin.get(f"{path}/1", params=everything))["results"]
    assert [r["creation_timestamp"] for r in results] == list(vintages)
    for result, periods in zip(results, vintages.values()):
        assert_same_periods(result["values"], brute_force(periods, ["p", "quality"], start, end, period_ms, function))
    # quality is a minimum whatever the function, and stays an integer.
    assert all(type(p["quality"]) is int for r in results for p in r["values"] if p["quality"] is not None)
    (latest,) = ok(admin.get(f"{path}/1", params=query))["results"]
    assert latest == results[-1]


@pytest.mark.parametrize("function", ["min", "max", "avg"])
def test_commitment_aggregation_matches_brute_force(admin: httpx.Client, site: int, function: str) -> None:
    rng = random.Random(function)
    path = f"/v1/{site}/commitment"
    periods = random_periods(rng, {"value": "float"}, 200)
    ok(put(admin, path, [{"creation_timestamp": T0, "id": 3, "quality": 2, "values": periods}]), 201)
    start, end = T0, T0 + 24 * HOUR
    (result,) = ok(admin.get(f"{path}/3", params={"from": start, "to": end, "agg": function, "period": "1h"}))["results"]
    assert result["quality"] == 2
    assert_same_periods(result["values"], brute_force(periods, ["value"], start, end, HOUR, function))


def test_avg_of_an_integer_is_a_float_and_all_null_buckets_are_null(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/forecast/aggregate"
    periods = [
        {"timestamp": T0, "quality": 1, "p": 1},
        {"timestamp": T0 + MINUTE, "quality": 2},
        {"timestamp": T0 + HOUR},
    ]
    ok(put(admin, path, [{"creation_timestamp": T0, "id": 1, "values": periods}]), 201)
    params: dict[str, str | int] = {"from": T0, "to": T0 + 2 * HOUR, "agg": "avg", "period": "1h"}
    (result,) = ok(admin.get(f"{path}/1", params=params))["results"]
    assert result["values"] == [{"timestamp": T0, "p": 1.0, "quality": 1}, {"timestamp": T0 + HOUR, "p": None, "quality": None}]
    assert type(result["values"][0]["p"]) is float


# --- partial responses ------------------------------------------------------


def read_pages(client: httpx.Client, path: str, params: Mapping[str, QueryValue]) -> list[list[JsonObject]]:
    """Every page of a GET, following next_from with the same to (the limit if the first request had none)."""
    pages: list[list[JsonObject]] = []
    query = dict(params)
    while True:
        response = client.get(path, params=query)
        body = response.json()
        periods = sum(len(r["values"]) for r in body["results"])
        pages.append(body["results"])
        if response.status_code == 200:
            assert body["status_code"] == 1000 and "next_from" not in body
            return pages
        assert response.status_code == 206, response.text
        assert body["status_code"] == 1001 and body["status_message"] == "partial response"
        # More than the limit only when one timestamp alone holds more.
        timestamps = {p["timestamp"] for r in body["results"] for p in r["values"]}
        assert 0 < periods <= MAX_RECORDS or len(timestamps) == 1
        # Everything before next_from was returned, nothing from it on.
        assert all(p["timestamp"] < body["next_from"] for r in body["results"] for p in r["values"])
        query = {**query, "from": body["next_from"], "to": query.get("to", TIMESTAMP_LIMIT_MS - 1)}


def test_partial_responses_cover_every_period_of_every_vintage_exactly_once(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/forecast/wind"
    # Three vintages with overlapping horizons, 2 100 periods in all.
    vintages = {T0 + k * HOUR: [(T0 + k * HOUR + i * MINUTE, float(k * 10_000 + i)) for i in range(700)] for k in range(3)}
    ok(put(admin, path, [vector("forecast", c, p) for c, p in vintages.items()]), 201)
    params: dict[str, str | int] = {"generated-after": T0, "generated-before": T0 + 3 * HOUR, "generate-all": "true"}
    pages = read_pages(admin, f"{path}/1", params)
    assert len(pages) >= 3
    seen: list[tuple[int, int, float]] = []
    for page in pages:
        assert [r["creation_timestamp"] for r in page] == list(vintages)
        seen += [(r["creation_timestamp"], p["timestamp"], p["p"]) for r in page for p in r["values"]]
    expected = [(c, t, v) for c, periods in vintages.items() for t, v in periods]
    assert sorted(seen) == sorted(expected) and len(seen) == len(expected)


def test_partial_response_of_the_latest_vector_without_a_range(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/commitment"
    periods = [(T0 + i * MINUTE, float(i)) for i in range(2 * MAX_RECORDS + 1)]
    ok(put(admin, path, [vector("commitment", T0, periods)]), 201)
    first = admin.get(f"{path}/1")
    assert first.status_code == 206 and first.json()["next_from"] == T0 + MAX_RECORDS * MINUTE
    pages = read_pages(admin, f"{path}/1", {})
    assert [len(page[0]["values"]) for page in pages] == [MAX_RECORDS, MAX_RECORDS, 1]
    assert [p["value"] for page in pages for p in page[0]["values"]] == [v for _, v in periods]


def test_a_timestamp_holding_more_periods_than_the_limit_comes_whole(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/forecast/solar"
    count = MAX_RECORDS + 1
    ok(put(admin, path, [vector("forecast", T0 + k, [(T0, 1.0), (T0 + HOUR, 2.0)]) for k in range(count)]), 201)
    params: dict[str, str | int] = {"generated-after": T0, "generated-before": T0 + count, "generate-all": "true"}
    first = admin.get(f"{path}/1", params=params)
    assert first.status_code == 206
    body = first.json()
    assert body["next_from"] == T0 + HOUR
    assert len(body["results"]) == count and all(
        r["values"] == [{"timestamp": T0, "p": 1.0, "quality": 1}] for r in body["results"]
    )
    pages = read_pages(admin, f"{path}/1", params)
    assert [sum(len(r["values"]) for r in page) for page in pages] == [count, count]


def test_aggregated_partial_responses_resume_on_a_bucket(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/forecast/demand"
    periods = [(T0 + i * MINUTE, float(i)) for i in range(3 * MAX_RECORDS * 5)]
    ok(put(admin, path, [vector("forecast", T0, periods)]), 201)
    params: dict[str, str | int] = {"from": T0 + 3 * MINUTE, "to": T0 + len(periods) * MINUTE, "agg": "max", "period": "5m"}
    pages = read_pages(admin, f"{path}/1", params)
    buckets = [p for page in pages for p in page[0]["values"]]
    assert len(pages) == 3 and len(buckets) == 3 * MAX_RECORDS
    assert [p["p"] for p in buckets] == [float(i * 5 + 4) for i in range(3 * MAX_RECORDS)]


def test_tariff_partial_responses_cover_every_period_exactly_once(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/tariff"
    total = 2 * MAX_RECORDS + 17
    ok(put(admin, path, [{"id": 4, "values": [{"timestamp": T0 + i * HOUR, "value": float(i)} for i in range(total)]}]), 201)
    for params in ({}, {"from": T0 + 30 * MINUTE, "to": T0 + total * HOUR}):
        pages = read_pages(admin, f"{path}/4", params)
        assert all(len(page) == 1 and page[0]["id"] == 4 for page in pages)
        assert [p["value"] for page in pages for p in page[0]["values"]] == [float(i) for i in range(total)]
