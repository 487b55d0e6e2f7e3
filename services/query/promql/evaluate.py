"""PromQL evaluation over the production records, columnar (docs/api/prometheus.md, "PromQL").

The expression is parsed by promql-parser and evaluated at every step at once:
an instant vector is a matrix of values (series x steps) with a mask of the
points present, so each operation is a few numpy calls whatever the number of
steps. Prometheus 3's semantics: a plain selector takes, at each step t, the
newest sample in (t - 5m, t]; a range function reduces the samples in
(t - range, t]; samples are never stale but by the lookback (the store has no
staleness markers: they only come from scraping).

The subset: number literals; vector selectors with =, !=, =~ and !~ matchers and
`offset`; `avg_`, `min_`, `max_`, `sum_`, `count_` and `last_over_time` of a range
selector; `sum`, `avg`, `min`, `max` and `count`, with `by` or `without`; unary
minus; + - * / % ^ between scalars, or between a vector and a scalar; and, in an
instant query only, a bare range selector. Anything else is refused, naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import promql_parser

from services.query.promql.errors import bad_data, execution
from services.query.promql.select import MAX_SAMPLES, WINDOW_SQL, Labels, Reader, Samples, Selector
from storecast.prom import NAME_LABEL

LOOKBACK_MS = 5 * 60 * 1000  # Prometheus's --query.lookback-delta
# Prometheus's limit on a range query's steps (api/v1: "exceeded maximum resolution").
MAX_POINTS = 11_000


@dataclass(frozen=True, slots=True)
class Scalar:
    values: np.ndarray  # one per step


@dataclass(frozen=True, slots=True)
class Vector:
    labels: list[Labels]
    values: np.ndarray  # series x steps
    present: np.ndarray  # bool, series x steps


@dataclass(frozen=True, slots=True)
class RangeSamples:
    """A bare range selector's samples, which only an instant query may return."""

    series: list[Samples]


Value = Scalar | Vector | RangeSamples


def _over_time_sum(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return _reduce_windows(np.add, values, lo, hi)


def _over_time_avg(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        result: np.ndarray = _reduce_windows(np.add, values, lo, hi) / (hi - lo)
    return result


def _over_time_min(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return _reduce_windows(np.minimum, values, lo, hi)


def _over_time_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return _reduce_windows(np.maximum, values, lo, hi)


def _over_time_count(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    counts: np.ndarray = (hi - lo).astype(np.float64)
    return counts


def _over_time_last(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    result: np.ndarray = values[np.maximum(hi - 1, 0)]
    return result


# Each function of a range: the windows' [lo, hi[ row bounds into a series' samples -> one value per window.
WindowReduce = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
OVER_TIME: dict[str, WindowReduce] = {
    "sum_over_time": _over_time_sum,
    "avg_over_time": _over_time_avg,
    "min_over_time": _over_time_min,
    "max_over_time": _over_time_max,
    "count_over_time": _over_time_count,
    "last_over_time": _over_time_last,
}
if OVER_TIME.keys() != WINDOW_SQL.keys():
    raise ImportError("every range function needs both its numpy and its engine reduction")
AGGREGATIONS = ("sum", "avg", "min", "max", "count")
ARITHMETIC: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,  # Go's math.Mod: the sign of the dividend
    "^": np.power,
}


def _reduce_windows(ufunc: np.ufunc, values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """ufunc over values[lo[i]:hi[i]] for each window (garbage where empty: masked by the caller)."""
    if not len(values):
        return np.zeros(len(lo))
    padded = np.append(values, 0.0)  # hi may be len(values)
    bounds = np.empty(2 * len(lo), dtype=np.int64)
    bounds[0::2], bounds[1::2] = lo, hi
    # reduceat over (lo, hi) pairs: for lo < hi, the window's reduction; for lo >= hi, padded[lo].
    reduced: np.ndarray = ufunc.reduceat(padded, bounds)[0::2]
    return reduced


class Evaluation:
    """One query's evaluation at its steps."""

    def __init__(self, reader: Reader, steps: np.ndarray) -> None:
        self._reader = reader
        self.steps = steps

    def evaluate(self, expression: promql_parser.Expr) -> Value:
        if isinstance(expression, promql_parser.NumberLiteral):
            return Scalar(np.full(len(self.steps), float(expression.val)))
        if isinstance(expression, promql_parser.ParenExpr):
            return self.evaluate(expression.expr)
        if isinstance(expression, promql_parser.UnaryExpr):
            return self._negate(self.evaluate(expression.expr))
        if isinstance(expression, promql_parser.VectorSelector):
            return self._instant(Selector.of(expression))
        if isinstance(expression, promql_parser.MatrixSelector):
            return self._range_samples(expression)
        if isinstance(expression, promql_parser.Call):
            return self._call(expression)
        if isinstance(expression, promql_parser.AggregateExpr):
            return self._aggregate(expression)
        if isinstance(expression, promql_parser.BinaryExpr):
            return self._binary(expression)
        if isinstance(expression, promql_parser.SubqueryExpr):
            raise bad_data("subqueries are not supported")
        if isinstance(expression, promql_parser.StringLiteral):
            raise bad_data("string literals are not supported")
        raise bad_data(f"unsupported expression: {expression.prettify()}")

    def _instant(self, selector: Selector) -> Vector:
        """At each step t, each series' newest sample in (t - lookback, t]: the engine's last_over_time of the
        lookback when those windows do not overlap, else from the samples."""
        times = self.steps - selector.offset_ms
        step = int(times[1] - times[0]) if len(times) > 1 else LOOKBACK_MS
        if step >= LOOKBACK_MS and selector.production_only:
            values, present, labels = self._engine_windows(selector, "last_over_time", int(times[0]), step, LOOKBACK_MS)
            return Vector(labels, values, present)
        found = self._reader.samples(selector, int(times[0]) - LOOKBACK_MS, int(times[-1]))
        self._bound(len(found))
        values = np.zeros((len(found), len(times)))
        present = np.zeros((len(found), len(times)), dtype=bool)
        for row, samples in enumerate(found):
            newest = np.searchsorted(samples.timestamps, times, side="right") - 1
            safe = np.maximum(newest, 0)
            present[row] = (newest >= 0) & (samples.timestamps[safe] > times - LOOKBACK_MS)
            values[row] = samples.values[safe]
        return Vector([s.labels for s in found], values, present)

    def _range_samples(self, matrix: promql_parser.MatrixSelector) -> RangeSamples:
        if len(self.steps) != 1:
            raise bad_data('invalid expression type "range vector" for range query, must be Scalar or instant Vector')
        selector = Selector.of(matrix.vector_selector)
        time = int(self.steps[0]) - selector.offset_ms
        return RangeSamples(self._reader.samples(selector, time - _ms(matrix.range), time))

    def _call(self, call: promql_parser.Call) -> Vector:
        name = call.func.name
        reduce = OVER_TIME.get(name)
        if reduce is None:
            raise bad_data(f"function {name}() is not supported; supported: {', '.join(sorted(OVER_TIME))}")
        (argument,) = call.args
        if not isinstance(argument, promql_parser.MatrixSelector):
            raise bad_data(f"{name}() is supported over a range selector only (no subquery)")
        selector = Selector.of(argument.vector_selector)
        window = _ms(argument.range)
        times = self.steps - selector.offset_ms
        step = int(times[1] - times[0]) if len(times) > 1 else window
        if window <= step and selector.production_only:
            values, present, found_labels = self._engine_windows(selector, name, int(times[0]), step, window)
        else:
            values, present, found_labels = self._numpy_windows(selector, reduce, times, window)
        # As Prometheus: every function of a range drops the metric name but last_over_time, which keeps the sample as it is.
        labels = [found if name == "last_over_time" else _without_name(found) for found in found_labels]
        return _distinct(Vector(labels, values, present))

    def _engine_windows(
        self, selector: Selector, name: str, first: int, step: int, window: int
    ) -> tuple[np.ndarray, np.ndarray, list[Labels]]:
        """Windows that do not overlap, reduced by the engine: one row per series and step read."""
        found = self._reader.windows(selector, name, first, step, len(self.steps), window)
        self._bound(len(found))
        values = np.zeros((len(found), len(self.steps)))
        present = np.zeros((len(found), len(self.steps)), dtype=bool)
        for row, windows in enumerate(found):
            values[row, windows.steps] = windows.values
            present[row, windows.steps] = True
        return values, present, [w.labels for w in found]

    def _numpy_windows(
        self,
        selector: Selector,
        reduce: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
        times: np.ndarray,
        window: int,
    ) -> tuple[np.ndarray, np.ndarray, list[Labels]]:
        """Overlapping windows, over the samples read once."""
        found = self._reader.samples(selector, int(times[0]) - window, int(times[-1]))
        self._bound(len(found))
        values = np.zeros((len(found), len(times)))
        present = np.zeros((len(found), len(times)), dtype=bool)
        for row, samples in enumerate(found):
            # The window (t - range, t]: rows [lo, hi[.
            lo = np.searchsorted(samples.timestamps, times - window, side="right")
            hi = np.searchsorted(samples.timestamps, times, side="right")
            present[row] = hi > lo
            values[row] = reduce(samples.values, lo, hi)
        return values, present, [s.labels for s in found]

    def _aggregate(self, aggregate: promql_parser.AggregateExpr) -> Vector:
        operator = str(aggregate.op)
        if operator not in AGGREGATIONS:
            raise bad_data(f"aggregation {operator} is not supported; supported: {', '.join(AGGREGATIONS)}")
        operand = self.evaluate(aggregate.expr)
        if not isinstance(operand, Vector):
            raise bad_data(f"{operator} aggregates an instant vector")
        modifier = aggregate.modifier
        keep: Callable[[Labels], Labels]
        if modifier is None:
            keep = lambda labels: ()  # noqa: E731
        elif modifier.type == promql_parser.AggModifierType.By:
            by = set(modifier.labels)
            keep = lambda labels: tuple(pair for pair in labels if pair[0] in by)  # noqa: E731
        else:
            without = {*modifier.labels, NAME_LABEL}
            keep = lambda labels: tuple(pair for pair in labels if pair[0] not in without)  # noqa: E731
        groups: dict[Labels, int] = {}
        group_of = np.array([groups.setdefault(keep(labels), len(groups)) for labels in operand.labels], dtype=np.int64)
        shape = (len(groups), len(self.steps))
        counts = np.zeros(shape)
        np.add.at(counts, group_of, operand.present.astype(np.float64))
        if operator in ("sum", "avg"):
            result = np.zeros(shape)
            np.add.at(result, group_of, np.where(operand.present, operand.values, 0.0))
            if operator == "avg":
                with np.errstate(invalid="ignore", divide="ignore"):
                    result = result / counts
        elif operator == "count":
            result = counts
        else:
            extreme, ufunc = (np.inf, np.minimum) if operator == "min" else (-np.inf, np.maximum)
            result = np.full(shape, extreme)
            ufunc.at(result, group_of, np.where(operand.present, operand.values, extreme))
        return Vector(list(groups), result, counts > 0)

    def _binary(self, binary: promql_parser.BinaryExpr) -> Value:
        operator = str(binary.op)
        function = ARITHMETIC.get(operator)
        if function is None:
            raise bad_data(f"binary operator {operator} is not supported; supported: {' '.join(ARITHMETIC)}")
        left, right = self.evaluate(binary.lhs), self.evaluate(binary.rhs)
        with np.errstate(all="ignore"):
            if isinstance(left, Scalar) and isinstance(right, Scalar):
                return Scalar(function(left.values, right.values))
            if isinstance(left, Vector) and isinstance(right, Scalar):
                return _distinct(
                    Vector([_without_name(x) for x in left.labels], function(left.values, right.values), left.present)
                )
            if isinstance(left, Scalar) and isinstance(right, Vector):
                return _distinct(
                    Vector([_without_name(x) for x in right.labels], function(left.values, right.values), right.present)
                )
        if isinstance(left, Vector) and isinstance(right, Vector):
            raise bad_data(f"binary operator {operator} between two instant vectors is not supported")
        raise bad_data(f"binary operator {operator} takes scalars and instant vectors")

    def _negate(self, value: Value) -> Value:
        if isinstance(value, Scalar):
            return Scalar(-value.values)
        if isinstance(value, Vector):
            return _distinct(Vector([_without_name(x) for x in value.labels], -value.values, value.present))
        raise bad_data("unary minus takes a scalar or an instant vector")

    def _bound(self, series: int) -> None:
        if series * len(self.steps) > MAX_SAMPLES:
            raise execution("query processing would load too many samples into memory in query execution")


def _ms(duration: object) -> int:
    seconds = getattr(duration, "total_seconds", None)
    if seconds is None:
        raise bad_data("a range selector needs a range")
    return int(round(seconds() * 1000))


def _without_name(labels: Labels) -> Labels:
    return tuple(pair for pair in labels if pair[0] != NAME_LABEL)


def _distinct(vector: Vector) -> Vector:
    """Prometheus's refusal of two series of one label set at one step (names dropped: `l1_p` and `l2_p` of one meter)."""
    rows: dict[Labels, list[int]] = {}
    for row, labels in enumerate(vector.labels):
        rows.setdefault(labels, []).append(row)
    for same in rows.values():
        if len(same) > 1 and (vector.present[same].sum(axis=0) > 1).any():
            raise execution("vector cannot contain metrics with the same labelset")
    return vector
