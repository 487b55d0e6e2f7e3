"""SQL that makes ClickHouse render v1 JSON records itself.

Results leave the engine as finished JSON text, one record per line, so a
GET turns no value into a Python object. Floats always carry a decimal point
or an exponent (100.0, not 100) so that typed clients see floats as floats;
unsigned integers are plain integers; absent values are null.
"""

from __future__ import annotations

from collections.abc import Sequence

from storecast.catalog import Kind

# toString() of a Float64 switches to exponent notation from 1e21 on.
_FLOAT_JSON = "ifNull(if({x} = trunc({x}) AND abs({x}) < 1e21, concat(toString({x}), '.0'), toString({x})), 'null')"
_INT_JSON = "ifNull(toString({x}), 'null')"
_STRING_JSON = "toJSONString({x})"


def json_value(sql: str, kind: Kind | None) -> str:
    """A JSON text for the value of `sql`: a float, an integer (kind None: not nullable), or a string."""
    if kind is Kind.FLOAT:
        return _FLOAT_JSON.format(x=sql)
    if kind is Kind.UNSIGNED_INT:
        return _INT_JSON.format(x=sql)
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
