"""SQL that makes ClickHouse render v1 JSON records itself.

Results leave the engine as finished JSON text, one record per line, so a
GET turns no value into a Python object. Floats always carry a decimal point
or an exponent (100.0, not 100) so that typed clients see floats as floats;
unsigned integers are plain integers; strings are escaped by ClickHouse's
toJSONString; absent values are null.
"""

from __future__ import annotations

from collections.abc import Sequence

from storecast.catalog import Kind

# toString() of a Float64 switches to exponent notation from 1e21 on.
_FLOAT_JSON = "ifNull(if({x} = trunc({x}) AND abs({x}) < 1e21, concat(toString({x}), '.0'), toString({x})), 'null')"
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


def json_object(members: Sequence[tuple[str, str]]) -> str:
    """concat() of a JSON object from (key, JSON-text SQL) pairs; keys come from the catalog."""
    parts: list[str] = []
    for index, (key, value_sql) in enumerate(members):
        separator = "{" if index == 0 else ","
        parts.append(f"'{separator}\"{key}\":'")
        parts.append(value_sql)
    parts.append("'}'")
    return f"concat({', '.join(parts)})"


def json_string(sql: str) -> str:
    return _STRING_JSON.format(x=sql)


def json_array(lines: bytes) -> bytes:
    """The JSON array of records given one per line (TabSeparatedRaw output)."""
    return b"[" + lines.rstrip(b"\n").replace(b"\n", b",") + b"]"


def leading_timestamp(record_line: bytes) -> int:
    """The timestamp of a rendered record, which always comes first: {"timestamp":N,...}."""
    return int(record_line[record_line.index(b":") + 1 : record_line.index(b",")])
