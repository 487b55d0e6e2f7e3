"""SQL that makes ClickHouse render v1 JSON records itself, and the same bytes rendered in Python.

Results leave the engine as a finished JSON array, one record per line, so a
GET turns no value into a Python object. Floats always carry a decimal point
or an exponent (100.0, not 100) so that typed clients see floats as floats;
unsigned integers are plain integers; strings are escaped by ClickHouse's
toJSONString; absent values are null.

A few answers are rendered in Python instead (`render_array`: reads from the
hot tier, aggregations from rollup cells, a few buckets each), and must be
indistinguishable from the engine's, byte for byte. So the float text is
ClickHouse's `toString(Float64)`: the shortest digits that read back to the
same double, in positional notation for decimal exponents in [-6, 21[ and
`<d>[.<ddd>]e<exp>` outside (1e-7, 1.5e22: no `+`, no padding), plus `.0` on an
integral value under 1e21, as the engine's rendering adds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from storecast.catalog import Kind

# toString() of a Float64 switches to exponent notation from 1e21 on. Stored
# floats are finite; an average whose sum overflows is not, and JSON has no
# inf: it is null (isFinite(NULL) is NULL, which `if` takes as false).
_FLOAT_JSON = "if(isFinite({x}), concat(toString({x}), if({x} = trunc({x}) AND abs({x}) < 1e21, '.0', '')), 'null')"
_INT_JSON = "ifNull(toString({x}), 'null')"
_STRING_JSON = "ifNull(toJSONString({x}), 'null')"


def json_value(sql: str, kind: Kind | None) -> str:
    """A JSON text for the value of `sql`: a float, an integer or a string (kind None: a non-null integer)."""
    if kind is Kind.FLOAT:
        return _FLOAT_JSON.format(x=sql)
    if kind is Kind.UNSIGNED_INT:
        return _INT_JSON.format(x=sql)
    if kind is Kind.STRING:
        return json_string(sql)
    return f"toString({sql})"


@dataclass(frozen=True, slots=True)
class Member:
    """A member of a rendered JSON object: its key (from the catalog), the SQL of its
    value, and how that value becomes JSON (`json_value`'s kind; `raw`: it already is)."""

    key: str
    sql: str
    kind: Kind | None = None
    raw: bool = False
    # (array, 1-based index) when `sql` is that element of an array column: a run of
    # consecutive elements is rendered from one slice of it, not one expression each.
    element: tuple[str, int] | None = None


def json_object(members: Sequence[Member]) -> str:
    """concat() of a JSON object.

    A run of float members is rendered by one arrayMap over an array of them:
    the engine analyses a query's expression nodes one by one, every query, and
    thirteen copies of the float formatting cost more than reading the record
    (about 15 ms of a 1-record read). A run of elements of one array is one slice
    of it: thirteen `a[i]` cost an aggregation from rollup cells about 8 ms.
    """
    parts: list[str] = []
    index = 0
    while index < len(members):
        run = 1
        while members[index].kind is Kind.FLOAT and index + run < len(members) and members[index + run].kind is Kind.FLOAT:
            run += 1
        keys = [_key(m.key, first=i == 0) for i, m in enumerate(members[index : index + run], start=index)]
        if run > 1:
            values = _array(members[index : index + run])
            parts.append(
                f"arrayStringConcat(arrayMap((k, x) -> concat(k, {_FLOAT_JSON.format(x='x')}), [{', '.join(keys)}], {values}))"
            )
        else:
            member = members[index]
            parts += [keys[0], member.sql if member.raw else json_value(member.sql, member.kind)]
        index += run
    parts.append("'}'")
    return f"concat({', '.join(parts)})"


def _array(run: Sequence[Member]) -> str:
    """The SQL of an array of the members' values: a slice of the array they are consecutive elements of, if they are."""
    first = run[0].element
    if first is not None and all(m.element == (first[0], first[1] + i) for i, m in enumerate(run)):
        return f"arraySlice({first[0]}, {first[1]}, {len(run)})"
    return f"[{', '.join(m.sql for m in run)}]"


def select_list(members: Sequence[Member]) -> str:
    """The members as columns of their own, named by their keys: the typed form of `json_object`."""
    return ", ".join(f"{member.sql} AS `{member.key}`" for member in members)


def _key(key: str, first: bool) -> str:
    """The SQL string literal opening a member: `{"key":` or `,"key":`."""
    return f"'{'{' if first else ','}\"{key}\":'"


def json_string(sql: str) -> str:
    return _STRING_JSON.format(x=sql)


# Output settings under which a query of one String column (a rendered record
# per row) comes back as the JSON array of those records, one per line. Every
# store connection carries them (services/lib/store/engine.py).
JSON_ARRAY_FORMAT = "CustomSeparated"
JSON_ARRAY_SETTINGS = {
    "format_custom_escaping_rule": "Raw",
    "format_custom_result_before_delimiter": "[",
    "format_custom_row_after_delimiter": "",
    "format_custom_row_between_delimiter": ",\n",
    "format_custom_result_after_delimiter": "]",
}
_BETWEEN = b",\n"


@dataclass(frozen=True, slots=True)
class RenderedArray:
    results: bytes  # a JSON array
    count: int
    first_left_out: bytes | None  # the record after the cut, if the array was cut


def limit_array(array: bytes, limit: int) -> RenderedArray:
    """At most `limit` records of a rendered array (queried with LIMIT limit + 1)."""
    # A newline only ever comes from _BETWEEN (JSON escapes a string's), and bytes.count of a single
    # byte runs CPython's one-character loop: a third of the two-byte pattern's time on a 4 MB answer.
    count = array.count(b"\n") + 1 if len(array) > 2 else 0
    if count <= limit:
        return RenderedArray(array, count, None)
    cut = array.rindex(_BETWEEN)
    return RenderedArray(array[:cut] + b"]", limit, array[cut + len(_BETWEEN) : -1])


def array_of(records: Sequence[bytes], limit: int) -> RenderedArray:
    """limit_array's answer from the rendered records themselves (limit + 1 of them at most)."""
    if len(records) <= limit:
        return RenderedArray(b"[" + _BETWEEN.join(records) + b"]", len(records), None)
    return RenderedArray(b"[" + _BETWEEN.join(records[:limit]) + b"]", limit, records[limit])


def leading_timestamp(record: bytes) -> int:
    """The timestamp of a rendered record, which always comes first: {"timestamp":N,...}."""
    return int(record[record.index(b":") + 1 : record.index(b",")])


# A streamed answer's format: one rendered record per line. The engine sends it
# block by block, as JSON_ARRAY_FORMAT's header and footer would not let it.
# Its escaping leaves a record of numbers, nulls and the catalog's keys as it
# is: only a string attribute could hold a backslash or a quote, and only
# tariffs have one (records that stream are production records, checked in
# services/query/service.py).
JSON_LINES_FORMAT = "TabSeparated"


class ArrayPieces:
    """The JSON array (limit_array's form: `[r1,\nr2]`) of the rendered records `read`
    returns line by line in pieces of any size, piece for piece; `count` once iterated."""

    def __init__(self, read: Callable[[], bytes]) -> None:
        self._read = read
        self.count = 0

    def __iter__(self) -> Iterator[bytes]:
        # Each piece is held until the next is read: the last line's newline closes the array.
        held: bytes | None = None
        while piece := self._read():
            self.count += piece.count(b"\n")
            piece = piece.replace(b"\n", _BETWEEN)
            if held is None:
                held = b"[" + piece
                continue
            yield held
            held = piece
        yield b"[]" if held is None else held[: -len(_BETWEEN)] + b"]"


def engine_float(value: float) -> str:
    """ClickHouse's toString of a finite Float64."""
    text = repr(value)
    if text in ("0.0", "-0.0"):
        return text[:-2]
    sign = "-" if text[0] == "-" else ""
    mantissa, _, exponent = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    if fraction == "0":
        fraction = ""
    every_digit = whole + fraction
    significant = every_digit.lstrip("0")
    # The decimal point sits `point` digits after the first significant one.
    point = len(whole) + (int(exponent) if exponent else 0) - (len(every_digit) - len(significant))
    digits = significant.rstrip("0") or "0"
    count = len(digits)
    if count <= point <= 21:
        return sign + digits + "0" * (point - count)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    return sign + digits[0] + ("." + digits[1:] if count > 1 else "") + "e" + str(point - 1)


def _json_float(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        return "null"
    text = engine_float(value)
    return text + ".0" if value == int(value) and abs(value) < 1e21 else text


def _json_value(kind: Kind) -> Callable[[float], str]:
    if kind is Kind.FLOAT:
        return _json_float
    return lambda value: "null" if value != value else str(int(value))


def render_array(
    timestamps: Sequence[int], record_id: int, keys: Sequence[str], kinds: Sequence[Kind], columns: Sequence[np.ndarray]
) -> bytes:
    """The JSON array JSON_ARRAY_FORMAT makes of these records (NaN: null), rendered in Python."""
    formatters = [_json_value(kind) for kind in kinds]
    texts = [[format_(value) for value in column.tolist()] for format_, column in zip(formatters, columns)]
    records = []
    for row, stamp in enumerate(timestamps):
        members = "".join(f',"{key}":{values[row]}' for key, values in zip(keys, texts))
        records.append(f'{{"timestamp":{stamp},"id":{record_id}{members}}}')
    return ("[" + ",\n".join(records) + "]").encode()
