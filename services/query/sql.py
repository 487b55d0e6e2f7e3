"""SQL that reads production records over a range, raw or aggregated into buckets, and renders them."""

from __future__ import annotations

from services.lib.reads.render import Member, json_object, select_list
from services.lib.reads.rollup import aggregate_sql, resolution_for
from services.lib.reads.window import Window
from services.lib.store.keys import HORIZON_FILTER, KEY_FILTER, newest_versions
from storecast.catalog import RecordType

_RANGE_FILTER = " AND timestamp >= {start:Int64} AND timestamp < {end:Int64}"


def production_members(equipment: RecordType, window: Window) -> list[Member]:
    """What a production record returns: timestamp, id, then each attribute, of its kind
    or of its aggregation's result, read from the columns `production_sql` selects."""
    aggregation = window.aggregation
    if aggregation is None:
        head = [Member("timestamp", "timestamp"), Member("id", "id")]
        return head + [Member(a.name, f"`{a.name}`", a.kind) for a in equipment.attributes]
    head = [Member("timestamp", "bucket"), Member("id", "record_id")]
    return head + [Member(a.name, f"`agg_{a.name}`", aggregation.kind(a)) for a in equipment.attributes]


def production_sql(
    table: str,
    equipment: RecordType,
    window: Window,
    limit: int | None,
    *,
    columns: bool = False,
    rollup: str | None = None,
    pending: str | None = None,
) -> str:
    """The records ascending by timestamp, at most `limit` of them (None: all): as
    rendered JSON, or (`columns`) as the columns of `production_members`. An
    aggregation whose period fits a resolution of the `rollup` table reads its cells (and
    the `pending` table, to know which it cannot trust yet)."""
    limit_clause = "" if limit is None else f" LIMIT {limit}"
    where = KEY_FILTER + HORIZON_FILTER + (_RANGE_FILTER if window.start is not None else "")
    members = production_members(equipment, window)
    record = select_list(members) if columns else json_object(members)
    aggregation = window.aggregation
    if aggregation is None:
        return f"{newest_versions(record, table, where, 'timestamp')}{limit_clause}"
    # Buckets [k*period, (k+1)*period[ aligned to the epoch.
    period_ms, resolution = window.period_ms, resolution_for(window)
    if rollup is not None and pending is not None and resolution is not None and period_ms is not None:
        cells = aggregate_sql(table, rollup, pending, equipment, aggregation, period_ms, resolution)
        aggregated = ", ".join(f"`agg_{a.name}`" for a in equipment.attributes)
        return (
            f"SELECT {record} FROM (SELECT period_bucket AS bucket, record_id, {aggregated}"
            f" FROM ({cells}) ORDER BY bucket{limit_clause}) ORDER BY bucket"
        )
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
