"""pandas DataFrames and numpy arrays to a `Table`, and a `Table` to a DataFrame.

A series' DataFrame is indexed by `timestamp` (production, tariffs) or by
(`creation_timestamp`, `timestamp`) (forecasts, commitments), with one column
per attribute, plus `id` where it holds several ids; a vector attribute (a
commitment's `quality`) is a column repeated on each period row. Nulls: NaN
in float columns, <NA> in `UInt32` columns, None in object (string) columns.
Timestamps are int64 epoch milliseconds, or a UTC DatetimeIndex on request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from storecast.catalog import Kind
from storecast.client.arrow import arrow_to_table
from storecast.client.series import CREATION_TIMESTAMP, ID, TIMESTAMP, Series
from storecast.client.table import Table

# What a put takes: a DataFrame, numpy arrays (or lists) by column name, or a Table.
Data = pd.DataFrame | Mapping[str, npt.ArrayLike] | Table


def to_table(series: Series, data: Data, id: int | None = None) -> Table:
    """The rows of `data` in the series' flat layout; `id` fills the id column when `data` has none."""
    if isinstance(data, Table):
        return data
    if isinstance(data, pd.DataFrame):
        arrow = pa.Table.from_pandas(_flatten(series, data), preserve_index=False)
    else:
        arrow = pa.table({name: _array(values) for name, values in data.items()})
    if ID not in arrow.schema.names:
        if id is None:
            raise ValueError(f"the data has no id column: give put an id= for {series}")
        arrow = arrow.append_column(ID, pa.array(np.full(arrow.num_rows, id, dtype=np.int64)))
    elif id is not None:
        raise ValueError("the data has an id column: id= would be ambiguous")
    return arrow_to_table(series, arrow)


def _array(values: npt.ArrayLike) -> pa.Array[Any]:
    array = np.asarray(values)
    converted: pa.Array[Any] = pa.array(array.tolist() if array.dtype == object else array, from_pandas=True)
    return converted


def _flatten(series: Series, frame: pd.DataFrame) -> pd.DataFrame:
    """Index levels become columns: named ones by their names, unnamed ones as the series' index columns."""
    index = frame.index
    if isinstance(index, pd.RangeIndex) and index.name is None:
        return frame
    names = list(index.names)
    if all(name is None for name in names):
        if len(names) != len(series.index_columns):
            raise ValueError(f"an unnamed index of {series} is {', '.join(series.index_columns)}")
        names = list(series.index_columns)
    flat = frame.copy(deep=False)
    flat.index = index.set_names(names)
    return flat.reset_index()


def to_frame(table: Table, *, with_id: bool = False, datetime_index: bool = False) -> pd.DataFrame:
    """A DataFrame of the table: every attribute of the series as a column, `id` first when asked."""
    series = table.series
    index_levels = [_index_values(table.columns[name], datetime_index) for name in series.index_columns]
    if len(index_levels) == 1:
        index: pd.Index = index_levels[0].rename(series.index_columns[0])
    else:
        index = pd.MultiIndex.from_arrays(index_levels, names=list(series.index_columns))
    data: dict[str, Any] = {}
    if with_id:
        data[ID] = np.asarray(table.columns[ID], dtype=np.int64)
    for attribute in series.all_attributes:
        values = table.columns.get(attribute.name)
        if values is None:
            values = np.full(table.rows, None if attribute.kind is Kind.STRING else np.nan)
        if attribute.kind is Kind.STRING:
            # pandas would infer its `str` dtype (None becoming NaN) from an object array alone.
            data[attribute.name] = pd.Series(values, index=index, dtype=object)
        elif table.kind(attribute) is Kind.UNSIGNED_INT:
            data[attribute.name] = pd.array(values, dtype="UInt32")
        else:
            data[attribute.name] = np.asarray(values, dtype=np.float64)
    return pd.DataFrame(data, index=index)


def _index_values(values: npt.NDArray[Any], datetime_index: bool) -> pd.Index:
    if datetime_index:
        return pd.DatetimeIndex(pd.to_datetime(values, unit="ms", utc=True))
    return pd.Index(np.asarray(values, dtype=np.int64))


def to_datetime_index(frame: pd.DataFrame) -> pd.DataFrame:
    """The same frame with its epoch-millisecond index levels (timestamp, creation_timestamp) as UTC datetimes."""
    index = frame.index
    names = (TIMESTAMP, CREATION_TIMESTAMP)
    if isinstance(index, pd.MultiIndex):
        levels = [
            pd.to_datetime(index.get_level_values(i), unit="ms", utc=True) if name in names else index.get_level_values(i)
            for i, name in enumerate(index.names)
        ]
        return frame.set_axis(pd.MultiIndex.from_arrays(levels, names=index.names), axis=0)
    return frame.set_axis(pd.DatetimeIndex(pd.to_datetime(index, unit="ms", utc=True), name=index.name), axis=0)
