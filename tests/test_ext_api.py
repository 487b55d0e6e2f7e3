"""The /ext/v1/ REST tree through the real gateway: the v1 envelope and codes, the same identity
and per-site read permissions, and every answer as the OpenAPI document describes it."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator

import httpx
import pytest

from gateway import ext_routing
from storecast.aggregations import AGGREGATIONS, V1_AGGREGATIONS
from storecast.catalog import COMMITMENT, EQUIPMENT_TYPES, FORECAST_TYPES, TARIFF, Attribute, Kind
from tests.conftest import MAX_RECORDS, Pki, Storecast, assert_error, ok, put, start_storecast, stop_storecast
from tests.helpers import HOUR, MINUTE, T0, JsonObject, Query
from tests.test_openapi import DOCUMENT, assert_documented, assert_matches

SITE100 = 100
SOLAR_STAIRCASE = "/ext/v1/{site_id}/forecast/solar/{forecast_id}/staircase"
SOLAR_ERRORS = "/ext/v1/{site_id}/forecast/solar/{forecast_id}/horizon-errors"
# Vintages of one solar forecast: creation_timestamp → {period timestamp: p}.
VINTAGES: dict[int, dict[int, float | None]] = {
    T0 - 12 * HOUR: {T0 + i * HOUR: 10.0 + i for i in range(6)},
    T0 - HOUR: {**{T0 + i * HOUR: 20.0 + i for i in range(6)}, T0 + 3 * HOUR: None, T0 + 6 * HOUR: 26.0},
    T0 + 2 * HOUR: {T0 + i * HOUR: 30.0 + i for i in range(2, 6)},
}
# The meter's p every 10 minutes over [T0, T0 + 6h[: the actuals.
ACTUALS = {T0 + k * 10 * MINUTE: float(k % 7) for k in range(36)}
ERRORS_QUERY: dict[str, str | int] = {
    "equipment": "meter",
    "equipment_id": 3,
    "attribute": "p",
    "period": "1h",
    "horizon_bucket": "1h",
}


@pytest.fixture(scope="module")
def site100(storecast: Storecast) -> Iterator[httpx.Client]:
    with storecast.client("site100") as client:
        yield client


@pytest.fixture
def forecast_site(admin: httpx.Client, site: int) -> int:
    """A site holding the VINTAGES as solar forecast 1 and the ACTUALS as meter 3."""
    vectors = [
        {"creation_timestamp": created, "id": 1, "values": [{"timestamp": t, "p": p} for t, p in periods.items()]}
        for created, periods in VINTAGES.items()
    ]
    ok(put(admin, f"/v1/{site}/forecast/solar", vectors), 201)
    ok(put(admin, f"/v1/{site}/production/meter", [{"timestamp": t, "id": 3, "p": p} for t, p in ACTUALS.items()]), 201)
    return site


def staircase_url(site: int | str, forecast_id: int | str = 1, forecast_type: str = "solar") -> str:
    return f"/ext/v1/{site}/forecast/{forecast_type}/{forecast_id}/staircase"


def errors_url(site: int | str, forecast_id: int | str = 1) -> str:
    return f"/ext/v1/{site}/forecast/solar/{forecast_id}/horizon-errors"


# --- brute force ----------------------------------------------------------------


def staircase(horizon_ms: int, start: int = 0, end: int = 2**62) -> list[JsonObject]:
    """For each period timestamp, the period of the latest vintage created at or before t - horizon."""
    chosen: dict[int, tuple[int, float | None]] = {}
    for created, periods in VINTAGES.items():
        for t, p in periods.items():
            if created <= t - horizon_ms and start <= t < end and (t not in chosen or chosen[t][0] < created):
                chosen[t] = (created, p)
    return [{"timestamp": t, "creation_timestamp": c, "p": p, "quality": None} for t, (c, p) in sorted(chosen.items())]


def horizon_errors(period_ms: int, bucket_ms: int) -> list[JsonObject]:
    errors: dict[int, list[float]] = defaultdict(list)
    for created, periods in VINTAGES.items():
        for t, forecast in periods.items():
            actual = [a for s, a in ACTUALS.items() if t <= s < t + period_ms]
            if forecast is not None and actual:
                errors[(t - created) // bucket_ms * bucket_ms].append(forecast - sum(actual) / len(actual))
    return [
        {"horizon_ms": h, "count": len(e), "mae": sum(map(abs, e)) / len(e), "bias": sum(e) / len(e)}
        for h, e in sorted(errors.items())
    ]


def assert_close(results: list[JsonObject], expected: list[JsonObject]) -> None:
    assert [(r["horizon_ms"], r["count"]) for r in results] == [(e["horizon_ms"], e["count"]) for e in expected]
    for result, wanted in zip(results, expected):
        assert result["mae"] == pytest.approx(wanted["mae"]) and result["bias"] == pytest.approx(wanted["bias"])


# --- sites and inventory ------------------------------------------------------------


def test_sites_lists_only_the_sites_the_caller_may_read(admin: httpx.Client, site100: httpx.Client, site: int) -> None:
    ok(put(site100, f"/v1/{SITE100}/production/meter", [{"timestamp": T0, "id": 1, "p": 1.0}]), 201)
    ok(put(admin, f"/v1/{site}/tariff", [{"id": 1, "values": [{"timestamp": T0, "label": "x", "value": 1.0}]}]), 201)

    every = assert_documented(admin.get("/ext/v1/sites"), "/ext/v1/sites", "get", 200)["results"]
    site_ids = [item["site_id"] for item in every]
    assert {SITE100, site} <= set(site_ids) and site_ids == sorted(set(site_ids))

    assert ok(site100.get("/ext/v1/sites"))["results"] == [{"site_id": SITE100}]
    assert site100.head("/ext/v1/sites").status_code == 200


def test_inventory_lists_a_sites_series(admin: httpx.Client, site: int) -> None:
    ok(put(admin, f"/v1/{site}/production/meter-3p", [{"timestamp": T0 + i * MINUTE, "id": 3} for i in range(3)]), 201)
    vector = {"creation_timestamp": T0 - HOUR, "id": 1, "values": [{"timestamp": T0, "p": 1.0}, {"timestamp": T0 + HOUR}]}
    ok(put(admin, f"/v1/{site}/forecast/solar", [vector]), 201)
    commitment = {"creation_timestamp": T0, "id": 2, "quality": 1, "values": [{"timestamp": T0 + HOUR, "value": 1.0}]}
    ok(put(admin, f"/v1/{site}/commitment", [commitment]), 201)

    body = assert_documented(admin.get(f"/ext/v1/{site}/inventory"), "/ext/v1/{site_id}/inventory", "get", 200)
    assert body["results"] == [
        {
            "category": "production",
            "type": "meter-3p",
            "id": 3,
            "first_timestamp": T0,
            "last_timestamp": T0 + 2 * MINUTE,
            "count": 3,
        },
        {
            "category": "forecast",
            "type": "solar",
            "id": 1,
            "first_timestamp": T0,
            "last_timestamp": T0 + HOUR,
            "count": 1,
            "first_creation_timestamp": T0 - HOUR,
            "last_creation_timestamp": T0 - HOUR,
        },
        {
            "category": "commitment",
            "type": None,
            "id": 2,
            "first_timestamp": T0 + HOUR,
            "last_timestamp": T0 + HOUR,
            "count": 1,
            "first_creation_timestamp": T0,
            "last_creation_timestamp": T0,
        },
    ]
    assert ok(admin.get(f"/ext/v1/{site + 3_000_000}/inventory"))["results"] == []


# --- catalog -----------------------------------------------------------------------

_KINDS = {Kind.FLOAT: "float", Kind.UNSIGNED_INT: "unsigned_int", Kind.STRING: "string"}


def _attributes(attributes: tuple[Attribute, ...]) -> list[JsonObject]:
    return [{"name": a.name, "kind": _KINDS[a.kind], "unit": a.unit, "description": a.description} for a in attributes]


def test_the_catalog_lists_every_type_with_its_attributes(storecast: Storecast) -> None:
    expected = [
        *(("production", name, t) for name, t in EQUIPMENT_TYPES.items()),
        *(("forecast", name, t) for name, t in FORECAST_TYPES.items()),
        ("commitment", None, COMMITMENT),
        ("tariff", None, TARIFF),
    ]
    # Any certificate the permissions file names, even one that may read nothing.
    with storecast.client("writer-only") as writer:
        body = assert_documented(writer.get("/ext/v1/catalog"), "/ext/v1/catalog", "get", 200)
    assert body["results"] == [
        {
            "category": category,
            "type": name,
            "description": t.description,
            "attributes": _attributes(t.attributes),
            "vector_attributes": _attributes(t.vector_attributes),
        }
        for category, name, t in expected
    ]
    meter = next(item for item in body["results"] if item["type"] == "meter")
    assert meter["attributes"][0] | {"description": ""} == {"name": "p", "kind": "float", "unit": "kW", "description": ""}
    assert body["results"][-2]["vector_attributes"][0]["name"] == "quality"


# --- staircase and horizon errors ---------------------------------------------------


@pytest.mark.parametrize("horizon", ["0s", "1h", "2h", "150m", "1d"])
def test_the_staircase_takes_the_latest_vintage_created_at_least_horizon_before(
    admin: httpx.Client, forecast_site: int, horizon: str
) -> None:
    horizon_ms = {"0s": 0, "1h": HOUR, "2h": 2 * HOUR, "150m": 150 * MINUTE, "1d": 24 * HOUR}[horizon]
    response = admin.get(staircase_url(forecast_site), params={"horizon": horizon})
    assert assert_documented(response, SOLAR_STAIRCASE, "get", 200)["results"] == staircase(horizon_ms)


def test_the_staircase_keeps_the_periods_from_to(admin: httpx.Client, forecast_site: int) -> None:
    query: Query = {"horizon": "2h", "from": T0 + HOUR, "to": T0 + 4 * HOUR}
    results = ok(admin.get(staircase_url(forecast_site), params=query))["results"]
    assert results == staircase(2 * HOUR, T0 + HOUR, T0 + 4 * HOUR) and len(results) == 3


def test_a_long_staircase_comes_in_parts(admin: httpx.Client, site: int) -> None:
    periods = [{"timestamp": T0 + i * MINUTE, "p": float(i)} for i in range(MAX_RECORDS + 1)]
    ok(put(admin, f"/v1/{site}/forecast/solar", [{"creation_timestamp": T0, "id": 7, "values": periods}]), 201)
    body = assert_documented(admin.get(staircase_url(site, 7), params={"horizon": "0s"}), SOLAR_STAIRCASE, "get", 206)
    assert len(body["results"]) == MAX_RECORDS and body["next_from"] == T0 + MAX_RECORDS * MINUTE
    rest = ok(admin.get(staircase_url(site, 7), params={"horizon": "0s", "from": body["next_from"], "to": T0 + HOUR * 24}))
    assert [r["p"] for r in rest["results"]] == [float(MAX_RECORDS)]


@pytest.mark.parametrize(("period", "bucket"), [("1h", "1h"), ("30m", "2h"), ("1h", "1d")])
def test_horizon_errors_match_a_brute_force_computation(
    admin: httpx.Client, forecast_site: int, period: str, bucket: str
) -> None:
    response = admin.get(errors_url(forecast_site), params={**ERRORS_QUERY, "period": period, "horizon_bucket": bucket})
    results = assert_documented(response, SOLAR_ERRORS, "get", 200)["results"]
    length = {"30m": 30 * MINUTE, "1h": HOUR, "2h": 2 * HOUR, "1d": 24 * HOUR}
    assert_close(results, horizon_errors(length[period], length[bucket]))
    assert len(results) > 1 or bucket == "1d"


# --- permissions --------------------------------------------------------------------


def test_a_certificate_limited_to_one_site_cannot_read_another(
    storecast: Storecast, site100: httpx.Client, forecast_site: int
) -> None:
    requests: list[tuple[str, Query]] = [
        (f"/ext/v1/{forecast_site}/inventory", {}),
        (staircase_url(forecast_site), {"horizon": "0s"}),
        (errors_url(forecast_site), ERRORS_QUERY),
        (f"/ext/v1/{forecast_site}/production/meter/3", {}),
        (f"/ext/v1/{forecast_site}/forecast/solar/1", {}),
    ]
    for url, params in requests:
        assert_error(site100.get(url, params=params), 403, 1400, "site100", str(forecast_site))
    path = "/ext/v1/{site_id}/inventory"
    assert_documented(site100.get(f"/ext/v1/{forecast_site}/inventory"), path, "get", 403)
    assert_documented(site100.get(f"/ext/v1/{SITE100}/inventory"), path, "get", 200)


def test_unknown_certificates_see_nothing(storecast: Storecast, site: int) -> None:
    for name in (None, "stranger"):
        with storecast.client(name) as client:
            for url in ("/ext/v1/sites", "/ext/v1/catalog", f"/ext/v1/{site}/inventory", staircase_url(site)):
                assert_error(client.get(url, params={"horizon": "0s"} if "staircase" in url else {}), 403, 1400)
    with storecast.client("writer-only") as writer:
        assert_error(writer.get("/ext/v1/sites"), 403, 1400, "may not read any site")
        assert_error(writer.get(f"/ext/v1/{site}/inventory"), 403, 1400, "may not read")


@pytest.fixture(scope="module")
def rate_limited(tmp_path_factory: pytest.TempPathFactory, test_pki: Pki) -> Iterator[Storecast]:
    # Bursts of 3, then a request every 10 s: the test never waits for a refill.
    instance = start_storecast(tmp_path_factory.mktemp("ext-rate"), test_pki, {"STORECAST_RATE_LIMIT": "0.1,3"})
    yield instance
    stop_storecast(instance)
    assert instance.process.returncode == 0, instance.log.read_text()


def test_ext_requests_share_the_certificates_rate_limit_with_v1(rate_limited: Storecast) -> None:
    with rate_limited.client("site100") as site100, rate_limited.client("reader") as reader:
        for url in ("/ext/v1/sites", "/ext/v1/catalog", f"/ext/v1/{SITE100}/inventory"):
            ok(site100.get(url))
        # Refusals for identity come first: 403, not 429.
        assert_error(site100.get("/ext/v1/7/inventory"), 403, 1400)
        for url in ("/ext/v1/sites", f"/v1/{SITE100}/production/meter/1"):
            limited = site100.get(url)
            assert_error(limited, 429, 1500, "rate limited", "site100")
            assert int(limited.headers["retry-after"]) >= 1
        ok(reader.get("/ext/v1/sites"))


# --- v1's reads with every aggregation ------------------------------------------------

METER_READ = "/ext/v1/{site_id}/production/meter/{equipment_id}"
SOLAR_READ = "/ext/v1/{site_id}/forecast/solar/{forecast_id}"
COMMITMENT_READ = "/ext/v1/{site_id}/commitment/{commitment_id}"


@pytest.mark.parametrize(
    ("v1_path", "documented", "query"),
    [
        ("production/meter/3", METER_READ, {}),
        ("production/meter/3", METER_READ, {"from": T0 + 5 * MINUTE, "to": T0 + 3 * HOUR}),
        *(
            ("production/meter/3", METER_READ, {"from": T0 + 5 * MINUTE, "to": T0 + 3 * HOUR, "agg": agg, "period": period})
            for agg in V1_AGGREGATIONS
            for period in ("1h", "25m")
        ),
        ("forecast/solar/1", SOLAR_READ, {}),
        ("forecast/solar/1", SOLAR_READ, {"generated-after": 0, "generated_before": T0, "generate-all": "true"}),
        *(
            (
                "forecast/solar/1",
                SOLAR_READ,
                {
                    "generated-after": 0,
                    "generated-before": T0,
                    "from": T0,
                    "to": T0 + 5 * HOUR,
                    "agg": agg,
                    "period": "2h",
                    "generate_all": "true",
                },
            )
            for agg in V1_AGGREGATIONS
        ),
        ("commitment/2", COMMITMENT_READ, {"from": T0, "to": T0 + 4 * HOUR, "agg": "avg", "period": "2h"}),
    ],
)
def test_ext_reads_answer_as_v1_with_v1s_aggregations(
    admin: httpx.Client, forecast_site: int, v1_path: str, documented: str, query: Query
) -> None:
    periods = [{"timestamp": T0 + i * HOUR, "value": float(i)} for i in range(4)]
    ok(put(admin, f"/v1/{forecast_site}/commitment", [{"creation_timestamp": T0, "id": 2, "quality": 3, "values": periods}]), 201)
    v1 = ok(admin.get(f"/v1/{forecast_site}/{v1_path}", params=query))
    ext = admin.get(f"/ext/v1/{forecast_site}/{v1_path}", params=query)
    assert assert_documented(ext, documented, "get", 200) == v1
    assert v1["results"]


@pytest.mark.parametrize("agg", AGGREGATIONS)
def test_ext_reads_answer_every_aggregation_as_documented(admin: httpx.Client, forecast_site: int, agg: str) -> None:
    ok(put(admin, f"/v1/{forecast_site}/production/battery", [{"timestamp": T0 + i, "id": 5, "state": i} for i in range(9)]), 201)
    window: Query = {"from": T0, "to": T0 + 6 * HOUR, "agg": agg, "period": "1h"}
    for url, documented in [
        (f"/ext/v1/{forecast_site}/production/meter/3", METER_READ),
        (f"/ext/v1/{forecast_site}/production/battery/5", "/ext/v1/{site_id}/production/battery/{equipment_id}"),
        (f"/ext/v1/{forecast_site}/forecast/solar/1", SOLAR_READ),
    ]:
        assert assert_documented(admin.get(url, params=window), documented, "get", 200)["results"]


def test_a_long_ext_read_comes_in_parts(admin: httpx.Client, site: int) -> None:
    ok(
        put(admin, f"/v1/{site}/production/meter", [{"timestamp": T0 + i, "id": 1, "p": 1.0} for i in range(MAX_RECORDS + 1)]),
        201,
    )
    response = admin.get(f"/ext/v1/{site}/production/meter/1")
    assert assert_documented(response, METER_READ, "get", 206)["next_from"] == T0 + MAX_RECORDS


# --- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/ext/v1/",
        "/ext/v1/nothing",
        "/ext/v1/1/inventory/more",
        "/ext/v1//inventory",
        "/ext/v1/1/forecast/solar",
        "/ext/v1/1/tariff/1",
        "/ext/v1/1/commitment",
        "/ext/v1/1/forecast/solar/1/forecast",
        "/ext/v1/1/forecast/solar//staircase",
        "/ext/v1/1/production/meter/1/staircase",
        "/ext/v2/sites",
    ],
)
def test_paths_outside_the_tree_are_not_found(storecast: Storecast, path: str) -> None:
    # Before the identity: even without a certificate.
    with storecast.client(None) as anonymous:
        assert_error(anonymous.get(path), 404, 1101)
        assert_matches(anonymous.get(path), "/components/responses/NotFound")


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "PATCH"])
def test_other_methods_are_not_allowed(storecast: Storecast, method: str) -> None:
    with storecast.client(None) as anonymous:
        for path in ("/ext/v1/sites", "/ext/v1/catalog", "/ext/v1/1/inventory", staircase_url(1), "/ext/v1/1/commitment/1"):
            response = anonymous.request(method, path)
            assert_error(response, 405, 1102)
            assert response.headers["allow"] == "GET, HEAD"
            assert_matches(response, "/components/responses/MethodNotAllowed")


def test_head_answers_like_get(admin: httpx.Client) -> None:
    response = admin.head("/ext/v1/catalog")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.content == b""


@pytest.mark.parametrize(
    ("url", "query", "code", "fragment"),
    [
        ("/ext/v1/x/inventory", {}, 1104, "site_id"),
        ("/ext/v1/4294967296/inventory", {}, 1104, "site_id"),
        ("/ext/v1/sites", {"site": 1}, 1200, "'site'"),
        ("/ext/v1/catalog", {"type": "meter"}, 1200, "'type'"),
        ("/ext/v1/{site}/inventory", {"from": 1}, 1200, "'from'"),
        (staircase_url("{site}", forecast_type="toaster"), {"horizon": "0s"}, 1106, "toaster"),
        (staircase_url("{site}", "x"), {"horizon": "0s"}, 1107, "'x'"),
        (staircase_url("{site}", 2), {"horizon": "0s"}, 1107, "2"),
        (staircase_url("{site}"), {}, 1200, "horizon is required"),
        (staircase_url("{site}"), {"horizon": "0s", "agg": "avg"}, 1200, "'agg'"),
        (staircase_url("{site}"), [("horizon", "0s"), ("horizon", "1h")], 1200, "more than once"),
        (staircase_url("{site}"), {"horizon": "6x"}, 1206, "horizon"),
        (staircase_url("{site}"), {"horizon": "-1h"}, 1206, "horizon"),
        (staircase_url("{site}"), {"horizon": "1.5h"}, 1206, "horizon"),
        (staircase_url("{site}"), {"horizon": "0s", "from": "yesterday", "to": T0}, 1201, "from"),
        (staircase_url("{site}"), {"horizon": "0s", "from": T0}, 1200, "come together"),
        (errors_url("{site}"), {**ERRORS_QUERY, "equipment": "toaster"}, 1106, "toaster"),
        (errors_url("{site}"), {**ERRORS_QUERY, "equipment_id": "-1"}, 1107, "equipment_id"),
        (errors_url("{site}"), {**ERRORS_QUERY, "period": "0h"}, 1206, "period"),
        (errors_url("{site}"), {**ERRORS_QUERY, "horizon_bucket": "0s"}, 1206, "horizon_bucket"),
        (errors_url("{site}"), {**ERRORS_QUERY, "attribute": "zz"}, 1200, "attribute"),
        (errors_url("{site}"), {**ERRORS_QUERY, "forecast_attribute": "quality"}, 1200, "forecast_attribute"),
        (errors_url("{site}"), {k: v for k, v in ERRORS_QUERY.items() if k != "attribute"}, 1200, "attribute is required"),
        (errors_url("{site}"), {k: v for k, v in ERRORS_QUERY.items() if k != "period"}, 1200, "period is required"),
        (errors_url("{site}"), {**ERRORS_QUERY, "horizon": "1h"}, 1200, "'horizon'"),
        (errors_url("{site}", 2), ERRORS_QUERY, 1107, "2"),
        (errors_url("{site}"), {**ERRORS_QUERY, "equipment_id": 4}, 1107, "4"),
        ("/ext/v1/{site}/production/toaster/3", {}, 1106, "toaster"),
        ("/ext/v1/{site}/production/meter/x", {}, 1107, "'x'"),
        ("/ext/v1/{site}/production/meter/9", {}, 1107, "9"),
        ("/ext/v1/{site}/commitment/9", {}, 1107, "9"),
        ("/ext/v1/{site}/production/meter/3", {"from": 0, "to": T0, "agg": "median", "period": "1h"}, 1205, "'median'"),
        ("/ext/v1/{site}/production/meter/3", {"from": 0, "to": T0, "agg": "avg", "period": "1w"}, 1206, "period"),
        ("/ext/v1/{site}/production/meter/3", {"agg": "avg", "period": "1h"}, 1200, "agg needs from and to"),
        ("/ext/v1/{site}/production/meter/3", {"generated-after": 0, "generated-before": T0}, 1200, "'generated-after'"),
        ("/ext/v1/{site}/production/meter/3", {"horizon": "1h"}, 1200, "'horizon'"),
        ("/ext/v1/{site}/forecast/solar/1", {"generated_after": T0}, 1200, "come together"),
        ("/ext/v1/{site}/forecast/solar/1", {"from": "yesterday", "to": T0}, 1201, "from"),
    ],
)
def test_bad_requests_get_the_v1_codes(
    admin: httpx.Client, forecast_site: int, url: str, query: Query, code: int, fragment: str
) -> None:
    url = url.replace("{site}", str(forecast_site))
    response = admin.get(url, params=query)
    assert_error(response, 400, code, fragment)
    # Every path but an unknown forecast type's is in the document, which lists the answer's code.
    if "toaster" not in url:
        assert_documented(response, documented_path(url), "get", 400)


def documented_path(url: str) -> str:
    """The document's path a request's path is of."""
    paths: list[str] = list(DOCUMENT["paths"])
    return next(path for path in paths if re.fullmatch(re.sub(r"\{[a-z_]+\}", "[^/]+", path), url))


# --- the document and the metrics ------------------------------------------------------


def test_the_document_describes_every_ext_path() -> None:
    expected = {"/ext/v1/sites", "/ext/v1/catalog", "/ext/v1/{site_id}/inventory"}
    for name in FORECAST_TYPES:
        expected |= {f"/ext/v1/{{site_id}}/forecast/{name}/{{forecast_id}}/{what}" for what in ("staircase", "horizon-errors")}
        expected.add(f"/ext/v1/{{site_id}}/forecast/{name}/{{forecast_id}}")
    # v1's aggregated reads, with every aggregation.
    expected |= {f"/ext/v1/{{site_id}}/production/{name}/{{equipment_id}}" for name in EQUIPMENT_TYPES}
    expected.add("/ext/v1/{site_id}/commitment/{commitment_id}")
    assert {path for path in DOCUMENT["paths"] if path.startswith("/ext/v1/")} == expected
    for path in expected:
        assert list(DOCUMENT["paths"][path]) == ["get"]
        assert DOCUMENT["paths"][path]["get"]["tags"] == ["ext"]


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/ext/v1/sites", "/ext/v1/sites"),
        ("/ext/v1/catalog", "/ext/v1/catalog"),
        ("/ext/v1/100/inventory", "/ext/v1/{site_id}/inventory"),
        ("/ext/v1/x/inventory", "/ext/v1/{site_id}/inventory"),
        ("/ext/v1/7/forecast/solar/3/staircase", "/ext/v1/{site_id}/forecast/{type}/{id}/staircase"),
        ("/ext/v1/7/forecast/toaster/3/horizon-errors", "/ext/v1/{site_id}/forecast/{type}/{id}/horizon-errors"),
        ("/ext/v1/7/inventory/8", None),
        ("/ext/v1/", None),
    ],
)
def test_metrics_count_ext_requests_by_route_template(path: str, route: str | None) -> None:
    matched = ext_routing.match(path.encode())
    assert (None if matched is None else matched.route) == route
