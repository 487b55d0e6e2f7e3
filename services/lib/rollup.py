"""Rollups of production records: their upkeep after each insert, and the reads they serve.

A rollup cell (site, id, resolution, bucket) holds per attribute min, max,
sum and count of the cell's records (schema.rollup_table). After every insert
the ingest service recomputes, before it acknowledges, exactly the cells the
inserted records fall in, from what is stored then: minute cells from the raw
records, hour cells from minute cells, day cells from hour cells, in one
INSERT ... SELECT. A replaced or late record therefore leaves every cell
exact, and a read never sees a cell older than an acknowledged PUT.

An aggregation whose period is a multiple of a resolution reads the cells of
the coarsest such resolution that the range covers whole, and the raw records
of the range's unaligned edges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from storecast.catalog import Kind, RecordType
from storecast.services.lib.keys import KEY_FILTER
from storecast.services.lib.schema import ROLLUP_RESOLUTIONS_MS

MINUTE, HOUR, DAY = ROLLUP_RESOLUTIONS_MS


@dataclass(frozen=True, slots=True)
class Span:
    """The records of one (site, id) an insert touched: timestamps in [first, last]."""

    site_id: int
    id: int
    first: int
    last: int

    def cells(self, resolution: int) -> tuple[int, int]:
        """[lo, hi[ of the cells of this resolution the span touches."""
        return self.first // resolution * resolution, self.last // resolution * resolution + resolution


def touched_spans(
    site_ids: Sequence[int] | np.ndarray, ids: Sequence[int] | np.ndarray, timestamps: Sequence[int] | np.ndarray
) -> list[Span]:
    """Per (site, id) of an inserted block, its first and last timestamp."""
    keys = (np.asarray(site_ids, dtype=np.uint64) << np.uint64(32)) | np.asarray(ids, dtype=np.uint64)
    stamps = np.asarray(timestamps, dtype=np.int64)
    unique, owners = np.unique(keys, return_inverse=True)
    first = np.full(len(unique), np.iinfo(np.int64).max)
    last = np.full(len(unique), np.iinfo(np.int64).min)
    np.minimum.at(first, owners, stamps)
    np.maximum.at(last, owners, stamps)
    return [
        Span(int(key >> np.uint64(32)), int(key & np.uint64(0xFFFFFFFF)), int(lo), int(hi))
        for key, lo, hi in zip(unique, first, last)
    ]


def kept_spans(spans: Sequence[Span], horizon: int) -> list[Span]:
    """The spans as far as their minutes are whole after the raw retention's horizon.

    Minute cells are recomputed from raw records, so a minute that records may
    have expired from (TTL) keeps the cell it has; coarser cells are made of
    minute cells, so they stay exact either side of the horizon. Records older
    than the horizon update no cell: TTL drops them.
    """
    first_whole = -(-horizon // MINUTE) * MINUTE
    return [replace(span, first=max(span.first, first_whole)) for span in spans if span.last >= first_whole]


def _newest(columns: str, table: str, where: str, key: str) -> str:
    """The newest version of each `key` of the rows matching `where` (keys.newest_versions, over several ids)."""
    return f"SELECT {columns} FROM {table} WHERE {where} ORDER BY {key}, _block_number DESC, _part_offset DESC LIMIT 1 BY {key}"


def _within(spans: Sequence[Span], column: str, resolution: int, outside: int | None = None) -> str:
    """Rows of the spans' ids whose `column` is in their cells of `resolution`, but not in
    their cells of the finer `outside` resolution (those are recomputed, not read)."""
    conditions = []
    for span in spans:
        lo, hi = span.cells(resolution)
        condition = f"(site_id = {span.site_id} AND id = {span.id} AND {column} >= {lo} AND {column} < {hi}"
        if outside is not None:
            inner_lo, inner_hi = span.cells(outside)
            condition += f" AND NOT ({column} >= {inner_lo} AND {column} < {inner_hi})"
        conditions.append(condition + ")")
    return "(" + " OR ".join(conditions) + ")"


def _cell_columns(record_type: RecordType) -> list[str]:
    names = ["records"]
    for attribute in record_type.attributes:
        names += [f"`{attribute.name}:{part}`" for part in ("min", "max", "sum", "count")]
    return names


def _from_records(record_type: RecordType, bucket: str) -> str:
    """SELECT items of the cells of raw records (columns: site_id, id, timestamp, attributes)."""
    items = ["site_id", "id", f"{bucket} AS bucket", "toUInt32(count()) AS records"]
    for attribute in record_type.attributes:
        name = attribute.name
        items += [
            f"min(`{name}`) AS `{name}:min`",
            f"max(`{name}`) AS `{name}:max`",
            f"sum(`{name}`) AS `{name}:sum`",
            f"toUInt32(count(`{name}`)) AS `{name}:count`",
        ]
    return ", ".join(items)


def _from_cells(record_type: RecordType, resolution: int, finer_cells: str) -> str:
    """Coarser cells from finer ones. The aggregates are named apart from the columns
    they read (c_*), then renamed: an alias equal to a column would be read as itself."""
    items = ["site_id", "id", f"intDiv(bucket, {resolution}) * {resolution} AS c_bucket", "sum(records) AS c_records"]
    renamed = ["site_id", "id", "c_bucket AS bucket", "toUInt32(c_records) AS records"]
    for attribute in record_type.attributes:
        name = attribute.name
        items += [
            f"min(`{name}:min`) AS `c:{name}:min`",
            f"max(`{name}:max`) AS `c:{name}:max`",
            f"sum(`{name}:sum`) AS `c:{name}:sum`",
            f"sum(`{name}:count`) AS `c:{name}:count`",
        ]
        renamed += [
            f"`c:{name}:min` AS `{name}:min`",
            f"`c:{name}:max` AS `{name}:max`",
            f"`c:{name}:sum` AS `{name}:sum`",
            f"toUInt32(`c:{name}:count`) AS `{name}:count`",
        ]
    grouped = f"SELECT {', '.join(items)} FROM ({finer_cells}) GROUP BY site_id, id, c_bucket"
    return f"SELECT {', '.join(renamed)} FROM ({grouped})"


def upkeep_sql(raw_table: str, rollup_table: str, record_type: RecordType, spans: Sequence[Span]) -> str:
    """One INSERT ... SELECT recomputing every cell the spans touch, at every resolution."""
    attributes = ", ".join(f"`{a.name}`" for a in record_type.attributes)
    records = _newest(
        f"site_id, id, timestamp, {attributes}", raw_table, _within(spans, "timestamp", MINUTE), "site_id, id, timestamp"
    )
    cells = ", ".join(_cell_columns(record_type))
    minute = f"intDiv(timestamp, {MINUTE}) * {MINUTE}"
    minutes = f"SELECT {_from_records(record_type, minute)} FROM ({records}) GROUP BY site_id, id, bucket"

    def coarser(resolution: int, finer: int, recomputed: str) -> str:
        # The finer cells of the coarser cells touched: those recomputed now, and the others as stored.
        kept = _newest(
            f"site_id, id, bucket, {cells}",
            rollup_table,
            f"resolution = {finer} AND {_within(spans, 'bucket', resolution, finer)}",
            "site_id, id, bucket",
        )
        return _from_cells(record_type, resolution, f"{kept} UNION ALL SELECT site_id, id, bucket, {cells} FROM ({recomputed})")

    hours = coarser(HOUR, MINUTE, minutes)
    days = coarser(DAY, HOUR, hours)
    selects = [
        f"SELECT site_id, id, {resolution}, bucket, {cells} FROM ({sql})"
        for resolution, sql in ((MINUTE, minutes), (HOUR, hours), (DAY, days))
    ]
    return f"INSERT INTO {rollup_table} (site_id, id, resolution, bucket, {cells}) " + " UNION ALL ".join(selects)


def resolution_for(period_ms: int) -> int | None:
    """The coarsest rollup resolution that divides the period, if any."""
    fitting = [resolution for resolution in ROLLUP_RESOLUTIONS_MS if period_ms % resolution == 0]
    return max(fitting) if fitting else None


def aggregate_sql(
    raw_table: str, rollup_table: str, record_type: RecordType, function: str, period_ms: int, resolution: int
) -> str:
    """Buckets of `period_ms` over [{start}, {end}[ with the columns production_sql's
    aggregation gives (bucket, record_id, agg_<attribute>), from the fewest cells: whole
    cells of `resolution` in the middle, finer cells towards the edges, raw records for
    what is left of a minute at either end."""
    levels = [r for r in ROLLUP_RESOLUTIONS_MS if r <= resolution]

    def aligned(r: int) -> tuple[str, str]:
        """[lo, hi[: the whole cells of resolution r within the range (empty when hi <= lo)."""
        return f"intDiv({{start:Int64}} + {r - 1}, {r}) * {r}", f"intDiv({{end:Int64}}, {r}) * {r}"

    chosen = []
    for finer, coarser in zip(levels, [*levels[1:], None]):
        lo, hi = aligned(finer)
        condition = f"resolution = {finer} AND bucket >= {lo} AND bucket < {hi}"
        if coarser is not None:
            coarse_lo, coarse_hi = aligned(coarser)
            condition += f" AND NOT (bucket >= {coarse_lo} AND bucket < {coarse_hi})"
        chosen.append(f"({condition})")
    attributes = [a.name for a in record_type.attributes]
    cell_items = ", ".join(f"`{n}:min`, `{n}:max`, `{n}:sum`, `{n}:count`" for n in attributes)
    cells = _newest(f"id, bucket, {cell_items}", rollup_table, f"{KEY_FILTER} AND ({' OR '.join(chosen)})", "resolution, bucket")
    # Two key ranges, not the range minus the middle: the index narrows ranges, not negations.
    minute_lo, minute_hi = aligned(MINUTE)
    edge = (
        f"{KEY_FILTER} AND timestamp >= {{horizon:Int64}}"
        f" AND ((timestamp >= {{start:Int64}} AND timestamp < least({minute_lo}, {{end:Int64}}))"
        f" OR (timestamp >= greatest({minute_hi}, {minute_lo}, {{start:Int64}}) AND timestamp < {{end:Int64}}))"
    )
    record_items = ", ".join(
        f"`{n}` AS `{n}:min`, `{n}` AS `{n}:max`, ifNull(`{n}`, 0) AS `{n}:sum`, toUInt32(`{n}` IS NOT NULL) AS `{n}:count`"
        for n in attributes
    )
    records = _newest(f"id, timestamp, {', '.join(f'`{n}`' for n in attributes)}", raw_table, edge, "timestamp")
    parts = [
        f"SELECT id, bucket, {cell_items} FROM ({cells})",
        f"SELECT id, timestamp AS bucket, {record_items} FROM ({records})",
    ]
    aggregates = []
    for attribute in record_type.attributes:
        n = attribute.name
        if function == "min":
            aggregates.append(f"min(`{n}:min`) AS `agg_{n}`")
        elif function == "max":
            aggregates.append(f"max(`{n}:max`) AS `agg_{n}`")
        else:
            total = f"sum(`{n}:sum`)" if attribute.kind is Kind.FLOAT else f"toFloat64(sum(`{n}:sum`))"
            aggregates.append(f"if(sum(`{n}:count`) = 0, NULL, {total} / sum(`{n}:count`)) AS `agg_{n}`")
    period_bucket = f"intDiv(bucket, {period_ms}) * {period_ms}"
    return (
        f"SELECT {period_bucket} AS period_bucket, any(id) AS record_id, {', '.join(aggregates)}"
        f" FROM ({' UNION ALL '.join(parts)}) GROUP BY period_bucket"
    )
