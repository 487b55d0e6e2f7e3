"""PUT bodies decoded and refused without a server: the contract's 1301/1302/1303 and their exact wording.

The decoders are built as the services build them (services/ingest/service.py,
services/vector/write.py) from the catalog's real types; tests/test_errors.py
and tests/test_vector_errors.py check fragments of the same messages end to end.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from services.lib.records import payload
from storecast.catalog import (
    COMMITMENT,
    EQUIPMENT_TYPES,
    FORECAST_TYPES,
    TARIFF,
    TIMESTAMP_LIMIT_MS,
    UINT32_MAX,
    Kind,
    RecordType,
)
from storecast.status import ApiFailure, ApiStatus

ENCODING = "payload encoding error: the body is not UTF-8 JSON"
EMPTY = "payload empty error"
CONTENT = "payload content error"
BELOW_LIMIT = f"expected a timestamp below {TIMESTAMP_LIMIT_MS} (2200-01-01T00:00:00Z)"


def equipment_decoder(record_type: RecordType) -> msgspec.json.Decoder[Any]:
    """A production PUT's decoder, as the ingest service builds it."""
    name = record_type.table_suffix
    struct = payload.record_struct(name, [("timestamp", payload.Timestamp), ("id", payload.Uint32)], record_type)
    return payload.body_decoder(struct, name)


def tariff_decoder() -> msgspec.json.Decoder[Any]:
    """A tariff PUT's decoder, as the vector service builds it: entries of periods."""
    period = payload.record_struct("tariff_period", [("timestamp", payload.Timestamp)], TARIFF)
    entry = msgspec.defstruct("tariff", [("id", payload.Uint32), payload.periods_field(period)], forbid_unknown_fields=True)
    return payload.body_decoder(entry, "tariff")


def vector_decoder(record_type: RecordType, name: str) -> msgspec.json.Decoder[Any]:
    """A forecast or commitment PUT's decoder, as the vector service builds it: vectors of periods."""
    period = payload.record_struct(f"{name}_period", [("timestamp", payload.Timestamp)], record_type)
    vector = msgspec.defstruct(
        name,
        [
            ("creation_timestamp", payload.Timestamp),
            ("id", payload.Uint32),
            payload.periods_field(period),
            *payload.optional_fields(record_type.vector_attributes),
        ],
        forbid_unknown_fields=True,
    )
    return payload.body_decoder(vector, name)


VECTOR_TYPES = {f"forecast/{name}": record_type for name, record_type in FORECAST_TYPES.items()} | {"commitment": COMMITMENT}
DECODERS = (
    {name: equipment_decoder(record_type) for name, record_type in EQUIPMENT_TYPES.items()}
    | {"tariff": tariff_decoder()}
    | {name: vector_decoder(record_type, name.replace("/", "_")) for name, record_type in VECTOR_TYPES.items()}
)


def decode(type_name: str, body: bytes) -> list[Any]:
    return list(payload.decode(DECODERS[type_name], body))


def refusal(type_name: str, body: bytes) -> ApiFailure:
    with pytest.raises(ApiFailure) as caught:
        payload.decode(DECODERS[type_name], body)
    return caught.value


def record(extra: bytes, timestamp: bytes = b"1", record_id: bytes = b"1") -> bytes:
    """A body of one record with `extra` members after its keys (b'"p":1.0')."""
    members = b'"timestamp":%s,"id":%s' % (timestamp, record_id)
    return b'{"values":[{%s}]}' % (members + b"," + extra if extra else members)


def tariff(period: bytes) -> bytes:
    return b'{"values":[{"id":1,"values":[%s]}]}' % period


# ---- accepted bodies ----------------------------------------------------------


def test_a_record_decodes_with_absent_and_null_attributes_as_none() -> None:
    (meter,) = decode("meter", b'{"values":[{"timestamp":1000,"id":7,"p":1,"q":null,"u":-2.5e3}]}')
    assert msgspec.structs.asdict(meter) == {"timestamp": 1000, "id": 7, "p": 1.0, "q": None, "f": None, "u": -2500.0, "i": None}
    assert isinstance(meter.p, float)  # an integer given for a float is a float


def test_records_keep_the_order_of_the_body() -> None:
    body = json.dumps({"values": [{"timestamp": t, "id": 1, "l1_p": t / 2} for t in (3, 1, 2)]}).encode()
    assert [(r.timestamp, r.l1_p) for r in decode("meter-3p", body)] == [(3, 1.5), (1, 0.5), (2, 1.0)]


def test_the_largest_values_are_accepted() -> None:
    extremes = b'"soc":1.7976931348623157e308,"p":-1.7976931348623157e308,"state":%d' % UINT32_MAX
    body = record(extremes, timestamp=b"%d" % (TIMESTAMP_LIMIT_MS - 1), record_id=b"%d" % UINT32_MAX)
    (battery,) = decode("battery", body)
    assert (battery.timestamp, battery.id, battery.state) == (TIMESTAMP_LIMIT_MS - 1, UINT32_MAX, UINT32_MAX)
    assert (battery.soc, battery.p) == (1.7976931348623157e308, -1.7976931348623157e308)


def test_the_smallest_values_are_accepted() -> None:
    (status,) = decode("status", record(b'"value":0', timestamp=b"0", record_id=b"0"))
    assert (status.timestamp, status.id, status.value) == (0, 0, 0)


def test_a_label_is_limited_in_characters_not_bytes() -> None:
    (entry,) = decode("tariff", tariff(b'{"timestamp":1,"label":"%s"}' % ("é" * 64).encode()))
    assert entry.values[0].label == "é" * 64
    (entry,) = decode("tariff", tariff(b'{"timestamp":1,"label":"a\\"b\\u00e9\\n","value":2}'))
    assert (entry.values[0].label, entry.values[0].value) == ('a"bé\n', 2.0)


@pytest.mark.parametrize("type_name", sorted(EQUIPMENT_TYPES))
def test_every_equipment_type_takes_its_attributes_and_no_other(type_name: str) -> None:
    attributes = EQUIPMENT_TYPES[type_name].attributes
    sample = {Kind.FLOAT: 1.5, Kind.UNSIGNED_INT: 3, Kind.STRING: "x"}
    values = {a.name: sample[a.kind] for a in attributes}
    (decoded,) = decode(type_name, json.dumps({"values": [{"timestamp": 1, "id": 2, **values}]}).encode())
    assert msgspec.structs.asdict(decoded) == {"timestamp": 1, "id": 2, **values}
    assert list(decoded.__struct_fields__) == ["timestamp", "id", *(a.name for a in attributes)]
    failure = refusal(type_name, record(b'"nope":1'))
    assert (failure.code, failure.message) == (ApiStatus.PAYLOAD_CONTENT_ERROR, f"{CONTENT}: values[0].nope: unknown attribute")


# ---- 1303: the body is JSON but not a valid payload ----------------------------

CONTENT_ERRORS = [
    # unknown attributes, at any depth
    ("meter", b'{"values":[{"timestamp":1,"id":1},{"timestamp":2,"id":1,"x":1.0}]}', "values[1].x: unknown attribute"),
    ("meter-3p", record(b'"l1_p":1.0,"l4_p":1.0'), "values[0].l4_p: unknown attribute"),
    ("meter", b'{"values":[],"extra":1}', "extra: unknown attribute"),
    ("meter", b'{"values":[{"timestamp":1,"id":1}],"x":1}', "x: unknown attribute"),
    ("tariff", tariff(b'{"timestamp":1,"p":1.0}'), "values[0].values[0].p: unknown attribute"),
    (
        "tariff",
        b'{"values":[{"id":1,"creation_timestamp":1,"values":[{"timestamp":1}]}]}',
        "values[0].creation_timestamp: unknown attribute",
    ),
    # floats
    ("meter", record(b'"p":"1.0"'), "values[0].p: expected a number or null, got a string"),
    ("meter", record(b'"p":true'), "values[0].p: expected a number or null, got a boolean"),
    ("meter", record(b'"p":[1.0]'), "values[0].p: expected a number or null, got an array"),
    ("meter", record(b'"p":{"v":1}'), "values[0].p: expected a number or null, got an object"),
    (
        "meter-3p",
        b'{"values":[{"timestamp":1,"id":1},{"timestamp":2,"id":1,"f":"50"}]}',
        "values[1].f: expected a number or null, got a string",
    ),
    ("battery", record(b'"soc":1e400'), "values[0].soc: expected a finite number"),
    ("battery", record(b'"soc":-1e400'), "values[0].soc: expected a finite number"),
    ("battery", record(b'"soc":' + b"9" * 400), "values[0].soc: expected a finite number"),
    # unsigned integers
    ("battery", record(b'"state":1.5'), "values[0].state: expected a non-negative integer or null, got a decimal number"),
    ("battery", record(b'"state":-1'), "values[0].state: expected a non-negative integer"),
    ("battery", record(b'"state":true'), "values[0].state: expected a non-negative integer or null, got a boolean"),
    ("battery", record(b'"state":"4"'), "values[0].state: expected a non-negative integer or null, got a string"),
    ("battery", record(b'"state":4294967296'), "values[0].state: expected an integer <= 4294967295"),
    # strings
    (
        "tariff",
        tariff(b'{"timestamp":1,"label":"%s"}' % (b"x" * 65)),
        "values[0].values[0].label: expected a string of at most 64 characters",
    ),
    (
        "tariff",
        tariff(b'{"timestamp":1},{"timestamp":2,"label":5}'),
        "values[0].values[1].label: expected a string or null, got an integer",
    ),
    # timestamps
    ("meter", b'{"values":[{"id":1,"p":1.0}]}', "values[0].timestamp: missing required attribute"),
    ("meter", record(b"", timestamp=b"-1"), "values[0].timestamp: expected a non-negative integer"),
    ("meter", record(b"", timestamp=b"%d" % TIMESTAMP_LIMIT_MS), f"values[0].timestamp: {BELOW_LIMIT}"),
    ("meter", record(b"", timestamp=b"99999999999999999999"), f"values[0].timestamp: {BELOW_LIMIT}"),
    ("meter", record(b"", timestamp=b'"1"'), "values[0].timestamp: expected a non-negative integer, got a string"),
    ("meter", record(b"", timestamp=b"true"), "values[0].timestamp: expected a non-negative integer, got a boolean"),
    ("meter", record(b"", timestamp=b"null"), "values[0].timestamp: expected a non-negative integer, got null"),
    ("tariff", tariff(b'{"timestamp":1},{"label":"x"}'), "values[0].values[1].timestamp: missing required attribute"),
    ("tariff", tariff(b'{"timestamp":%d}' % TIMESTAMP_LIMIT_MS), f"values[0].values[0].timestamp: {BELOW_LIMIT}"),
    # ids
    ("meter", b'{"values":[{"timestamp":1,"p":1.0}]}', "values[0].id: missing required attribute"),
    ("meter", record(b"", record_id=b"-1"), "values[0].id: expected a non-negative integer"),
    ("meter", record(b"", record_id=b"4294967296"), "values[0].id: expected an integer <= 4294967295"),
    ("meter", record(b"", record_id=b"1.5"), "values[0].id: expected a non-negative integer, got a decimal number"),
    ("meter", record(b"", record_id=b'"1"'), "values[0].id: expected a non-negative integer, got a string"),
    # the shape of the body
    ("meter", b"[]", "expected an object, got an array"),
    ("meter", b"null", "expected an object, got null"),
    ("meter", b"1", "expected an object, got an integer"),
    ("meter", b'"values"', "expected an object, got a string"),
    ("meter", b'{"values":{}}', "values: expected an array, got an object"),
    ("meter", b'{"values":1}', "values: expected an array, got an integer"),
    ("meter", b'{"values":[1,2]}', "values[0]: expected an object, got an integer"),
    ("meter", b'{"values":["x"]}', "values[0]: expected an object, got a string"),
    ("meter", b'{"values":[null]}', "values[0]: expected an object, got null"),
    ("tariff", b'{"values":[{"id":1}]}', "values[0].values: missing required attribute"),
    ("tariff", b'{"values":[{"id":1,"values":[]}]}', "values[0].values: expected a non-empty array"),
    ("tariff", b'{"values":[{"id":1,"values":null}]}', "values[0].values: expected an array, got null"),
]


@pytest.mark.parametrize(("type_name", "body", "detail"), CONTENT_ERRORS)
def test_content_errors_are_1303_naming_the_value(type_name: str, body: bytes, detail: str) -> None:
    failure = refusal(type_name, body)
    assert (failure.code, failure.message) == (ApiStatus.PAYLOAD_CONTENT_ERROR, f"{CONTENT}: {detail}")
    assert failure.http_status == 400


# ---- integral numbers where integers are expected (docs/api/v1.md §2) -----------------------

TS = 1535104800000  # 2018-08-24T10:00:00Z, as json.dumps writes it from a float: 1535104800000.0


def integers_of(item: msgspec.Struct) -> dict[str, Any]:
    """The integer-kind members of a decoded item and of its periods, which must all be ints."""
    members = msgspec.structs.asdict(item)
    found = {k: v for k, v in members.items() if k in ("timestamp", "creation_timestamp", "id") or type(v) is int}
    for index, period in enumerate(members.get("values") or []):
        found |= {f"values[{index}].{k}": v for k, v in integers_of(period).items()}
    assert all(type(v) is int for v in found.values()), found
    return found


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (b"1.0", 1),
        (b"1e3", 1000),
        (b"1E+3", 1000),
        (b"0.5e1", 5),
        (b"0.0", 0),
        (b"-0.0", 0),
        (b"-0", 0),
        (b"4294967295.0", UINT32_MAX),
    ],
)
def test_an_integral_number_is_that_integer_in_a_record(text: bytes, value: int) -> None:
    (battery,) = decode("battery", record(b'"state":%s,"soc":%s' % (text, text), timestamp=text, record_id=text))
    assert integers_of(battery) == {"timestamp": value, "id": value, "state": value}
    assert battery.soc == float(value) and type(battery.soc) is float  # a float attribute stays a float


@pytest.mark.parametrize(
    ("text", "value"), [(b"1535104800000.0", TS), (b"1.5351048e12", TS), (b"7258118399999.0", TIMESTAMP_LIMIT_MS - 1)]
)
def test_a_float_timestamp_is_that_timestamp(text: bytes, value: int) -> None:
    (meter,) = decode("meter", record(b'"p":2.5', timestamp=text))
    assert integers_of(meter) == {"timestamp": value, "id": 1}


def test_integral_numbers_among_integers_keep_the_order_of_the_body() -> None:
    # Integers and integral floats in one body, as a client joining the records of two sources writes them.
    body = b'{"values":[{"timestamp":3,"id":7},{"timestamp":1e0,"id":7.0,"state":null},{"timestamp":2.0,"id":7,"state":4.0}]}'
    assert [integers_of(r) for r in decode("battery", body)] == [
        {"timestamp": 3, "id": 7},
        {"timestamp": 1, "id": 7},
        {"timestamp": 2, "id": 7, "state": 4},
    ]
    # The first float at the end of a long body.
    records = b",".join(b'{"timestamp":%d,"id":1}' % t for t in range(1000)) + b',{"timestamp":1000.0,"id":1}'
    assert [r.timestamp for r in decode("meter", b'{"values":[%s]}' % records)] == list(range(1001))


@pytest.mark.parametrize("type_name", sorted(EQUIPMENT_TYPES))
def test_every_unsigned_attribute_takes_an_integral_number(type_name: str) -> None:
    attributes = EQUIPMENT_TYPES[type_name].attributes
    unsigned = {a.name: 3.0 for a in attributes if a.kind is Kind.UNSIGNED_INT}
    item = {"timestamp": float(TS), "id": 2.0, **unsigned}
    (decoded,) = decode(type_name, json.dumps({"values": [item]}).encode())
    assert integers_of(decoded) == {"timestamp": TS, "id": 2} | dict.fromkeys(unsigned, 3)


@pytest.mark.parametrize("type_name", sorted(VECTOR_TYPES))
def test_forecast_and_commitment_vectors_take_integral_numbers(type_name: str) -> None:
    record_type = VECTOR_TYPES[type_name]

    def unsigned(attributes: tuple[Any, ...], value: float) -> dict[str, float]:
        return {a.name: value for a in attributes if a.kind is Kind.UNSIGNED_INT}

    periods = [{"timestamp": float(TS + 60_000 * i), **unsigned(record_type.attributes, 2.0)} for i in range(2)]
    vector = {"creation_timestamp": float(TS), "id": 1e1, "values": periods, **unsigned(record_type.vector_attributes, 1e0)}
    (decoded,) = decode(type_name, json.dumps({"values": [vector]}).encode())
    expected = {"creation_timestamp": TS, "id": 10} | dict.fromkeys(unsigned(record_type.vector_attributes, 0), 1)
    for i in range(2):
        expected |= {f"values[{i}].timestamp": TS + 60_000 * i}
        expected |= {f"values[{i}].{name}": 2 for name in unsigned(record_type.attributes, 0)}
    assert integers_of(decoded) == expected
    assert any("quality" in key for key in expected), expected  # forecasts and commitments have one


def test_tariff_entries_take_integral_numbers() -> None:
    (entry,) = decode("tariff", b'{"values":[{"id":4e0,"values":[{"timestamp":1535104800000.0,"label":"x","value":2}]}]}')
    assert integers_of(entry) == {"id": 4, "values[0].timestamp": TS}
    assert entry.values[0].value == 2.0 and type(entry.values[0].value) is float


BEYOND_EXACT = b"9007199254740993.0"  # 2**53 + 1, which a float cannot hold: read as 2**53
DECIMAL = "expected a non-negative integer, got a decimal number"
DECIMAL_OR_NULL = "expected a non-negative integer or null, got a decimal number"
NEGATIVE = "expected a non-negative integer"
ABOVE_UINT32 = "expected an integer <= 4294967295"

INTEGRAL_REFUSALS = [
    # fractions, worded as before integral numbers were taken, even out of range
    ("meter", record(b"", timestamp=b"1.5"), f"values[0].timestamp: {DECIMAL}"),
    ("meter", record(b"", timestamp=b"-1.5"), f"values[0].timestamp: {DECIMAL}"),
    ("meter", record(b"", timestamp=b"1e-3"), f"values[0].timestamp: {DECIMAL}"),
    ("meter", record(b"", record_id=b"4294967295.5"), f"values[0].id: {DECIMAL}"),
    ("battery", record(b'"state":0.5'), f"values[0].state: {DECIMAL_OR_NULL}"),
    ("battery", record(b'"state":-0.5'), f"values[0].state: {DECIMAL_OR_NULL}"),
    # integral, out of range: refused as the integer would be
    ("meter", record(b"", timestamp=b"-1.0"), f"values[0].timestamp: {NEGATIVE}"),
    ("meter", record(b"", timestamp=b"%d.0" % TIMESTAMP_LIMIT_MS), f"values[0].timestamp: {BELOW_LIMIT}"),
    ("meter", record(b"", timestamp=b"7.2581184e12"), f"values[0].timestamp: {BELOW_LIMIT}"),
    ("meter", record(b"", timestamp=b"1e300"), f"values[0].timestamp: {BELOW_LIMIT}"),
    ("meter", record(b"", timestamp=BEYOND_EXACT), f"values[0].timestamp: {BELOW_LIMIT}"),
    ("meter", record(b"", record_id=b"-1.0"), f"values[0].id: {NEGATIVE}"),
    ("meter", record(b"", record_id=b"4294967296.0"), f"values[0].id: {ABOVE_UINT32}"),
    ("meter", record(b"", record_id=b"1535104800000.0"), f"values[0].id: {ABOVE_UINT32}"),
    ("meter", record(b"", record_id=BEYOND_EXACT), f"values[0].id: {ABOVE_UINT32}"),
    ("battery", record(b'"state":-1.0'), f"values[0].state: {NEGATIVE}"),
    ("battery", record(b'"state":4294967296.0'), f"values[0].state: {ABOVE_UINT32}"),
    ("battery", record(b'"state":1e20'), f"values[0].state: {ABOVE_UINT32}"),
    # not a finite number, as before
    ("meter", record(b"", timestamp=b"1e400"), "values[0].timestamp: expected a finite number"),
    ("battery", record(b'"state":-1e400'), "values[0].state: expected a finite number"),
    # other types, as before, also after an integral float
    ("meter", record(b"", timestamp=b'"1"'), "values[0].timestamp: expected a non-negative integer, got a string"),
    ("meter", record(b"", record_id=b"true"), "values[0].id: expected a non-negative integer, got a boolean"),
    (
        "battery",
        record(b'"state":"1.0"', timestamp=b"1.0"),
        "values[0].state: expected a non-negative integer or null, got a string",
    ),
    (
        "battery",
        record(b'"state":true', record_id=b"1.0"),
        "values[0].state: expected a non-negative integer or null, got a boolean",
    ),
    (
        "battery",
        record(b'"state":[1.0]', timestamp=b"1.0"),
        "values[0].state: expected a non-negative integer or null, got an array",
    ),
    ("meter", record(b'"p":"1"', timestamp=b"1.0"), "values[0].p: expected a number or null, got a string"),
    ("meter", record(b"", timestamp=b"1.0", record_id=b"null"), "values[0].id: expected a non-negative integer, got null"),
    ("meter", record(b'"x":1', timestamp=b"1.0"), "values[0].x: unknown attribute"),
    # the first error of the body, wherever the first float is
    (
        "meter",
        b'{"values":[{"timestamp":1.0,"id":1},{"timestamp":2,"id":"1"}]}',
        "values[1].id: expected a non-negative integer, got a string",
    ),
    ("meter", b'{"values":[{"timestamp":1.0,"id":1},{"timestamp":2,"id":1.25}]}', f"values[1].id: {DECIMAL}"),
    ("meter", b'{"values":[{"timestamp":1.5,"id":1},{"timestamp":2,"id":"1"}]}', f"values[0].timestamp: {DECIMAL}"),
    (
        "meter",
        b'{"values":[{"timestamp":1,"id":"1"},{"timestamp":2.5,"id":1}]}',
        "values[0].id: expected a non-negative integer, got a string",
    ),
    ("meter", b'{"values":[{"timestamp":1.0,"id":1}],"x":1}', "x: unknown attribute"),
    # vectors and tariffs, at every depth
    (
        "forecast/solar",
        b'{"values":[{"creation_timestamp":1.0,"id":1,"values":[{"timestamp":1.5}]}]}',
        f"values[0].values[0].timestamp: {DECIMAL}",
    ),
    (
        "forecast/wind",
        b'{"values":[{"creation_timestamp":1,"id":1,"values":[{"timestamp":1.0},{"timestamp":2,"quality":2.5}]}]}',
        f"values[0].values[1].quality: {DECIMAL_OR_NULL}",
    ),
    (
        "forecast/demand",
        b'{"values":[{"creation_timestamp":7258118400000.0,"id":1,"values":[{"timestamp":1}]}]}',
        f"values[0].creation_timestamp: {BELOW_LIMIT}",
    ),
    (
        "commitment",
        b'{"values":[{"creation_timestamp":1,"id":1.0,"quality":-1.0,"values":[{"timestamp":1}]}]}',
        f"values[0].quality: {NEGATIVE}",
    ),
    (
        "commitment",
        b'{"values":[{"creation_timestamp":1,"id":1,"quality":0.5,"values":[{"timestamp":1}]}]}',
        f"values[0].quality: {DECIMAL_OR_NULL}",
    ),
    ("commitment", b'{"values":[{"creation_timestamp":1,"id":1e0,"values":[]}]}', "values[0].values: expected a non-empty array"),
    (
        "tariff",
        b'{"values":[{"id":1.0,"values":[{"timestamp":"1"}]}]}',
        "values[0].values[0].timestamp: expected a non-negative integer, got a string",
    ),
    ("tariff", b'{"values":[{"id":4294967296.0,"values":[{"timestamp":1}]}]}', f"values[0].id: {ABOVE_UINT32}"),
]


@pytest.mark.parametrize(("type_name", "body", "detail"), INTEGRAL_REFUSALS)
def test_numbers_that_are_not_such_integers_are_still_1303(type_name: str, body: bytes, detail: str) -> None:
    failure = refusal(type_name, body)
    assert (failure.code, failure.message) == (ApiStatus.PAYLOAD_CONTENT_ERROR, f"{CONTENT}: {detail}")


@pytest.mark.parametrize(
    ("body", "code", "detail"),
    [
        (b'{"values":[{"timestamp":1.0,"id":1}]} trailing', ApiStatus.PAYLOAD_ENCODING_ERROR, "trailing characters"),
        (b'{"values":[{"timestamp":1.0,"id":1,"p":"\xff"}]}', ApiStatus.PAYLOAD_ENCODING_ERROR, "a string is not UTF-8"),
        (b'{"values":[{"timestamp":-1.5,"id":1}],"z":"\xfe"}', ApiStatus.PAYLOAD_ENCODING_ERROR, "a string is not UTF-8"),
        (b'{"values":[{"timestamp":-1.5,"id":1}', ApiStatus.PAYLOAD_ENCODING_ERROR, "truncated"),
        # Nested deeper than msgspec follows, elsewhere: the fraction is then refused for its range.
        (
            b'{"values":[{"timestamp":-1.5,"id":1}],"z":%s%s}' % (b"[" * 3000, b"]" * 3000),
            ApiStatus.PAYLOAD_CONTENT_ERROR,
            NEGATIVE,
        ),
        (b'{"values":[{"timestamp":1.0,"id":1}],"values":null}', ApiStatus.PAYLOAD_EMPTY_ERROR, "`values` is missing or empty"),
    ],
)
def test_a_body_with_integral_numbers_is_checked_whole(body: bytes, code: int, detail: str) -> None:
    failure = refusal("meter", body)
    assert failure.code == code and detail in failure.message, failure.message


# ---- 1302: nothing to store ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "the body is empty"),
        (b" \t\r\n ", "the body is empty"),
        (b"{}", "`values` is missing or empty"),
        (b'{"values": []}', "`values` is missing or empty"),
        (b' { "values" : [ ] } ', "`values` is missing or empty"),
        (b'{"values": null}', "`values` is missing or empty"),
    ],
)
def test_empty_payloads_are_1302(body: bytes, detail: str) -> None:
    for type_name in ("meter", "tariff"):
        failure = refusal(type_name, body)
        assert (failure.code, failure.message) == (ApiStatus.PAYLOAD_EMPTY_ERROR, f"{EMPTY}: {detail}")


# ---- 1301: the body is not UTF-8 JSON ---------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "body", "detail"),
    [
        # NaN and Infinity are not JSON: refused by the parser, unlike 1e400 (a JSON number out of range, 1303).
        ("battery", record(b'"soc":NaN'), "JSON is malformed: invalid character (byte 39)"),
        ("battery", record(b'"soc":Infinity'), "JSON is malformed: invalid character (byte 39)"),
        ("battery", record(b'"soc":-Infinity'), "JSON is malformed: invalid character (byte 40)"),
        ("meter", b"{", "Input data was truncated"),
        ("meter", b'{"values":[', "Input data was truncated"),
        ("meter", b'{"values":[{"timestamp":1,"id":1}', "Input data was truncated"),
        ("meter", b'{"values":[{"timestamp":1,"id":1}]', "Input data was truncated"),
        ("meter", b"nope", "JSON is malformed: invalid character (byte 4)"),
        ("meter", b'{"values":[}', "JSON is malformed: invalid character (byte 11)"),
        ("meter", b'{"values":[{"timestamp":1,"id":1}]} trailing', "JSON is malformed: trailing characters (byte 37)"),
        ("meter", b"\xff\xfe{}", "JSON is malformed: invalid character (byte 0)"),
        ("meter", '{"values":[{"timestamp":1,"id":1}]}'.encode("utf-16"), "JSON is malformed: invalid character (byte 0)"),
        ("meter", b'\xef\xbb\xbf{"values":[{"timestamp":1,"id":1}]}', "JSON is malformed: invalid character (byte 0)"),
        ("meter", b'{"values":[{"timestamp":1,"id":1,"p\xff":1}]}', "a string is not UTF-8"),
        ("meter", b'{"values":[{"timestamp":1,"id":1,"\xc3":1}]}', "a string is not UTF-8"),
        ("tariff", tariff(b'{"timestamp":1,"label":"\xff"}'), "a string is not UTF-8"),
        (
            "tariff",
            tariff(b'{"timestamp":1,"label":"\\ud800"}'),
            "JSON is malformed: unexpected end of escaped utf-16 surrogate pair (byte 59)",
        ),
    ],
)
def test_bodies_that_are_not_utf8_json_are_1301(type_name: str, body: bytes, detail: str) -> None:
    failure = refusal(type_name, body)
    assert (failure.code, failure.message) == (ApiStatus.PAYLOAD_ENCODING_ERROR, f"{ENCODING} ({detail})")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"values":[{"timestamp":"x","id":1}],"z":"\xfe"}', "a string is not UTF-8"),
        (b'{"values":[{"timestamp":1,"id":1,"p":"x"}],"z":"\xfe"}', "a string is not UTF-8"),
        (b'{"values":[{"timestamp":1,"id":1,"p":"\xff"}]}', "a string is not UTF-8"),
        (b'{"values":[{"timestamp":1,"id":1,"p":"x"}]} trailing', "JSON is malformed: trailing characters (byte 45)"),
        (b'{"values":[{"timestamp":1,"id":1,"x":1}, {', "Input data was truncated"),
    ],
)
def test_an_encoding_error_after_a_content_error_is_still_1301(body: bytes, detail: str) -> None:
    """The decoder stops at the first value of a wrong type; the rest of the body is still checked."""
    failure = refusal("meter", body)
    assert (failure.code, failure.message) == (ApiStatus.PAYLOAD_ENCODING_ERROR, f"{ENCODING} ({detail})")


def test_utf8_is_checked_across_slices_of_a_large_body() -> None:
    # A two-byte character straddling the first 1 MiB slice of the UTF-8 check.
    head = b'{"values":[{"timestamp":"x","id":1}],"z":"'
    filler = b"a" * ((1 << 20) - len(head) - 1)
    straddling = head + filler + "é".encode() + b'"}'
    assert straddling.index("é".encode()) == (1 << 20) - 1
    failure = refusal("meter", straddling)
    assert (failure.code, failure.message) == (
        ApiStatus.PAYLOAD_CONTENT_ERROR,
        f"{CONTENT}: values[0].timestamp: expected a non-negative integer, got a string",
    )
    # A byte that is not UTF-8 past the first slice.
    failure = refusal("meter", head + filler + b"aa\xff" + b'"}')
    assert (failure.code, failure.message) == (ApiStatus.PAYLOAD_ENCODING_ERROR, f"{ENCODING} (a string is not UTF-8)")


# ---- describe: msgspec's wording to the contract's ------------------------------------


@pytest.mark.parametrize(
    ("msgspec_message", "described"),
    [
        ("Expected `float | null`, got `str` - at `$.values[3].p`", "values[3].p: expected a number or null, got a string"),
        (
            "Expected `int`, got `float` - at `$.values[0].id`",
            "values[0].id: expected a non-negative integer, got a decimal number",
        ),
        ("Expected `object`, got `array`", "expected an object, got an array"),
        ("Expected `Uuid`, got `str` - at `$.u`", "u: expected Uuid, got a string"),
        ("Expected `int` >= 0 - at `$.values[0].timestamp`", "values[0].timestamp: expected a non-negative integer"),
        (f"Expected `int` < {TIMESTAMP_LIMIT_MS} - at `$.t`", f"t: {BELOW_LIMIT}"),
        (f"Expected `int` <= {TIMESTAMP_LIMIT_MS - 1} - at `$.t`", f"t: {BELOW_LIMIT}"),
        ("Expected `int | null` <= 4294967295 - at `$.a`", "a: expected an integer <= 4294967295"),
        ("Expected `int` >= 5 - at `$.x`", "x: expected an integer >= 5"),
        ("Expected `float` >= -1.7976931348623157e+308 - at `$[2]`", "[2]: expected a finite number"),
        ("Number out of range - at `$.values[1].p`", "values[1].p: expected a finite number"),
        (
            "Expected `str` of length <= 64 - at `$.values[0].values[0].label`",
            "values[0].values[0].label: expected a string of at most 64 characters",
        ),
        ("Expected `array` of length >= 1 - at `$.values[0].values`", "values[0].values: expected a non-empty array"),
        ("Expected `str` of length >= 2 - at `$.values[0].y`", "values[0].y: expected a string of length >= 2"),
        ("Expected `array` of length <= 3", "expected an array of length <= 3"),
        ("Object contains unknown field `z`", "z: unknown attribute"),
        ("Object contains unknown field `x` - at `$.values[1]`", "values[1].x: unknown attribute"),
        ("Object missing required field `id` - at `$.values[3]`", "values[3].id: missing required attribute"),
        ("Something unforeseen - at `$.values[0]`", "values[0]: something unforeseen"),
        ("Something unforeseen", "something unforeseen"),
        ("", "invalid value"),
    ],
)
def test_describe_words_msgspec_errors_the_contract_way(msgspec_message: str, described: str) -> None:
    assert payload.describe(msgspec.ValidationError(msgspec_message)) == described
