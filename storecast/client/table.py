"""`Table`: records of one series as numpy columns, one row per record (per period for vectors).

Every other form converts to and from it: DataFrames (frames.py), Arrow
batches of files (arrow.py), v1 JSON (v1json.py) and gRPC RecordBatches
(batches.py). Columns by kind:

- key columns (timestamp, creation_timestamp, id): int64;
- float and unsigned-int attributes: float64, NaN where null (a uint32 is
  exact in a float64);
- string attributes: object, None where null.

A value that does not fit its column (a word where a number goes, a
negative id, a fraction in an unsigned attribute) is kept in `raw`, as read,
and sent as it is in v1 JSON, so that the API refuses it with its own
message; its slot in the column holds NaN (-1 in a key column).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from storecast.catalog import Attribute, Kind
from storecast.client.series import CREATION_TIMESTAMP, ID, TIMESTAMP, Series

Array = npt.NDArray[Any]
Indices = npt.NDArray[np.intp]
# Per column: row -> the value as read, where it does not fit the column's type.
RawCells = dict[str, dict[int, object]]


class RowError(ValueError):
    """Data that cannot be sent as it is, found at one row (`row`: its position in the data given)."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(message)
        self.row = row
        self.line: int | None = None


@dataclass(frozen=True, slots=True)
class EntryLayout:
    """How rows group into entries (vectors, tariffs): `order` sorts the rows by entry key (stably),
    and entry i owns sorted rows [starts[i], starts[i + 1])."""

    order: Indices
    starts: Indices

    def bounds(self, rows: int) -> list[tuple[int, int]]:
        ends = [*self.starts[1:].tolist(), rows]
        return list(zip(self.starts.tolist(), ends))


@dataclass(eq=False)
class Table:
    series: Series
    columns: dict[str, Array]
    raw: RawCells = field(default_factory=dict)
    # The line of the source file each row came from (import), if any.
    lines: npt.NDArray[np.int64] | None = None
    # Attributes whose values here are of another kind than the catalog's: aggregated ones
    # (storecast/aggregations.py), an average of an unsigned int being a float.
    kinds: Mapping[str, Kind] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lengths = {len(values) for values in self.columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {lengths}")
        missing = [name for name in self.series.key_columns if name not in self.columns]
        if missing:
            raise ValueError(f"{self.series} needs columns {', '.join(missing)}")

    @property
    def rows(self) -> int:
        return len(self.columns[TIMESTAMP])

    def __len__(self) -> int:
        return self.rows

    @property
    def has_raw(self) -> bool:
        return any(self.raw.values())

    def kind(self, attribute: Attribute) -> Kind:
        """The kind of the attribute's values here."""
        return self.kinds.get(attribute.name, attribute.kind)

    def attribute_names(self) -> list[str]:
        return [a.name for a in self.series.all_attributes if a.name in self.columns]

    @cached_property
    def layout(self) -> EntryLayout:
        """Rows grouped by entry key; production rows are entries of one row each, in their order."""
        keys = self.series.entry_keys
        if not keys:
            every = np.arange(self.rows, dtype=np.intp)
            return EntryLayout(every, every)
        # lexsort sorts by the last key first, and is stable: rows of an entry keep their order.
        order = np.lexsort(tuple(self.columns[name] for name in reversed(keys))).astype(np.intp)
        changed = np.zeros(self.rows, dtype=bool)
        for name in keys:
            column = self.columns[name][order]
            changed[1:] |= column[1:] != column[:-1]
        if self.rows:
            changed[0] = True
        return EntryLayout(order, np.flatnonzero(changed).astype(np.intp))

    def check_entry_attributes(self) -> None:
        """A vector attribute (a commitment's quality) is the vector's: every row of a vector must agree."""
        layout = self.layout
        if not self.series.entry_attributes or not self.rows:
            return
        first_of_row = np.repeat(layout.starts, np.diff(np.append(layout.starts, self.rows)))
        for attribute in self.series.entry_attributes:
            values = self.columns.get(attribute.name)
            if values is None or attribute.name in self.raw:
                continue
            ordered = values[layout.order]
            heads = ordered[first_of_row]
            differ = (ordered != heads) & ~(np.isnan(ordered) & np.isnan(heads))
            if differ.any():
                row = int(layout.order[int(np.argmax(differ))])
                key = ", ".join(f"{name}={value}" for name, value in zip(self.series.entry_keys, self.entry_key(row)))
                raise RowError(row, f"{attribute.name} differs between the rows of one vector ({key})")

    def take(self, indices: Indices) -> Table:
        raw: RawCells = {}
        if self.has_raw:
            positions = {row: position for position, row in enumerate(indices.tolist())}
            for name, cells in self.raw.items():
                moved = {positions[row]: value for row, value in cells.items() if row in positions}
                if moved:
                    raw[name] = moved
        return Table(
            self.series,
            {name: values[indices] for name, values in self.columns.items()},
            raw,
            None if self.lines is None else self.lines[indices],
            self.kinds,
        )

    def slice(self, start: int, stop: int) -> Table:
        return self.take(np.arange(start, min(stop, self.rows), dtype=np.intp))

    def line_of(self, row: int) -> int | None:
        return None if self.lines is None else int(self.lines[row])

    def entry_key(self, row: int) -> tuple[int, ...]:
        return tuple(int(self.columns[name][row]) for name in self.series.entry_keys)

    @classmethod
    def empty(cls, series: Series) -> Table:
        return cls(series, {name: empty_column(series, name) for name in series.columns})

    @classmethod
    def concat(cls, series: Series, tables: Sequence[Table]) -> Table:
        tables = [table for table in tables if table.rows] or list(tables[:1])
        if not tables:
            return cls.empty(series)
        if len(tables) == 1:
            return tables[0]
        names = [name for name in series.columns if any(name in table.columns for table in tables)]
        columns = {
            name: np.concatenate([t.columns[name] if name in t.columns else null_column(series, name, t.rows) for t in tables])
            for name in names
        }
        raw: RawCells = {}
        offset = 0
        for table in tables:
            for name, cells in table.raw.items():
                raw.setdefault(name, {}).update({offset + row: value for row, value in cells.items()})
            offset += table.rows
        lines = None
        if all(table.lines is not None for table in tables):
            lines = np.concatenate([table.lines for table in tables if table.lines is not None])
        kinds = {name: kind for table in tables for name, kind in table.kinds.items()}
        return cls(series, columns, raw, lines, kinds)

    def sorted(self) -> Table:
        """Rows in key order: by timestamp (production); by id, creation_timestamp, timestamp (vectors); by id, timestamp."""
        keys = [name for name in (ID, CREATION_TIMESTAMP, TIMESTAMP) if name in self.series.key_columns]
        order = np.lexsort(tuple(self.columns[name] for name in reversed(keys))).astype(np.intp)
        if np.array_equal(order, np.arange(self.rows)):
            return self
        return self.take(order)


def empty_column(series: Series, name: str) -> Array:
    return null_column(series, name, 0)


def null_column(series: Series, name: str, rows: int) -> Array:
    attribute = series.attribute(name)
    if attribute is None:
        return np.full(rows, -1, dtype=np.int64)
    if attribute.kind is Kind.STRING:
        return np.full(rows, None, dtype=object)
    return np.full(rows, np.nan, dtype=np.float64)
