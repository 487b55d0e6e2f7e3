"""A `Table` as a v1 PUT body, a v1 `results` array as a `Table`, and API error paths back to rows."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec
import numpy as np

from storecast.catalog import Kind
from storecast.client.arrow import column_values
from storecast.client.series import TIMESTAMP, Series
from storecast.client.table import Array, Table

_ENCODER = msgspec.json.Encoder()
# "payload content error: values[3].values[2].p: ..." names the record (entry, then period) at fault.
_PATH = re.compile(r"\bvalues\[(?P<entry>\d+)\](?:\.values\[(?P<period>\d+)\])?")


def encode_put(table: Table) -> bytes:
    """{"values": [...]}: production records; vectors and tariffs grouped into entries by key."""
    series = table.series
    if not series.has_entries:
        names = list(series.key_columns) + table.attribute_names()
        columns = [column_values(table, name) for name in names]
        return _ENCODER.encode({"values": [dict(zip(names, row)) for row in zip(*columns)]})
    layout = table.layout
    ordered = table.take(layout.order)
    entry_names = [name for name in series.entry_keys if name in ordered.columns]
    entry_names += [a.name for a in series.entry_attributes if a.name in ordered.columns]
    period_names = [TIMESTAMP] + [a.name for a in series.attributes if a.name in ordered.columns]
    entry_columns = {name: column_values(ordered, name) for name in entry_names}
    period_columns = [column_values(ordered, name) for name in period_names]
    periods = [dict(zip(period_names, row)) for row in zip(*period_columns)]
    entries = []
    for start, end in layout.bounds(table.rows):
        entry: dict[str, Any] = {name: entry_columns[name][start] for name in entry_names}
        entry["values"] = periods[start:end]
        entries.append(entry)
    return _ENCODER.encode({"values": entries})


def row_of_message(table: Table, message: str) -> int | None:
    """The row of `table` an API error message names (values[i], values[i].values[j]), if it names one."""
    match = _PATH.search(message)
    if match is None:
        return None
    entry = int(match["entry"])
    period = int(match["period"] or 0)
    starts = table.layout.starts
    if entry >= len(starts):
        return None
    row = int(starts[entry]) + period
    return int(table.layout.order[row]) if row < table.rows else None


def decode_results(series: Series, results: list[Any], kinds: Mapping[str, Kind] | None = None) -> Table:
    """A v1 `results` array (parsed) as a table with every attribute of the series."""
    if series.has_entries:
        rows: list[dict[str, Any]] = []
        entry_names = [*series.entry_keys, *(a.name for a in series.entry_attributes)]
        for entry in results:
            head = {name: entry.get(name) for name in entry_names}
            rows += [{**head, **period} for period in entry["values"]]
    else:
        rows = results
    columns: dict[str, Array] = {name: np.array([r[name] for r in rows], dtype=np.int64) for name in series.key_columns}
    for attribute in series.all_attributes:
        values = [r.get(attribute.name) for r in rows]
        columns[attribute.name] = (
            np.array(values, dtype=object) if attribute.kind is Kind.STRING else np.array(values, dtype=np.float64)
        )
    return Table(series, columns, kinds=kinds or {})
