"""Typed input: a RecordBatch as insert columns, checked by the rules a v1 JSON body keeps.

The rules and their words are services/lib/records/rules.py's, which the JSON
decoders carry too: a value is refused with the same API status and message
either way, the row named by its place in the equivalent JSON body
(`values[3].p`, `values[1].values[4].timestamp`). What only a RecordBatch can
get wrong (columns of unequal lengths, fields its category has no use for) is
checked here alone. Values stay in numpy arrays from the protobuf message to
the insert.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from services.lib.records import rules
from services.lib.records.columns import Entries
from services.lib.records.rules import RowPath, content_error
from storecast.catalog import Attribute, Kind
from storecast.packed import double_column
from storecast.v1 import records_pb2

_FIELD_OF_KIND = {Kind.FLOAT: "doubles", Kind.UNSIGNED_INT: "uints", Kind.STRING: "strings"}
# The JSON type a Column's field holds, as msgspec names it.
_JSON_TYPE_OF_FIELD = {"doubles": "float", "uints": "int", "strings": "str"}


@dataclass(frozen=True, slots=True)
class AttributeValues:
    """One attribute over the rows: its values, and where they are null (None: nowhere)."""

    attribute: Attribute
    values: np.ndarray | list[str]
    nulls: np.ndarray | None

    def for_native(self) -> np.ndarray | list[Any]:
        """As services/lib/store/native.py takes a Nullable column: NaN or None where null."""
        if self.attribute.kind is Kind.FLOAT:
            return self.values  # NaN already where null
        return self.as_list() if self.nulls is not None else self.values

    def as_list(self) -> list[Any]:
        """As clickhouse-connect's insert takes a Nullable column: None where null (it would store a NaN)."""
        values = self.values.tolist() if isinstance(self.values, np.ndarray) else list(self.values)
        nulls = np.isnan(self.values) if self.attribute.kind is Kind.FLOAT else self.nulls
        if nulls is None or not nulls.any():
            return values
        return [None if null else value for value, null in zip(values, nulls.tolist())]


def check_empty(batch: records_pb2.RecordBatch) -> None:
    if not batch.timestamps and not batch.ids:
        raise rules.nothing_to_store()


def check_length(name: str, length: int, rows: int, what: str = "rows") -> None:
    if length != rows:
        raise content_error(f"columns: {name} has {length} values for {rows} {what}")


def timestamps(values: Sequence[int], path: RowPath, field: str = "timestamp") -> np.ndarray:
    """Epoch milliseconds, as rules.TIMESTAMP bounds them."""
    array = np.array(values, dtype=np.int64)
    rules.TIMESTAMP.check(array, None, path, field)
    return array


def attributes(
    columns: RepeatedCompositeFieldContainer[records_pb2.Column], declared: Sequence[Attribute], rows: int, path: RowPath
) -> list[AttributeValues]:
    """Every declared attribute's values, in catalog order; one not given is null in every row."""
    known = {attribute.name: attribute for attribute in declared}
    given: dict[str, records_pb2.Column] = {}
    for column in columns:
        if column.name not in known:
            raise content_error(f"{path(0)}.{column.name}: {rules.UNKNOWN_ATTRIBUTE}")
        if column.name in given:
            raise content_error(f"columns: {column.name} is given twice")
        given[column.name] = column
    return [
        _values(given[attribute.name], attribute, rows, path) if attribute.name in given else _all_null(attribute, rows)
        for attribute in declared
    ]


def _all_null(attribute: Attribute, rows: int) -> AttributeValues:
    if attribute.kind is Kind.FLOAT:
        return AttributeValues(attribute, np.full(rows, np.nan), None)
    values: np.ndarray | list[str] = np.zeros(rows, dtype=np.uint32) if attribute.kind is Kind.UNSIGNED_INT else [""] * rows
    return AttributeValues(attribute, values, np.ones(rows, dtype=bool))


def _values(column: records_pb2.Column, attribute: Attribute, rows: int, path: RowPath) -> AttributeValues:
    kind = rules.attribute_values(attribute)
    field = _FIELD_OF_KIND[attribute.kind]
    for other, json_type in _JSON_TYPE_OF_FIELD.items():
        if other != field and len(getattr(column, other)):
            # As the JSON decoder refuses a value of another type for an attribute, which is optional.
            raise content_error(f"{path(0)}.{attribute.name}: {rules.mismatch(f'{kind.json_type} | null', json_type)}")
    nulls = None
    if column.null_map:
        check_length(f"{attribute.name}'s null_map", len(column.null_map), rows)
        nulls = np.frombuffer(column.null_map, dtype=np.uint8) != 0
        if not nulls.any():
            nulls = None
    check_length(attribute.name, len(getattr(column, field)), rows)
    if attribute.kind is Kind.FLOAT:
        floats = np.array(column.doubles, dtype=np.float64)
        kind.check(floats, nulls, path, attribute.name)
        if nulls is not None:
            floats[nulls] = np.nan
        return AttributeValues(attribute, floats, None)
    if attribute.kind is Kind.UNSIGNED_INT:
        # A uint32 field holds nothing rules.UINT32 refuses.
        return AttributeValues(attribute, np.array(column.uints, dtype=np.uint32), nulls)
    strings = list(column.strings)
    if kind.rules:
        kind.check(np.fromiter(map(len, strings), dtype=np.int64, count=len(strings)), nulls, path, attribute.name)
    return AttributeValues(attribute, strings, nulls)


def no_fields(batch: records_pb2.RecordBatch, fields: Sequence[str], what: str) -> None:
    """A field the category has no use for is refused, not ignored."""
    for field in fields:
        if len(getattr(batch, field)):
            raise content_error(f"columns: {what} have no {field}")


def entries(batch: records_pb2.RecordBatch, rows: int) -> Entries:
    """The entries' row ranges from period_ends, each entry holding periods as rules.PERIODS bounds them."""
    check_length("period_ends", len(batch.period_ends), len(batch.ids), "entries")
    layout = Entries.ending(np.array(batch.period_ends, dtype=np.int64))
    if len(layout.ends) and (layout.ends[-1] != rows or (layout.ends < layout.starts).any()):
        raise content_error(f"columns: period_ends must rise to the {rows} rows of timestamps")
    rules.PERIODS.check(layout.counts, None, _entry_path, "values")
    return layout


def _entry_path(entry: int) -> str:
    return f"values[{entry}]"


# ---- typed output -------------------------------------------------------------------


def rechunked(blocks: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """The engine's blocks of a streamed result as tables of `rows` rows (the last one fewer)."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for block in blocks:
        pending.append(block)
        held += block.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending)


def read_arrow(data: bytes) -> pa.Table | None:
    """The rows of an ArrowStream query result; None when there are none."""
    if not data:
        return None
    table = pa.ipc.open_stream(data).read_all()
    return table if table.num_rows else None


def numbers(array: pa.ChunkedArray[Any] | pa.Array[Any], dtype: type[np.generic]) -> np.ndarray:
    """A non-null Arrow column as numpy."""
    values: np.ndarray = np.asarray(array.to_numpy(), dtype=dtype)
    return values


def column(name: str, kind: Kind, array: pa.ChunkedArray[Any] | pa.Array[Any]) -> records_pb2.Column:
    """An Arrow column of attribute values as a typed Column: its kind's field, and the null map."""
    nulls = np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    null_map = nulls.astype(np.uint8).tobytes() if nulls.any() else b""
    if kind is Kind.STRING:
        return records_pb2.Column(
            name=name, strings=["" if value is None else str(value) for value in array.to_pylist()], null_map=null_map
        )
    # Arrow gives a column with nulls as floats, NaN where null: 0 there, the null map says so.
    values = np.where(nulls, 0, np.asarray(array.to_numpy(zero_copy_only=False)))
    if kind is Kind.UNSIGNED_INT:
        return records_pb2.Column(name=name, uints=values.astype(np.uint32), null_map=null_map)
    return double_column(name, values, null_map)


def flattened(array: pa.ChunkedArray[Any]) -> tuple[pa.Array[Any], np.ndarray]:
    """The values of a column of arrays, and the end offset of each row's array."""
    lists = array.combine_chunks()
    if not isinstance(lists, pa.ListArray):
        raise TypeError(f"expected a column of arrays, got {lists.type}")
    offsets = np.asarray(lists.offsets.to_numpy(), dtype=np.int64)
    return lists.flatten(), offsets[1:] - offsets[0]
