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

from storecast.catalog import EQUIPMENT_TYPES, TARIFF, TIMESTAMP_LIMIT_MS, UINT32_MAX, Kind, RecordType
from storecast.services.lib import payload
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


DECODERS = {name: equipment_decoder(record_type) for name, record_type in EQUIPMENT_TYPES.items()} | {"tariff": tariff_decoder()}


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
    ("battery", record(b'"state":4e0'), "values[0].state: expected a non-negative integer or null, got a decimal number"),
    ("battery", record(b'"state":4.0'), "values[0].state: expected a non-negative integer or null, got a decimal number"),
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
    ("meter", record(b"", timestamp=b"1.0"), "values[0].timestamp: expected a non-negative integer, got a decimal number"),
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
