"""The OpenAPI document: valid OpenAPI 3.1, generated from the whole catalog, and true:
every path it lists answers a real request through the gateway as it documents."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gateway import ext_routing
from gateway.admission import Admission
from gateway.app import V1Api
from gateway.config import GatewaySettings
from gateway.gatekeeper import Gatekeeper
from gateway.openapi import EXAMPLE_TIMESTAMP, build_document
from gateway.permissions import Permissions
from storecast.aggregations import AGGREGATIONS, V1_AGGREGATIONS
from storecast.catalog import COMMITMENT, EQUIPMENT_TYPES, FORECAST_TYPES, TARIFF, Attribute, Kind
from tests.conftest import MAX_BODY_BYTES, MAX_RECORDS, Storecast
from tests.helpers import JsonObject, raw_put

JSON = "application/json"
DOCUMENT = build_document()
_URI = "urn:storecast:openapi"
_REGISTRY = Registry().with_resource(_URI, Resource.from_contents(DOCUMENT, default_specification=DRAFT202012))

# The categories the running gateway has handlers for; the others' paths are
# documented ahead of their handlers, and their tests turn green when they land.
_SETTINGS, _ADMISSION = GatewaySettings.from_env(), Admission.from_env()
_HANDLED = set(V1Api(_SETTINGS, Gatekeeper(_SETTINGS, Permissions({}), _ADMISSION), _ADMISSION)._handlers)
_PENDING = pytest.mark.xfail(strict=False, reason="vector service lands with issue 3")


def _pairs() -> list[tuple[str, str]]:
    """(PUT path, GET path) for every PUT path of the document."""
    put_paths = [path for path, item in DOCUMENT["paths"].items() if "put" in item]
    return [(put, next(p for p in DOCUMENT["paths"] if p.rsplit("/", 1)[0] == put)) for put in put_paths]


PAIRS = _pairs()


def _pending(put_path: str) -> tuple[pytest.MarkDecorator, ...]:
    category = put_path.split("/")[3]
    return () if {(category, "PUT"), (category, "GET")} <= _HANDLED else (_PENDING,)


def _schema_at(pointer: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{_URI}#{quote(pointer, safe='/~')}"}, registry=_REGISTRY)


def _pointer(*segments: str) -> str:
    return "".join("/" + s.replace("~", "~0").replace("/", "~1") for s in segments)


def assert_documented(response: httpx.Response, path: str, method: str, http_status: int) -> JsonObject:
    """The response has the expected status, which the operation documents, and its documented body and header."""
    assert response.status_code == http_status, response.text
    responses = DOCUMENT["paths"][path][method]["responses"]
    status = str(http_status)
    assert status in responses, f"{method.upper()} {path} answered {status}, which it does not document"
    documented = responses[status]
    pointer = documented["$ref"][1:] if "$ref" in documented else _pointer("paths", path, method, "responses", status)
    return assert_matches(response, pointer)


def assert_matches(response: httpx.Response, response_pointer: str) -> JsonObject:
    """The response has the body and the X-Request-Id of the response object at `response_pointer`."""
    assert response.headers["content-type"] == JSON
    header = DOCUMENT["components"]["headers"]["X-Request-Id"]["schema"]
    assert re.fullmatch(header["pattern"], response.headers["x-request-id"])
    body: JsonObject = response.json()
    _schema_at(response_pointer + _pointer("content", JSON, "schema")).validate(body)
    return body


def put_example(put_path: str) -> JsonObject:
    example: JsonObject = DOCUMENT["paths"][put_path]["put"]["requestBody"]["content"][JSON]["example"]
    return example


def get_url(get_path: str, site: int, item_id: int) -> str:
    """The GET path with its parameters, site_id and the id at the end."""
    return f"{get_path.rsplit('/', 1)[0].format(site_id=site)}/{item_id}"


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(DOCUMENT, cls=OpenAPIV31SpecValidator)
    assert DOCUMENT["openapi"].startswith("3.1.")


def test_every_type_of_the_catalog_has_its_paths() -> None:
    expected = {"/v1/{site_id}/commitment", "/v1/{site_id}/commitment/{commitment_id}"}
    expected |= {"/v1/{site_id}/tariff", "/v1/{site_id}/tariff/{tariff_id}"}
    for name in EQUIPMENT_TYPES:
        expected |= {f"/v1/{{site_id}}/production/{name}", f"/v1/{{site_id}}/production/{name}/{{equipment_id}}"}
    for name in FORECAST_TYPES:
        expected |= {f"/v1/{{site_id}}/forecast/{name}", f"/v1/{{site_id}}/forecast/{name}/{{forecast_id}}"}
    assert {path for path in DOCUMENT["paths"] if path.startswith("/v1/")} == expected
    assert (len(EQUIPMENT_TYPES), len(FORECAST_TYPES)) == (14, 4)
    assert len(PAIRS) == len(EQUIPMENT_TYPES) + len(FORECAST_TYPES) + 2


def _item_schema(put_path: str) -> JsonObject:
    body = DOCUMENT["paths"][put_path]["put"]["requestBody"]["content"][JSON]["schema"]
    item: JsonObject = DOCUMENT["components"]["schemas"][body["properties"]["values"]["items"]["$ref"].rsplit("/", 1)[1]]
    return item


def _period_schema(vector: JsonObject) -> JsonObject:
    schema: JsonObject = DOCUMENT["components"]["schemas"][vector["properties"]["values"]["items"]["$ref"].rsplit("/", 1)[1]]
    return schema


_TYPES = {Kind.FLOAT: "number", Kind.UNSIGNED_INT: "integer", Kind.STRING: "string"}


def _assert_attributes(
    schema: JsonObject, keys: list[str], attributes: tuple[Attribute, ...], tail: tuple[str, ...] = ()
) -> None:
    assert list(schema["properties"]) == [*keys, *(a.name for a in attributes), *tail]
    assert schema["required"] == [*keys, *tail] and schema["additionalProperties"] is False
    for attribute in attributes:
        documented = schema["properties"][attribute.name]
        assert documented["type"] == [_TYPES[attribute.kind], "null"]
        assert documented["description"].startswith(attribute.description)
        assert documented.get("x-unit", "-") == attribute.unit


@pytest.mark.parametrize("name", EQUIPMENT_TYPES)
def test_record_schemas_follow_the_catalog(name: str) -> None:
    record = _item_schema(f"/v1/{{site_id}}/production/{name}")
    _assert_attributes(record, ["timestamp", "id"], EQUIPMENT_TYPES[name].attributes)


VECTOR_TYPES = {f"forecast/{name}": t for name, t in FORECAST_TYPES.items()}
VECTOR_TYPES |= {"commitment": COMMITMENT, "tariff": TARIFF}


@pytest.mark.parametrize("name", VECTOR_TYPES)
def test_vector_schemas_follow_the_catalog(name: str) -> None:
    record_type = VECTOR_TYPES[name]
    vector = _item_schema(f"/v1/{{site_id}}/{name}")
    keys = ["id"] if record_type is TARIFF else ["creation_timestamp", "id"]
    _assert_attributes(vector, keys, record_type.vector_attributes, ("values",))
    assert vector["properties"]["values"]["minItems"] == 1
    _assert_attributes(_period_schema(vector), ["timestamp"], record_type.attributes)


@pytest.mark.parametrize("put_path", [put for put, _ in PAIRS])
def test_every_example_is_valid(put_path: str) -> None:
    body = _pointer("paths", put_path, "put", "requestBody", "content", JSON, "schema")
    _schema_at(body).validate(put_example(put_path))


def test_the_document_is_served_without_a_client_certificate(storecast: Storecast) -> None:
    with storecast.client(None) as anyone:
        response = anyone.get("/openapi.json")
        assert response.status_code == 200 and response.headers["content-type"] == JSON
        assert response.json() == DOCUMENT
        assert response.headers["x-request-id"]
        assert anyone.head("/openapi.json").status_code == 200
        # Not a v1 endpoint: other methods get what any path outside /v1 gets.
        refused = anyone.put("/openapi.json", json={})
        assert refused.status_code == 404 and refused.json()["status_code"] == 1101


@pytest.mark.parametrize(
    ("put_path", "get_path"),
    [pytest.param(put, get, id=put.split("/", 3)[3], marks=_pending(put)) for put, get in PAIRS],
)
def test_every_path_answers_as_documented(
    storecast: Storecast, admin: httpx.Client, site: int, put_path: str, get_path: str
) -> None:
    example = put_example(put_path)
    url = put_path.format(site_id=site)
    assert_documented(admin.put(url, json=example), put_path, "put", 201)
    assert_documented(admin.put(url, json={"values": []}), put_path, "put", 400)

    item_id = example["values"][0]["id"]
    body = assert_documented(admin.get(get_url(get_path, site, item_id)), get_path, "get", 200)
    assert body["results"] == example["values"]
    bad_from: dict[str, str | int] = {"from": "yesterday", "to": EXAMPLE_TIMESTAMP}
    assert_documented(admin.get(get_url(get_path, site, item_id), params=bad_from), get_path, "get", 400)
    assert_documented(admin.get(get_url(get_path, site, item_id + 1)), get_path, "get", 400)
    with storecast.client(None) as anonymous:
        assert_documented(anonymous.get(get_url(get_path, site, item_id)), get_path, "get", 403)

    query = {p["$ref"].rsplit("/", 1)[1] for p in DOCUMENT["paths"][get_path]["get"]["parameters"]}
    if "agg" in query:
        # With agg=avg, an integer attribute's mean may be a decimal.
        day: dict[str, str | int] = {
            "from": EXAMPLE_TIMESTAMP,
            "to": EXAMPLE_TIMESTAMP + 86_400_000,
            "agg": "avg",
            "period": "1d",
        }
        body = assert_documented(admin.get(get_url(get_path, site, item_id), params=day), get_path, "get", 200)
        assert body["results"]


def test_partial_responses_are_as_documented(admin: httpx.Client, site: int) -> None:
    put_path, get_path = PAIRS[0]
    (record,) = put_example(put_path)["values"]
    records = [{**record, "timestamp": EXAMPLE_TIMESTAMP + i} for i in range(MAX_RECORDS + 1)]
    assert_documented(admin.put(put_path.format(site_id=site), json={"values": records}), put_path, "put", 201)
    body = assert_documented(admin.get(get_url(get_path, site, record["id"])), get_path, "get", 206)
    assert body["next_from"] == EXAMPLE_TIMESTAMP + MAX_RECORDS


def test_errors_are_as_documented(storecast: Storecast, admin: httpx.Client, site: int) -> None:
    put_path, get_path = PAIRS[0]
    url = put_path.format(site_id=site)
    example = put_example(put_path)
    for response in [
        raw_put(admin, url, b'{"values": ['),
        raw_put(admin, url, b"{}", "text/plain"),
        admin.put(url, json=example, params={"from": 1}),
        admin.put(put_path.format(site_id="x"), json=example),
    ]:
        assert_documented(response, put_path, "put", 400)
    oversized = raw_put(admin, url, b" " * (MAX_BODY_BYTES + 1))
    assert_documented(oversized, put_path, "put", 413)
    brotli = admin.put(url, json=example, headers={"content-encoding": "br"})
    assert_documented(brotli, put_path, "put", 415)
    assert brotli.headers["accept-encoding"] == DOCUMENT["components"]["headers"]["Accept-Encoding"]["schema"]["const"]
    assert_documented(admin.put(put_path.replace("{site_id}", ""), json=example), put_path, "put", 404)
    with storecast.client("reader") as reader:
        assert_documented(reader.put(url, json=example), put_path, "put", 403)
    # 405 belongs to no operation: it answers the methods a path does not have.
    for response in [admin.put(get_url(get_path, site, 1), json=example), admin.delete(url)]:
        assert response.status_code == 405
        assert_matches(response, "/components/responses/MethodNotAllowed")


def _aggregations_of(path: str) -> list[str] | None:
    """The `agg` values a GET path's document lists, None if it takes no `agg`."""
    for reference in DOCUMENT["paths"][path]["get"]["parameters"]:
        parameter = DOCUMENT["components"]["parameters"][reference["$ref"].rsplit("/", 1)[1]]
        if parameter["name"] == "agg":
            names: list[str] = parameter["schema"]["enum"]
            return names
    return None


def test_v1_paths_list_v1s_aggregations_and_ext_paths_every_one() -> None:
    v1 = {
        path: _aggregations_of(path) for path in DOCUMENT["paths"] if path.startswith("/v1/") and "get" in DOCUMENT["paths"][path]
    }
    assert {path for path, names in v1.items() if names is None} == {"/v1/{site_id}/tariff/{tariff_id}"}
    assert all(names == list(V1_AGGREGATIONS) for names in v1.values() if names is not None)
    ext = {path: _aggregations_of(path) for path in DOCUMENT["paths"] if path.startswith("/ext/v1/")}
    aggregated = {path for path, names in ext.items() if names is not None}
    assert aggregated == {f"/ext{path}" for path, names in v1.items() if names is not None}
    assert all(ext[path] == list(AGGREGATIONS) for path in aggregated)


def test_influx_paths_answer_as_documented(storecast: Storecast, admin: httpx.Client, site: int) -> None:
    assert set(ext_routing.INFLUX_ROUTES) == {path for path in DOCUMENT["paths"] if path.startswith("/ext/influx/")}
    for path, name in ((ext_routing.INFLUX_WRITE_V1, "db"), (ext_routing.INFLUX_WRITE_V2, "bucket")):
        responses = DOCUMENT["paths"][path]["post"]["responses"]
        line = b"metric,id=1 value=1 1535104800000"
        assert admin.post(path, params={name: site, "precision": "ms"}, content=line).status_code == 204
        assert "204" in responses
        with storecast.client(None) as anonymous, storecast.client("reader") as reader:
            refusals = {
                400: admin.post(path, params={name: site}, content=b"metric,id=1 nope=1"),
                401: anonymous.post(path, params={name: site}, content=line),
                403: reader.post(path, params={name: site}, content=line),
                404: admin.post(path, params={name: "telegraf"}, content=line),
                413: admin.post(path, params={name: site}, content=b"#" * (MAX_BODY_BYTES + 1)),
                415: admin.post(path, params={name: site}, content=line, headers={"content-encoding": "br"}),
            }
        for status, response in refusals.items():
            assert response.status_code == status, response.text
            assert response.headers["content-type"] == JSON
            _schema_at(_pointer("paths", path, "post", "responses", str(status), "content", JSON, "schema")).validate(
                response.json()
            )
    with storecast.client(None) as anonymous:
        assert anonymous.get(ext_routing.INFLUX_PING).status_code == 204
        assert anonymous.get(ext_routing.INFLUX_HEALTH).status_code == 200


def test_prom_paths_are_documented_and_served(storecast: Storecast, admin: httpx.Client) -> None:
    assert set(ext_routing.PROM_ROUTES) == {path for path in DOCUMENT["paths"] if path.startswith("/ext/prom/")}
    for path, operations in DOCUMENT["paths"].items():
        if not path.startswith("/ext/prom/"):
            continue
        concrete = path.replace("{name}", "id")
        for method in operations:
            response = admin.request(
                method.upper(),
                concrete,
                params={"query": "1", "match[]": "storecast_meter_p", "start": "0", "end": "60", "step": "15"},
            )
            assert response.status_code == 200 and response.json()["status"] == "success", (method, path, response.text)
