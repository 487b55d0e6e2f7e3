"""A `Table` as a gRPC `RecordBatch` (records.proto) and back."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from storecast.catalog import Attribute, Kind
from storecast.client.series import CREATION_TIMESTAMP, ID, TIMESTAMP, Series
from storecast.client.table import Array, Table, null_column
from storecast.v1 import records_pb2


def to_batch(table: Table) -> records_pb2.RecordBatch:
    """Rows in entry order: production one row per record; vectors and tariffs one entry per key."""
    if table.has_raw:
        raise ValueError("values that do not fit their columns travel as v1 JSON")
    series = table.series
    if not series.has_entries:
        return records_pb2.RecordBatch(
            timestamps=table.columns[TIMESTAMP].tolist(),
            ids=table.columns[ID].tolist(),
            columns=[_column(a, table.columns[a.name]) for a in series.attributes if a.name in table.columns],
        )
    layout = table.layout
    ordered = table.take(layout.order)
    starts = layout.starts
    ends = [*starts[1:].tolist(), table.rows]
    batch = records_pb2.RecordBatch(
        timestamps=ordered.columns[TIMESTAMP].tolist(),
        ids=ordered.columns[ID][starts].tolist(),
        period_ends=ends,
        columns=[_column(a, ordered.columns[a.name]) for a in series.attributes if a.name in ordered.columns],
        entry_columns=[_column(a, ordered.columns[a.name][starts]) for a in series.entry_attributes if a.name in ordered.columns],
    )
    if series.is_vector:
        batch.creation_timestamps.extend(ordered.columns[CREATION_TIMESTAMP][starts].tolist())
    return batch


def _column(attribute: Attribute, values: Array) -> records_pb2.Column:
    column = records_pb2.Column(name=attribute.name)
    if attribute.kind is Kind.STRING:
        nulls = np.array([value is None for value in values.tolist()], dtype=bool)
        column.strings.extend(["" if value is None else str(value) for value in values.tolist()])
    else:
        nulls = np.isnan(values)
        filled = np.where(nulls, 0, values)
        if attribute.kind is Kind.UNSIGNED_INT:
            column.uints.extend(filled.astype(np.uint32).tolist())
        else:
            column.doubles.extend(filled.tolist())
    if nulls.any():
        column.null_map = nulls.astype(np.uint8).tobytes()
    return column


def from_batch(series: Series, batch: records_pb2.RecordBatch, kinds: Mapping[str, Kind] | None = None) -> Table:
    """Every attribute of the series is a column; one the batch leaves out is null."""
    timestamps = np.array(batch.timestamps, dtype=np.int64)
    rows = len(timestamps)
    columns: dict[str, Array] = {TIMESTAMP: timestamps}
    per_row: Array | None = None
    if series.has_entries:
        ends = np.array(batch.period_ends, dtype=np.int64)
        counts = np.diff(ends, prepend=0)
        per_row = np.repeat(np.arange(len(ends)), counts)
        columns[ID] = np.array(batch.ids, dtype=np.int64)[per_row]
        if series.is_vector:
            columns[CREATION_TIMESTAMP] = np.array(batch.creation_timestamps, dtype=np.int64)[per_row]
    else:
        columns[ID] = np.array(batch.ids, dtype=np.int64)
    given = {column.name: column for column in batch.columns}
    for attribute in series.attributes:
        column = given.get(attribute.name)
        columns[attribute.name] = (
            null_column(series, attribute.name, rows) if column is None else _values(attribute, column, rows)
        )
    entries = {column.name: column for column in batch.entry_columns}
    for attribute in series.entry_attributes:
        column = entries.get(attribute.name)
        if column is None or per_row is None:
            columns[attribute.name] = null_column(series, attribute.name, rows)
        else:
            columns[attribute.name] = _values(attribute, column, len(batch.ids))[per_row]
    return Table(series, columns, kinds=kinds or {})


def _values(attribute: Attribute, column: records_pb2.Column, rows: int) -> Array:
    """The column's values in whichever field holds one per row (an average of uints comes as doubles)."""
    nulls = np.frombuffer(column.null_map, dtype=np.uint8).astype(bool) if column.null_map else np.zeros(rows, dtype=bool)
    if attribute.kind is Kind.STRING:
        values: Array = np.array(list(column.strings), dtype=object) if len(column.strings) == rows else np.full(rows, None)
        values[nulls] = None
        return values
    if len(column.doubles) == rows and rows:
        numbers = np.array(column.doubles, dtype=np.float64)
    elif len(column.uints) == rows and rows:
        numbers = np.array(column.uints, dtype=np.float64)
    else:
        numbers = np.full(rows, np.nan)
    numbers[nulls] = np.nan
    return numbers
