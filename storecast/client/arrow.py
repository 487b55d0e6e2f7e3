"""Arrow columns (of a CSV or Parquet file, or of a DataFrame) to a `Table`, and a `Table` to Arrow.

Whatever the column's Arrow type (CSV columns are read as text), a value is
converted to its attribute's kind when it fits; when it does not, the value
as read goes into `Table.raw`, to be sent as it is so that the API refuses it
with its own message (docs/client.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from storecast.catalog import UINT32_MAX, Attribute, Kind
from storecast.client.series import ID, Series
from storecast.client.table import Array, RawCells, Table

# A number as JSON writes it, give or take a leading + or a bare trailing point.
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
# What JSON cannot say otherwise: an infinite number, which the API refuses as not finite.
_INFINITY = {True: msgspec.Raw(b"1e999"), False: msgspec.Raw(b"-1e999")}
_INT64_SAFE = 2.0**53


def arrow_schema(series: Series, names: list[str] | None = None, kinds: Mapping[str, Kind] | None = None) -> pa.Schema:
    """The file layout's types: int64 keys, float64 and uint32 attributes (of `kinds` when aggregated), strings."""
    fields: list[pa.Field[Any]] = []
    for name in names or list(series.columns):
        attribute = series.attribute(name)
        if attribute is None:
            fields.append(pa.field(name, pa.int64(), nullable=False))
        elif attribute.kind is Kind.STRING:
            fields.append(pa.field(name, pa.string()))
        elif (kinds or {}).get(name, attribute.kind) is Kind.UNSIGNED_INT:
            fields.append(pa.field(name, pa.uint32()))
        else:
            fields.append(pa.field(name, pa.float64()))
    return pa.schema(fields)


def table_to_arrow(table: Table, names: list[str] | None = None) -> pa.RecordBatch:
    """The table in the file layout (every column of the series unless `names`), typed as `arrow_schema`."""
    schema = arrow_schema(table.series, names, table.kinds)
    arrays = []
    for schema_field in schema:
        values = table.columns.get(schema_field.name)
        if values is None:
            arrays.append(pa.nulls(table.rows, schema_field.type))
        elif pa.types.is_string(schema_field.type):
            arrays.append(pa.array(values, pa.string(), from_pandas=True))
        elif pa.types.is_int64(schema_field.type):
            arrays.append(pa.array(values, pa.int64()))
        else:
            nulls = np.isnan(values)
            if pa.types.is_uint32(schema_field.type):
                values = np.where(nulls, 0, values).astype(np.uint32)
            arrays.append(pa.array(values, schema_field.type, mask=nulls))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def arrow_to_table(series: Series, data: pa.RecordBatch | pa.Table, lines: npt.NDArray[np.int64] | None = None) -> Table:
    """Columns of the series' flat layout, by name, of any Arrow type; an unknown column is an error."""
    unknown = [name for name in data.schema.names if name not in series.columns]
    if unknown:
        raise ValueError(f"unknown column(s) {', '.join(unknown)} for {series}: expected {', '.join(series.columns)}")
    columns: dict[str, Array] = {}
    raw: RawCells = {}
    for name in data.schema.names:
        column = data.column(name)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        attribute = series.attribute(name)
        if attribute is not None and attribute.kind is Kind.STRING:
            columns[name] = _strings(column)
            continue
        values, cells = _numbers(column)
        if attribute is None:
            columns[name], cells = _key(name, values, cells)
        else:
            columns[name], cells = _attribute(attribute, values, cells)
        if cells:
            raw[name] = cells
    return Table(series, columns, raw, lines)


def _strings(column: pa.Array[Any]) -> Array:
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = pc.cast(column, pa.string())
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)


def _numbers(column: pa.Array[Any]) -> tuple[npt.NDArray[np.float64], dict[int, object]]:
    """float64 values, NaN where null or not a number, and the cells that are not numbers, as read."""
    cells: dict[int, object] = {}
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = pc.cast(column, kind.value_type)
        kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        column = pc.cast(pc.cast(column, pa.timestamp("ms", tz=getattr(kind, "tz", None))), pa.int64())
    elif pa.types.is_boolean(kind) or not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
        text = column if pa.types.is_string(kind) or pa.types.is_large_string(kind) else pc.cast(column, pa.string())
        number = np.asarray(pc.match_substring_regex(text, _NUMBER).fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
        given = np.asarray(text.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        for row in np.flatnonzero(given & ~number).tolist():
            cells[row] = text[row].as_py()
        column = pc.if_else(pa.array(number), text, pa.nulls(len(text), text.type))
    values = pc.cast(column, pa.float64(), safe=False)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64), cells


def _as_read(value: float) -> object:
    """A number as JSON carries it: an integer when integral, infinity spelled so that the API refuses it."""
    if math.isinf(value):
        return _INFINITY[value > 0]
    return int(value) if value.is_integer() and abs(value) < _INT64_SAFE else value


def _key(name: str, values: npt.NDArray[np.float64], cells: dict[int, object]) -> tuple[Array, dict[int, object]]:
    """int64 keys; a null, a fraction, or an id out of the uint32 range is kept as read."""
    high = UINT32_MAX if name == ID else _INT64_SAFE
    low = 0 if name == ID else -_INT64_SAFE
    with np.errstate(invalid="ignore"):
        fits = np.isfinite(values) & (values == np.floor(values)) & (values >= low) & (values <= high)
    for row in np.flatnonzero(~fits).tolist():
        if row not in cells:
            cells[row] = None if math.isnan(values[row]) else _as_read(float(values[row]))
    return np.where(fits, values, -1).astype(np.int64), cells


def _attribute(
    attribute: Attribute, values: npt.NDArray[np.float64], cells: dict[int, object]
) -> tuple[Array, dict[int, object]]:
    """Floats must be finite; unsigned ints integral in [0, 2**32). NaN is null."""
    with np.errstate(invalid="ignore"):
        if attribute.kind is Kind.UNSIGNED_INT:
            fits = np.isnan(values) | ((values == np.floor(values)) & (values >= 0) & (values <= UINT32_MAX))
        else:
            fits = ~np.isinf(values)
    if fits.all():
        return values, cells
    for row in np.flatnonzero(~fits).tolist():
        cells[row] = _as_read(float(values[row]))
    return np.where(fits, values, np.nan), cells


def column_values(table: Table, name: str) -> list[Any]:
    """A column as JSON values: ints for keys and unsigned ints, None where null, raw cells as read."""
    values = table.columns[name]
    attribute = table.series.attribute(name)
    if attribute is None:
        out: list[Any] = values.tolist()
    elif attribute.kind is Kind.STRING:
        out = values.tolist()
    else:
        nulls = np.isnan(values)
        if table.kind(attribute) is Kind.UNSIGNED_INT:
            as_objects = np.where(nulls, 0, values).astype(np.int64).astype(object)
        else:
            as_objects = values.astype(object)
        as_objects[nulls] = None
        out = as_objects.tolist()
    for row, value in table.raw.get(name, {}).items():
        out[row] = value
    return out
