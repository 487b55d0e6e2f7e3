"""The SQL that renders v1 JSON records in the engine: its shape, and the JSON text it makes.

The text is checked by evaluating rendered objects over literal values with
chDB, only as `chdb://memory`: a process holds one engine path and the unit
tests share the pytest process.
"""

from __future__ import annotations

import json
import re

import pytest
from clickhouse_connect.driver.client import Client

from services.lib.reads.render import (
    JSON_ARRAY_FORMAT,
    JSON_ARRAY_SETTINGS,
    JSON_LINES_FORMAT,
    ArrayPieces,
    Member,
    RenderedArray,
    json_object,
    json_string,
    json_value,
    leading_timestamp,
    limit_array,
)
from storecast.catalog import EQUIPMENT_TYPES, Kind

FLOAT_P = "if(isFinite(p), concat(toString(p), if(p = trunc(p) AND abs(p) < 1e21, '.0', '')), 'null')"
FLOAT_X = "if(isFinite(x), concat(toString(x), if(x = trunc(x) AND abs(x) < 1e21, '.0', '')), 'null')"
NULL_FLOAT = "CAST(NULL AS Nullable(Float64))"


def evaluate(engine: Client, sql: str) -> str:
    """The text of a one-row, one-column SELECT of `sql`."""
    return engine.raw_query(f"SELECT {sql}", fmt="TabSeparatedRaw").decode().removesuffix("\n")


def members_of(kind: Kind | None, *values: str) -> list[Member]:
    return [Member(f"k{i}", value, kind) for i, value in enumerate(values)]


# ---- SQL shape --------------------------------------------------------------------


def test_json_value_by_kind() -> None:
    assert json_value("p", Kind.FLOAT) == FLOAT_P
    assert json_value("`state`", Kind.UNSIGNED_INT) == "ifNull(toString(`state`), 'null')"
    assert json_value("`label`", Kind.STRING) == "ifNull(toJSONString(`label`), 'null')"
    assert json_string("`label`") == json_value("`label`", Kind.STRING)
    assert json_value("id", None) == "toString(id)"  # a non-null integer


def test_an_object_of_single_members() -> None:
    sql = json_object([Member("timestamp", "timestamp"), Member("id", "id"), Member("p", "p", Kind.FLOAT)])
    assert sql == f"concat('{{\"timestamp\":', toString(timestamp), ',\"id\":', toString(id), ',\"p\":', {FLOAT_P}, '}}')"


def test_a_run_of_floats_is_one_array_map() -> None:
    sql = json_object([Member("id", "id"), Member("p", "`p`", Kind.FLOAT), Member("q", "`q`", Kind.FLOAT)])
    assert sql == (
        "concat('{\"id\":', toString(id), "
        f"arrayStringConcat(arrayMap((k, x) -> concat(k, {FLOAT_X}), [',\"p\":', ',\"q\":'], [`p`, `q`])), '}}')"
    )


def test_a_run_of_floats_may_open_the_object() -> None:
    sql = json_object([Member("a", "1.0", Kind.FLOAT), Member("b", "2.0", Kind.FLOAT)])
    assert "['{\"a\":', ',\"b\":'], [1.0, 2.0]" in sql


def test_runs_are_split_by_other_members() -> None:
    battery = EQUIPMENT_TYPES["battery"]  # eight floats, then an unsigned integer
    sql = json_object([Member("timestamp", "timestamp"), *(Member(a.name, f"`{a.name}`", a.kind) for a in battery.attributes)])
    assert sql.count("arrayMap") == 1
    assert (
        "[`soc`, `e`, `p`, `p_ch`, `p_disch`, `q`, `q_max`, `q_min`])), ',\"state\":', ifNull(toString(`state`), 'null')" in sql
    )
    alternating = json_object(
        [
            Member("p", "p", Kind.FLOAT),
            Member("s", "s", Kind.UNSIGNED_INT),
            Member("q", "q", Kind.FLOAT),
            Member("r", "r", Kind.FLOAT),
        ]
    )
    assert alternating.count("arrayMap") == 1
    assert alternating.startswith(f"concat('{{\"p\":', {FLOAT_P}, ',\"s\":', ifNull(toString(s), 'null'), arrayStringConcat(")
    assert "[',\"q\":', ',\"r\":'], [q, r]" in alternating
    two_runs = json_object(members_of(Kind.FLOAT, "a", "b") + members_of(Kind.STRING, "c") + members_of(Kind.FLOAT, "d", "e"))
    assert two_runs.count("arrayMap") == 2


def test_thirteen_floats_are_one_array_map() -> None:
    meter_3p = EQUIPMENT_TYPES["meter-3p"]
    sql = json_object(
        [Member("timestamp", "timestamp"), Member("id", "id")]
        + [Member(a.name, f"`{a.name}`", a.kind) for a in meter_3p.attributes]
    )
    assert len(meter_3p.attributes) == 13
    assert sql.count("arrayMap") == 1
    assert sql.count("trunc(") == 1


def test_keys_keep_their_order() -> None:
    members = [
        Member(name, "1", kind)
        for name, kind in [("z", None), ("a", Kind.FLOAT), ("m", Kind.FLOAT), ("b", Kind.STRING), ("y", None)]
    ]
    assert re.findall(r"\"(\w+)\":", json_object(members)) == ["z", "a", "m", "b", "y"]


def test_a_raw_member_is_passed_as_is() -> None:
    sql = json_object([Member("id", "id"), Member("values", "concat('[', x, ']')", raw=True)])
    assert sql == "concat('{\"id\":', toString(id), ',\"values\":', concat('[', x, ']'), '}')"


# ---- the JSON text, evaluated -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "text", "value"),
    [
        ("toFloat64(100)", "100.0", 100.0),  # a float always has a decimal point...
        ("toFloat64(0)", "0.0", 0.0),
        ("-0.", "-0.0", -0.0),
        ("toFloat64(4294967295)", "4294967295.0", 4294967295.0),
        ("1e20", "100000000000000000000.0", 1e20),
        ("1e21", "1e21", 1e21),  # ...or an exponent, which toString() switches to from 1e21 on
        ("-1e22", "-1e22", -1e22),
        ("1.7976931348623157e308", "1.7976931348623157e308", 1.7976931348623157e308),
        ("1.5", "1.5", 1.5),
        ("-2.25", "-2.25", -2.25),
        ("0.1", "0.1", 0.1),
        ("123456789.125", "123456789.125", 123456789.125),
        ("1e-7", "1e-7", 1e-7),
        ("5e-324", "5e-324", 5e-324),
        ("CAST(7 AS Nullable(Float64))", "7.0", 7.0),
        (NULL_FLOAT, "null", None),
        # JSON has no inf or nan: an average whose sum overflows is null.
        ("arrayAvg([1.7e308, 1.7e308])", "null", None),
        ("-inf", "null", None),
        ("nan", "null", None),
    ],
)
def test_floats_render_as_json_floats(engine: Client, sql: str, text: str, value: float | None) -> None:
    assert evaluate(engine, json_value(sql, Kind.FLOAT)) == text
    # The same text from a run's arrayMap, over an array of the value and a null.
    in_run = evaluate(engine, json_object([Member("a", sql, Kind.FLOAT), Member("b", NULL_FLOAT, Kind.FLOAT)]))
    assert in_run == f'{{"a":{text},"b":null}}'
    decoded = json.loads(in_run)["a"]
    assert decoded == value and type(decoded) is type(value)


@pytest.mark.parametrize(
    ("sql", "text"),
    [
        ("toUInt32(0)", "0"),
        ("toUInt32(4294967295)", "4294967295"),
        ("CAST(NULL AS Nullable(UInt32))", "null"),
        ("CAST(3 AS Nullable(UInt32))", "3"),
    ],
)
def test_unsigned_integers_render_as_json_integers(engine: Client, sql: str, text: str) -> None:
    assert evaluate(engine, json_value(sql, Kind.UNSIGNED_INT)) == text


@pytest.mark.parametrize(
    "value",
    [
        "",
        "on-peak",
        'a "quoted" word',
        "back\\slash",
        "slash/",
        "line\nbreak\ttab\r",
        "\x01\x1f",
        "é€😀",
        "'single'",
        "</script>",
    ],
)
def test_strings_render_as_escaped_json_strings(engine: Client, value: str) -> None:
    text = engine.raw_query(
        f"SELECT {json_object([Member('label', '{v:String}', Kind.STRING)])}", parameters={"v": value}, fmt="TabSeparatedRaw"
    )
    rendered = text.decode().removesuffix("\n")
    assert "\n" not in rendered and "\t" not in rendered  # control characters are escaped
    assert json.loads(rendered) == {"label": value}


def test_a_null_string_is_null(engine: Client) -> None:
    assert evaluate(engine, json_value("CAST(NULL AS Nullable(String))", Kind.STRING)) == "null"
    assert evaluate(engine, json_value("'a\"b'", Kind.STRING)) == '"a\\"b"'


def test_a_whole_record_renders_to_the_json_a_client_reads(engine: Client) -> None:
    members = [
        Member("timestamp", "toInt64(1700000000000)"),
        Member("id", "toUInt32(7)"),
        Member("p", "toFloat64(100)", Kind.FLOAT),
        Member("q", NULL_FLOAT, Kind.FLOAT),
        Member("f", "49.95", Kind.FLOAT),
        Member("state", "CAST(2 AS Nullable(UInt32))", Kind.UNSIGNED_INT),
        Member("label", "'off-peak'", Kind.STRING),
        Member("u", "1e21", Kind.FLOAT),
        Member("values", "'[1,2]'", raw=True),
    ]
    text = evaluate(engine, json_object(members))
    assert text == (
        '{"timestamp":1700000000000,"id":7,"p":100.0,"q":null,"f":49.95,"state":2,"label":"off-peak","u":1e21,"values":[1,2]}'
    )
    record = json.loads(text)
    assert list(record) == [m.key for m in members]
    assert isinstance(record["p"], float) and isinstance(record["state"], int) and isinstance(record["u"], float)


def test_rows_come_back_as_a_json_array_one_record_per_line(engine: Client) -> None:
    record = json_object(
        [Member("timestamp", "number * 1000"), Member("id", "toUInt32(1)"), Member("p", "number / 2", Kind.FLOAT)]
    )
    array = engine.raw_query(f"SELECT {record} FROM numbers(3)", fmt=JSON_ARRAY_FORMAT, settings=JSON_ARRAY_SETTINGS)
    assert array == b'[{"timestamp":0,"id":1,"p":0.0},\n{"timestamp":1000,"id":1,"p":0.5},\n{"timestamp":2000,"id":1,"p":1.0}]'
    assert limit_array(array, 2) == RenderedArray(
        b'[{"timestamp":0,"id":1,"p":0.0},\n{"timestamp":1000,"id":1,"p":0.5}]', 2, b'{"timestamp":2000,"id":1,"p":1.0}'
    )
    empty = engine.raw_query(f"SELECT {record} FROM numbers(0)", fmt=JSON_ARRAY_FORMAT, settings=JSON_ARRAY_SETTINGS)
    assert empty == b"[]"


@pytest.mark.parametrize("rows", [0, 1, 3, 200])
@pytest.mark.parametrize("piece_bytes", [1, 5, 64, 1 << 20])
def test_streamed_lines_make_the_array_the_engine_renders_whole(engine: Client, rows: int, piece_bytes: int) -> None:
    record = json_object(
        [Member("timestamp", "number * 1000"), Member("id", "toUInt32(1)"), Member("p", "number / 2", Kind.FLOAT)]
    )
    sql = f"SELECT {record} FROM numbers({rows})"
    whole = engine.raw_query(sql, fmt=JSON_ARRAY_FORMAT, settings=JSON_ARRAY_SETTINGS)
    with engine.raw_stream(sql, fmt=JSON_LINES_FORMAT) as lines:
        array = ArrayPieces(lambda: lines.read(piece_bytes))
        pieces = list(array)
    assert b"".join(pieces) == whole and array.count == rows
    assert all(pieces), "no empty piece is sent"


def test_production_records_stream_unescaped() -> None:
    """JSON_LINES_FORMAT escapes a backslash, a tab and a newline; a rendered record holds
    them only in a string, and no production record has a string attribute."""
    assert not [(t.name, a.name) for t in EQUIPMENT_TYPES.values() for a in t.attributes if a.kind is Kind.STRING]


# ---- limit_array and leading_timestamp -----------------------------------------------------


ONE = b'{"timestamp":1,"id":1,"label":"a,\\nb"}'
TWO = b'{"timestamp":2,"id":1,"label":null}'
THREE = b'{"timestamp":3,"id":1,"label":"c"}'


@pytest.mark.parametrize(
    ("array", "limit", "rendered"),
    [
        (b"[]", 1, RenderedArray(b"[]", 0, None)),
        (b"[" + ONE + b"]", 1, RenderedArray(b"[" + ONE + b"]", 1, None)),
        (b"[" + ONE + b"]", 5, RenderedArray(b"[" + ONE + b"]", 1, None)),
        (b"[" + ONE + b",\n" + TWO + b"]", 2, RenderedArray(b"[" + ONE + b",\n" + TWO + b"]", 2, None)),
        (b"[" + ONE + b",\n" + TWO + b"]", 1, RenderedArray(b"[" + ONE + b"]", 1, TWO)),
        (b"[" + ONE + b",\n" + TWO + b",\n" + THREE + b"]", 2, RenderedArray(b"[" + ONE + b",\n" + TWO + b"]", 2, THREE)),
    ],
)
def test_limit_array_cuts_the_record_after_the_limit(array: bytes, limit: int, rendered: RenderedArray) -> None:
    assert limit_array(array, limit) == rendered
    assert json.loads(rendered.results) == json.loads(array)[:limit]


@pytest.mark.parametrize(
    ("record", "timestamp"),
    [
        (ONE, 1),
        (b'{"timestamp":7258118399999,"id":4294967295,"p":1.0}', 7_258_118_399_999),
        (b'{"timestamp":0,"id":0}', 0),
        (b'{"creation_timestamp":1700000000000,"id":7,"values":[{"timestamp":5,"value":1.0}]}', 1_700_000_000_000),
    ],
)
def test_leading_timestamp_reads_the_first_member(record: bytes, timestamp: int) -> None:
    assert leading_timestamp(record) == timestamp
