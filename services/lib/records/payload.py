"""Decoding and validation of v1 PUT bodies, shared by every service that stores.

msgspec decodes the JSON straight into typed structs built from the catalog,
whose types carry the bounds of services/lib/records/rules.py, so every type,
range and unknown-attribute rule is checked in C with the path of the
offending value; this module only words the error the contract's way
("values[3].p: expected a number, got a string"), a broken bound in its rule's
own words, as typed input words it.

An integral-valued number (`1.0`, `1e3`) counts as that integer wherever an
integer is expected (docs/api/v1.md §2, JSON Schema's `integer`). The decoder of a
body expects integers there, so a body without such floats costs nothing more;
one with them is decoded again by decoders built from the same types: one
where an integer field also takes a float that is a whole number within the
field's range (checked in C, with the path), then, once the body is known to
be valid, a lax one, which turns those floats into ints in C.
"""

from __future__ import annotations

import codecs
import functools
import math
import operator
import re
import types
import typing
from collections.abc import Callable, Sequence
from itertools import chain
from types import GenericAlias
from typing import Annotated, Any, TypeAlias

import msgspec
import numpy as np
from msgspec.structs import astuple

from services.lib.records import rules
from storecast.catalog import Attribute, RecordType
from storecast.status import ApiFailure, ApiStatus

# A body as a message carries it, or as PutProductionStream gathers it.
Body: TypeAlias = bytes | bytearray

# A struct field for msgspec.defstruct: (name, type) or (name, type, default).
Field = tuple[str, Any] | tuple[str, Any, Any]

Timestamp = rules.TIMESTAMP.annotated()
Uint32 = rules.UINT32.annotated()

_LOCATED = re.compile(r"^(?P<what>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?$", re.DOTALL)
_EXPECTED_GOT = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`$")
_BOUND = re.compile(r"^Expected `(?P<expected>[^`]+)` (?P<length>of length )?(?P<op>>=|<=|<|>) (?P<bound>\S+)$")
_FIELD = re.compile(r"^Object (?P<what>contains unknown|missing required) field `(?P<field>[^`]+)`$")


def _bound_words(json_type: str, op: str, bound: str) -> str:
    """The words of the rule whose bound msgspec states ("<=", "of length >=", ...), or the bound itself for one
    that no rule has."""
    number = float(bound) if json_type == "float" else int(bound)
    rule = rules.spelled(json_type, op, number)
    return rule.words if rule else f"expected {rules.TYPE_WORDS.get(json_type, json_type)} {op} {bound}"


def describe(error: msgspec.ValidationError) -> str:
    """ "values[3].p: expected a number, got a string" from msgspec's wording.

    msgspec's ValidationError carries its path only in its message (0.22 has no
    structured form), so the message is parsed; anything unforeseen is passed on.
    """
    located = _LOCATED.match(str(error))
    what, path = (located["what"], located["path"] or "") if located else (str(error), "")
    if match := _EXPECTED_GOT.match(what):
        words = rules.mismatch(match["expected"], match["got"])
    elif match := _BOUND.match(what):
        op = f"of length {match['op']}" if match["length"] else match["op"]
        words = _bound_words(match["expected"].split(" | ")[0], op, match["bound"])
    elif match := _FIELD.match(what):
        field = match["field"]
        path = f"{path}.{field}" if path else field
        words = rules.UNKNOWN_ATTRIBUTE if match["what"] == "contains unknown" else "missing required attribute"
    elif what == "Number out of range":
        words = rules.FINITE.words
    else:
        words = what[0].lower() + what[1:] if what else "invalid value"
    return f"{path}: {words}" if path else words


def _not_json(detail: str) -> ApiFailure:
    return ApiFailure(ApiStatus.PAYLOAD_ENCODING_ERROR, f"the body is not UTF-8 JSON ({detail})")


_UTF8_SLICE = 1 << 20


def _is_utf8(body: Body) -> bool:
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


def _closes_what_it_opens(body: Body) -> bool:
    """Whether every [ and { outside strings is closed, and no string is left open."""
    structure = np.frombuffer(_STRING.sub(b"", body), dtype=np.uint8)
    if (structure == ord('"')).any():
        return False
    steps = (structure == ord("[")).astype(np.int8) + (structure == ord("{")) - (structure == ord("]")) - (structure == ord("}"))
    depth = np.cumsum(steps, dtype=np.int64)
    return depth.size == 0 or (int(depth.min()) >= 0 and int(depth[-1]) == 0)


def _check_encoding(body: Body) -> None:
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


def decode(decoder: msgspec.json.Decoder[Any], body: Body) -> Sequence[Any]:
    """The records of a {"values": [...]} body, or the contract's 1301/1302/1303."""
    if not body.strip():
        raise ApiFailure(ApiStatus.PAYLOAD_EMPTY_ERROR, "the body is empty")
    decoded = _decoded(decoder, body, describe, floats_again=True)
    if decoded is None:
        decoded = _decode_integral_floats(decoder, body)
    values: Sequence[Any] | None = decoded.values
    if not values:
        raise rules.nothing_to_store()
    return values


def _decoded(
    decoder: msgspec.json.Decoder[Any], body: Body, words: Callable[[msgspec.ValidationError], str], floats_again: bool = False
) -> Any:
    """The decoded body, or 1301/1303; with `floats_again`, None if the first value refused is
    a float where an integer is expected (a body to decode again, taking integral floats)."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as error:
        if floats_again and _FLOAT_FOR_INT.match(str(error)):
            return None
        _check_encoding(body)
        raise ApiFailure(ApiStatus.PAYLOAD_CONTENT_ERROR, words(error)) from None
    except msgspec.DecodeError as error:
        raise _not_json(str(error)) from None
    except UnicodeDecodeError:
        # msgspec's error for a key or a string value that is not UTF-8.
        raise _not_json("a string is not UTF-8") from None


# ---- integral floats where integers are expected (docs/api/v1.md §2) ----------------------

# The first value of a body that the integer-only decoder refuses is a float where an integer is expected.
_FLOAT_FOR_INT = re.compile(r"^Expected `int(?: \| null)?`, got `float`(?: - at `[^`]*`)?$")
# An error of the float branch of an integer field: a fraction, or a value out of the field's range.
_FLOAT_BRANCH = re.compile(r"^Expected `float` (?:that's a multiple of 1\.0|(?P<op>>=|<=|<|>) (?P<bound>\S+))$")
_SEGMENT = re.compile(r"\.?(?P<name>[A-Za-z_][A-Za-z0-9_]*)|\[(?P<index>[0-9]+)\]")
# Every integer up to 2**53 is a float exactly; a float beyond may stand for several integers.
_EXACT = 2**53


def _integral_float(metadata: Sequence[Any]) -> Any:
    """The float branch of an integer field: whole numbers within the field's bounds and within
    ±2**53, where every float is exactly one integer."""
    lowest, highest = -_EXACT, _EXACT
    for meta in metadata:
        if isinstance(meta, msgspec.Meta):
            if meta.ge is not None:
                lowest = max(lowest, math.ceil(meta.ge))
            elif meta.gt is not None:
                lowest = max(lowest, math.floor(meta.gt) + 1)
            if meta.le is not None:
                highest = min(highest, math.floor(meta.le))
            elif meta.lt is not None:
                highest = min(highest, math.ceil(meta.lt) - 1)
    return Annotated[float, msgspec.Meta(ge=lowest, le=highest, multiple_of=1)]


def _taking_integral_floats(annotation: Any, structs: dict[type, type]) -> Any:
    """The type with every integer field also taking an integral float; structs rebuilt alike."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        if args[0] is int:
            return annotation | _integral_float(args[1:])
        return Annotated[(_taking_integral_floats(args[0], structs), *args[1:])]
    if origin in (typing.Union, types.UnionType):
        return functools.reduce(operator.or_, (_taking_integral_floats(a, structs) for a in args))
    if origin is list:
        return GenericAlias(list, (_taking_integral_floats(args[0], structs),))
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        if annotation not in structs:
            fields: list[Field] = []
            for field in msgspec.structs.fields(annotation):
                taken = _taking_integral_floats(field.type, structs)
                factory = field.default_factory
                default = field.default if factory is msgspec.NODEFAULT else msgspec.field(default_factory=factory)
                fields.append((field.name, taken) if field.required else (field.name, taken, default))
            config = annotation.__struct_config__
            structs[annotation] = msgspec.defstruct(
                annotation.__name__,
                fields,
                forbid_unknown_fields=config.forbid_unknown_fields,
                gc=config.gc,
                rename={f.name: f.encode_name for f in msgspec.structs.fields(annotation)},
            )
        return structs[annotation]
    return annotation


@functools.cache
def _integral_floats(decoder: msgspec.json.Decoder[Any]) -> tuple[msgspec.json.Decoder[Any], msgspec.json.Decoder[Any]]:
    """The decoder that validates with integral floats taken, and the lax one that turns them into ints."""
    return (
        msgspec.json.Decoder(_taking_integral_floats(decoder.type, {})),
        msgspec.json.Decoder(decoder.type, strict=False),
    )


def _decode_integral_floats(decoder: msgspec.json.Decoder[Any], body: Body) -> Any:
    """The body decoded as `decoder` would, with integral floats where integers are expected.

    Lax decoding alone would also take "1" for 1 and "1.5" for 1.5; it runs only
    on a body the validating decoder has accepted, where the only values of a
    type other than expected are integral floats (in range) for integers, and
    it turns those into ints: -0.0 into 0.
    """
    validating, lax = _integral_floats(decoder)
    _decoded(validating, body, functools.partial(_describe_float_for_int, body_type=validating.type, body=body))
    return lax.decode(body)


def _describe_float_for_int(error: msgspec.ValidationError, body_type: Any, body: Body) -> str:
    """describe(), with a float refused for an integer field worded as an integer would be.

    A fraction is "expected a non-negative integer, got a decimal number", as any
    float was before integral ones were taken, even out of range (-1.5); an
    integral float out of range is refused as the integer it stands for (-1.0 as -1).
    Called on a body known to be JSON.
    """
    located = _LOCATED.match(str(error))
    path: str | None = located["path"] if located else None
    branch = _FLOAT_BRANCH.match(located["what"]) if located else None
    segments = _segments(path) if path else None
    if branch is None or segments is None:
        return describe(error)
    field = _type_at(msgspec.inspect.type_info(body_type), segments)
    members = field.types if isinstance(field, msgspec.inspect.UnionType) else ()
    if not any(isinstance(member, msgspec.inspect.IntType) for member in members):
        return describe(error)
    op, bound = branch["op"], branch["bound"]
    if op is not None and _is_integral(body, segments):
        return f"{path}: {_bound_words('int', op, str(int(float(bound))))}"
    optional = any(isinstance(member, msgspec.inspect.NoneType) for member in members)
    return f"{path}: {rules.mismatch('int | null' if optional else 'int', 'float')}"


def _is_integral(body: Body, segments: Sequence[str | int]) -> bool:
    """Whether the number at the path is a whole one, reading only what leads to it."""
    node: Body | msgspec.Raw = body
    try:
        for segment in segments:
            if isinstance(segment, str):
                node = msgspec.json.decode(node, type=dict[str, msgspec.Raw])[segment]
            else:
                node = msgspec.json.decode(node, type=list[msgspec.Raw])[segment]
    except RecursionError:
        # Elsewhere in the body, an array or object nested deeper than msgspec follows.
        return True
    return float(msgspec.json.decode(node)).is_integer()


def _segments(path: str) -> list[str | int] | None:
    """ "values[0].values[3].timestamp" as ["values", 0, "values", 3, "timestamp"]; None if not of that form."""
    segments: list[str | int] = []
    end = 0
    for match in _SEGMENT.finditer(path):
        if match.start() != end:
            return None
        segments.append(match["name"] if match["name"] is not None else int(match["index"]))
        end = match.end()
    return segments if end == len(path) else None


def _type_at(info: msgspec.inspect.Type, segments: Sequence[str | int]) -> msgspec.inspect.Type | None:
    """The type of the value at the path, from the body's type."""
    for segment in segments:
        if isinstance(info, msgspec.inspect.UnionType):
            # `values` may be null: look through to the one type that is not.
            others = [member for member in info.types if not isinstance(member, msgspec.inspect.NoneType)]
            info = others[0] if len(others) == 1 else info
        if isinstance(segment, str) and isinstance(info, msgspec.inspect.StructType):
            found = next((f.type for f in info.fields if f.encode_name == segment), None)
            if found is None:
                return None
            info = found
        elif isinstance(segment, int) and isinstance(info, msgspec.inspect.ListType):
            info = info.item_type
        else:
            return None
    return info


# ---- a large body, in slices ----------------------------------------------------------------

# A body from this size on is decoded a slice of its records at a time (`RecordTable`).
SLICED_BODY_BYTES = 4 << 20
SLICE_RECORDS = 2048


class _RawValues(msgspec.Struct, forbid_unknown_fields=True):
    values: list[msgspec.Raw] | None = None


_RAW_VALUES = msgspec.json.Decoder(_RawValues)


class RecordTable:
    """A large body's records as one float64 array per field, for records whose fields are all numbers.

    Decoded whole, a body becomes a struct and a float object per value: some
    nine times its JSON bytes at once, and slower to build than the body is to
    read. Here msgspec first finds each record's bytes (no value is built),
    then decodes them SLICE_RECORDS at a time with the very record type of the
    whole body, each slice's values copied into the arrays before the next: the
    same checks, the same values (null as NaN), a fraction of the memory.

    Any body this does not take (an error anywhere, an integral float where an
    integer is expected, no records) is left to `decode`, so that every refusal
    is worded as it always is."""

    def __init__(self, record_struct: type[msgspec.Struct]) -> None:
        self._records = msgspec.json.Decoder(GenericAlias(list, (record_struct,)))
        self._fields = len(record_struct.__struct_fields__)

    def decode(self, body: Body, slice_records: int = SLICE_RECORDS) -> np.ndarray | None:
        """[field, record] float64, or None for `decode` to answer."""
        try:
            values = _RAW_VALUES.decode(body).values
            if not values:
                return None
            table = np.empty((self._fields, len(values)), dtype=np.float64)
            for start in range(0, len(values), slice_records):
                records = self._records.decode(b"[" + b",".join(values[start : start + slice_records]) + b"]")
                table[:, start : start + len(records)] = records_table(records, self._fields)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return None
        return table


def records_table(records: Sequence[msgspec.Struct], fields: int) -> np.ndarray:
    """Decoded records whose fields are all numbers as [field, record] float64, null as NaN.

    One pass over the records' values into the array, without a tuple per field
    or a list per record: 1.6 ms for 5,000 meter-3p records against 2.8 ms by columns
    of tuples. Timestamps (before 2200) and uint32 values are exact as float64."""
    try:
        flat = np.fromiter(chain.from_iterable(map(astuple, records)), dtype=np.float64, count=len(records) * fields)
    except TypeError:  # a null, which fromiter does not take and np.array makes NaN
        flat = np.array(list(map(astuple, records)), dtype=np.float64)
    return np.ascontiguousarray(flat.reshape(len(records), fields).T)


def body_decoder(record_struct: type[msgspec.Struct], name: str) -> msgspec.json.Decoder[Any]:
    records = GenericAlias(list, (record_struct,))
    body = msgspec.defstruct(f"{name}_body", [("values", records | None, None)], forbid_unknown_fields=True)
    return msgspec.json.Decoder(body)


def optional_fields(attributes: Sequence[Attribute]) -> list[Field]:
    """Every attribute optional: absent is stored and returned as null."""
    return [(a.name, rules.attribute_values(a).annotated() | None, None) for a in attributes]


def record_struct(name: str, key_fields: list[Field], record_type: RecordType) -> type[msgspec.Struct]:
    """A struct with the required key fields, then every attribute optional (absent = null)."""
    # gc=False: thousands of records per body need no cycle tracking.
    return msgspec.defstruct(name, key_fields + optional_fields(record_type.attributes), forbid_unknown_fields=True, gc=False)


def periods_field(period_struct: type[msgspec.Struct]) -> tuple[str, Any]:
    """The required `values` list of a vector's periods, bound by rules.PERIODS."""
    return ("values", rules.PERIODS.annotated(GenericAlias(list, (period_struct,))))
