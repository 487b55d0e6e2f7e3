"""Native blocks written from column lists, read back by a decoder of the format written here.

The format (https://clickhouse.com/docs/en/interfaces/formats#native), as an
INSERT sends it: a varint column count and row count, then per column its name
and type as varint-prefixed strings and its data; fixed-width numbers are
little-endian, a string is varint-prefixed UTF-8, and a Nullable column is a
byte per row (1: null) followed by the inner column, with any value under a null.
One test also has the engine read a block (chDB only as `chdb://memory`).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from clickhouse_connect.driver.client import Client

from services.lib.store.native import block, column

FIXED_WIDTH = {"UInt8": "<u1", "UInt32": "<u4", "Int64": "<i8", "Float64": "<f8"}
NULLABLE = "Nullable("

# A value of a column, as written and as read back (None: a null).
Value = int | float | str | None


class Reader:
    """A cursor over Native bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def take(self, size: int) -> bytes:
        assert self.position + size <= len(self.data), "read past the end"
        chunk = self.data[self.position : self.position + size]
        self.position += size
        return chunk

    def varint(self) -> int:
        value = shift = 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    def string(self) -> str:
        return self.take(self.varint()).decode()

    def column(self, type_name: str, rows: int) -> list[Value]:
        """A column's values; a null's value comes back as None, the value under it is dropped."""
        if type_name.startswith(NULLABLE):
            nulls = self.take(rows)
            assert set(nulls) <= {0, 1}, nulls
            inner = self.column(type_name[len(NULLABLE) : -1], rows)
            return [None if null else value for null, value in zip(nulls, inner)]
        if type_name == "String":
            return [self.string() for _ in range(rows)]
        dtype = np.dtype(FIXED_WIDTH[type_name])
        # tolist() gives Python ints or floats, by the dtype.
        values: list[Value] = np.frombuffer(self.take(rows * dtype.itemsize), dtype=dtype).tolist()
        return values


def read_block(data: bytes) -> list[tuple[str, str, list[Value]]]:
    """The (name, type, values) columns of a whole Native block."""
    reader = Reader(data)
    column_count, rows = reader.varint(), reader.varint()
    columns: list[tuple[str, str, list[Value]]] = []
    for _ in range(column_count):
        name, type_name = reader.string(), reader.string()
        columns.append((name, type_name, reader.column(type_name, rows)))
    assert reader.position == len(data), "bytes left after the block"
    return columns


def read_column(type_name: str, rows: int, data: bytes) -> list[Value]:
    reader = Reader(data)
    values = reader.column(type_name, rows)
    assert reader.position == len(data), "bytes left after the column"
    return values


def same(left: Sequence[Any], right: Sequence[Any]) -> bool:
    """Equal, a NaN equal to a NaN."""
    return len(left) == len(right) and all(
        (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(left, right)
    )


# ---- exact bytes ------------------------------------------------------------


def test_a_small_block_byte_for_byte() -> None:
    assert block([("a", "UInt8", [1, 2])]) == b"\x01\x02" + b"\x01a" + b"\x05UInt8" + b"\x01\x02"
    assert block([("s", "String", ["", "é"])]) == b"\x01\x02" + b"\x01s" + b"\x06String" + b"\x00" + b"\x02\xc3\xa9"


def test_an_empty_block_is_two_zero_varints() -> None:
    assert block([]) == b"\x00\x00"
    assert read_block(block([("a", "UInt32", [])])) == [("a", "UInt32", [])]


def test_fixed_width_numbers_are_little_endian() -> None:
    assert column("UInt8", [0, 255]) == b"\x00\xff"
    assert column("UInt32", [1, 0xDEADBEEF]) == b"\x01\x00\x00\x00" + b"\xef\xbe\xad\xde"
    assert column("Int64", [-1, 7_258_118_399_999]) == b"\xff" * 8 + struct.pack("<q", 7_258_118_399_999)
    assert column("Float64", [1.0, -2.5]) == struct.pack("<2d", 1.0, -2.5)


@pytest.mark.parametrize(
    ("size", "varint"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (255, b"\xff\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_152, b"\x80\x80\x80\x01"),
    ],
)
def test_string_lengths_are_varints(size: int, varint: bytes) -> None:
    data = column("String", ["x" * size])
    assert data == varint + b"x" * size
    assert read_column("String", 1, data) == ["x" * size]


def test_a_string_length_counts_bytes_not_characters() -> None:
    assert column("String", ["é€😀"]) == bytes([9]) + "é€😀".encode()


@pytest.mark.parametrize(("rows", "varint"), [(127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02")])
def test_the_row_count_is_a_varint(rows: int, varint: bytes) -> None:
    data = block([("n", "UInt32", list(range(rows)))])
    assert data.startswith(b"\x01" + varint + b"\x01n")
    assert read_block(data) == [("n", "UInt32", list(range(rows)))]


# ---- nullable columns ---------------------------------------------------------


def test_a_nullable_column_without_nulls_has_an_all_zero_null_map() -> None:
    assert column("Nullable(UInt32)", [1, 2]) == b"\x00\x00" + column("UInt32", [1, 2])
    assert column("Nullable(String)", ("a", "b")) == b"\x00\x00" + column("String", ["a", "b"])
    assert column("Nullable(Float64)", [1.0, 0.0]) == b"\x00\x00" + column("Float64", [1.0, 0.0])


def test_a_null_uint32_is_flagged_over_a_zero() -> None:
    data = column("Nullable(UInt32)", [7, None, 4_294_967_295, None])
    assert data == b"\x00\x01\x00\x01" + column("UInt32", [7, 0, 4_294_967_295, 0])
    assert read_column("Nullable(UInt32)", 4, data) == [7, None, 4_294_967_295, None]


def test_a_null_string_is_flagged_over_an_empty_string() -> None:
    data = column("Nullable(String)", ("on-peak", None, "", "é"))
    assert data == b"\x00\x01\x00\x00" + column("String", ["on-peak", "", "", "é"])
    assert read_column("Nullable(String)", 4, data) == ["on-peak", None, "", "é"]


def test_a_null_float_is_flagged_over_a_nan() -> None:
    data = column("Nullable(Float64)", (1.5, None, -0.0))
    assert data[:3] == b"\x00\x01\x00"
    under = np.frombuffer(data[3:], dtype="<f8")
    assert under[0] == 1.5 and math.isnan(under[1]) and math.copysign(1.0, under[2]) == -1.0
    assert read_column("Nullable(Float64)", 3, data) == [1.5, None, -0.0]


def test_a_nan_in_a_nullable_float_column_is_a_null() -> None:
    # The JSON decoder refuses NaN, so a NaN here can only stand for an absent value.
    assert read_column("Nullable(Float64)", 3, column("Nullable(Float64)", [math.nan, 2.0, None])) == [None, 2.0, None]


def test_a_nan_in_a_plain_float_column_stays_a_nan() -> None:
    assert same(read_column("Float64", 2, column("Float64", [math.nan, 1.0])), [math.nan, 1.0])


def test_all_null_columns() -> None:
    for type_name in ("Nullable(UInt32)", "Nullable(String)", "Nullable(Float64)", "Nullable(Int64)", "Nullable(UInt8)"):
        assert read_column(type_name, 3, column(type_name, [None, None, None])) == [None, None, None]


# ---- round trips ----------------------------------------------------------------

ROUND_TRIP: list[tuple[str, str, list[Value]]] = [
    ("site_id", "UInt32", [100, 100, 4_294_967_295]),
    ("timestamp", "Int64", [0, 1_700_000_000_000, 7_258_118_399_999]),
    ("id", "UInt32", [0, 1, 2]),
    ("flag", "UInt8", [0, 1, 255]),
    ("x", "Float64", [0.0, -1.7976931348623157e308, 5e-324]),
    ("p", "Nullable(Float64)", [1.5, None, 1.7976931348623157e308]),
    ("state", "Nullable(UInt32)", [None, 4_294_967_295, 0]),
    ("label", "Nullable(String)", ["on-peak", None, 'a"b\\c\n\x00é😀']),
    ("name", "String", ["", "x" * 200, "€"]),
    ("n", "Nullable(Int64)", [-5, None, 7_258_118_399_999]),
]


def test_a_block_of_every_type_round_trips() -> None:
    assert read_block(block(ROUND_TRIP)) == ROUND_TRIP


def test_columns_may_be_tuples() -> None:
    # Columns come from to_columns() as tuples.
    columns = [(name, type_name, tuple(values)) for name, type_name, values in ROUND_TRIP]
    assert block(columns) == block(ROUND_TRIP)


def test_long_column_names_and_types_round_trip() -> None:
    columns: list[tuple[str, str, list[Value]]] = [("c" * 200, "Nullable(String)", ["v"]), ("`values.p`", "Float64", [1.0])]
    assert read_block(block(columns)) == columns


def test_the_engine_reads_the_block(engine: Client) -> None:
    engine.command("CREATE DATABASE IF NOT EXISTS unit_native")
    definition = ", ".join(f"`{name}` {type_name}" for name, type_name, _ in ROUND_TRIP)
    engine.command("DROP TABLE IF EXISTS unit_native.every_type")
    engine.command(f"CREATE TABLE unit_native.every_type ({definition}) ENGINE = Memory")
    names = [name for name, _, _ in ROUND_TRIP]
    engine.raw_insert("unit_native.every_type", names, block(ROUND_TRIP), fmt="Native")
    rows = engine.query(f"SELECT {', '.join(f'`{n}`' for n in names)} FROM unit_native.every_type").result_rows
    assert [list(column) for column in zip(*rows)] == [values for _, _, values in ROUND_TRIP]
    nulls = engine.query("SELECT countIf(isNull(p)), countIf(isNull(state)), countIf(isNull(label)) FROM unit_native.every_type")
    assert nulls.result_rows == [(1, 1, 1)]
