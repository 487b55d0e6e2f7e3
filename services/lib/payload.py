"""Decoding and validation of v1 PUT bodies, shared by every service that stores.

msgspec decodes the JSON straight into typed structs built from the catalog,
so every type, range and unknown-attribute rule is checked in C with the
path of the offending value; this module only words the error the contract's
way ("values[3].p: expected a number, got a string").
"""

from __future__ import annotations

import codecs
import re
import sys
from collections.abc import Sequence
from types import GenericAlias
from typing import Annotated, Any

import msgspec
import numpy as np

from storecast.catalog import TIMESTAMP_LIMIT_MS, UINT32_MAX, Attribute, Kind, RecordType
from storecast.status import ApiFailure, ApiStatus

# A struct field for msgspec.defstruct: (name, type) or (name, type, default).
Field = tuple[str, Any] | tuple[str, Any, Any]

Timestamp = Annotated[int, msgspec.Meta(ge=0, lt=TIMESTAMP_LIMIT_MS)]
Uint32 = Annotated[int, msgspec.Meta(ge=0, le=UINT32_MAX)]
Finite = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]

ATTRIBUTE_TYPES: dict[Kind, Any] = {Kind.FLOAT: Finite, Kind.UNSIGNED_INT: Uint32, Kind.STRING: str}


def attribute_type(attribute: Attribute) -> Any:
    """The decoded type of an attribute; a STRING one carries its length limit (in characters)."""
    if attribute.kind is Kind.STRING and attribute.max_length:
        return Annotated[str, msgspec.Meta(max_length=attribute.max_length)]
    return ATTRIBUTE_TYPES[attribute.kind]


_TYPE_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a decimal number",
    "bool": "a boolean",
    "null": "null",
    "array": "an array",
    "object": "an object",
}
_EXPECTED_WORDS = {
    "int": "a non-negative integer",
    "float": "a number",
    "float | null": "a number or null",
    "int | null": "a non-negative integer or null",
    "str": "a string",
    "str | null": "a string or null",
    "object": "an object",
    "array": "an array",
    "array | null": "an array",
}
_LOCATED = re.compile(r"^(?P<what>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?$", re.DOTALL)
_EXPECTED_GOT = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`$")
_CONSTRAINT = re.compile(r"^Expected `(?P<expected>[^`]+)` (?P<op>>=|<=|<|>) (?P<bound>\S+)$")
_LENGTH = re.compile(r"^Expected `(?P<expected>str|array)` of length (?P<op>>=|<=) (?P<bound>[0-9]+)$")
_FIELD = re.compile(r"^Object (?P<what>contains unknown|missing required) field `(?P<field>[^`]+)`$")


def _constraint_words(expected: str, op: str, bound: str) -> str:
    if expected.startswith("float"):
        return "expected a finite number"
    if bound == "0" and op == ">=":
        return "expected a non-negative integer"
    if bound in (str(TIMESTAMP_LIMIT_MS), str(TIMESTAMP_LIMIT_MS - 1)):
        return f"expected a timestamp below {TIMESTAMP_LIMIT_MS} (2200-01-01T00:00:00Z)"
    return f"expected an integer {op} {bound}"


def _length_words(expected: str, op: str, bound: str) -> str:
    if expected == "str" and op == "<=":
        return f"expected a string of at most {bound} characters"
    if expected == "array" and op == ">=" and bound == "1":
        return "expected a non-empty array"
    return f"expected {_TYPE_WORDS[expected]} of length {op} {bound}"


def describe(error: msgspec.ValidationError) -> str:
    """ "values[3].p: expected a number, got a string" from msgspec's wording.

    msgspec's ValidationError carries its path only in its message (0.22 has no
    structured form), so the message is parsed; anything unforeseen is passed on.
    """
    located = _LOCATED.match(str(error))
    what, path = (located["what"], located["path"] or "") if located else (str(error), "")
    if match := _EXPECTED_GOT.match(what):
        expected = _EXPECTED_WORDS.get(match["expected"], match["expected"])
        words = f"expected {expected}, got {_TYPE_WORDS.get(match['got'], match['got'])}"
    elif match := _CONSTRAINT.match(what):
        words = _constraint_words(match["expected"], match["op"], match["bound"])
    elif match := _LENGTH.match(what):
        words = _length_words(match["expected"], match["op"], match["bound"])
    elif match := _FIELD.match(what):
        field = match["field"]
        path = f"{path}.{field}" if path else field
        words = "unknown attribute" if match["what"] == "contains unknown" else "missing required attribute"
    elif what == "Number out of range":
        words = "expected a finite number"
    else:
        words = what[0].lower() + what[1:] if what else "invalid value"
    return f"{path}: {words}" if path else words


def _not_json(detail: str) -> ApiFailure:
    return ApiFailure(ApiStatus.PAYLOAD_ENCODING_ERROR, f"the body is not UTF-8 JSON ({detail})")


_UTF8_SLICE = 1 << 20


def _is_utf8(body: bytes) -> bool:
    # In slices, so that a large body never becomes one large str.
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(body)
    try:
        for start in range(0, len(body), _UTF8_SLICE):
            decoder.decode(view[start : start + _UTF8_SLICE])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _closes_what_it_opens(body: bytes) -> bool:
    """Whether every [ and { outside strings is closed, and no string is left open."""
    structure = np.frombuffer(_STRING.sub(b"", body), dtype=np.uint8)
    if (structure == ord('"')).any():
        return False
    steps = (structure == ord("[")).astype(np.int8) + (structure == ord("{")) - (structure == ord("]")) - (structure == ord("}"))
    depth = np.cumsum(steps, dtype=np.int64)
    return depth.size == 0 or (int(depth.min()) >= 0 and int(depth[-1]) == 0)


def _check_encoding(body: bytes) -> None:
    """1301 if the body as a whole is not UTF-8 JSON.

    msgspec stops at the first value of a wrong type, before it has read the
    rest of the body, and never reads a string refused for its type.
    """
    try:
        # Only skims the text: no value is built.
        msgspec.json.decode(body, type=msgspec.Raw)
    except msgspec.DecodeError as error:
        raise _not_json(str(error)) from None
    except RecursionError:
        # Nested deeper than msgspec follows, which no valid body is: a content
        # error, once the body is known to close what it opens.
        if not _closes_what_it_opens(body):
            raise _not_json("an array or object is not closed") from None
    if not _is_utf8(body):
        raise _not_json("a string is not UTF-8")


def decode(decoder: msgspec.json.Decoder[Any], body: bytes) -> Sequence[Any]:
    """The records of a {"values": [...]} body, or the contract's 1301/1302/1303."""
    if not body.strip():
        raise ApiFailure(ApiStatus.PAYLOAD_EMPTY_ERROR, "the body is empty")
    try:
        decoded = decoder.decode(body)
    except msgspec.ValidationError as error:
        _check_encoding(body)
        raise ApiFailure(ApiStatus.PAYLOAD_CONTENT_ERROR, describe(error)) from None
    except msgspec.DecodeError as error:
        raise _not_json(str(error)) from None
    except UnicodeDecodeError:
        # msgspec's error for a key or a string value that is not UTF-8.
        raise _not_json("a string is not UTF-8") from None
    values: Sequence[Any] | None = decoded.values
    if not values:
        raise ApiFailure(ApiStatus.PAYLOAD_EMPTY_ERROR, "`values` is missing or empty")
    return values


def body_decoder(record_struct: type[msgspec.Struct], name: str) -> msgspec.json.Decoder[Any]:
    records = GenericAlias(list, (record_struct,))
    body = msgspec.defstruct(f"{name}_body", [("values", records | None, None)], forbid_unknown_fields=True)
    return msgspec.json.Decoder(body)


def optional_fields(attributes: Sequence[Attribute]) -> list[Field]:
    """Every attribute optional: absent is stored and returned as null."""
    return [(a.name, attribute_type(a) | None, None) for a in attributes]


def record_struct(name: str, key_fields: list[Field], record_type: RecordType) -> type[msgspec.Struct]:
    """A struct with the required key fields, then every attribute optional (absent = null)."""
    # gc=False: thousands of records per body need no cycle tracking.
    return msgspec.defstruct(name, key_fields + optional_fields(record_type.attributes), forbid_unknown_fields=True, gc=False)


def periods_field(period_struct: type[msgspec.Struct]) -> tuple[str, Any]:
    """The required, non-empty `values` list of a vector's periods."""
    return ("values", Annotated[GenericAlias(list, (period_struct,)), msgspec.Meta(min_length=1)])
