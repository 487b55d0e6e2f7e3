"""The aggregations a read may ask for (`agg`), each declared once, here.

A row says all that any layer needs to know of one aggregation: its name (the
query string's and the client's), what it computes over the records of a
bucket (a ClickHouse aggregate function, which skips nulls), what it computes
over rollup cells (from each attribute's min, max, sum and count, if it can),
what kind of value it returns, whether v1 serves it, and what the OpenAPI
document says of it. The gateway parses and documents `agg` from this table
(gateway/params.py, gateway/openapi.py), the query and vector services build
their SQL from it (services/query/sql.py, services/lib/reads/rollup.py,
services/vector/sql.py), and the client checks `agg` and types the results
with it (storecast/client/query.py). It imports nothing of the server.

The wire form stays records.proto's `Aggregation` enum: a row's `wire` is the
enum value of its name in capitals (`sum` is `SUM`), and the import fails
unless every row has its enum value and every enum value its row. The rows
are Python rather than options on those enum values (as catalog.proto's types
are): what a row holds is SQL text and a kind of result, which no other user
of the protos reads, and a new aggregation then changes the proto by one line.

v1 serves min, max and avg, and refuses any other `agg` with 1205 (docs/api/v1.md
§6, §10); /ext/v1's reads serve every row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from storecast.catalog import Attribute, Kind
from storecast.v1 import records_pb2

AggregationName = Literal["min", "max", "avg", "sum", "count", "first", "last"]


@dataclass(frozen=True, slots=True)
class Result:
    """What an aggregation returns per attribute: of which kind (None: the attribute's own),
    and whether within the attribute's range (an unsigned int's 32 bits)."""

    kind: Kind | None
    bounded: bool


VALUE = Result(None, True)  # one of the attribute's values
MEAN = Result(Kind.FLOAT, True)
TOTAL = Result(None, False)  # a sum of integers stays an integer
COUNT = Result(Kind.UNSIGNED_INT, False)


@dataclass(frozen=True, slots=True)
class Aggregation:
    name: AggregationName
    description: str  # what the result is, for the OpenAPI document
    # The ClickHouse aggregate function over an attribute's values in a bucket (nulls skipped).
    function: str
    # The result from a bucket's rollup cells, by the attribute's {min}, {max}, {sum} and
    # {count} of non-null values over those cells; None: only the records can answer.
    cells: str | None
    result: Result
    # Whether `function` takes the values' timestamps as its second argument.
    by_time: bool = False
    # Whether v1 serves it (docs/api/v1.md §6); /ext/v1 serves every row.
    v1: bool = False
    # The result over a bucket's non-null values in time order, for reads answered from memory
    # (services/lib/recent/answer.py); None: the engine answers.
    memory: Callable[[np.ndarray], float | None] | None = None

    @property
    def wire(self) -> records_pb2.Aggregation.ValueType:
        return records_pb2.Aggregation.Value(self.name.upper())

    def arguments(self, values: str, timestamps: str) -> str:
        """The function's arguments, given the SQL of the values and of their timestamps."""
        return f"{values}, {timestamps}" if self.by_time else values

    def over_cells(self, low: str, high: str, total: str, count: str) -> str | None:
        """The result's SQL from the SQL of an attribute's merged cells, if cells can answer."""
        return None if self.cells is None else self.cells.format(min=low, max=high, sum=total, count=count)

    def kind(self, attribute: Attribute) -> Kind:
        """The kind of the result for the attribute."""
        return self.result.kind or attribute.kind


def _none_if_empty(reduce: Callable[[np.ndarray], float]) -> Callable[[np.ndarray], float | None]:
    return lambda values: reduce(values) if len(values) else None


_ROWS = (
    Aggregation("min", "the least value", "min", "{min}", VALUE, v1=True, memory=_none_if_empty(lambda v: float(v.min()))),
    Aggregation("max", "the greatest value", "max", "{max}", VALUE, v1=True, memory=_none_if_empty(lambda v: float(v.max()))),
    Aggregation(
        "avg",
        "the mean",
        "avg",
        "if({count} = 0, NULL, {sum} / {count})",
        MEAN,
        v1=True,
        memory=_none_if_empty(lambda v: float(v.sum() / len(v))),
    ),
    Aggregation("sum", "the sum", "sum", "if({count} = 0, NULL, {sum})", TOTAL, memory=_none_if_empty(lambda v: float(v.sum()))),
    Aggregation(
        "count", "the number of non-null values (0 when all are null)", "count", "{count}", COUNT, memory=lambda v: float(len(v))
    ),
    # The value of the bucket's earliest (latest) record or period that has one: nulls are skipped
    # as by every other aggregation. Cells keep no order: the records answer.
    Aggregation(
        "first", "the earliest non-null value", "argMin", None, VALUE, by_time=True, memory=_none_if_empty(lambda v: float(v[0]))
    ),
    Aggregation(
        "last", "the latest non-null value", "argMax", None, VALUE, by_time=True, memory=_none_if_empty(lambda v: float(v[-1]))
    ),
)
AGGREGATIONS: dict[str, Aggregation] = {row.name: row for row in _ROWS}
V1_AGGREGATIONS: dict[str, Aggregation] = {name: row for name, row in AGGREGATIONS.items() if row.v1}
BY_WIRE: dict[int, Aggregation] = {row.wire: row for row in _ROWS}

# A vector period's grade (a forecast's quality) aggregates as its minimum whatever was
# asked: a bucket is only as good as its worst period (docs/api/v1.md §7).
GRADES = frozenset({"quality"})


def of_period(aggregation: Aggregation, attribute: Attribute) -> Aggregation:
    """The aggregation a vector period's attribute takes when `aggregation` is asked."""
    return AGGREGATIONS["min"] if attribute.name in GRADES else aggregation


def spelled(names: list[str]) -> str:
    """`min, max or avg`: names as a message lists them."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _check() -> None:
    """The rows, their names' Literal and the proto's enum name the same aggregations."""
    names = {row.name.upper() for row in _ROWS}
    enum = set(records_pb2.Aggregation.keys()) - {"AGGREGATION_UNSPECIFIED"}
    if names != enum:
        raise ImportError(f"the aggregations {sorted(names)} and records.proto's Aggregation {sorted(enum)} differ")
    if set(get_args(AggregationName)) != set(AGGREGATIONS):
        raise ImportError(f"AggregationName {get_args(AggregationName)} and the aggregations {list(AGGREGATIONS)} differ")


_check()
