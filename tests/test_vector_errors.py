"""Forecasts, commitments and tariffs refused: payloads, query parameters,
permissions, and the same rules for direct gRPC callers of the Vector service."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypedDict, TypeVar

import grpc
import httpx
import pytest

from storecast.catalog import TIMESTAMP_LIMIT_MS
from storecast.status import STATUS, ApiFailure
from storecast.v1 import catalog_pb2, records_pb2, vector_pb2, vector_pb2_grpc
from tests.conftest import MAX_BODY_BYTES, Storecast, assert_error, ok, put
from tests.helpers import JSON_HEADERS, T0, JsonObject, Query, raw_put, rpc_failure

FORECAST: JsonObject = {"creation_timestamp": T0, "id": 1, "values": [{"timestamp": T0, "p": 1.0, "quality": 1}]}
COMMITMENT: JsonObject = {"creation_timestamp": T0, "id": 1, "quality": 1, "values": [{"timestamp": T0, "value": 1.0}]}
TARIFF: JsonObject = {"id": 1, "values": [{"timestamp": T0, "label": "on-peak", "value": 1.0}]}
PUT_PATHS = {"forecast": "/v1/{site}/forecast/solar", "commitment": "/v1/{site}/commitment", "tariff": "/v1/{site}/tariff"}
GOOD: dict[str, JsonObject] = {"forecast": FORECAST, "commitment": COMMITMENT, "tariff": TARIFF}


def with_period(entry: JsonObject, index: int = 0, **changes: object) -> JsonObject:
    """A copy of an entry whose period `index` has attributes changed (None: removed)."""
    periods = [dict(p) for p in entry["values"]]
    while len(periods) <= index:
        periods.append({"timestamp": T0 + len(periods) * 1000})
    for name, value in changes.items():
        if value is None:
            periods[index].pop(name, None)
        else:
            periods[index][name] = value
    return {**entry, "values": periods}


def without(entry: JsonObject, name: str) -> JsonObject:
    return {k: v for k, v in entry.items() if k != name}


# (category, body as JSON-able or raw bytes, API code, fragments of the message)
PAYLOAD_ERRORS = [
    *[(c, b'{"values": [', 1301, ["payload encoding error"]) for c in PUT_PATHS],
    *[(c, b"\xff\xfe", 1301, []) for c in PUT_PATHS],
    *[(c, b"", 1302, ["payload empty error"]) for c in PUT_PATHS],
    *[(c, {}, 1302, []) for c in PUT_PATHS],
    *[(c, {"values": []}, 1302, []) for c in PUT_PATHS],
    *[(c, [GOOD[c]], 1303, ["expected an object"]) for c in PUT_PATHS],
    *[(c, {"values": GOOD[c]}, 1303, ["values: expected an array"]) for c in PUT_PATHS],
    *[(c, {"values": [GOOD[c]], "extra": 1}, 1303, ["extra: unknown attribute"]) for c in PUT_PATHS],
    *[(c, {"values": [without(GOOD[c], "id")]}, 1303, ["values[0].id: missing required attribute"]) for c in PUT_PATHS],
    *[(c, {"values": [{**GOOD[c], "id": 2**32}]}, 1303, ["values[0].id"]) for c in PUT_PATHS],
    *[(c, {"values": [without(GOOD[c], "values")]}, 1303, ["values[0].values: missing required attribute"]) for c in PUT_PATHS],
    *[(c, {"values": [{**GOOD[c], "values": []}]}, 1303, ["values[0].values: expected a non-empty array"]) for c in PUT_PATHS],
    *[(c, {"values": [{**GOOD[c], "values": None}]}, 1303, ["values[0].values: expected an array, got null"]) for c in PUT_PATHS],
    *[
        (c, {"values": [GOOD[c], with_period(GOOD[c], 2, timestamp=None)]}, 1303, ["values[1].values[2].timestamp: missing"])
        for c in PUT_PATHS
    ],
    *[
        (c, {"values": [with_period(GOOD[c], 0, timestamp=-1)]}, 1303, ["values[0].values[0].timestamp: expected a non-negative"])
        for c in PUT_PATHS
    ],
    *[
        (
            c,
            {"values": [with_period(GOOD[c], 0, timestamp=TIMESTAMP_LIMIT_MS)]},
            1303,
            ["values[0].values[0].timestamp: expected a timestamp below"],
        )
        for c in PUT_PATHS
    ],
    *[(c, {"values": [with_period(GOOD[c], 0, timestamp=1.5)]}, 1303, ["values[0].values[0].timestamp"]) for c in PUT_PATHS],
    *[
        (c, {"values": [with_period(GOOD[c], 1, nope=1)]}, 1303, ["values[0].values[1].nope: unknown attribute"])
        for c in PUT_PATHS
    ],
    # Forecasts
    (
        "forecast",
        {"values": [without(FORECAST, "creation_timestamp")]},
        1303,
        ["values[0].creation_timestamp: missing required attribute"],
    ),
    (
        "forecast",
        {"values": [{**FORECAST, "creation_timestamp": "now"}]},
        1303,
        ["values[0].creation_timestamp: expected a non-negative integer, got a string"],
    ),
    ("forecast", {"values": [{**FORECAST, "quality": 1}]}, 1303, ["values[0].quality: unknown attribute"]),
    (
        "forecast",
        {"values": [with_period(FORECAST, 2, p="high")]},
        1303,
        ["values[0].values[2].p: expected a number or null, got a string"],
    ),
    (
        "forecast",
        {"values": [with_period(FORECAST, 0, quality=-1)]},
        1303,
        ["values[0].values[0].quality: expected a non-negative integer"],
    ),
    ("forecast", {"values": [with_period(FORECAST, 0, quality=0.5)]}, 1303, ["values[0].values[0].quality"]),
    ("forecast", {"values": [with_period(FORECAST, 0, p=True)]}, 1303, ["values[0].values[0].p"]),
    (
        "forecast",
        {"values": [FORECAST, {**FORECAST, "values": [{"timestamp": T0 + 1}, {"timestamp": T0}, {"timestamp": T0 + 1}]}]},
        1303,
        ["values[1].values[2].timestamp", "values[1].values[0]"],
    ),
    # Commitments
    ("commitment", {"values": [{**COMMITMENT, "quality": -2}]}, 1303, ["values[0].quality: expected a non-negative integer"]),
    ("commitment", {"values": [{**COMMITMENT, "quality": "good"}]}, 1303, ["values[0].quality"]),
    (
        "commitment",
        {"values": [with_period(COMMITMENT, 0, value="1.0")]},
        1303,
        ["values[0].values[0].value: expected a number or null, got a string"],
    ),
    ("commitment", {"values": [with_period(COMMITMENT, 0, quality=1)]}, 1303, ["values[0].values[0].quality: unknown attribute"]),
    (
        "commitment",
        {"values": [{**COMMITMENT, "values": [{"timestamp": T0}, {"timestamp": T0}]}]},
        1303,
        ["values[0].values[1].timestamp"],
    ),
    # Tariffs
    ("tariff", {"values": [{**TARIFF, "creation_timestamp": T0}]}, 1303, ["values[0].creation_timestamp: unknown attribute"]),
    (
        "tariff",
        {"values": [with_period(TARIFF, 0, label="x" * 65)]},
        1303,
        ["values[0].values[0].label: expected a string of at most 64 characters"],
    ),
    (
        "tariff",
        {"values": [with_period(TARIFF, 1, label=5)]},
        1303,
        ["values[0].values[1].label: expected a string or null, got an integer"],
    ),
    ("tariff", {"values": [with_period(TARIFF, 0, value=False)]}, 1303, ["values[0].values[0].value"]),
    ("tariff", {"values": [with_period(TARIFF, 0, p=1.0)]}, 1303, ["values[0].values[0].p: unknown attribute"]),
]


@pytest.mark.parametrize(("category", "body", "code", "fragments"), PAYLOAD_ERRORS)
def test_payload_errors(admin: httpx.Client, site: int, category: str, body: object, code: int, fragments: list[str]) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = raw_put(admin, PUT_PATHS[category].format(site=site), content)
    assert_error(response, 400, code, *fragments)


@pytest.mark.parametrize("category", PUT_PATHS)
def test_a_refused_put_stores_nothing(admin: httpx.Client, site: int, category: str) -> None:
    path = PUT_PATHS[category].format(site=site)
    good = GOOD[category]
    assert_error(
        put(admin, path, [good, with_period({**good, "id": 2}, 0, timestamp="later")]), 400, 1303, "values[1].values[0].timestamp"
    )
    assert_error(admin.get(f"{path}/1"), 400, 1107)


@pytest.mark.parametrize("category", PUT_PATHS)
def test_put_headers_query_and_size(admin: httpx.Client, site: int, category: str) -> None:
    path = PUT_PATHS[category].format(site=site)
    content = json.dumps({"values": [GOOD[category]]}).encode()
    assert_error(raw_put(admin, path, content, "text/plain"), 400, 1103, "Content-Type")
    assert_error(raw_put(admin, path, content, None), 400, 1103)
    assert_error(admin.put(path, params={"from": 1}, content=content, headers=JSON_HEADERS), 400, 1200)
    ok(raw_put(admin, path, content, "application/json; charset=utf-8"), 201)
    huge = b'{"values": [' + b" " * MAX_BODY_BYTES + b"]}"
    assert_error(raw_put(admin, path, huge), 413, 1303)


GET_PATHS = {"forecast": "/v1/{site}/forecast/solar/1", "commitment": "/v1/{site}/commitment/1", "tariff": "/v1/{site}/tariff/1"}
LIMIT = TIMESTAMP_LIMIT_MS
# (query, code, fragment) refused for every category.
COMMON_PARAMETER_ERRORS: list[tuple[Query, int, str]] = [
    ({"from": T0}, 1200, "from and to"),
    ({"to": T0}, 1200, "from and to"),
    ({"from": "abc", "to": T0}, 1201, "from"),
    ({"from": "-1", "to": T0}, 1201, "from"),
    ({"from": "1.5", "to": T0}, 1201, "from"),
    ({"from": LIMIT, "to": LIMIT}, 1201, "from"),
    ({"from": T0, "to": ""}, 1202, "to"),
    ({"from": T0, "to": LIMIT}, 1202, "to"),
    ({"from": T0, "to": T0}, 1200, "lower than"),
    ({"from": T0 + 1, "to": T0}, 1200, "lower than"),
    ({"nope": 1}, 1200, "'nope'"),
    ([("from", T0), ("to", T0 + 1), ("from", T0)], 1200, "more than once"),
]
VECTOR_PARAMETER_ERRORS: list[tuple[Query, int, str]] = [
    ({"generated-after": T0}, 1200, "come together"),
    ({"generated_before": T0}, 1200, "come together"),
    ({"generated-after": "x", "generated-before": T0}, 1203, "generated-after"),
    ({"generated-after": LIMIT, "generated-before": LIMIT}, 1203, "generated-after"),
    ({"generated-after": T0, "generated-before": "1.5"}, 1204, "generated-before"),
    ({"generated_after": T0, "generated_before": LIMIT}, 1204, "generated-before"),
    ({"generated-after": T0, "generated-before": T0}, 1200, "lower than"),
    ({"generated-after": 0, "generated-before": T0, "generate-all": "yes"}, 1200, "true or false"),
    ({"generated-after": 0, "generated-before": T0, "generate-all": "True"}, 1200, "true or false"),
    ({"generated-after": 0, "generated-before": T0, "generate-all": ""}, 1200, "true or false"),
    ({"generate-all": "true"}, 1200, "generate-all needs"),
    ({"generate_all": "false"}, 1200, "generate-all needs"),
    ([("generated-after", 0), ("generated_after", 1), ("generated-before", T0)], 1200, "more than once"),
    ({"from": 0, "to": T0, "agg": "sum", "period": "1h"}, 1205, "agg"),
    ({"from": 0, "to": T0, "agg": "avg", "period": "0m"}, 1206, "period"),
    ({"from": 0, "to": T0, "agg": "avg", "period": "1w"}, 1206, "period"),
    ({"from": 0, "to": T0, "agg": "avg"}, 1200, "agg needs period"),
    ({"agg": "avg", "period": "1h"}, 1200, "agg needs from and to"),
    ({"from": 0, "to": T0, "period": "1h"}, 1200, "period needs agg"),
]
TARIFF_PARAMETER_ERRORS: list[tuple[Query, int, str]] = [
    ({"from": 0, "to": T0, "agg": "avg", "period": "1h"}, 1200, "'agg'"),
    ({"period": "1h"}, 1200, "'period'"),
    ({"generated-after": 0, "generated-before": T0}, 1200, "'generated-after'"),
    ({"generated_before": T0}, 1200, "'generated_before'"),
    ({"generate-all": "true"}, 1200, "'generate-all'"),
]
PARAMETER_ERRORS: list[tuple[str, Query, int, str]] = [
    *[(c, q, code, f) for c in GET_PATHS for q, code, f in COMMON_PARAMETER_ERRORS],
    *[(c, q, code, f) for c in ("forecast", "commitment") for q, code, f in VECTOR_PARAMETER_ERRORS],
    *[("tariff", q, code, f) for q, code, f in TARIFF_PARAMETER_ERRORS],
]


@pytest.fixture(scope="module")
def stored_site(storecast: Storecast, admin: httpx.Client) -> int:
    """A site with id 1 in every category, so only the parameters can be wrong."""
    site = 77
    for category, path in PUT_PATHS.items():
        ok(put(admin, path.format(site=site), [GOOD[category]]), 201)
    return site


@pytest.mark.parametrize(("category", "query", "code", "fragment"), PARAMETER_ERRORS)
def test_parameter_errors(admin: httpx.Client, stored_site: int, category: str, query: Query, code: int, fragment: str) -> None:
    assert_error(admin.get(GET_PATHS[category].format(site=stored_site), params=query), 400, code, fragment)


@pytest.mark.parametrize("category", GET_PATHS)
def test_bounds_just_below_the_limit_are_accepted(admin: httpx.Client, stored_site: int, category: str) -> None:
    query = {"from": 0, "to": LIMIT - 1}
    if category != "tariff":
        query |= {"generated-after": 0, "generated-before": LIMIT - 1}
    assert len(ok(admin.get(GET_PATHS[category].format(site=stored_site), params=query))["results"]) == 1


def test_path_errors(admin: httpx.Client, stored_site: int) -> None:
    site = stored_site
    assert_error(admin.get(f"/v1/{site}/forecast/tidal/1"), 400, 1106, "tidal")
    assert_error(put(admin, f"/v1/{site}/forecast/tidal", [FORECAST]), 400, 1106)
    for path in (f"/v1/{site}/forecast/solar/x", f"/v1/{site}/commitment/-1", f"/v1/{site}/tariff/4294967296"):
        assert_error(admin.get(path), 400, 1107)
    for path in (f"/v1/{site}/forecast/solar", f"/v1/{site}/commitment", f"/v1/{site}/tariff"):
        assert_error(admin.get(path), 405, 1102)
        assert_error(put(admin, f"{path}/1", [GOOD["tariff"]]), 405, 1102)
    for path in (f"/v1/{site}/tariff/1/2", f"/v1/{site}/commitment/1/2", f"/v1/{site}/forecast", f"/v1/{site}/tariff/"):
        assert_error(admin.get(path), 404, 1101)


# --- permissions ------------------------------------------------------------


@pytest.mark.parametrize("category", PUT_PATHS)
def test_permissions(storecast: Storecast, admin: httpx.Client, category: str) -> None:
    put_100, put_101 = (PUT_PATHS[category].format(site=s) for s in (100, 101))
    get_100, get_101 = (GET_PATHS[category].format(site=s) for s in (100, 101))
    body = [GOOD[category]]
    ok(put(admin, put_101, body), 201)
    with storecast.client("site100") as own:
        ok(put(own, put_100, body), 201)
        ok(own.get(get_100))
        assert_error(put(own, put_101, body), 403, 1400, "site100", "write site 101")
        assert_error(own.get(get_101), 403, 1400, "read site 101")
    with storecast.client("reader") as reader:
        ok(reader.get(get_101))
        assert_error(put(reader, put_101, body), 403, 1400, "reader", "write")
    with storecast.client("writer-only") as writer:
        ok(put(writer, put_101, body), 201)
        assert_error(writer.get(get_101), 403, 1400, "read")
    with storecast.client("stranger") as stranger:
        assert_error(stranger.get(get_101), 403, 1400)
    with storecast.client(None) as anonymous:
        assert_error(anonymous.get(get_101), 403, 1400, "without a client certificate")
        assert_error(put(anonymous, put_101, body), 403, 1400)


# --- gRPC -------------------------------------------------------------------


RequestT = TypeVar("RequestT")


def refusal(call: Callable[[RequestT], object], request: RequestT) -> ApiFailure:
    """The ApiFailure a direct gRPC call was refused with."""
    status, failure = rpc_failure(lambda: call(request))
    assert status == STATUS[failure.code].grpc_code
    return failure


@pytest.fixture(scope="module")
def vector_stub(grpc_channel: grpc.Channel) -> vector_pb2_grpc.VectorStub:
    return vector_pb2_grpc.VectorStub(grpc_channel)


def test_grpc_puts_validate_like_rest(vector_stub: vector_pb2_grpc.VectorStub, site: int) -> None:
    bad_forecast = json.dumps({"values": [with_period(FORECAST, 2, p="x")]}).encode()
    failure = refusal(
        vector_stub.PutForecast, vector_pb2.PutForecastRequest(site_id=site, forecast_type=catalog_pb2.WIND, v1_json=bad_forecast)
    )
    assert failure.code == 1303 and "values[0].values[2].p" in failure.message
    failure = refusal(
        vector_stub.PutForecast,
        vector_pb2.PutForecastRequest(site_id=site, forecast_type=catalog_pb2.ForecastType.ValueType(99), v1_json=bad_forecast),
    )
    assert failure.code == 1106
    failure = refusal(vector_stub.PutCommitment, vector_pb2.PutCommitmentRequest(site_id=site, v1_json=b"{}"))
    assert failure.code == 1302
    tariff = json.dumps({"values": [with_period(TARIFF, 0, label="y" * 65)]}).encode()
    failure = refusal(vector_stub.PutTariff, vector_pb2.PutTariffRequest(site_id=site, v1_json=tariff))
    assert failure.code == 1303 and "values[0].values[0].label" in failure.message


class ForecastKey(TypedDict):
    """The key fields of a GetForecastRequest, as keyword arguments."""

    site_id: int
    forecast_type: catalog_pb2.ForecastType.ValueType
    id: int


def test_grpc_gets_validate_like_rest(vector_stub: vector_pb2_grpc.VectorStub, site: int) -> None:
    body = json.dumps({"values": [FORECAST]}).encode()
    reply = vector_stub.PutForecast(vector_pb2.PutForecastRequest(site_id=site, forecast_type=catalog_pb2.DEMAND, v1_json=body))
    assert reply.stored == 1
    interval = records_pb2.Interval
    get = vector_pb2.GetForecastRequest
    base: ForecastKey = {"site_id": site, "forecast_type": catalog_pb2.DEMAND, "id": 1}
    cases = [
        (get(**base, generated=interval(start_ms=T0, end_ms=T0)), 1200),
        (get(**base, generated=interval(start_ms=-1, end_ms=T0)), 1203),
        (get(**base, generated=interval(start_ms=0, end_ms=LIMIT)), 1204),
        (get(**base, generate_all=False), 1200),
        (get(**base, generate_all=True), 1200),
        (get(**base, range=interval(start_ms=T0, end_ms=T0 - 1)), 1200),
        (get(**base, range=interval(start_ms=-5, end_ms=T0)), 1201),
        (get(**base, range=interval(start_ms=0, end_ms=T0), aggregation=records_pb2.AVG), 1200),
        (get(**base, aggregation=records_pb2.AVG, period_ms=1000), 1200),
        (get(**base, range=interval(start_ms=0, end_ms=T0), period_ms=1000), 1200),
        (
            get(**base, range=interval(start_ms=0, end_ms=T0), aggregation=records_pb2.Aggregation.ValueType(9), period_ms=1000),
            1205,
        ),
        (get(**base, range=interval(start_ms=0, end_ms=T0), aggregation=records_pb2.MIN, period_ms=-1), 1206),
        (get(site_id=site, forecast_type=catalog_pb2.FORECAST_TYPE_UNSPECIFIED, id=1), 1106),
        (get(site_id=site, forecast_type=catalog_pb2.DEMAND, id=2), 1107),
    ]
    for request, code in cases:
        assert refusal(vector_stub.GetForecast, request).code == code, request
    commitment = vector_pb2.GetCommitmentRequest(site_id=site, id=1, generate_all=True)
    assert refusal(vector_stub.GetCommitment, commitment).code == 1200
    tariff = vector_pb2.GetTariffRequest(site_id=site, id=1, range=interval(start_ms=T0, end_ms=T0))
    assert refusal(vector_stub.GetTariff, tariff).code == 1200
    assert refusal(vector_stub.GetTariff, vector_pb2.GetTariffRequest(site_id=site, id=1)).code == 1107

    records = vector_stub.GetForecast(get(**base, max_records=1))
    assert json.loads(records.results_json) == [FORECAST] and records.count == 1 and not records.HasField("next_from")
