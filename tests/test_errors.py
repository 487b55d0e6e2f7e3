"""Every error of docs/api/v1.md §3, §5 and §6 that the production category can produce."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import MAX_BODY_BYTES, Storecast, assert_error, ok, put
from tests.helpers import T0, raw_put


@pytest.fixture
def stored(admin: httpx.Client, site: int) -> str:
    """A site with meter 1 stored; returns its GET path."""
    ok(put(admin, f"/v1/{site}/production/meter", [{"timestamp": T0, "id": 1, "p": 1.0}]), 201)
    return f"/v1/{site}/production/meter/1"


# --- 1. endpoints no pattern can match: 404 / 1101 -------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/foo",
        "/v1",
        "/v1/",
        "/v2/100/production/meter/1",
        "/v1/100",
        "/v1/100/production",
        "/v1/100/production/meter/1/2",
        "/v1/100/production/meter/1/",
        "/v1/100/tariff/1/2",
        "/v1/100/commitment/1/2",
        "/v1/100/forecast/solar/1/2",
        "/v1//production/meter/1",
        "/v1/100//meter/1",
        "/v1/100/a/b/c/d",
        "/V1/100/production/meter/1",
    ],
)
def test_unmatchable_paths_are_404(admin: httpx.Client, path: str) -> None:
    assert_error(admin.get(path), 404, 1101)
    assert_error(admin.put(path, json={"values": []}), 404, 1101)


@pytest.mark.parametrize(
    ("path", "http_status", "code"),
    [
        ("/v1%0A/100/production/meter/1", 404, 1101),
        ("/v1/1%0A/production/meter/1", 400, 1104),
        ("/v1/100/production%0A/meter/1", 400, 1105),
        ("/v1/100/production/meter/1%0A", 400, 1107),
        ("/openapi.json%0A", 404, 1101),
    ],
)
def test_a_newline_in_the_path_is_answered_in_json(admin: httpx.Client, path: str, http_status: int, code: int) -> None:
    # Found by the contract fuzzer: Starlette's route patterns stop at a newline.
    assert_error(admin.get(path), http_status, code)


# --- 2. methods: 405 / 1102 -------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO"])
def test_methods_other_than_get_and_put_are_405(admin: httpx.Client, method: str) -> None:
    # RFC 9110: a 405 names the methods the resource does take.
    get_path = admin.request(method, "/v1/100/production/meter/1")
    assert_error(get_path, 405, 1102, method)
    assert get_path.headers["allow"] == "GET, HEAD"
    put_path = admin.request(method, "/v1/100/production/meter")
    assert_error(put_path, 405, 1102)
    assert put_path.headers["allow"] == "PUT"
    # Whether the HTTP parser knows the method or not, the path is checked first.
    assert_error(admin.request(method, "/v1/100/production/meter/1/2"), 404, 1101)
    unknown_category = admin.request(method, "/v1/100/nope/1")
    assert_error(unknown_category, 405, 1102)
    assert unknown_category.headers["allow"] == "GET, HEAD, PUT"


def test_get_on_a_put_path_and_put_on_a_get_path_are_405(admin: httpx.Client) -> None:
    get = admin.get("/v1/100/production/meter")
    assert_error(get, 405, 1102)
    assert get.headers["allow"] == "PUT"
    put_on_get_path = put(admin, "/v1/100/production/meter/1", [{"timestamp": T0, "id": 1}])
    assert_error(put_on_get_path, 405, 1102)
    assert put_on_get_path.headers["allow"] == "GET, HEAD"


def test_method_is_checked_before_site_and_identity(storecast: Storecast) -> None:
    with storecast.client(None) as anonymous:
        assert_error(anonymous.delete("/v1/not-a-site/production/meter/1"), 405, 1102)


# --- 3. site_id: 400 / 1104 -------------------------------------------------


@pytest.mark.parametrize(
    "site_id",
    ["abc", "-1", "1.5", "4294967296", "99999999999999999999", "%2F", "%2E%2E", "１００", "١٠٠", "+1", "0x10", "1e3", "%00"],
)
def test_bad_site_ids_are_1104(admin: httpx.Client, site_id: str) -> None:
    assert_error(admin.get(f"/v1/{site_id}/production/meter/1"), 400, 1104)


def test_site_id_is_checked_before_identity(storecast: Storecast) -> None:
    with storecast.client(None) as anonymous:
        assert_error(anonymous.get("/v1/abc/production/meter/1"), 400, 1104)


def test_largest_site_id_is_valid(admin: httpx.Client) -> None:
    ok(put(admin, "/v1/4294967295/production/metric", [{"timestamp": T0, "id": 4294967295, "value": 1.0}]), 201)
    assert ok(admin.get("/v1/4294967295/production/metric/4294967295"))["results"][0]["id"] == 4294967295


# --- 5. category, type, id: 1105 / 1106 / 1107 -------------------------------


def test_unknown_category_is_1105(admin: httpx.Client) -> None:
    assert_error(admin.get("/v1/100/equipment/meter/1"), 400, 1105, "equipment")
    assert_error(admin.get("/v1/100/foo/1"), 400, 1105)
    assert_error(put(admin, "/v1/100/foo", [{"timestamp": T0, "id": 1}]), 400, 1105)


def test_unknown_equipment_type_is_1106(admin: httpx.Client) -> None:
    assert_error(admin.get("/v1/100/production/toaster/1"), 400, 1106, "toaster")
    assert_error(put(admin, "/v1/100/production/METER", [{"timestamp": T0, "id": 1}]), 400, 1106)


@pytest.mark.parametrize("record_id", ["abc", "-1", "1.5", "4294967296", "%2F", "１"])
def test_bad_ids_in_the_path_are_1107(admin: httpx.Client, record_id: str) -> None:
    assert_error(admin.get(f"/v1/100/production/meter/{record_id}"), 400, 1107)


def test_category_is_checked_before_type_and_type_before_id(admin: httpx.Client) -> None:
    assert_error(admin.get("/v1/100/nope/toaster/x"), 400, 1105)
    assert_error(admin.get("/v1/100/production/toaster/x"), 400, 1106)


# --- 6. query strings --------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "code", "fragment"),
    [
        ("from=1", 1200, "from and to"),
        ("to=1", 1200, "from and to"),
        ("from=2&to=1", 1200, "lower"),
        ("from=1&to=1", 1200, "lower"),
        ("from=1&from=2&to=3", 1200, "more than once"),
        ("foo=1", 1200, "foo"),
        ("generated-after=1&generated-before=2", 1200, "generated-after"),
        ("generate-all=true", 1200, "generate-all"),
        ("agg=avg", 1200, "agg"),
        ("agg=avg&period=1m", 1200, "agg"),
        ("from=1&to=2&agg=avg", 1200, "period"),
        ("from=1&to=2&period=1m", 1200, "agg"),
        ("period=1m", 1200, "agg"),
        ("from=abc&to=1", 1201, "from"),
        ("from=-1&to=1", 1201, "from"),
        ("from=1.0&to=2", 1201, "from"),
        ("from=&to=2", 1201, "from"),
        ("from=7258118400000&to=7258118400001", 1201, "from"),
        ("from=99999999999999999999999&to=1", 1201, "from"),
        ("from=１&to=2", 1201, "from"),
        ("from=1&to=abc", 1202, "to"),
        ("from=1&to=7258118400000", 1202, "to"),
        ("from=1&to=true", 1202, "to"),
        ("from=1&to=2&agg=sum&period=1m", 1205, "sum"),
        ("from=1&to=2&agg=AVG&period=1m", 1205, "AVG"),
        ("from=1&to=2&agg=&period=1m", 1205, ""),
        ("from=1&to=2&agg=avg&period=0m", 1206, "0m"),
        ("from=1&to=2&agg=avg&period=15", 1206, "15"),
        ("from=1&to=2&agg=avg&period=1w", 1206, "1w"),
        ("from=1&to=2&agg=avg&period=1.5h", 1206, "1.5h"),
        ("from=1&to=2&agg=avg&period=-1m", 1206, "-1m"),
        ("from=1&to=2&agg=avg&period=m", 1206, ""),
        ("from=1&to=2&agg=avg&period=1M", 1206, "1M"),
        ("from=1&to=2&agg=avg&period=9999999999d", 1206, "9999999999d"),
    ],
)
def test_bad_query_strings(admin: httpx.Client, stored: str, query: str, code: int, fragment: str) -> None:
    assert_error(admin.get(f"{stored}?{query}"), 400, code, fragment)


def test_query_string_is_checked_before_unknown_id(admin: httpx.Client, site: int) -> None:
    ok(put(admin, f"/v1/{site}/production/meter", [{"timestamp": T0, "id": 1}]), 201)
    assert_error(admin.get(f"/v1/{site}/production/meter/2?from=x&to=1"), 400, 1201)


def test_parameters_on_a_put_are_1200(admin: httpx.Client, site: int) -> None:
    response = admin.put(f"/v1/{site}/production/meter?from=1", json={"values": [{"timestamp": T0, "id": 1}]})
    assert_error(response, 400, 1200)


# --- PUT: header and payload -------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx", "json"])
def test_content_type_must_be_json(admin: httpx.Client, site: int, content_type: str | None) -> None:
    response = raw_put(admin, f"/v1/{site}/production/meter", b'{"values":[{"timestamp":1,"id":1}]}', content_type)
    assert_error(response, 400, 1103, "Content-Type")


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"]
)
def test_content_type_parameters_are_allowed(admin: httpx.Client, site: int, content_type: str) -> None:
    response = raw_put(admin, f"/v1/{site}/production/meter", b'{"values":[{"timestamp":1,"id":1}]}', content_type)
    ok(response, 201)


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"nope",
        b'{"values": [}',
        b"\xff\xfe{}",
        b'{"values":[{"timestamp":1,"id":1}]} trailing',
        b'{"values":[{"timestamp":1,"id":1,"p":NaN}]}',
        b'{"values":[{"timestamp":1,"id":1,"p":Infinity}]}',
        '{"values":[{"timestamp":1,"id":1,"p":1}]}'.encode("utf-16"),
    ],
)
def test_bodies_that_are_not_utf8_json_are_1301(admin: httpx.Client, site: int, body: bytes) -> None:
    assert_error(raw_put(admin, f"/v1/{site}/production/meter", body), 400, 1301)


@pytest.mark.parametrize("body", [b"", b"   ", b"{}", b'{"values": []}', b'{"values": null}'])
def test_empty_payloads_are_1302(admin: httpx.Client, site: int, body: bytes) -> None:
    assert_error(raw_put(admin, f"/v1/{site}/production/meter", body), 400, 1302)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ([{"id": 1, "p": 1.0}], "values[0].timestamp: missing"),
        ([{"timestamp": T0, "p": 1.0}], "values[0].id: missing"),
        ([{"timestamp": T0, "id": 1}, {"timestamp": T0, "id": 1, "x": 1.0}], "values[1].x: unknown attribute"),
        ([{"timestamp": T0, "id": 1, "p": "1.0"}], "values[0].p: expected a number"),
        ([{"timestamp": T0, "id": 1, "p": True}], "values[0].p: expected a number"),
        ([{"timestamp": T0, "id": 1, "p": [1.0]}], "values[0].p: expected a number"),
        ([{"timestamp": T0, "id": 1, "p": {"v": 1}}], "values[0].p: expected a number"),
        # 1535104800000.0 is the timestamp (docs/api/v1.md §2, tests/test_numbers.py); a fraction is not.
        ([{"timestamp": T0 + 0.5, "id": 1}], "values[0].timestamp: expected a non-negative integer, got a decimal number"),
        ([{"timestamp": -1.0, "id": 1}], "values[0].timestamp: expected a non-negative integer"),
        ([{"timestamp": -1, "id": 1}], "values[0].timestamp"),
        ([{"timestamp": 7258118400000, "id": 1}], "values[0].timestamp"),
        ([{"timestamp": str(T0), "id": 1}], "values[0].timestamp"),
        ([{"timestamp": True, "id": 1}], "values[0].timestamp"),
        ([{"timestamp": None, "id": 1}], "values[0].timestamp"),
        ([{"timestamp": T0, "id": -1}], "values[0].id"),
        ([{"timestamp": T0, "id": 4294967296}], "values[0].id"),
        ([{"timestamp": T0, "id": 1.5}], "values[0].id"),
        ([{"timestamp": T0, "id": "1"}], "values[0].id"),
        ([1, 2], "values[0]"),
        (["x"], "values[0]"),
        ([None], "values[0]"),
    ],
)
def test_bad_records_are_1303_naming_the_field(admin: httpx.Client, site: int, values: list[object], fragment: str) -> None:
    assert_error(put(admin, f"/v1/{site}/production/meter", values), 400, 1303, fragment)


@pytest.mark.parametrize(
    "attribute_json",
    [
        b'"state":-1',
        b'"state":1.5',
        b'"state":4294967296',
        b'"state":"4"',
        b'"state":4.5e0',
        b'"state":-1.0',
        b'"state":4294967296.0',
        b'"soc":1e400',
        b'"soc":-1e400',
        b'"soc":' + b"9" * 400,
    ],
)
def test_unsigned_int_and_float_attribute_rules(admin: httpx.Client, site: int, attribute_json: bytes) -> None:
    body = b'{"values":[{"timestamp":%d,"id":1,%s}]}' % (T0, attribute_json)
    name = attribute_json.split(b'"')[1].decode()
    assert_error(raw_put(admin, f"/v1/{site}/production/battery", body), 400, 1303, f"values[0].{name}")


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"[{}]",
        b"1",
        b'"values"',
        b"null",
        b'{"values": {}}',
        b'{"values": 1}',
        b'{"values": [], "extra": 1}',
        b'{"values":[{"timestamp":1,"id":1}],"x":1}',
    ],
)
def test_bodies_not_shaped_like_a_values_list_are_1303(admin: httpx.Client, site: int, body: bytes) -> None:
    assert_error(raw_put(admin, f"/v1/{site}/production/meter", body), 400, 1303)


def test_explicit_nulls_are_absent_attributes(admin: httpx.Client, site: int) -> None:
    ok(put(admin, f"/v1/{site}/production/meter", [{"timestamp": T0, "id": 1, "p": None, "q": 2.0}]), 201)
    (result,) = ok(admin.get(f"/v1/{site}/production/meter/1"))["results"]
    assert result == {"timestamp": T0, "id": 1, "p": None, "q": 2.0, "f": None, "u": None, "i": None}


def test_bodies_over_the_limit_are_413(admin: httpx.Client, site: int) -> None:
    filler = b" " * (MAX_BODY_BYTES + 1 - len(b'{"values":[{"timestamp":1,"id":1}]}'))
    body = b'{"values":[{"timestamp":1,"id":1}]}' + filler
    assert_error(raw_put(admin, f"/v1/{site}/production/meter", body), 413, 1303, str(MAX_BODY_BYTES))
    # Chunked, with no Content-Length to refuse it early.
    chunks = iter([body[: len(body) // 2], body[len(body) // 2 :]])
    response = raw_put(admin, f"/v1/{site}/production/meter", chunks)
    assert_error(response, 413, 1303)
    # Exactly at the limit is fine.
    at_limit = b'{"values":[{"timestamp":1,"id":1}]}' + b" " * (MAX_BODY_BYTES - len(b'{"values":[{"timestamp":1,"id":1}]}'))
    ok(raw_put(admin, f"/v1/{site}/production/meter", at_limit), 201)


def test_no_error_leaks_internals(admin: httpx.Client, site: int) -> None:
    for response in [
        raw_put(admin, f"/v1/{site}/production/meter", b"{"),
        admin.get(f"/v1/{site}/production/meter/1?from=1&to=2"),
        admin.get("/v1/100/production/meter/1?from=1&to=2&agg=avg&period=1d"),
    ]:
        text = response.text.lower()
        for leak in ("traceback", "select ", "clickhouse", "exception", "127.0.0.1", "grpc"):
            assert leak not in text, response.text
