"""SQL that reads production records over a range, raw or aggregated into buckets, and renders them."""

from __future__ import annotations

import json

import numpy as np
from clickhouse_connect.driver.client import Client

from services.lib.reads.plan import CellsPlan, cell_result, cells_sql
from services.lib.reads.render import Member, json_object, render_array, select_list
from services.lib.reads.window import Window
from services.lib.store.keys import HORIZON_FILTER, KEY_FILTER, newest_versions
from storecast.catalog import RecordType

_RANGE_FILTER = " AND timestamp >= {start:Int64} AND timestamp < {end:Int64}"


def production_members(equipment: RecordType, window: Window, *, cells: bool = False) -> list[Member]:
    """What a production record returns: timestamp, id, then each attribute, of its kind
    or of its aggregation's result, read from the columns `production_sql` selects
    (`cells`: an aggregation's, with a cells plan)."""
    aggregation = window.aggregation
    if aggregation is None:
        head = [Member("timestamp", "timestamp"), Member("id", "id")]
        return head + [Member(a.name, f"`{a.name}`", a.kind) for a in equipment.attributes]
    head = [Member("timestamp", "bucket"), Member("id", "record_id")]
    if cells:
        return head + [cell_result(aggregation, a, index) for index, a in enumerate(equipment.attributes, start=1)]
    return head + [Member(a.name, f"`agg_{a.name}`", aggregation.kind(a)) for a in equipment.attributes]


def production_sql(
    table: str,
    equipment: RecordType,
    window: Window,
    limit: int | None,
    *,
    columns: bool = False,
    rollup: str | None = None,
    plan: CellsPlan | None = None,
) -> str:
    """The records ascending by timestamp, at most `limit` of them (None: all): as
    rendered JSON, or (`columns`) as the columns of `production_members`. An
    aggregation given a `plan` (services/lib/reads/plan.py) reads its cells of the
    `rollup` table and its records; else it reads every record of its range."""
    limit_clause = "" if limit is None else f" LIMIT {limit}"
    where = KEY_FILTER + HORIZON_FILTER + (_RANGE_FILTER if window.start is not None else "")
    from_cells = rollup is not None and plan is not None and window.period_ms is not None
    members = production_members(equipment, window, cells=from_cells)
    record = select_list(members) if columns else json_object(members)
    aggregation = window.aggregation
    if aggregation is None:
        return f"{newest_versions(record, table, where, 'timestamp')}{limit_clause}"
    # Buckets [k*period, (k+1)*period[ aligned to the epoch.
    if rollup is not None and plan is not None and window.period_ms is not None:
        cells = cells_sql(table, rollup, equipment, aggregation, window.period_ms, plan)
        return f"SELECT {record} FROM ({cells} ORDER BY bucket{limit_clause}) ORDER BY bucket"
    aggregates = ", ".join(
        f"{aggregation.function}({aggregation.arguments(f'`{a.name}`', 'timestamp')}) AS `agg_{a.name}`"
        for a in equipment.attributes
    )
    records = newest_versions(
        ", ".join(["timestamp", "id", *(f"`{a.name}`" for a in equipment.attributes)]), table, where, "timestamp"
    )
    return (
        f"SELECT {record} FROM ("
        f"SELECT intDiv(timestamp, {window.period_ms}) * {window.period_ms} AS bucket, any(id) AS record_id, {aggregates}"
        f" FROM ({records}) GROUP BY bucket ORDER BY bucket{limit_clause}"
        f") ORDER BY bucket"
    )


# Up to this many buckets a cells plan's answer is rendered in Python (cells_json), past it by the engine
# (production_sql): Python's rendering costs about 0.3 ms a bucket of meter-3p's 13 attributes, the
# engine's a few ms of analysis whatever the count. On 90 days of cells: 23 buckets 16 ms against 23,
# 50 even, 100 26 against 20, 2,160 86 against 22.
PYTHON_RENDERED_BUCKETS = 64


def cells_json_sql(table: str, rollup: str, equipment: RecordType, window: Window, plan: CellsPlan, limit: int) -> str:
    """An aggregation's first `limit` buckets from a cells plan, as cells_json reads them."""
    if window.aggregation is None or window.period_ms is None:
        raise ValueError("a cells plan answers an aggregation over buckets")
    return f"{cells_sql(table, rollup, equipment, window.aggregation, window.period_ms, plan)} ORDER BY bucket LIMIT {limit}"


def cells_json(
    client: Client, sql: str, parameters: dict[str, int | None], equipment: RecordType, window: Window, record_id: int
) -> bytes:
    """production_sql's JSON array of a cells plan's buckets (cells_json_sql), in the same bytes: the engine
    merges the cells, Python renders the few buckets. 6.7-7.3 ms against 8.1-8.3 for the engine's own
    rendering, whose expressions it analyses every query (15-min averages of 20,000 s of meter-3p)."""
    if window.aggregation is None:
        raise ValueError("a cells plan answers an aggregation")
    # Every number as a float: the engine writes -0.0 as -0, which an integer would lose the sign of.
    found = json.loads(client.raw_query(sql, parameters, fmt="JSONCompactColumns"), parse_int=float)
    if not found:  # no bucket: the engine sends no column
        return render_array([], record_id, [], [], [])
    buckets, _, results = found
    values = np.array(results, dtype=np.float64).reshape(len(buckets), len(equipment.attributes))
    keys = [a.name for a in equipment.attributes]
    kinds = [window.aggregation.kind(a) for a in equipment.attributes]
    return render_array([int(bucket) for bucket in buckets], record_id, keys, kinds, list(values.T))


def bucket_cut_sql(table: str, period_ms: int, limit: int) -> str:
    """The first timestamp of the bucket after the first `limit` non-empty ones, if there is one.

    Records are read in key order and the LIMIT stops the read there, so at
    most limit + 1 buckets are ever held; the aggregation then reads no further.
    Versions of a record share its bucket, so no FINAL is needed.
    """
    where = KEY_FILTER + HORIZON_FILTER + _RANGE_FILTER
    return (
        f"SELECT timestamp FROM {table} WHERE {where}"
        f" ORDER BY timestamp LIMIT 1 BY intDiv(timestamp, {period_ms}) LIMIT {limit}, 1"
    )
