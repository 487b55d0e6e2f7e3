"""The OpenAPI 3.1 document of the v1 API, generated from the catalog and the status table.

Every equipment and forecast type gets paths of its own
(PUT /v1/{site_id}/production/meter-3p, GET .../meter-3p/{equipment_id}),
made in a loop, rather than one path with an enum parameter: each operation
then has the exact schema of its type's records, which is what generated
clients and fuzzers need. Nothing here names a type, an attribute or an error
message; they all come from catalog.proto and status.proto, so the document
follows them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from gateway import codings, ext_routing, routing
from gateway.influx.mapping import PRECISIONS
from storecast.aggregations import AGGREGATIONS, V1_AGGREGATIONS, Aggregation, of_period, spelled
from storecast.catalog import (
    COMMITMENT,
    EQUIPMENT_TYPES,
    FORECAST_TYPES,
    TARIFF,
    TIMESTAMP_LIMIT_MS,
    UINT32_MAX,
    Attribute,
    Kind,
    RecordType,
)
from storecast.query_parameters import DURATION_MAX_DIGITS, PARAMETERS, Parameter, ValueType, taken_by
from storecast.status import STATUS, ApiStatus

Schema = dict[str, Any]

JSON = "application/json"
# The time of the reference's own examples.
EXAMPLE_TIMESTAMP = 1_535_104_800_000
_EXAMPLE_PERIOD_MS = 30 * 60 * 1000
_EXAMPLE_NUMBERS = {Kind.FLOAT: 1.5, Kind.UNSIGNED_INT: 1}


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    # The GET path's last parameter, named as in the reference.
    id_parameter: str
    # What a stored item is keyed by besides its attributes: a production
    # record's timestamp and id, a vector's creation time and id.
    key: tuple[str, ...]
    vector: bool
    # What a PUT does to what is stored, and what a GET returns (docs/api/v1.md §5, §7).
    writing: str
    reading: str

    @property
    def query(self) -> tuple[Parameter, ...]:
        """The GET's query parameters."""
        return taken_by(self.name)

    @property
    def aggregated(self) -> bool:
        return any(p.value is ValueType.AGGREGATION for p in self.query)


_VECTOR_WRITING = (
    "A vector replaces the whole vector stored with the same creation_timestamp and id; no period of the old one survives."
)
_VECTOR_READING = (
    "The most recent vector (greatest creation_timestamp); with generated-after and generated-before, the most recent"
    " created in [generated-after, generated-before[, or with generate-all=true all of those, ascending. `from` and"
    " `to` then keep the periods in [from, to[."
)
PRODUCTION = Category(
    "production",
    "equipment_id",
    ("timestamp", "id"),
    False,
    "A record replaces the one stored with the same timestamp and id; within a request the last occurrence wins.",
    "The equipment's records in [from, to[ (all without them), ascending by timestamp, each with every attribute of"
    " its type (null when never given).",
)
FORECAST = Category(
    "forecast",
    "forecast_id",
    ("creation_timestamp", "id"),
    True,
    _VECTOR_WRITING,
    _VECTOR_READING,
)
COMMITMENTS = Category("commitment", "commitment_id", ("creation_timestamp", "id"), True, _VECTOR_WRITING, _VECTOR_READING)
TARIFFS = Category(
    "tariff",
    "tariff_id",
    ("id",),
    True,
    "Each period is added to the tariff, or replaces its period at the same timestamp; the tariff's other periods"
    " stay as they were.",
    "The periods in force during [from, to[: the last one starting at or before `from`, and every one starting in"
    " ]from, to[; without `from` and `to`, every period. Ascending.",
)


@dataclass(frozen=True, slots=True)
class Resource:
    """A PUT path and its GET path: one type of a typed category, or an untyped category."""

    category: Category
    record_type: RecordType
    typed: bool

    @property
    def put_path(self) -> str:
        typed = f"/{self.record_type.name}" if self.typed else ""
        return f"/v1/{{site_id}}/{self.category.name}{typed}"

    @property
    def get_path(self) -> str:
        return f"{self.put_path}/{{{self.category.id_parameter}}}"

    @property
    def title(self) -> str:
        """The components' name prefix and the operations' suffix, e.g. ProductionMeter3p."""
        words = [self.category.name, *(self.record_type.name.split("-") if self.typed else ())]
        return "".join(word[:1].upper() + word[1:] for word in words)

    @property
    def label(self) -> str:
        return f"{self.record_type.name} {self.category.name}" if self.typed else self.category.name


def resources() -> list[Resource]:
    return [
        *(Resource(PRODUCTION, t, True) for t in EQUIPMENT_TYPES.values()),
        *(Resource(FORECAST, t, True) for t in FORECAST_TYPES.values()),
        Resource(COMMITMENTS, COMMITMENT, False),
        Resource(TARIFFS, TARIFF, False),
    ]


def _ref(kind: str, name: str) -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


# ---- record schemas ---------------------------------------------------------

_KEY_DESCRIPTIONS = {
    "timestamp": "record UTC timestamp",
    "creation_timestamp": "vector creation time (UTC timestamp)",
    "period": "period start (UTC timestamp); the period lasts until the next one's",
}


def _key_field(name: str, resource: Resource, *, period: bool = False) -> Schema:
    if name == "id":
        return {**_ref("schemas", "Uint32"), "description": f"{resource.record_type.name} id"}
    return {**_ref("schemas", "Timestamp"), "description": _KEY_DESCRIPTIONS["period" if period else name]}


def _attribute(attribute: Attribute, *, request: bool, aggregations: Collection[Aggregation] = ()) -> Schema:
    """An attribute's schema, in a request, or in a response as stored or aggregated by any of
    `aggregations`; `null` stands for absent both ways (the services take it on a PUT)."""
    unit = "" if attribute.unit == "-" else f" ({attribute.unit})"
    schema: Schema = {"description": attribute.description + unit}
    if attribute.unit != "-":
        schema["x-unit"] = attribute.unit
    if attribute.kind is Kind.FLOAT:
        schema["type"] = ["number", "null"]
        if request:
            # JSON has no NaN or Infinity, but 1e400 parses as one: the services refuse it.
            schema |= {"minimum": -sys.float_info.max, "maximum": sys.float_info.max}
    elif attribute.kind is Kind.UNSIGNED_INT:
        decimals = [a for a in aggregations if a.kind(attribute) is Kind.FLOAT]
        schema["type"] = ["number", "null"] if decimals else ["integer", "null"]
        schema["minimum"] = 0
        if all(a.result.bounded for a in aggregations):
            schema["maximum"] = UINT32_MAX
        if decimals:
            by = " or ".join(f"with agg={a.name} {a.description}" for a in decimals)
            schema["description"] += f"; an integer, or {by}, a decimal"
        else:
            schema["format"] = "int64"
    else:
        schema |= {"type": ["string", "null"], "maxLength": attribute.max_length}
    return schema


def _object(properties: dict[str, Schema], required: Iterable[str], description: str) -> Schema:
    # Closed both ways: the services refuse unknown attributes, and a response
    # has exactly the attributes of the document served with it.
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


def _attributes(
    attributes: Iterable[Attribute], *, request: bool, aggregations: Collection[Aggregation] = (), periods: bool = False
) -> dict[str, Schema]:
    """The attributes' schemas; a vector's `periods` take their grades' minimum whatever is asked."""
    return {
        a.name: _attribute(a, request=request, aggregations=[of_period(g, a) if periods else g for g in aggregations])
        for a in attributes
    }


def _item_schemas(
    resource: Resource, *, request: bool, aggregations: Mapping[str, Aggregation] = V1_AGGREGATIONS, suffix: str = "Result"
) -> dict[str, Schema]:
    """The record schema (production) or the vector and period schemas, by component name: of a
    request, or of a response that may be aggregated by any of `aggregations` (named with `suffix`)."""
    record_type, category = resource.record_type, resource.category
    suffix = "" if request else suffix
    description = f"{resource.label}: {record_type.description}" if resource.typed else record_type.description
    # A request needs only the keys; a response carries every attribute, null when absent.
    optional = "; every attribute but the keys is optional, and null is the same as absent" if request else ""
    given = list(aggregations.values()) if not request and category.aggregated else []
    attributes = _attributes(record_type.attributes, request=request, aggregations=given, periods=category.vector)
    if not category.vector:
        record = {k: _key_field(k, resource) for k in category.key} | attributes
        required = category.key if request else record
        return {f"{resource.title}Record{suffix}": _object(record, required, description + optional)}
    period_name = f"{resource.title}Period{suffix}"
    period = {"timestamp": _key_field("timestamp", resource, period=True)} | attributes
    periods: Schema = {"type": "array", "items": _ref("schemas", period_name)}
    if request:
        periods |= {"minItems": 1, "description": "the periods, at distinct timestamps"}
    else:
        periods["description"] = "the periods, ascending by timestamp"
    vector = (
        {k: _key_field(k, resource) for k in category.key}
        | _attributes(record_type.vector_attributes, request=request)
        | {"values": periods}
    )
    if record_type.vector_attributes:
        description += optional
    vector_required = (*category.key, "values") if request else vector
    period_required = ("timestamp",) if request else period
    return {
        f"{resource.title}Vector{suffix}": _object(vector, vector_required, description),
        period_name: _object(period, period_required, f"a period of a {resource.label} vector{optional}"),
    }


def example_item(resource: Resource) -> dict[str, Any]:
    """A valid record or vector of the resource, made from its attributes."""

    def values(attributes: Iterable[Attribute]) -> dict[str, Any]:
        return {a.name: a.name if a.kind is Kind.STRING else _EXAMPLE_NUMBERS[a.kind] for a in attributes}

    category, record_type = resource.category, resource.record_type
    keys = {k: (1 if k == "id" else EXAMPLE_TIMESTAMP) for k in category.key}
    if not category.vector:
        return keys | values(record_type.attributes)
    periods = [{"timestamp": EXAMPLE_TIMESTAMP + i * _EXAMPLE_PERIOD_MS} | values(record_type.attributes) for i in range(2)]
    return keys | values(record_type.vector_attributes) | {"values": periods}


# ---- responses --------------------------------------------------------------

_REQUEST_ID = {"X-Request-Id": _ref("headers", "X-Request-Id")}


def _envelope(code: ApiStatus.ValueType, extra: dict[str, Schema]) -> Schema:
    properties = {"status_code": {"const": code}, "status_message": {"const": STATUS[code].message}} | extra
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _json_response(description: str, schema: Schema) -> Schema:
    return {"description": description, "headers": _REQUEST_ID, "content": {JSON: {"schema": schema}}}


def _with_headers(response: Schema, headers: dict[str, Schema]) -> Schema:
    return {**response, "headers": response["headers"] | headers}


def _literal(text: str) -> str:
    """`text` as an ECMA-262 pattern (re.escape's escapes are not all valid there)."""
    return re.sub(r"[\\^$.*+?()[\]{}|/]", r"\\\g<0>", text)


def _error_response(codes: Iterable[ApiStatus.ValueType], when: str) -> Schema:
    """The error envelope carrying one of `codes`, each with its message's prefix."""
    codes = sorted(codes)
    lines = "\n".join(f"- `{c}` {STATUS[c].message}" for c in codes)
    # The message is the code's name, then ": " and the details (docs/api/v1.md §1).
    variants = [
        {
            "properties": {
                "status_code": {"const": c},
                "status_message": {"pattern": f"^{_literal(STATUS[c].message)}(: |$)"},
            }
        }
        for c in codes
    ]
    schema: Schema = {
        "type": "object",
        "properties": {"status_code": {"type": "integer", "enum": codes}, "status_message": {"type": "string"}},
        "required": ["status_code", "status_message"],
        "additionalProperties": False,
    }
    if len(variants) > 1:
        schema["oneOf"] = variants
    else:
        schema["properties"] = variants[0]["properties"]
    return _json_response(f"{when}. API status codes:\n{lines}", schema)


_PUT_BAD_REQUEST = (
    ApiStatus.INVALID_HEADER,
    ApiStatus.INVALID_SITE_ID,
    ApiStatus.INVALID_PARAMETERS,
    ApiStatus.PAYLOAD_ENCODING_ERROR,
    ApiStatus.PAYLOAD_EMPTY_ERROR,
    ApiStatus.PAYLOAD_CONTENT_ERROR,
)


def _get_bad_request_name(category: Category) -> str:
    return f"Get{category.name.capitalize()}BadRequest"


def _shared_responses(categories: Iterable[Category]) -> dict[str, Schema]:
    responses = {
        "Created": _json_response(
            "Stored: every item of the request, acknowledged by the store", _envelope(ApiStatus.SUCCESS, {})
        ),
        "PutBadRequest": _error_response(
            _PUT_BAD_REQUEST,
            "Bad request: a Content-Type other than application/json, a bad site_id, a query string,"
            " a coded body that does not decode, or a body that is not UTF-8 JSON, is empty, or does not match"
            " the schema; nothing is stored",
        ),
        "Forbidden": _error_response(
            [ApiStatus.PERMISSION_ERROR], "No client certificate, or its CN may not read (GET) or write (PUT) this site"
        ),
        "NotFound": _error_response([ApiStatus.INVALID_ENDPOINT], "No endpoint has this path, e.g. an empty path parameter"),
        "MethodNotAllowed": _with_headers(
            _error_response(
                [ApiStatus.INVALID_METHOD],
                "Any method but GET, HEAD (a GET without body) and PUT; GET on a PUT path, PUT on a GET path",
            ),
            {"Allow": _ref("headers", "Allow")},
        ),
        "PayloadTooLarge": _error_response(
            [ApiStatus.PAYLOAD_CONTENT_ERROR],
            "The body, as received or once decoded, is larger than the gateway's limit (STORECAST_MAX_BODY_BYTES)",
        ),
        "UnsupportedContentEncoding": _with_headers(
            _error_response(
                [ApiStatus.INVALID_HEADER],
                f"The body's Content-Encoding is not one the gateway decodes ({codings.ACCEPTED}, or none); nothing is stored",
            ),
            {"Accept-Encoding": _ref("headers", "Accept-Encoding")},
        ),
        "ServerError": _error_response(
            [ApiStatus.SERVER_ERROR], "The store or an internal service failed; the log line has the X-Request-Id"
        ),
    }
    for category in categories:
        codes = {ApiStatus.INVALID_SITE_ID, ApiStatus.INVALID_ID, ApiStatus.INVALID_PARAMETERS}
        codes |= {parameter.code for parameter in category.query}
        responses[_get_bad_request_name(category)] = _error_response(
            codes,
            f"Bad request: a bad site_id or {category.id_parameter}, an id never stored for this site,"
            " or a bad or inconsistent query parameter",
        )
    return responses


# ---- parameters -------------------------------------------------------------

_TIMESTAMP_QUERY = {"type": "integer", "format": "int64", "minimum": 0, "maximum": TIMESTAMP_LIMIT_MS - 1}
# A positive integer (at most DURATION_MAX_DIGITS digits) and a unit.
_DURATION = {"type": "string", "maxLength": DURATION_MAX_DIGITS + 1}
_PERIOD = {**_DURATION, "pattern": "^[0-9]*[1-9][0-9]*[smhd]$"}
# /ext/v1's reads name their `agg` apart: it takes every aggregation.
EXT_AGG = "ext_agg"


def _query_parameter(parameter: Parameter, aggregations: Mapping[str, Aggregation]) -> Schema:
    """A query parameter as its row declares it; `agg` takes `aggregations`."""
    description = parameter.description
    if parameter.value is ValueType.TIMESTAMP:
        schema: Schema = _TIMESTAMP_QUERY
    elif parameter.value is ValueType.DURATION:
        schema = {**_PERIOD, "examples": ["30s", "15m", "1h"]}
    elif parameter.value is ValueType.BOOLEAN:
        schema = {"type": "string", "enum": ["true", "false"]}
    else:
        schema = {"type": "string", "enum": list(aggregations)}
        description += ": " + ", ".join(f"`{a.name}` {a.description}" for a in aggregations.values())
    return {"name": parameter.name, "in": "query", "schema": schema, "description": description}


def _parameters(categories: Iterable[Category]) -> dict[str, Schema]:
    uint32 = _ref("schemas", "Uint32")
    paths = {"site_id": "site ID"} | {c.id_parameter: f"{c.name} ID" for c in categories}
    parameters = {
        name: {"name": name, "in": "path", "required": True, "schema": uint32, "description": description}
        for name, description in paths.items()
    }
    for parameter in PARAMETERS:
        parameters[parameter.name] = _query_parameter(parameter, V1_AGGREGATIONS)
        if parameter.value is ValueType.AGGREGATION:
            parameters[EXT_AGG] = _query_parameter(parameter, AGGREGATIONS)
    return parameters


# ---- operations -------------------------------------------------------------

_ERRORS = {"403": "Forbidden", "404": "NotFound", "500": "ServerError"}


def _by_status(responses: dict[str, Schema]) -> dict[str, Schema]:
    """An operation's own responses and the errors every operation has, in the order of their statuses."""
    return dict(sorted((responses | {status: _ref("responses", name) for status, name in _ERRORS.items()}).items()))


def _put_operation(resource: Resource) -> Schema:
    item = f"{resource.title}{'Vector' if resource.category.vector else 'Record'}"
    body = {
        "type": "object",
        "properties": {"values": {"type": "array", "minItems": 1, "items": _ref("schemas", item)}},
        "required": ["values"],
        "additionalProperties": False,
    }
    return {
        "tags": [resource.category.name],
        "operationId": f"put{resource.title}",
        "summary": f"Store {resource.label} {'vectors' if resource.category.vector else 'records'}",
        "description": (
            f"{resource.record_type.description}. Atomic: every item is stored, or none. {resource.category.writing}"
        ),
        "parameters": [_ref("parameters", "site_id")],
        "requestBody": {
            "required": True,
            "description": f"May be sent with a `Content-Encoding` ({codings.ACCEPTED}); the size limit applies to"
            " the body as received and once decoded.",
            "content": {JSON: {"schema": body, "example": {"values": [example_item(resource)]}}},
        },
        "responses": _by_status(
            {
                "201": _ref("responses", "Created"),
                "400": _ref("responses", "PutBadRequest"),
                "413": _ref("responses", "PayloadTooLarge"),
                "415": _ref("responses", "UnsupportedContentEncoding"),
            }
        ),
    }


def _get_operation(resource: Resource, *, ext: bool = False) -> Schema:
    """The GET of a resource's items: v1's, or (`ext`) /ext/v1's, whose `agg` takes every aggregation."""
    category = resource.category
    item = f"{resource.title}{'Vector' if category.vector else 'Record'}{_EXT_RESULT if ext else 'Result'}"
    results = {"results": {"type": "array", "items": _ref("schemas", item)}}
    next_from = {"next_from": {**_ref("schemas", "Timestamp"), "description": "repeat the request with from=next_from"}}
    query = [EXT_AGG if ext and p.value is ValueType.AGGREGATION else p.name for p in category.query]
    summary = f"Read {resource.label} {'vectors' if category.vector else 'records'}"
    description = f"{resource.record_type.description}. {category.reading}"
    if ext:
        summary += ", with every aggregation"
        description += f" As v1's GET of the same path after /ext; {_beyond_v1()}."
    return {
        "tags": [EXT_TAG if ext else category.name],
        "operationId": f"{'extGet' if ext else 'get'}{resource.title}",
        "summary": summary,
        "description": description,
        "parameters": [
            _ref("parameters", "site_id"),
            _ref("parameters", category.id_parameter),
            *(_ref("parameters", name) for name in query),
        ],
        "responses": _by_status(
            {
                "200": _json_response("Success", _envelope(ApiStatus.SUCCESS, results)),
                "206": _json_response(
                    "Partial response: more items matched than the gateway returns at once (STORECAST_MAX_RECORDS)",
                    _envelope(ApiStatus.PARTIAL_RESPONSE, next_from | results),
                ),
                "400": _ref("responses", _get_bad_request_name(category)),
            }
        ),
    }


# ---- /ext/v1/ ----------------------------------------------------------------

EXT_TAG = "ext"
_EXT_RESULT = "ExtResult"
_CATEGORY_NAMES = [category.name for category in (PRODUCTION, FORECAST, COMMITMENTS, TARIFFS)]
# Named apart from the v1 parameters (equipment_id is a path parameter there, period another bucket).
_EXT_QUERY: dict[str, Schema] = {
    "ext_horizon": {
        "name": "horizon",
        "in": "query",
        "required": True,
        "schema": {**_DURATION, "pattern": "^[0-9]+[smhd]$", "examples": ["0s", "6h", "1d"]},
        "description": "the least time between a vintage's creation and a period it gives: an integer (0 allowed) and"
        " s, m, h or d",
    },
    "ext_equipment": {
        "name": "equipment",
        "in": "query",
        "required": True,
        "schema": {"type": "string", "enum": list(EQUIPMENT_TYPES)},
        "description": "the equipment type whose production records are the actuals",
    },
    "ext_equipment_id": {
        "name": "equipment_id",
        "in": "query",
        "required": True,
        "schema": _ref("schemas", "Uint32"),
        "description": "the equipment id whose production records are the actuals",
    },
    "ext_attribute": {
        "name": "attribute",
        "in": "query",
        "required": True,
        "schema": {"type": "string", "examples": ["p"]},
        "description": "the equipment type's attribute the forecast is compared with",
    },
    "ext_period": {
        "name": "period",
        "in": "query",
        "required": True,
        "schema": {**_PERIOD, "examples": ["15m", "1h"]},
        "description": "the forecast's period length: the actual of a period at t is the average of the attribute"
        " over [t, t + period[",
    },
    "ext_horizon_bucket": {
        "name": "horizon_bucket",
        "in": "query",
        "required": True,
        "schema": {**_PERIOD, "examples": ["1h"]},
        "description": "horizons (t - creation_timestamp) are grouped in [k*bucket, (k+1)*bucket[",
    },
    "ext_forecast_attribute": {
        "name": "forecast_attribute",
        "in": "query",
        "schema": {"type": "string", "default": "p"},
        "description": "the forecast type's attribute compared",
    },
}


def _ext_schemas() -> dict[str, Schema]:
    timestamp, count = _ref("schemas", "Timestamp"), {"type": "integer", "format": "int64", "minimum": 0}
    nullable_type = {"type": ["string", "null"], "description": "the type's catalog name; null for commitments and tariffs"}
    attribute = _object(
        {
            "name": {"type": "string"},
            "kind": {"type": "string", "enum": [kind.name.lower() for kind in Kind]},
            "unit": {"type": "string", "description": "`-` when the attribute has none"},
            "description": {"type": "string"},
        },
        ["name", "kind", "unit", "description"],
        "an attribute as the catalog declares it",
    )
    attributes: Schema = {"type": "array", "items": _ref("schemas", "CatalogAttribute")}
    schemas = {
        "Site": _object({"site_id": _ref("schemas", "Uint32")}, ["site_id"], "a site with something stored"),
        "Series": _object(
            {
                "category": {"type": "string", "enum": _CATEGORY_NAMES},
                "type": nullable_type,
                "id": _ref("schemas", "Uint32"),
                "first_timestamp": {**timestamp, "description": "the first record or period timestamp"},
                "last_timestamp": {**timestamp, "description": "the last record or period timestamp"},
                "count": {**count, "description": "production: records; forecasts, commitments: vintages; tariffs: periods"},
                "first_creation_timestamp": {**timestamp, "description": "forecasts and commitments: the first vintage"},
                "last_creation_timestamp": {**timestamp, "description": "forecasts and commitments: the last vintage"},
            },
            ["category", "type", "id", "first_timestamp", "last_timestamp", "count"],
            "one stored series: an equipment's records, a forecast's or a commitment's vintages, a tariff's periods",
        ),
        "CatalogAttribute": attribute,
        "CatalogEntry": _object(
            {
                "category": {"type": "string", "enum": _CATEGORY_NAMES},
                "type": nullable_type,
                "description": {"type": "string"},
                "attributes": {**attributes, "description": "a record's attributes; a vector's: each period's"},
                "vector_attributes": {**attributes, "description": "a whole vector's attributes (a commitment's quality)"},
            },
            ["category", "type", "description", "attributes", "vector_attributes"],
            "an equipment type, a forecast type, commitments or tariffs",
        ),
        "HorizonError": _object(
            {
                "horizon_ms": {
                    "type": "integer",
                    "format": "int64",
                    "description": "the bucket's lower bound, k * horizon_bucket in ms; negative for periods before"
                    " their vintage's creation",
                },
                "count": {**count, "minimum": 1, "description": "(vintage, period) pairs with a forecast value and an actual"},
                "mae": {"type": "number", "minimum": 0, "description": "mean absolute error, mean(|forecast - actual|)"},
                "bias": {"type": "number", "description": "mean(forecast - actual)"},
            },
            ["horizon_ms", "count", "mae", "bias"],
            "a forecast's error over the horizons of one bucket",
        ),
    }
    for resource in _ext_reads():
        schemas |= _item_schemas(resource, request=False, aggregations=AGGREGATIONS, suffix=_EXT_RESULT)
    for forecast in FORECAST_TYPES.values():
        period = {
            "timestamp": {**timestamp, "description": "period start"},
            "creation_timestamp": {**timestamp, "description": "the creation time of the vintage the period is from"},
        } | _attributes(forecast.attributes, request=False)
        schemas[f"{_title(forecast)}StaircasePeriod"] = _object(
            period, list(period), f"a period of the {forecast.name} forecast's staircase"
        )
    return schemas


def _title(forecast: RecordType) -> str:
    """Forecast type `solar` → `Solar`, for operation and component names."""
    return "".join(word[:1].upper() + word[1:] for word in forecast.name.split("-"))


def _ext_responses() -> dict[str, Schema]:
    ranged = [ApiStatus.INVALID_FROM, ApiStatus.INVALID_TO, ApiStatus.INVALID_PERIOD]
    forecast = [ApiStatus.INVALID_SITE_ID, ApiStatus.INVALID_ID, ApiStatus.INVALID_PARAMETERS, *ranged]
    return {
        "ExtNoQueryBadRequest": _error_response([ApiStatus.INVALID_PARAMETERS], "Bad request: a query parameter (none is taken)"),
        "InventoryBadRequest": _error_response(
            [ApiStatus.INVALID_SITE_ID, ApiStatus.INVALID_PARAMETERS], "Bad request: a bad site_id, or a query parameter"
        ),
        "StaircaseBadRequest": _error_response(
            forecast,
            "Bad request: a bad site_id or forecast_id, a forecast id never stored for this site, horizon missing or"
            " bad, or a bad or inconsistent query parameter",
        ),
        "HorizonErrorsBadRequest": _error_response(
            [*forecast, ApiStatus.INVALID_TYPE],
            "Bad request: a bad site_id, forecast_id or equipment_id, an unknown equipment type or attribute, an id"
            " never stored for this site, a required parameter missing, or a bad or inconsistent query parameter",
        ),
    }


def _ext_get(
    operation: tuple[str, str, str], parameters: list[Schema], item: str, bad_request: str, *, partial: bool = False
) -> Schema:
    """A GET of /ext/v1/: (operationId, summary, description), its parameters, the schema of its results' items,
    the response of its 400s, and whether it may answer in parts (206)."""
    operation_id, summary, description = operation
    results = {"results": {"type": "array", "items": _ref("schemas", item)}}
    responses = {
        "200": _json_response("Success", _envelope(ApiStatus.SUCCESS, results)),
        "400": _ref("responses", bad_request),
    }
    if partial:
        next_from = {"next_from": {**_ref("schemas", "Timestamp"), "description": "repeat the request with from=next_from"}}
        responses["206"] = _json_response(
            "Partial response: more items than the gateway returns at once (STORECAST_MAX_RECORDS)",
            _envelope(ApiStatus.PARTIAL_RESPONSE, next_from | results),
        )
    return {
        "tags": [EXT_TAG],
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "parameters": parameters,
        "responses": _by_status(responses),
    }


def _ext_paths() -> Iterator[tuple[str, Schema]]:
    site, no_query = _ref("parameters", "site_id"), "ExtNoQueryBadRequest"
    sites = ("listSites", "List the sites", "The sites with anything stored that the client certificate may read, ascending.")
    yield ext_routing.SITES, {"get": _ext_get(sites, [], "Site", no_query)}
    catalog = (
        "listCatalog",
        "List the catalog",
        "Every equipment type, forecast type, commitments and tariffs, with their attributes, kinds and units;"
        " for any client certificate the permissions file names.",
    )
    yield ext_routing.CATALOG, {"get": _ext_get(catalog, [], "CatalogEntry", no_query)}
    inventory = (
        "getInventory",
        "List a site's series",
        "Every equipment, forecast, commitment and tariff id stored for the site, with its first and last"
        " timestamp and count, ordered by category (production, forecast, commitment, tariff), type, id.",
    )
    yield ext_routing.INVENTORY, {"get": _ext_get(inventory, [site], "Series", "InventoryBadRequest")}
    head = [site, _ref("parameters", FORECAST.id_parameter)]
    ranged = [_ref("parameters", "from"), _ref("parameters", "to")]
    actuals = ("equipment", "equipment_id", "attribute", "period", "horizon_bucket", "forecast_attribute")
    for forecast in FORECAST_TYPES.values():
        base = f"/ext/v1/{{site_id}}/forecast/{forecast.name}/{{{FORECAST.id_parameter}}}"
        title = _title(forecast)
        staircase = (
            f"getStaircase{title}",
            f"Read the {forecast.name} forecast's staircase",
            "For each period timestamp t in [from, to[ (every one without them), the period of the latest vintage"
            " created at or before t - horizon, ascending by t (tshistory's staircase).",
        )
        parameters = [*head, _ref("parameters", "ext_horizon"), *ranged]
        period = f"{title}StaircasePeriod"
        yield f"{base}/staircase", {"get": _ext_get(staircase, parameters, period, "StaircaseBadRequest", partial=True)}
        errors = (
            f"getHorizonErrors{title}",
            f"Read the {forecast.name} forecast's error per horizon",
            "Over every (vintage, period) pair with t in [from, to[ that has both a forecast value and an actual"
            " (the average of the equipment's attribute over [t, t + period[): the mean absolute error and the bias"
            " (forecast - actual) per horizon bucket, ascending by horizon.",
        )
        parameters = [*head, *(_ref("parameters", f"ext_{name}") for name in actuals), *ranged]
        yield f"{base}/horizon-errors", {"get": _ext_get(errors, parameters, "HorizonError", "HorizonErrorsBadRequest")}
    for resource in _ext_reads():
        yield f"/ext{resource.get_path}", {"get": _get_operation(resource, ext=True)}


INFLUX_TAG = "influx"
_PRECISION: Schema = {
    "name": "precision",
    "in": "query",
    "required": False,
    "description": "the unit of the lines' timestamps (default ns); timestamps are floored to the millisecond",
    "schema": {"type": "string", "enum": list(PRECISIONS)},
}


def _influx_error(description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": _ref("schemas", "InfluxError")}}}


def _influx_write(version: str, site_parameter: str, ignored: list[str]) -> Schema:
    """POST of line protocol, InfluxDB {version}'s write API (gateway/influx/api.py)."""
    site = {
        "name": site_parameter,
        "in": "query",
        "required": True,
        "description": "the site ID",
        "schema": {"type": "string", "pattern": "^[0-9]{1,10}$"},
    }
    others = [
        {"name": name, "in": "query", "required": False, "description": "accepted and ignored", "schema": {"type": "string"}}
        for name in ignored
    ]
    return {
        "tags": [INFLUX_TAG],
        "operationId": f"influxWrite{version.replace('.', '')}",
        "summary": f"Write production records in line protocol (InfluxDB {version} write API)",
        "description": "One point per line: measurement = equipment type, tag `id` = equipment id (other tags"
        " ignored), fields = the type's attributes, timestamp in `precision`. All or nothing: a bad line stores"
        ' nothing. InfluxDB\'s conventions, not the v1 envelope: 204, and errors as `{"error": ...}`.',
        "parameters": [site, _PRECISION, *others],
        "requestBody": {
            "required": True,
            "description": f"May be sent with a `Content-Encoding` ({codings.ACCEPTED}); the size limit applies to"
            " the body as received and once decoded.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        "responses": {
            "204": {"description": "Every record is stored"},
            "400": _influx_error(
                "A bad line (named by its number), a bad precision, the site parameter missing, or a coded body that"
                " does not decode"
            ),
            "401": _influx_error("No client certificate"),
            "403": _influx_error("The client certificate may not write the site"),
            "404": _influx_error("The site parameter is not a site ID"),
            "413": _influx_error(
                "The body, as received or once decoded, is larger than the gateway takes (STORECAST_MAX_BODY_BYTES)"
            ),
            "415": {
                **_influx_error(f"The body's Content-Encoding is not one the gateway decodes ({codings.ACCEPTED}, or none)"),
                "headers": {"Accept-Encoding": _ref("headers", "Accept-Encoding")},
            },
        },
    }


PROM_TAG = "prom"
_PROM_PARAMETERS: dict[str, Schema] = {
    "query": {"type": "string", "description": "a PromQL expression of the supported subset"},
    "time": {"type": "string", "description": "the evaluation time: float seconds or RFC 3339 (default: now)"},
    "start": {"type": "string", "description": "float seconds or RFC 3339"},
    "end": {"type": "string", "description": "float seconds or RFC 3339"},
    "step": {"type": "string", "description": "float seconds or a PromQL duration (15s, 1h)"},
    "match[]": {"type": "array", "items": {"type": "string"}, "description": "series selectors"},
    "limit": {"type": "string", "pattern": "^[0-9]+$", "description": "at most this many items (0: all)"},
}


def _prom_error(description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": _ref("schemas", "PromError")}}}


def _prom_operation(name: str, summary: str, method: str, parameters: dict[str, bool], label: bool = False) -> Schema:
    """One operation of the Prometheus query API (gateway/prom/api.py): its parameters by name (True: required)."""
    listed: list[Schema] = [
        {
            "name": key,
            "in": "query",
            "required": required and method == "get",
            "schema": _PROM_PARAMETERS[key],
            **({"style": "form", "explode": True} if key == "match[]" else {}),
        }
        for key, required in parameters.items()
    ]
    if label:
        listed.insert(0, {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}})
    operation: Schema = {
        "tags": [PROM_TAG],
        "operationId": f"prom{name}{method.capitalize()}",
        "summary": summary,
        "parameters": listed,
        "responses": {
            "200": {"description": "Prometheus's success", "content": {JSON: {"schema": _ref("schemas", "PromSuccess")}}},
            "400": _prom_error("bad_data: a bad parameter, a query outside the supported subset"),
            "401": _prom_error("No client certificate"),
            "403": _prom_error("The certificate may read no site, or is unknown to the permissions"),
            "422": _prom_error("execution: the query would read or hold too many samples"),
        },
    }
    if method == "post":
        operation["requestBody"] = {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {key: _PROM_PARAMETERS[key] for key in parameters},
                        "required": [key for key, required in parameters.items() if required],
                    }
                }
            },
        }
    return operation


def _prom_paths() -> Iterator[tuple[str, Schema]]:
    query = {"query": True, "time": False}
    query_range = {"query": True, "start": True, "end": True, "step": True}
    series = {"match[]": True, "start": False, "end": False, "limit": False}
    labels = {"match[]": False, "start": False, "end": False, "limit": False}
    both = ("get", "post")
    for path, name, summary, parameters, methods in (
        (ext_routing.PROM_QUERY, "Query", "An instant query", query, both),
        (ext_routing.PROM_QUERY_RANGE, "QueryRange", "A range query", query_range, both),
        (ext_routing.PROM_SERIES, "Series", "The series that selectors match", series, both),
        (ext_routing.PROM_LABELS, "Labels", "Label names", labels, both),
        (ext_routing.PROM_EXEMPLARS, "Exemplars", "Exemplars: none", {}, both),
        (ext_routing.PROM_LABEL_VALUES, "LabelValues", "A label's values", labels, ("get",)),
        (ext_routing.PROM_METADATA, "Metadata", "Every metric's type, help and unit", {}, ("get",)),
        (ext_routing.PROM_BUILDINFO, "BuildInfo", "The Prometheus version these follow", {}, ("get",)),
        (ext_routing.PROM_RULES, "Rules", "Rules: none", {}, ("get",)),
    ):
        label = path == ext_routing.PROM_LABEL_VALUES
        yield path, {method: _prom_operation(name, summary, method, parameters, label) for method in methods}


def _influx_paths() -> Iterator[tuple[str, Schema]]:
    yield ext_routing.INFLUX_WRITE_V1, {"post": _influx_write("1.x", "db", ["rp", "u", "p", "consistency"])}
    yield ext_routing.INFLUX_WRITE_V2, {"post": _influx_write("2.x", "bucket", ["org", "orgID"])}
    ping = {
        "tags": [INFLUX_TAG],
        "operationId": "influxPing",
        "summary": "Whether the gateway answers (InfluxDB's ping); no client certificate needed",
        "responses": {"204": {"description": "The gateway answers; X-Influxdb-Version names storecast"}},
    }
    yield ext_routing.INFLUX_PING, {"get": ping}
    health = {
        "tags": [INFLUX_TAG],
        "operationId": "influxHealth",
        "summary": "Whether the gateway answers (InfluxDB 2.x's health); no client certificate needed",
        "responses": {"200": {"description": "The gateway answers", "content": {JSON: {"schema": {"type": "object"}}}}},
    }
    yield ext_routing.INFLUX_HEALTH, {"get": health}


def _ext_reads() -> list[Resource]:
    """The resources /ext/v1 reads with every aggregation: those v1 reads aggregated."""
    return [resource for resource in resources() if resource.category.aggregated]


# ---- the document -----------------------------------------------------------


def _beyond_v1() -> str:
    """What /ext/v1's reads take beyond v1's."""
    names = [name for name, aggregation in AGGREGATIONS.items() if not aggregation.v1]
    return f"`agg` may also be {spelled(names)}" if names else "the aggregations v1 takes"


def _description() -> str:
    codes = "\n".join(f"| {c} | {s.http_status} | {s.message} |" for c, s in STATUS.items())
    return f"""\
The v1 Store & Forecast API: production records of energy equipment, forecast
and commitment vectors, and tariffs, per site.

- Every request presents a client certificate; its subject CN must be granted
  read (GET, HEAD) or write (PUT) access to the site.
- Timestamps are integer milliseconds UTC in [0, {TIMESTAMP_LIMIT_MS}[; ids are
  unsigned 32-bit integers. Intervals are half-open; vector and tariff periods
  last from their timestamp until the next period's.
- In a body, an integral-valued number (`1.0`, `1e3`) counts as that integer
  wherever an integer is expected, as JSON Schema's `integer` admits it; a
  fraction is refused (400, 1303). A query string takes digits only.
- Every response is a JSON envelope with `status_code` and `status_message`, and
  an `X-Request-Id` header. A request that matches no path here is refused with
  404 (1101); a method other than the path's, with 405 (1102) and an `Allow`
  header.
- Content codings, on every path: a response of at least {codings.MINIMUM_SIZE} bytes
  comes in gzip or zstd when `Accept-Encoding` asks for one; a PUT body may be
  sent in either (`Content-Encoding`), its decoded size within the body limit
  (413, 1303); another coding is refused with 415 (1103), a body that does not
  decode with 400 (1301).
- Paths under `/ext/v1/` (tag `ext`) go beyond v1: the sites, the catalog, a
  site's inventory, a forecast's staircase and its error per horizon, and v1's
  reads with every aggregation ({_beyond_v1()}); same envelope, codes,
  identity and read permissions.
- Paths under `/ext/influx/` (tag `influx`) are InfluxDB's write APIs (1.x and
  2.x) for line protocol, with InfluxDB's answers (204, `{{"error": ...}}`), the
  same client certificates and write permissions.
- `/console/` is the web console, a page for browsers (HTML, not JSON; not an
  operation here): it reads the sites through these paths with the browser's
  client certificate, and its files go only to a certificate with a grant
  (else 403, 1400).

| API status | HTTP status | message |
|---|---|---|
{codes}
"""


def _schemas(items: Iterable[Resource]) -> dict[str, Schema]:
    schemas: dict[str, Schema] = {
        "Timestamp": {
            "type": "integer",
            "format": "int64",
            "minimum": 0,
            "maximum": TIMESTAMP_LIMIT_MS - 1,
            "description": "UTC epoch milliseconds, before 2200-01-01",
            "x-unit": "ms",
        },
        "Uint32": {"type": "integer", "format": "int64", "minimum": 0, "maximum": UINT32_MAX},
    }
    for resource in items:
        schemas |= _item_schemas(resource, request=True) | _item_schemas(resource, request=False)
    return schemas


def _paths(items: Iterable[Resource]) -> Iterator[tuple[str, Schema]]:
    for resource in items:
        yield resource.put_path, {"put": _put_operation(resource)}
        yield resource.get_path, {"get": _get_operation(resource)}


def build_document() -> Schema:
    items = resources()
    categories = list({resource.category.name: resource.category for resource in items}.values())
    return {
        "openapi": "3.1.0",
        "info": {"title": "storecast", "version": version("storecast"), "description": _description()},
        # Relative: the API is wherever this document was fetched from.
        "servers": [{"url": "/"}],
        "security": [{"mutualTLS": []}],
        "tags": [
            *({"name": c.name} for c in categories),
            {
                "name": EXT_TAG,
                "description": "Beyond v1: the sites, the catalog, a site's inventory, forecast analyses, every aggregation",
            },
            {"name": INFLUX_TAG, "description": "The InfluxDB 1.x and 2.x write APIs: line protocol from Telegraf and others"},
            {"name": PROM_TAG, "description": "The Prometheus HTTP query API: PromQL for Grafana, promtool and others"},
        ],
        "paths": dict(_paths(items)) | dict(_ext_paths()) | dict(_influx_paths()) | dict(_prom_paths()),
        "components": {
            "securitySchemes": {
                "mutualTLS": {
                    "type": "mutualTLS",
                    "description": "A client certificate issued by the CA the gateway trusts; its subject CN is the"
                    " identity the permissions file grants sites and read/write access",
                }
            },
            "schemas": _schemas(items)
            | _ext_schemas()
            | {
                "InfluxError": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {"type": "string"},
                        "code": {"type": "string", "description": "2.x path only: InfluxDB 2.x's error code"},
                        "message": {"type": "string", "description": "2.x path only: the error again"},
                    },
                },
                "PromSuccess": {
                    "type": "object",
                    "required": ["status", "data"],
                    "properties": {"status": {"const": "success"}, "data": {}, "warnings": {"type": "array"}},
                },
                "PromError": {
                    "type": "object",
                    "required": ["status", "errorType", "error"],
                    "properties": {"status": {"const": "error"}, "errorType": {"type": "string"}, "error": {"type": "string"}},
                },
            },
            "parameters": _parameters(categories) | _EXT_QUERY,
            "responses": _shared_responses(categories) | _ext_responses(),
            "headers": {
                "X-Request-Id": {
                    "description": "this request's id, also in the gateway's log lines about it",
                    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                },
                "Accept-Encoding": {
                    "description": "the content codings a body may be sent in",
                    "required": True,
                    "schema": {"type": "string", "const": codings.ACCEPTED},
                },
                "Allow": {
                    "description": "the methods the path takes: GET, HEAD on a GET path, PUT on a PUT path, all three"
                    " on a path of an unknown category",
                    "required": True,
                    "schema": {"type": "string", "enum": [routing.ALLOW_GET, routing.ALLOW_PUT, routing.ALLOW_ANY]},
                },
            },
        },
    }
