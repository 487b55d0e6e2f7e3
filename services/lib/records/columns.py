"""Decoded records to insert columns, without touching each value twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np

# One column's values: a sequence from a JSON body, a numpy array from typed input.
Column = Sequence[Any] | np.ndarray
# The columns of a request, all of one length.
Columns = list[Column]


@dataclass(frozen=True, slots=True)
class Entries:
    """Vectors or tariff entries over rows of periods: entry i owns rows [starts[i], ends[i])."""

    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def ending(cls, ends: np.ndarray) -> Entries:
        return cls(np.concatenate(([0], ends[:-1])).astype(np.int64), ends)

    @property
    def counts(self) -> np.ndarray:
        counts: np.ndarray = self.ends - self.starts
        return counts

    def owner(self, row: int) -> int:
        return int(np.searchsorted(self.ends, row, side="right"))

    def path(self, row: int) -> str:
        """The JSON place of a period row: values[entry].values[index within it]."""
        entry = self.owner(row)
        return f"values[{entry}].values[{row - int(self.starts[entry])}]"


def to_columns(records: Sequence[msgspec.Struct], fields: Sequence[str]) -> Columns:
    """One tuple per named field, in the order named."""
    return [tuple(map(attrgetter(field), records)) for field in fields]


def last_occurrences(*keys: Column) -> np.ndarray | None:
    """Row indexes keeping only the last row of each key, or None when keys are unique."""
    if len(keys[0]) < 2:
        return None
    arrays = [np.asarray(k, dtype=np.int64) for k in keys]
    if _strictly_ascending(arrays):
        return None  # the usual body: one equipment's records in time order
    # A stable sort by the key tuple (lexsort's primary key is its last) keeps each key's rows in row order,
    # so a key's last row in it is its last occurrence. (np.unique over a record array compares rows in Python-level
    # generic code: ten times slower.)
    order = np.lexsort(arrays[::-1])
    last = np.ones(len(order), dtype=bool)
    for key in arrays:
        ordered = key[order]
        last[:-1] &= ordered[1:] == ordered[:-1]
    last[:-1] = ~last[:-1]
    if last.all():
        return None
    return np.sort(order[last])


def take(columns: Sequence[Column], rows: np.ndarray) -> Columns:
    indexes = rows.tolist()
    return [column[rows] if isinstance(column, np.ndarray) else tuple(column[i] for i in indexes) for column in columns]


def concat(parts: Sequence[Column]) -> Column:
    """One column of several requests' columns: numpy arrays (typed input) stay arrays."""
    arrays = [part for part in parts if isinstance(part, np.ndarray)]
    if len(arrays) == len(parts):
        return np.concatenate(arrays)
    return [value for part in parts for value in part]


def _strictly_ascending(keys: list[np.ndarray]) -> bool:
    """Whether the rows' key tuples strictly increase, hence are unique."""
    ascending = np.zeros(len(keys[0]) - 1, dtype=bool)
    tied = np.ones(len(keys[0]) - 1, dtype=bool)
    for key in keys:
        step = np.diff(key)
        ascending |= tied & (step > 0)
        tied &= step == 0
    return bool(ascending.all())
