"""Which plan answers an aggregated production read: rollup cells, or a raw scan of the records.

Both give the same buckets (min and max equal, sums within float rounding):
the cells hold, per attribute, the min, max, sum and count of the newest
version of each record of their span (services/lib/reads/rollup.py). What
differs is the cost. The raw plan reads every record of the range; the cells
plan first looks up the range's pending marks (a small query of the store,
or the ingest's own marks in its process: services/lib/reads/pending.py), then reads the
whole cells of the range before the first pending minute, and the records of
what is left: the partial minutes at either edge, and everything from the
first pending minute on. Right after a write that is most of the range, and
the raw plan is cheaper; once the maintainer's round is done, a long range
reads a cell for every 60 records or more.

A plan's cost is estimated from its size, by `COSTS`, measured once on chDB
(docs/architecture/storage.md, "Reads"): a fixed part (the engine's analysis
of the query, and for the cells plan the pending lookup too), then a part per
value read. The records of a range are counted at `CADENCE_MS`: telemetry's
usual one record a second. A sparser series only makes cells the better
choice (a cell exists only where a record does), a denser one misses the
cells plan where it would have been cheaper, never an exact answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from services.lib.reads.render import Member
from services.lib.reads.rollup import EVERY_TABLE, MINUTE
from services.lib.store.keys import KEY_FILTER, newest_versions
from services.lib.store.schema import ROLLUP_RESOLUTIONS_MS
from storecast.aggregations import Aggregation
from storecast.catalog import Attribute, Kind, RecordType

# The records a range is assumed to hold: one every CADENCE_MS.
CADENCE_MS = 1_000


@dataclass(frozen=True, slots=True)
class Costs:
    """What the engine spends on a plan, in microseconds: a fixed part, then per value read
    (a raw record's attribute, or a cell's four figures of one attribute)."""

    # A raw aggregation's analysis and set-up: a read of one table, an aggregate per attribute.
    raw_fixed_us: float
    raw_value_us: float
    # The pending lookup (a small query of its own when the store is asked), then the cells query's
    # analysis and set-up. A lookup answered from memory costs nothing, but the plans are chosen as
    # before: right after writes the cells query costs more than measured here (the rollup table's
    # fresh parts under FINAL), and 5 ms more to the cells kept the raw scan where it was faster.
    cells_fixed_us: float
    cell_value_us: float
    # A cells plan that reads records too (partial minutes at the edges, pending minutes)
    # reads a second table in the same query, whatever the few records it finds there.
    cells_records_us: float


# Measured with chDB 26.9 on the bench's meter-3p (13 attributes, 1 s records, 10 equipments
# x 20,000 s), one equipment's 15-min averages, each query 30 times interleaved with the others,
# first quartiles on the 2-core machine shared with other work (docs/architecture/storage.md,
# "Reads"): raw 20 ms for 60 and 3,600 records, 34 for 20,000; cells alone 15-16 ms for 1 or
# 333 cells; with records 23-27 ms; the pending lookup 5.
COSTS = Costs(raw_fixed_us=21_000, raw_value_us=0.05, cells_fixed_us=20_000, cell_value_us=0.2, cells_records_us=9_000)


@dataclass(frozen=True, slots=True)
class Tile:
    """The cells of one resolution whose buckets are in [lo, hi[."""

    resolution: int
    lo: int
    hi: int

    @property
    def cells(self) -> int:
        return (self.hi - self.lo) // self.resolution


@dataclass(frozen=True, slots=True)
class CellsPlan:
    """Cells for `tiles`, raw records for `records` (each [lo, hi[): together, [start, end[ once each."""

    tiles: tuple[Tile, ...]
    records: tuple[tuple[int, int], ...]

    def takes_cells_past(self, end: int) -> bool:
        """Whether a cell it takes whole reaches past `end` (the range's end: cells_plan's `newest`)."""
        return bool(self.tiles) and self.tiles[-1].hi > end

    def cost_us(self, attributes: int, costs: Costs = COSTS) -> float:
        cells = sum(tile.cells for tile in self.tiles)
        records = sum(hi - lo for lo, hi in self.records) / CADENCE_MS
        return (
            costs.cells_fixed_us
            + (costs.cells_records_us if self.records else 0)
            + attributes * (cells * costs.cell_value_us + records * costs.raw_value_us)
        )


def raw_cost_us(start: int, end: int, attributes: int, costs: Costs = COSTS) -> float:
    return costs.raw_fixed_us + attributes * (end - start) / CADENCE_MS * costs.raw_value_us


def _floor(value: int, resolution: int) -> int:
    return value // resolution * resolution


def _ceil(value: int, resolution: int) -> int:
    return -(-value // resolution) * resolution


def tiles(lo: int, hi: int, resolutions: tuple[int, ...]) -> list[Tile]:
    """The fewest whole cells covering what they can of [lo, hi[: the coarsest resolution's
    in the middle, finer ones towards the edges (`resolutions` ascending)."""
    *finer, coarsest = resolutions
    first, last = _ceil(lo, coarsest), _floor(hi, coarsest)
    if first >= last:
        return tiles(lo, hi, tuple(finer)) if finer else []
    if not finer:
        return [Tile(coarsest, first, last)]
    return [*tiles(lo, first, tuple(finer)), Tile(coarsest, first, last), *tiles(last, hi, tuple(finer))]


def cells_plan(start: int, end: int, resolution: int, pending: int | None, newest: int | None = None) -> CellsPlan:
    """Whole cells of [start, end[ before the minute of `pending` (the first pending timestamp,
    None: none), resolutions up to `resolution`; the records for the rest. `newest`: no stored
    record of the series is newer (services/lib/reads/newest.py); a range ending past it with
    nothing pending holds every record of the cells its end falls in, and takes them whole."""
    if pending is None and newest is not None and newest < end:
        cells_end = _ceil(end, resolution)
    else:
        cells_end = end if pending is None else max(start, min(end, _floor(pending, MINUTE)))
    covered = tiles(start, cells_end, tuple(r for r in ROLLUP_RESOLUTIONS_MS if r <= resolution))
    if not covered:
        return CellsPlan((), ((start, end),))
    lo, hi = covered[0].lo, covered[-1].hi
    records = tuple(span for span in ((start, lo), (hi, end)) if span[0] < span[1])
    return CellsPlan(tuple(covered), records)


def first_pending_sql(pending_table: str, raw_table: str) -> str:
    """The first pending timestamp of one (site, id) within [{start}, {end}[, or 0 if no cell can be trusted."""
    return (
        f"SELECT minOrNull(first) FROM {pending_table} WHERE (tbl = '{raw_table}'"
        " AND site_id = {site_id:UInt32} AND id = {id:UInt32} AND last >= {start:Int64} AND first < {end:Int64})"
        f" OR tbl = '{EVERY_TABLE}'"
    )


def first_pending(client: Client, pending_table: str, raw_table: str, parameters: dict[str, int | None]) -> int | None:
    """first_pending_sql's answer, asked of the store."""
    return pending_answer(client.raw_query(first_pending_sql(pending_table, raw_table), parameters, fmt="TabSeparatedRaw"))


def pending_answer(found: bytes) -> int | None:
    """A pending lookup's one value as the engine sends it (TabSeparatedRaw): a timestamp, or none (NULL or no row)."""
    found = found.strip()
    return None if found in (b"", b"\\N") else int(found)


def choose(
    pending: Callable[[], int | None],
    start: int | None,
    end: int | None,
    *,
    resolution: int,
    attributes: int,
    past_records: bool,
    newest: Callable[[], int | None] | None = None,
) -> CellsPlan | None:
    """The cheaper plan for [start, end[ (None: the raw scan), asking `pending` for the range's first
    pending timestamp only if the cells could be cheaper, and `newest` for the series' newest stored
    timestamp only if the range ends within a cell and nothing of it is pending. `past_records`: the
    range starts before the raw retention, so only cells can answer its beginning."""
    if start is None or end is None:
        raise ValueError("an aggregation needs a range")
    raw = raw_cost_us(start, end, attributes)
    if not past_records and cells_plan(start, end, resolution, None).cost_us(attributes) >= raw:
        return None  # cheaper raw even if nothing were pending: no lookup
    found = pending()
    plan = cells_plan(start, end, resolution, found)
    if newest is not None and found is None and plan.records and plan.records[-1][1] == end:
        plan = cells_plan(start, end, resolution, found, newest())  # the records of its end's partial cells, if any
    return plan if past_records or plan.cost_us(attributes) < raw else None


def _values(record_type: RecordType) -> str:
    """A record's attributes as one array, in catalog order, as the cells hold them; the
    engine types it Nullable(Float64), every attribute being a float or an unsigned int
    (a CAST per attribute would double the query's analysis time)."""
    return "[" + ", ".join(f"`{a.name}`" for a in record_type.attributes) + "]"


def _any_of(conditions: list[str]) -> str:
    return conditions[0] if len(conditions) == 1 else "(" + " OR ".join(f"({c})" for c in conditions) + ")"


# The column of a cells plan's results: one per attribute, in catalog order, as Float64.
RESULTS = "results"


def cell_result(aggregation: Aggregation, attribute: Attribute, index: int) -> Member:
    """The result for the attribute at `index` (1-based) of a cells plan, as production_members gives it."""
    element = f"{RESULTS}[{index}]"
    if aggregation.kind(attribute) is not Kind.UNSIGNED_INT:
        return Member(attribute.name, element, aggregation.kind(attribute), element=(RESULTS, index))
    # The cells hold every attribute as Float64.
    return Member(
        attribute.name, f"CAST({element} AS Nullable({'UInt32' if aggregation.result.bounded else 'UInt64'}))", Kind.UNSIGNED_INT
    )


def cells_sql(
    raw_table: str, rollup_table: str, record_type: RecordType, aggregation: Aggregation, period_ms: int, plan: CellsPlan
) -> str:
    """Buckets of `period_ms` as (bucket, record_id, results), from the plan's cells and records,
    to be ordered and limited. Its key ranges are constants and each figure is computed once
    for every attribute (arrayMap), in as few SELECTs as can be: the engine's analysis of the
    query, not its reading, was what an aggregation from cells cost (docs/architecture/storage.md)."""
    branches = []
    if plan.tiles:
        chosen = [f"resolution = {t.resolution} AND bucket >= {t.lo} AND bucket < {t.hi}" for t in plan.tiles]
        # FINAL: the newest version of each cell (a recomputed cell is a newer insert of its key).
        where = f"{KEY_FILTER} AND {_any_of(chosen)}"
        branches.append(f"SELECT id, bucket AS at, mins, maxs, sums, counts FROM {rollup_table} FINAL WHERE {where}")
    if plan.records:
        ranges = [f"timestamp >= {lo} AND timestamp < {hi}" for lo, hi in plan.records]
        where = f"{KEY_FILTER} AND timestamp >= {{horizon:Int64}} AND {_any_of(ranges)}"
        # A record as a cell of its own; arrays of the attributes, as the cells hold them.
        as_cell = (
            f"id, timestamp AS at, {_values(record_type)} AS mins, mins AS maxs, arrayMap(x -> ifNull(x, 0), mins) AS sums,"
            " arrayMap(x -> toUInt32(x IS NOT NULL), mins) AS counts"
        )
        branches.append(newest_versions(as_cell, raw_table, where, "timestamp"))
    result = aggregation.over_cells("l", "h", "t", "c")
    if result is None:
        raise ValueError(f"rollup cells cannot answer {aggregation.name}")
    merged = "minForEach(mins), maxForEach(maxs), sumForEach(sums), sumForEach(counts)"
    return (
        f"SELECT intDiv(at, {period_ms}) * {period_ms} AS bucket, any(id) AS record_id,"
        f" arrayMap((l, h, t, c) -> {result}, {merged}) AS {RESULTS} FROM ({' UNION ALL '.join(branches)}) GROUP BY bucket"
    )
