"""Series selectors over the production and forecast tables: which series a selector names, and their samples.

A selector's metric names pick (type, attribute) pairs from the catalog's
metrics (storecast/prom.py); its other matchers pick the (site_id, id) series
of those types, and for forecasts `horizon="<duration>"` the staircase at that
horizon rather than the newest vintage of each period. Equality matchers on `site_id` and `id`, and the caller's
sites, narrow the SQL as bound parameters; any other matcher is applied here to
the series the store lists (services/query/promql/matchers.py). The SQL text
only ever varies by which of a few fixed filters it carries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import promql_parser
import pyarrow as pa
from clickhouse_connect.driver.client import Client

from services.lib.reads.pending import PendingSpans
from services.lib.reads.plan import pending_answer
from services.lib.reads.rollup import EVERY_TABLE, MINUTE
from services.lib.records import typed
from services.lib.rpc.metrics import PENDING_LOOKUPS_IN_MEMORY, PENDING_LOOKUPS_IN_STORE, PROM_WINDOW_READS
from services.lib.store.engine import Store
from services.lib.store.keys import newest_versions
from services.lib.store.retention import Retention
from services.lib.store.schema import (
    FORECAST_TABLES,
    PENDING_TABLE,
    PERIOD_TIMESTAMPS,
    PRODUCTION_TABLES,
    ROLLUP_RESOLUTIONS_MS,
    ROLLUP_TABLES,
    Table,
    period_column,
)
from services.query.promql.errors import bad_data, execution
from services.query.promql.matchers import LabelMatcher, compile_matcher
from storecast.catalog import UINT32_MAX
from storecast.prom import HORIZON_LABEL, ID_LABEL, METRICS, NAME_LABEL, SITE_LABEL, Category, Metric

Labels = tuple[tuple[str, str], ...]  # sorted by name

# As Prometheus's --query.max-samples (50M there): past this many samples read, or series x steps held, a
# query is refused (422). Lower than Prometheus's: a sample read here is a row of four Arrow columns and
# its numpy copies, about 50 bytes, so this bounds a query's memory to a few hundred MB.
MAX_SAMPLES = 5_000_000


@dataclass(frozen=True, slots=True)
class Scope:
    """The sites a caller may read: None for every site."""

    sites: frozenset[int] | None


@dataclass(frozen=True, slots=True)
class Horizon:
    """A forecast staircase's horizon, as the selector's label gave it and in milliseconds."""

    text: str
    ms: int


@dataclass(frozen=True, slots=True)
class Selector:
    """A vector selector: its metrics by (category, type), its matchers on site_id, id and other labels
    (not the name, not the horizon), and the forecasts' horizon (None: the newest vintage of each period)."""

    metrics: dict[tuple[Category, str], list[Metric]]
    matchers: tuple[LabelMatcher, ...]
    offset_ms: int
    horizon: Horizon | None

    @property
    def production_only(self) -> bool:
        return all(category == "production" for category, _ in self.metrics)

    @classmethod
    def of(cls, selector: promql_parser.VectorSelector) -> Selector:
        if selector.at is not None:
            raise bad_data("the @ modifier is not supported")
        if selector.matchers.or_matchers:
            raise bad_data("`or` between label matchers is not supported")
        matchers = [compile_matcher(m) for m in selector.matchers.matchers]
        names = [m for m in matchers if m.name == NAME_LABEL]
        if selector.name is not None:
            wanted = selector.name
            names.append(LabelMatcher(NAME_LABEL, "=", wanted, lambda text: text == wanted))
        horizons = [m for m in matchers if m.name == HORIZON_LABEL]
        horizon = _horizon(horizons)
        # A series without the label has it "": production series, and forecasts without a horizon.
        unlabelled = all(m.matches("") for m in horizons)
        metrics: dict[tuple[Category, str], list[Metric]] = {}
        for name, metric in METRICS.items():
            if not all(m.matches(name) for m in names):
                continue
            if metric.category == "production" and not unlabelled:
                continue
            metrics.setdefault((metric.category, metric.equipment.name), []).append(metric)
        offset = selector.offset
        offset_ms = 0 if offset is None else int(offset.total_seconds() * 1000)
        others = tuple(m for m in matchers if m.name not in (NAME_LABEL, HORIZON_LABEL))
        return cls(metrics, others, offset_ms, horizon)


def _horizon(matchers: Sequence[LabelMatcher]) -> Horizon | None:
    """The staircase's horizon the `horizon` matchers ask for: one duration, with `=`."""
    chosen = [m for m in matchers if not m.matches("")]
    if not chosen:
        return None
    (only,) = chosen if len(chosen) == 1 else (None,)
    if only is None or only.equal is None:
        raise bad_data(f'{HORIZON_LABEL} selects a forecast\'s staircase with one value, {HORIZON_LABEL}="24h"')
    try:
        ms = round(promql_parser.parse_duration(only.equal).total_seconds() * 1000)
    except ValueError:
        raise bad_data(f"{HORIZON_LABEL} must be a duration (24h, 90m, 1d12h); got {only.equal!r}") from None
    return Horizon(only.equal, ms)


@dataclass(frozen=True, slots=True)
class Samples:
    """One series' samples, ascending by timestamp."""

    labels: Labels
    timestamps: np.ndarray  # int64 ms
    values: np.ndarray  # float64


@dataclass(frozen=True, slots=True)
class Windows:
    """One series' reduced windows: the steps that have one, and their values."""

    labels: Labels
    steps: np.ndarray  # int64: k of the step first + k * step
    values: np.ndarray  # float64


# The engine's reduction of a window's samples, per range function; nulls (absent samples) are skipped.
WINDOW_SQL = {
    "sum_over_time": "sum({column})",
    "avg_over_time": "avg({column})",
    "min_over_time": "min({column})",
    "max_over_time": "max({column})",
    "count_over_time": "count({column})",
    "last_over_time": "argMaxIf({column}, timestamp, {column} IS NOT NULL)",
}


# The same reductions over rollup cells and edge records, both as (min, max, sum, count) per attribute: the
# SQL of each from the SQL of their merged figures (services/lib/reads/rollup.py keeps the cells).
CELLS_SQL = {
    "sum_over_time": "if({count} = 0, NULL, {sum})",
    "avg_over_time": "if({count} = 0, NULL, {sum} / {count})",
    "min_over_time": "{min}",
    "max_over_time": "{max}",
    "count_over_time": "{count}",
}
# Windows at least this long take the rollup's minute cells for their inside, and records only for their
# first minute and their end: a shorter one reads about as many records as it would alone.
CELLS_MIN_WINDOW_MS = 10 * MINUTE
# The range functions whole cells answer (WholeCells): a min or a max cannot take a record out.
WHOLE_CELLS_FUNCTIONS = frozenset({"sum_over_time", "avg_over_time", "count_over_time"})


def series_labels(metric: Metric, site_id: int, record_id: int, horizon: Horizon | None = None) -> Labels:
    pairs = [(NAME_LABEL, metric.name), (ID_LABEL, str(record_id)), (SITE_LABEL, str(site_id))]
    if horizon is not None and metric.category == "forecast":
        pairs.append((HORIZON_LABEL, horizon.text))
    return tuple(sorted(pairs))


class Reader:
    """The store's series and samples for one request, within the caller's sites."""

    def __init__(
        self, store: Store, retention: Retention, scope: Scope, *, rollups: bool = False, marks: PendingSpans | None = None
    ) -> None:
        self._store = store
        self._retention = retention
        self._scope = scope
        # Whether rollup cells are kept (STORECAST_ROLLUPS), for range functions to read them.
        self._rollups = rollups
        # The rollup marks as the ingest in this process writes them, when it is the store's one writer.
        self._marks = marks if marks is not None and marks.known else None
        self.samples_read = 0

    def series(self, selector: Selector, start: int | None, end: int | None) -> Iterator[tuple[Metric, int, int]]:
        """Every (metric, site_id, id) the selector names with a value in [start, end] (None: unbounded;
        a forecast's series: any vintage, whatever its periods)."""
        with self._store.client() as client:
            for metrics in selector.metrics.values():
                sites, ids, valued = self._listed(client, metrics, selector.matchers, start, end)
                for column, metric in enumerate(metrics):
                    for row in np.flatnonzero(valued[:, column]).tolist():
                        yield metric, int(sites[row]), int(ids[row])

    def samples(self, selector: Selector, lower: int, upper: int) -> list[Samples]:
        """The samples in ]lower, upper] of every series the selector names (offset applied by the caller)."""
        found: list[Samples] = []
        with self._store.client() as client:
            for metrics in selector.metrics.values():
                found += self._type_samples(client, metrics, selector, lower, upper)
        return found

    def windows(self, selector: Selector, function: str, first: int, step: int, steps: int, window: int) -> list[Windows]:
        """`function` over the window (t - window, t] at each t = first + k * step (k < steps), computed by the
        engine: one row per series and step. Only for production series and windows that do not overlap
        (window <= step), where each sample belongs to one window at most, that of step
        k = ceil((timestamp - first) / step)."""
        assert selector.production_only
        found: list[Windows] = []
        with self._store.client() as client:
            for metrics in selector.metrics.values():
                found += self._type_windows(client, metrics, selector.matchers, function, first, step, steps, window)
        return found

    def _narrowed(
        self, client: Client, metrics: Sequence[Metric], matchers: Sequence[LabelMatcher], lower: int, upper: int
    ) -> tuple[_Filters, np.ndarray | None] | None:
        """The filters reading the selected series' rows (their WHERE: _Filters.where), and the (site_id, id)
        keys to keep of what it reads (None: all); None when no series is selected. A listing the matchers
        need looks for records in ]lower, upper]."""
        filters = _Filters.of(matchers, self._scope)
        if filters is None or not _others_match_empty(matchers):
            return None
        wanted: np.ndarray | None = None
        if filters.listing_needed:
            sites, ids, _ = self._listed(client, metrics, matchers, lower + 1, upper)
            if not len(sites):
                return None
            wanted = _keys(sites, ids)
            filters = _Filters(np.unique(sites), np.unique(ids), listing_needed=False)
        return filters, wanted

    def _read(self, client: Client, sql: str, parameters: dict[str, object]) -> pa.Table | None:
        table = typed.read_arrow(client.raw_query(sql, parameters, fmt="ArrowStream"))
        if table is not None:
            self.samples_read += table.num_rows
            if self.samples_read > MAX_SAMPLES:
                raise execution("query processing would load too many samples into memory in query execution")
        return table

    def _type_samples(
        self, client: Client, metrics: Sequence[Metric], selector: Selector, lower: int, upper: int
    ) -> list[Samples]:
        narrowed = self._narrowed(client, metrics, selector.matchers, lower, upper)
        if narrowed is None:
            return []
        filters, wanted = narrowed
        where, parameters = filters.where(*self._retention_of(metrics[0]))
        parameters |= {"lower": lower, "upper": upper}
        table_name = self._table(metrics[0])
        if metrics[0].category == "forecast":
            sql = _staircase_sql(table_name, metrics, where, selector.horizon)
            if selector.horizon is not None:
                parameters["horizon_ms"] = selector.horizon.ms
        else:
            columns = ", ".join(["site_id", "id", "timestamp", *(f"`{m.attribute.name}`" for m in metrics)])
            where += " AND timestamp > {lower:Int64} AND timestamp <= {upper:Int64}"
            sql = newest_versions(columns, table_name, where, "site_id, id, timestamp")
        budget = MAX_SAMPLES - self.samples_read
        table = self._read(client, f"{sql} LIMIT {budget + 1}", parameters)
        return [] if table is None else _split(table, metrics, wanted, selector.horizon)

    def _type_windows(
        self,
        client: Client,
        metrics: Sequence[Metric],
        matchers: Sequence[LabelMatcher],
        function: str,
        first: int,
        step: int,
        steps: int,
        window: int,
    ) -> list[Windows]:
        last = first + (steps - 1) * step
        narrowed = self._narrowed(client, metrics, matchers, first - window, last)
        if narrowed is None:
            return []
        filters, wanted = narrowed
        horizon, _ = self._retention_of(metrics[0])
        where, parameters = filters.where(horizon, "timestamp")
        bounds = {"lower": first - window, "upper": last, "first": first, "step": step, "window": window}
        cells_where, _ = filters.where(horizon, "bucket")
        table, plan = self._whole_cells_windows(
            client, metrics, function, (where, cells_where), parameters, bounds, horizon, steps
        )
        if plan is None:
            covered = self._minute_cells_coverage(client, metrics[0], function, first, step, steps, window, horizon)
            plan = "records" if covered is None else "cells"
            if covered is None:
                sql = _records_windows_sql(self._table(metrics[0]), metrics, function, where)
            else:
                sql = _cells_windows_sql(
                    self._table(metrics[0]), self._rollup_table(metrics[0]), metrics, function, where, cells_where
                )
                bounds |= {"first_covered": covered[0], "last_covered": covered[1], "minute": MINUTE}
            table = self._read(client, sql, parameters | bounds)
        PROM_WINDOW_READS.labels(plan).inc()
        if table is None:
            return []
        sites = typed.numbers(table.column("site_id"), np.uint32)
        ids = typed.numbers(table.column("id"), np.uint32)
        ks = typed.numbers(table.column("k"), np.int64)
        keys = _keys(sites, ids)
        rows = np.ones(len(keys), dtype=bool) if wanted is None else np.isin(keys, wanted)
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        ends = np.r_[starts[1:], len(keys)]
        found: list[Windows] = []
        for metric in metrics:
            name = metric.attribute.name
            values = np.asarray(table.column(f"value {name}").to_numpy(zero_copy_only=False), dtype=np.float64)
            counted = typed.numbers(table.column(f"count {name}"), np.uint64) > 0
            for start, end in zip(starts.tolist(), ends.tolist()):
                present = counted[start:end]
                if rows[start] and present.any():
                    labels = series_labels(metric, int(sites[start]), int(ids[start]))
                    found.append(Windows(labels, ks[start:end][present], values[start:end][present]))
        return found

    def _whole_cells_windows(
        self,
        client: Client,
        metrics: Sequence[Metric],
        function: str,
        wheres: tuple[str, str],
        parameters: dict[str, object],
        bounds: dict[str, int],
        horizon: int,
        steps: int,
    ) -> tuple[pa.Table | None, str | None]:
        """The windows from whole cells of the coarsest resolution that the window, the first step and the
        step are multiples of (WholeCells), and the records of the steps they do not cover; with the plan's
        name. (None, None) when they cannot answer: another function, windows not whole cells, no cell, a
        first unknown, or a sum that taking a value out would round (WholeCells.windows). `wheres`: the
        selected series' filters on records and on cells."""
        (where, cells_where), (first, step, window) = wheres, (bounds["first"], bounds["step"], bounds["window"])
        parameters = parameters | bounds
        fitting = [r for r in ROLLUP_RESOLUTIONS_MS if not (window % r or first % r or step % r)]
        if not self._cells_fit(function, first, step, window) or function not in WHOLE_CELLS_FUNCTIONS or not fitting:
            return None, None
        whole = WholeCells(metrics, function, first, step, window, max(fitting))
        cells = self._read(
            client,
            whole.sql(self._rollup_table(metrics[0]), cells_where, self._pending_expression(metrics[0])),
            parameters | whole.bounds,
        )
        if cells is None or not cells.num_rows:
            return None, None
        pending = cells.column("pending")[0].as_py()
        # The value at t is the first of the cell at t: its first minute must be trusted too.
        covered = _covered_steps(first, step, steps, window, horizon, pending, reach=MINUTE)
        windows = None if covered is None else whole.windows(cells, covered)
        if covered is None or windows is None:
            return None, None
        if covered != (0, steps - 1):
            uncovered = (
                " AND (timestamp <= {first:Int64} + ({first_covered:Int64} - 1) * {step:Int64}"
                " OR timestamp > {first:Int64} + ({last_covered:Int64} + 1) * {step:Int64} - {window:Int64})"
            )
            sql = _records_windows_sql(self._table(metrics[0]), metrics, function, where + uncovered)
            records = self._read(client, sql, parameters | {"first_covered": covered[0], "last_covered": covered[1]})
            if records is not None:
                windows = pa.concat_tables([windows, records.select(windows.column_names).cast(windows.schema)])
                windows = windows.sort_by([("site_id", "ascending"), ("id", "ascending"), ("k", "ascending")])
        return windows, "whole_cells"

    def _cells_fit(self, function: str, first: int, step: int, window: int) -> bool:
        """Whether rollup cells may answer: kept, a function they hold, and windows of whole minutes, long
        enough that the cells save reading records."""
        if not self._rollups or function not in CELLS_SQL or window < CELLS_MIN_WINDOW_MS:
            return False
        return not (window % MINUTE or first % MINUTE or step % MINUTE)

    def _pending_sql(self, metric: Metric) -> str:
        """The first pending timestamp of the metric's table (NULL: none): cells are trusted before its minute."""
        return (
            f"SELECT minOrNull(first) FROM {self._store.table(PENDING_TABLE.name)}"
            f" WHERE tbl = '{self._table(metric)}' OR tbl = '{EVERY_TABLE}'"
        )

    def _pending_expression(self, metric: Metric) -> str:
        """_pending_sql's value in a query: a constant when this process holds the marks (services/lib/reads/pending.py)."""
        if self._marks is None:
            PENDING_LOOKUPS_IN_STORE.inc()
            return f"({self._pending_sql(metric)})"
        PENDING_LOOKUPS_IN_MEMORY.inc()
        pending = self._marks.first_pending_in(self._table(metric))
        return f"CAST({'NULL' if pending is None else pending}, 'Nullable(Int64)')"

    def _first_pending(self, client: Client, metric: Metric) -> int | None:
        if self._marks is not None:
            PENDING_LOOKUPS_IN_MEMORY.inc()
            return self._marks.first_pending_in(self._table(metric))
        PENDING_LOOKUPS_IN_STORE.inc()
        return pending_answer(client.raw_query(self._pending_sql(metric), fmt="TabSeparatedRaw"))

    def _minute_cells_coverage(
        self, client: Client, metric: Metric, function: str, first: int, step: int, steps: int, window: int, horizon: int
    ) -> tuple[int, int] | None:
        """The steps k (first and last) whose windows take the rollup's minute cells for their inside, or None.

        A window (t - window, t] is [t - window + 1 min, t) in whole minute cells when t and the window are whole
        minutes, and the records of its first minute (past t - window) and of t itself.
        """
        if not self._cells_fit(function, first, step, window):
            return None
        return _covered_steps(first, step, steps, window, horizon, self._first_pending(client, metric))

    def _rollup_table(self, metric: Metric) -> str:
        return self._store.table(ROLLUP_TABLES[metric.equipment.name].name)

    def _listed(
        self, client: Client, metrics: Sequence[Metric], matchers: Sequence[LabelMatcher], start: int | None, end: int | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The (site_id, id) series of the metrics' type that the matchers select with a record in [start, end]
        (forecasts: any vintage), and whether each holds a value of each metric there (series x metrics)."""
        metric = metrics[0]
        none = np.array([], dtype=np.uint32)
        filters = _Filters.of(matchers, self._scope)
        if filters is None or not _others_match_empty(matchers):
            return none, none, np.zeros((0, len(metrics)), dtype=bool)
        where, parameters = filters.where(*self._retention_of(metric))
        if metric.category == "forecast":
            # The vintages holding a value of the attribute.
            counts = ", ".join(
                f"countIf(arrayExists(x -> isNotNull(x), `{period_column(m.attribute.name)}`)) AS `{m.attribute.name}`"
                for m in metrics
            )
        else:
            if start is not None:
                where += " AND timestamp >= {start:Int64}"
                parameters["start"] = start
            if end is not None:
                where += " AND timestamp <= {end:Int64}"
                parameters["end"] = end
            # count(column) counts its non-null values.
            counts = ", ".join(f"count(`{m.attribute.name}`) AS `{m.attribute.name}`" for m in metrics)
        sql = f"SELECT site_id, id, {counts} FROM {self._table(metric)} WHERE {where} GROUP BY site_id, id ORDER BY site_id, id"
        table = typed.read_arrow(client.raw_query(sql, parameters, fmt="ArrowStream"))
        if table is None:
            return none, none, np.zeros((0, len(metrics)), dtype=bool)
        sites = typed.numbers(table.column("site_id"), np.uint32)
        ids = typed.numbers(table.column("id"), np.uint32)
        valued = np.column_stack([typed.numbers(table.column(m.attribute.name), np.uint64) > 0 for m in metrics])
        keep = np.fromiter(
            (_pair_matches(matchers, site, record) for site, record in zip(sites.tolist(), ids.tolist())),
            dtype=bool,
            count=len(sites),
        )
        return sites[keep], ids[keep], valued[keep]

    def _table(self, metric: Metric) -> str:
        return self._store.table(_TABLES[metric.category][metric.equipment.name].name)

    def _retention_of(self, metric: Metric) -> tuple[int, str]:
        """The oldest timestamp kept of the metric's table, and the column it applies to."""
        column = "creation_timestamp" if metric.category == "forecast" else "timestamp"
        return self._retention.horizon_ms(metric.category, metric.equipment.name), column


def _covered_steps(
    first: int, step: int, steps: int, window: int, horizon: int, pending: int | None, reach: int = 0
) -> tuple[int, int] | None:
    """The steps k (first and last) whose windows take the rollup's cells, or None. Cells are trusted before
    the minute of the first pending timestamp (services/lib/reads/rollup.py), up to `reach` past t, and
    taken only for windows wholly within the raw retention, so that cells and records answer the same."""
    trusted_until = first + steps * step + reach if pending is None else pending // MINUTE * MINUTE
    first_covered = max(0, -(-(horizon + window - first) // step))
    last_covered = min(steps - 1, (trusted_until - reach - first) // step)
    return (first_covered, last_covered) if first_covered <= last_covered else None


_TABLES: dict[Category, dict[str, Table]] = {"production": PRODUCTION_TABLES, "forecast": FORECAST_TABLES}


# k = ceil((timestamp - first) / step), in integers: the step whose window (t - window, t] may hold the record
# (windows do not overlap); the records read are past first - window >= first - step.
_STEP_OF_RECORD = "intDiv(timestamp - {first:Int64} + {step:Int64} - 1, {step:Int64})"
_IN_ITS_WINDOW = f"timestamp > {{first:Int64}} + {_STEP_OF_RECORD} * {{step:Int64}} - {{window:Int64}}"


def _records_windows_sql(table: str, metrics: Sequence[Metric], function: str, where: str) -> str:
    """Per (site_id, id, k): `value <name>` and `count <name>` of each metric, from the records of its window."""
    names = [m.attribute.name for m in metrics]
    records = newest_versions(
        ", ".join(["site_id", "id", "timestamp", *(f"`{name}`" for name in names)]),
        table,
        where + " AND timestamp > {lower:Int64} AND timestamp <= {upper:Int64}",
        "site_id, id, timestamp",
    )
    reduce = WINDOW_SQL[function]
    aggregates = ", ".join(
        f"{reduce.format(column=f'`{name}`')} AS `value {name}`, count(`{name}`) AS `count {name}`" for name in names
    )
    return (
        f"SELECT site_id, id, {_STEP_OF_RECORD} AS k, {aggregates} FROM ({records}) WHERE {_IN_ITS_WINDOW}"
        " GROUP BY site_id, id, k ORDER BY site_id, id, k"
    )


def _cells_windows_sql(
    table: str, rollup_table: str, metrics: Sequence[Metric], function: str, where: str, cells_where: str
) -> str:
    """What _records_windows_sql gives, the covered steps' windows (_covered_steps) from minute cells
    inside and records at their edges, every other step's from its records."""
    names = [m.attribute.name for m in metrics]
    indexes = {a.name: i for i, a in enumerate(metrics[0].equipment.attributes, start=1)}
    # A minute cell [b, b + 1 min) is inside the window of step k = ceil((b + 1 min - first) / step).
    cell_step = "intDiv(bucket + {minute:Int64} - {first:Int64} + {step:Int64} - 1, {step:Int64})"
    figures = ", ".join(
        f"mins[{indexes[n]}] AS `cell min {n}`, maxs[{indexes[n]}] AS `cell max {n}`,"
        f" sums[{indexes[n]}] AS `cell sum {n}`, counts[{indexes[n]}] AS `cell count {n}`"
        for n in names
    )
    cells = (
        f"SELECT site_id, id, {cell_step} AS k, {figures} FROM {rollup_table} FINAL WHERE {cells_where}"
        " AND resolution = {minute:Int64}"
        " AND bucket >= {first:Int64} + {first_covered:Int64} * {step:Int64} - {window:Int64} + {minute:Int64}"
        " AND bucket < {first:Int64} + {last_covered:Int64} * {step:Int64}"
        f" AND bucket >= {{first:Int64}} + {cell_step} * {{step:Int64}} - {{window:Int64}} + {{minute:Int64}}"
    )
    # The records of uncovered steps, and of the covered ones' first minute and end.
    step_start = f"{{first:Int64}} + {_STEP_OF_RECORD} * {{step:Int64}} - {{window:Int64}}"
    edges = (
        f" AND {_IN_ITS_WINDOW} AND ({_STEP_OF_RECORD} < {{first_covered:Int64}} OR {_STEP_OF_RECORD} > {{last_covered:Int64}}"
        f" OR timestamp < {step_start} + {{minute:Int64}} OR timestamp = {{first:Int64}} + {_STEP_OF_RECORD} * {{step:Int64}})"
    )
    records = newest_versions(
        ", ".join(["site_id", "id", "timestamp", *(f"`{name}`" for name in names)]),
        table,
        where + " AND timestamp > {lower:Int64} AND timestamp <= {upper:Int64}" + edges,
        "site_id, id, timestamp",
    )
    as_figures = ", ".join(
        f"CAST(`{n}` AS Nullable(Float64)) AS `cell min {n}`, `cell min {n}` AS `cell max {n}`,"
        f" ifNull(`cell min {n}`, 0) AS `cell sum {n}`, toUInt32(`{n}` IS NOT NULL) AS `cell count {n}`"
        for n in names
    )
    records_as_cells = f"SELECT site_id, id, {_STEP_OF_RECORD} AS k, {as_figures} FROM ({records})"
    reduce = CELLS_SQL[function]
    aggregates = ", ".join(
        reduce.format(
            min=f"min(`cell min {n}`)", max=f"max(`cell max {n}`)", sum=f"sum(`cell sum {n}`)", count=f"sum(`cell count {n}`)"
        )
        + f" AS `value {n}`, sum(`cell count {n}`) AS `count {n}`"
        for n in names
    )
    return (
        f"SELECT site_id, id, k, {aggregates} FROM ({cells} UNION ALL {records_as_cells})"
        " GROUP BY site_id, id, k ORDER BY site_id, id, k"
    )


@dataclass(frozen=True, slots=True)
class WholeCells:
    """Windows (t - window, t] of the covered steps from the rollup's cells of one resolution: the cells of
    [t - window, t), less the firsts of the cell at t - window (the record at that time, in the window's
    cells but not in the window) and plus those of the cell at t. One read of the cells; the sums in numpy."""

    metrics: Sequence[Metric]
    function: str
    first: int
    step: int
    window: int
    resolution: int

    @property
    def bounds(self) -> dict[str, object]:
        return {"resolution": self.resolution}

    def sql(self, rollup_table: str, cells_where: str, pending: str) -> str:
        """The cells from the first window's start to the last step, with the metrics' figures, and on every
        row the first pending timestamp (`pending`, an expression): one query, as each costs the engine milliseconds."""
        indexes = {a.name: i for i, a in enumerate(self.metrics[0].equipment.attributes, start=1)}
        figures = ", ".join(
            f"sums[{i}] AS `sum {n}`, counts[{i}] AS `count {n}`, mins[{i}] AS `min {n}`, maxs[{i}] AS `max {n}`,"
            f" firsts[{i}] AS `first {n}`"
            for n, i in ((m.attribute.name, indexes[m.attribute.name]) for m in self.metrics)
        )
        return (
            f"SELECT site_id, id, bucket, notEmpty(firsts) AS known, {figures}, {pending} AS pending"
            f" FROM {rollup_table} FINAL WHERE {cells_where} AND resolution = {{resolution:Int64}}"
            " AND bucket >= {lower:Int64} AND bucket <= {upper:Int64}"
        )

    def windows(self, cells: pa.Table, covered: tuple[int, int]) -> pa.Table | None:
        """Per (site_id, id, k) of the covered steps with a cell: `value <name>` and `count <name>` of each
        metric, as _records_windows_sql gives them; None when a first it needs is unknown or a sum is not
        exact enough."""
        first, step, window, resolution = self.first, self.step, self.window, self.resolution
        low, high = covered
        buckets = typed.numbers(cells.column("bucket"), np.int64)
        keys = _keys(typed.numbers(cells.column("site_id"), np.uint32), typed.numbers(cells.column("id"), np.uint32))
        # A cell is inside the window of step k = ceil((bucket + resolution - first) / step), if it starts after
        # t - window; it holds the record at t of step (bucket - first) / step, and the one at t - window of
        # step (bucket + window - first) / step, when those are whole.
        inside_k = -((first - buckets - resolution) // step)
        inside = (buckets >= first + inside_k * step - window) & (inside_k >= low) & (inside_k <= high)
        end_k, end_off = np.divmod(buckets - first, step)
        ends = (end_off == 0) & (end_k >= low) & (end_k <= high)
        start_k, start_off = np.divmod(buckets + window - first, step)
        starts = (start_off == 0) & (start_k >= low) & (start_k <= high)
        known = np.asarray(cells.column("known").to_numpy(zero_copy_only=False), dtype=bool)
        if not known[ends | starts].all():
            return None
        ks = np.concatenate([inside_k[inside], end_k[ends], start_k[starts]])
        owners = np.concatenate([keys[inside], keys[ends], keys[starts]])
        order = np.lexsort((ks, owners))
        ks, owners = ks[order], owners[order]
        # The first part of each (series, step); none without a part.
        heads = np.flatnonzero(np.r_[len(ks) > 0, (owners[1:] != owners[:-1]) | (ks[1:] != ks[:-1])])
        columns: dict[str, pa.Array[Any]] = {
            "site_id": pa.array((owners[heads] >> np.uint64(32)).astype(np.uint32)),
            "id": pa.array((owners[heads] & np.uint64(0xFFFFFFFF)).astype(np.uint32)),
            "k": pa.array(ks[heads]),
        }

        def by_step(inside_part: np.ndarray, end_part: np.ndarray, start_part: np.ndarray) -> np.ndarray:
            """The parts of each (series, step), in the order `heads` cuts."""
            return np.concatenate([inside_part[inside], end_part[ends], start_part[starts]])[order]

        for metric in self.metrics:
            name = metric.attribute.name
            firsts = _floats(cells.column(f"first {name}"))
            has_first = ~np.isnan(firsts)
            firsts, first_counts = np.where(has_first, firsts, 0.0), has_first.astype(np.int64)
            counts = typed.numbers(cells.column(f"count {name}"), np.int64)
            sums = np.add.reduceat(by_step(typed.numbers(cells.column(f"sum {name}"), np.float64), firsts, -firsts), heads)
            counted = np.add.reduceat(by_step(counts, first_counts, -first_counts), heads)
            if self.function != "count_over_time":
                # The rounding a cell's sum gave the value taken out of it stays in the answer: no more than
                # a sum of the window's own values may have, as long as that value is no larger than one of
                # them (a lower bound of sum |value| over the window, from the cells' extremes and values).
                lows, highs = _floats(cells.column(f"min {name}")), _floats(cells.column(f"max {name}"))
                magnitudes, none = np.abs(firsts), np.zeros(len(firsts))
                others = _other_than_first(firsts, has_first, counts, lows, highs)
                least_magnitude = np.fmax(np.maximum.reduceat(by_step(others, magnitudes, none), heads), np.abs(sums))
                if bool(np.any(np.add.reduceat(by_step(none, none, magnitudes), heads) > least_magnitude)):
                    return None
            with np.errstate(invalid="ignore", divide="ignore"):
                value = {"sum_over_time": sums, "avg_over_time": sums / counted, "count_over_time": counted.astype(np.float64)}
            columns[f"value {name}"] = pa.array(value[self.function])
            columns[f"count {name}"] = pa.array(np.maximum(counted, 0).astype(np.uint64))
        return pa.table(columns)


def _other_than_first(
    firsts: np.ndarray, has_first: np.ndarray, counts: np.ndarray, lows: np.ndarray, highs: np.ndarray
) -> np.ndarray:
    """Per cell, the magnitude of one value of it other than its first, or 0: an extreme the first is not."""
    low, high = np.nan_to_num(np.abs(lows)), np.nan_to_num(np.abs(highs))
    other = np.where(firsts == highs, low, np.where(firsts == lows, high, np.fmax(low, high)))
    other = np.where(has_first, np.where(counts > 1, other, 0.0), np.fmax(low, high))
    return np.asarray(other, dtype=np.float64)


def _floats(column: pa.ChunkedArray[Any]) -> np.ndarray:
    """A nullable float column as numpy, NaN for null."""
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def _staircase_sql(table: str, metrics: Sequence[Metric], where: str, horizon: Horizon | None) -> str:
    """The forecast series' periods t in ]lower, upper], each from the newest vintage holding t (created at or
    before t - horizon when there is one): columns site_id, id, timestamp and each metric's attribute.

    services/vector/staircase.py's staircase, over every selected series at once; a period whose
    chosen vintage holds null there is no sample."""
    names = [m.attribute.name for m in metrics]
    vintages = newest_versions(
        ", ".join(
            ["site_id", "id", "creation_timestamp", f"`{PERIOD_TIMESTAMPS}` AS s_timestamp"]
            + [f"`{period_column(n)}` AS `s_{n}`" for n in names]
        ),
        table,
        where + (" AND creation_timestamp <= {upper:Int64} - {horizon_ms:Int64}" if horizon is not None else ""),
        "site_id, id, creation_timestamp",
    )
    periods = ", ".join(["s_timestamp AS t", *(f"`s_{n}` AS `p_{n}`" for n in names)])
    # A tuple is never null, so argMax keeps the chosen vintage's nulls rather than skipping them.
    chosen = f"argMax(tuple(creation_timestamp, {', '.join(f'`p_{n}`' for n in names)}), creation_timestamp)"
    since = " AND creation_timestamp <= t - {horizon_ms:Int64}" if horizon is not None else ""
    columns = ", ".join(f"tupleElement(chosen, {i}) AS `{n}`" for i, n in enumerate(names, start=2))
    return (
        f"SELECT site_id, id, t AS timestamp, {columns} FROM ("
        f"SELECT site_id, id, t, {chosen} AS chosen FROM ({vintages}) ARRAY JOIN {periods}"
        f" WHERE t > {{lower:Int64}} AND t <= {{upper:Int64}}{since}"
        " GROUP BY site_id, id, t) ORDER BY site_id, id, timestamp"
    )


@dataclass(frozen=True, slots=True)
class _Filters:
    """What narrows the SQL: the only sites and ids (None: any), and whether other matchers remain."""

    sites: np.ndarray | None
    ids: np.ndarray | None
    listing_needed: bool

    @classmethod
    def of(cls, matchers: Sequence[LabelMatcher], scope: Scope) -> _Filters | None:
        """None when no series can match (an equality on a value no series has, a site out of scope)."""
        sites: set[int] | None = None if scope.sites is None else set(scope.sites)
        ids: set[int] | None = None
        listing_needed = False
        for matcher in matchers:
            if matcher.name not in (SITE_LABEL, ID_LABEL):
                continue
            if matcher.equal is None:
                listing_needed = True
                continue
            number = _uint32(matcher.equal)
            chosen = set() if number is None else {number}
            if matcher.name == SITE_LABEL:
                sites = chosen if sites is None else sites & chosen
            else:
                ids = chosen if ids is None else ids & chosen
        if sites is not None and not sites or ids is not None and not ids:
            return None
        return cls(
            None if sites is None else np.array(sorted(sites), dtype=np.uint32),
            None if ids is None else np.array(sorted(ids), dtype=np.uint32),
            listing_needed,
        )

    def where(self, horizon: int, time_column: str) -> tuple[str, dict[str, object]]:
        """The filter on the selected sites and ids, and on retention: rows of `time_column` >= horizon."""
        where = f"{time_column} >= {{horizon:Int64}}"
        parameters: dict[str, object] = {"horizon": horizon}
        if self.sites is not None:
            where += " AND site_id IN {sites:Array(UInt32)}"
            parameters["sites"] = self.sites.tolist()
        if self.ids is not None:
            where += " AND id IN {ids:Array(UInt32)}"
            parameters["ids"] = self.ids.tolist()
        return where, parameters


def _uint32(text: str) -> int | None:
    """The label value as a stored key: only the decimal text a label of it shows."""
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        return None
    number = int(text)
    return number if number <= UINT32_MAX else None


def _others_match_empty(matchers: Sequence[LabelMatcher]) -> bool:
    """A label no series has is "": a matcher on one that refuses "" selects nothing."""
    return all(m.matches("") for m in matchers if m.name not in (SITE_LABEL, ID_LABEL))


def _pair_matches(matchers: Sequence[LabelMatcher], site_id: int, record_id: int) -> bool:
    values = {SITE_LABEL: str(site_id), ID_LABEL: str(record_id)}
    return all(m.matches(values[m.name]) for m in matchers if m.name in values)


def _keys(sites: np.ndarray, ids: np.ndarray) -> np.ndarray:
    return (sites.astype(np.uint64) << np.uint64(32)) | ids.astype(np.uint64)


def _split(table: pa.Table, metrics: Sequence[Metric], wanted: np.ndarray | None, horizon: Horizon | None) -> list[Samples]:
    """The rows (ascending by site_id, id, timestamp) as one Samples per series and metric, nulls left out."""
    sites = typed.numbers(table.column("site_id"), np.uint32)
    ids = typed.numbers(table.column("id"), np.uint32)
    stamps = typed.numbers(table.column("timestamp"), np.int64)
    keys = _keys(sites, ids)
    rows = np.ones(len(keys), dtype=bool) if wanted is None else np.isin(keys, wanted)
    columns = [np.asarray(table.column(m.attribute.name).to_numpy(zero_copy_only=False), dtype=np.float64) for m in metrics]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    found: list[Samples] = []
    for start, end in zip(starts.tolist(), ends.tolist()):
        if not rows[start]:
            continue
        site_id, record_id = int(sites[start]), int(ids[start])
        for metric, column in zip(metrics, columns):
            values = column[start:end]
            present = ~np.isnan(values)
            if present.any():
                labels = series_labels(metric, site_id, record_id, horizon)
                found.append(Samples(labels, stamps[start:end][present], values[present]))
    return found
