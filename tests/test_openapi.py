"""The OpenAPI document: valid OpenAPI 3.1, generated from the whole catalog."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gateway.openapi import build_document
from storecast.catalog import COMMITMENT, EQUIPMENT_TYPES, FORECAST_TYPES, TARIFF, Attribute, Kind

JSON = "application/json"
DOCUMENT = build_document()
_URI = "urn:storecast:openapi"
_REGISTRY = Registry().with_resource(_URI, Resource.from_contents(DOCUMENT, default_specification=DRAFT202012))


def _pairs() -> list[tuple[str, str]]:
    """(PUT path, GET path) for every PUT path of the document."""
    put_paths = [path for path, item in DOCUMENT["paths"].items() if "put" in item]
    return [(put, next(p for p in DOCUMENT["paths"] if p.rsplit("/", 1)[0] == put)) for put in put_paths]


PAIRS = _pairs()


def _schema_at(pointer: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{_URI}#{quote(pointer, safe='/~')}"}, registry=_REGISTRY)


def _pointer(*segments: str) -> str:
    return "".join("/" + s.replace("~", "~0").replace("/", "~1") for s in segments)


def put_example(put_path: str) -> dict:
    return DOCUMENT["paths"][put_path]["put"]["requestBody"]["content"][JSON]["example"]


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
    assert set(DOCUMENT["paths"]) == expected
    assert (len(EQUIPMENT_TYPES), len(FORECAST_TYPES)) == (14, 4)
    assert len(PAIRS) == len(EQUIPMENT_TYPES) + len(FORECAST_TYPES) + 2


def _item_schema(put_path: str) -> dict:
    body = DOCUMENT["paths"][put_path]["put"]["requestBody"]["content"][JSON]["schema"]
    return DOCUMENT["components"]["schemas"][body["properties"]["values"]["items"]["$ref"].rsplit("/", 1)[1]]


def _period_schema(vector: dict) -> dict:
    return DOCUMENT["components"]["schemas"][vector["properties"]["values"]["items"]["$ref"].rsplit("/", 1)[1]]


_TYPES = {Kind.FLOAT: "number", Kind.UNSIGNED_INT: "integer", Kind.STRING: "string"}


def _assert_attributes(
    schema: dict, keys: list[str], attributes: tuple[Attribute, ...], tail: tuple[str, ...] = ()
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
