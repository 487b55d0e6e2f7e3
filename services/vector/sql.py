"""SQL that selects, cuts and renders vectors and tariff periods in ClickHouse.

A vector read is one query that reads the table once: it selects the vectors
(one row each), keeps each one's periods in [from, to[ (aggregated into
buckets if asked), works out where a partial response is cut, and renders
the whole `results` array. Nothing per period comes back to Python.
"""

from __future__ import annotations

from services.lib.reads.render import Member, json_object, select_list
from services.lib.reads.window import Vintage, Window
from services.lib.store.keys import KEY_FILTER, newest_versions
from services.lib.store.schema import ATTRIBUTE_COLUMN_TYPES, PERIOD_COLUMN_TYPES, PERIOD_TIMESTAMPS, period_column
from storecast.aggregations import of_period
from storecast.catalog import TIMESTAMP_LIMIT_MS, Kind, RecordType

_IN_RANGE = "t >= {start:Int64} AND t < {end:Int64}"
_GENERATED = "creation_timestamp >= {generated_start:Int64} AND creation_timestamp < {generated_end:Int64}"


def _selection(table: str, vintage: Vintage) -> str:
    """The vectors read: the latest (in the generated interval, if any), or all of the interval."""
    if vintage.every:
        return _GENERATED
    generated = f" AND {_GENERATED}" if vintage.start is not None else ""
    # Read in reverse key order, this touches only the last granules of the id's
    # key range, not every vintage; versions are left to the outer read of the one key.
    return (
        f"creation_timestamp IN (SELECT creation_timestamp FROM {table} WHERE {KEY_FILTER}{generated}"
        f" ORDER BY creation_timestamp DESC LIMIT 1)"
    )


def _output_periods(record_type: RecordType, window: Window) -> tuple[list[str], list[Kind]]:
    """SELECT items giving each vector's output periods as arrays `o_timestamp`, `o_<attribute>`
    (ascending, as stored), and the kind each attribute is rendered as (its aggregation's result)."""
    names = [a.name for a in record_type.attributes]
    stored = {"timestamp": f"`{PERIOD_TIMESTAMPS}`", **{n: f"`{period_column(n)}`" for n in names}}
    if window.start is None:
        in_range = stored
    else:
        in_range = {n: f"arrayFilter((x, t) -> {_IN_RANGE}, {sql}, `{PERIOD_TIMESTAMPS}`)" for n, sql in stored.items()}
    asked = window.aggregation
    if asked is None:
        items = [f"{sql} AS `o_{n}`" for n, sql in in_range.items()]
        return items, [a.kind for a in record_type.attributes]
    period = window.period_ms
    # Periods are sorted, so each bucket [k*period, (k+1)*period[ is a run of
    # consecutive periods: (first index, length) ranges for arrayReduceInRanges.
    items = [f"{sql} AS `r_{n}`" for n, sql in in_range.items()]
    items += [
        f"arrayMap(t -> intDiv(t, {period}) * {period}, r_timestamp) AS r_bucket",
        "arrayFilter((i, d) -> i = 1 OR d != 0, arrayEnumerate(r_bucket), arrayDifference(r_bucket)) AS r_starts",
        "arrayMap((s, e) -> (s, toUInt64(e - s)), r_starts, arrayPushBack(arrayPopFront(r_starts), length(r_bucket) + 1))"
        " AS r_ranges",
        "arrayMap(s -> r_bucket[s], r_starts) AS o_timestamp",
    ]
    kinds = []
    for attribute in record_type.attributes:
        aggregation = of_period(asked, attribute)
        arguments = aggregation.arguments(f"`r_{attribute.name}`", "r_timestamp")
        items.append(f"arrayReduceInRanges('{aggregation.function}', r_ranges, {arguments}) AS `o_{attribute.name}`")
        kinds.append(aggregation.kind(attribute))
    return items, kinds


def _cut(limit: int) -> str:
    """Where a partial response stops, from all output period timestamps sorted (`all_timestamps`):
    the timestamp of the first period beyond the limit, so that a timestamp's periods
    are all in or all out; if the first timestamp alone holds more than the limit,
    the next timestamp. TIMESTAMP_LIMIT_MS: no cut."""
    return (
        f"multiIf(length(all_timestamps) <= {limit}, {TIMESTAMP_LIMIT_MS},"
        f" all_timestamps[{limit + 1}] > all_timestamps[1], all_timestamps[{limit + 1}],"
        f" ifNull(arrayFirstOrNull(t -> t > all_timestamps[1], all_timestamps), {TIMESTAMP_LIMIT_MS}))"
    )


def _field(name: str) -> str:
    """A field of the selected vector `v`, by name."""
    return f"tupleElement(v, '{name}')"


def _vector(record_type: RecordType, period_kinds: list[Kind]) -> str:
    """A selected vector as one named tuple of its columns (those of `_output_periods`), read with `_field`.

    tuple() names its elements only under a setting (enable_named_columns_in_function_tuple)
    that is off by default and unknown to older servers, so the names come with a CAST to
    the types the columns already have: a conversion that changes nothing.
    """
    fields = {
        "creation_timestamp": "Int64",
        **{a.name: ATTRIBUTE_COLUMN_TYPES[a.kind] for a in record_type.vector_attributes},
        "o_timestamp": "Array(Int64)",
        **{f"o_{a.name}": PERIOD_COLUMN_TYPES[kind] for a, kind in zip(record_type.attributes, period_kinds)},
    }
    names = ", ".join(f"`{name}`" for name in fields)
    types = ", ".join(f"`{name}` {type_}" for name, type_ in fields.items())
    return f"CAST(tuple({names}) AS Tuple({types}))"


def _values_json(record_type: RecordType, period_kinds: list[Kind]) -> str:
    """The `values` array of vector `v`: its periods before `cut`, each rendered from
    its timestamp and attributes, passed to the rendering lambda under their own names."""
    timestamps = _field("o_timestamp")
    kept = [f"arrayFilter(t -> t < cut, {timestamps})"] + [
        f"arrayFilter((x, t) -> t < cut, {_field(f'o_{a.name}')}, {timestamps})" for a in record_type.attributes
    ]
    period_json = json_object(
        [Member("timestamp", "`timestamp`")]
        + [Member(a.name, f"`{a.name}`", kind) for a, kind in zip(record_type.attributes, period_kinds)]
    )
    arguments = ", ".join(f"`{name}`" for name in ["timestamp", *(a.name for a in record_type.attributes)])
    return f"concat('[', arrayStringConcat(arrayMap(({arguments}) -> {period_json}, {', '.join(kept)}), ','), ']')"


def vector_sql(table: str, record_type: RecordType, window: Window, vintage: Vintage, limit: int) -> str:
    """One line, tab-separated: the number of periods returned, next_from (empty if the
    response is whole) and the members of the `results` array (empty if no vector was selected)."""
    period_items, period_kinds = _output_periods(record_type, window)
    selected = newest_versions(
        f"creation_timestamp, {', '.join([*(f'`{a.name}`' for a in record_type.vector_attributes), *period_items])}",
        table,
        f"{KEY_FILTER} AND {_selection(table, vintage)}",
        "creation_timestamp",
    )
    vector_json = json_object(
        [Member("creation_timestamp", _field("creation_timestamp")), Member("id", "{id:UInt32}")]
        + [Member(a.name, _field(a.name), a.kind) for a in record_type.vector_attributes]
        + [Member("values", _values_json(record_type, period_kinds), raw=True)]
    )
    return (
        f"SELECT period_count, if(cut < {TIMESTAMP_LIMIT_MS}, toString(cut), ''), results FROM ("
        f"SELECT arraySort(arrayFlatten(groupArray(o_timestamp))) AS all_timestamps, {_cut(limit)} AS cut,"
        f" arrayCount(t -> t < cut, all_timestamps) AS period_count,"
        f" arrayStringConcat(arrayMap(v -> {vector_json},"
        f" arraySort(v -> {_field('creation_timestamp')}, groupArray({_vector(record_type, period_kinds)}))), ',') AS results"
        f" FROM ({selected}))"
    )


def vector_rows_sql(table: str, record_type: RecordType, window: Window, vintage: Vintage, limit: int) -> str:
    """The typed form of `vector_sql`: one row per selected vector (ascending by creation_timestamp),
    its kept periods as arrays, with `cut` (TIMESTAMP_LIMIT_MS: the response is whole) on every row."""
    period_items, period_kinds = _output_periods(record_type, window)
    selected = newest_versions(
        f"creation_timestamp, {', '.join([*(f'`{a.name}`' for a in record_type.vector_attributes), *period_items])}",
        table,
        f"{KEY_FILTER} AND {_selection(table, vintage)}",
        "creation_timestamp",
    )
    timestamps = _field("o_timestamp")
    items = [
        "cut",
        f"{_field('creation_timestamp')} AS creation_timestamp",
        *(f"{_field(a.name)} AS `{a.name}`" for a in record_type.vector_attributes),
        f"arrayFilter(t -> t < cut, {timestamps}) AS `timestamp`",
        *(f"arrayFilter((x, t) -> t < cut, {_field(f'o_{a.name}')}, {timestamps}) AS `{a.name}`" for a in record_type.attributes),
    ]
    return (
        f"SELECT {', '.join(items)} FROM ("
        f"SELECT arraySort(arrayFlatten(groupArray(o_timestamp))) AS all_timestamps, {_cut(limit)} AS cut,"
        f" arraySort(v -> {_field('creation_timestamp')}, groupArray({_vector(record_type, period_kinds)})) AS vectors"
        f" FROM ({selected})) ARRAY JOIN vectors AS v"
    )


def vector_stream_sql(table: str, record_type: RecordType, window: Window, vintage: Vintage) -> str:
    """Every selected vector (ascending by creation_timestamp) with all its periods in the
    window as arrays: what a stream re-cuts into batches, with no cut of its own."""
    period_items, _ = _output_periods(record_type, window)
    vector_columns = [*(f"`{a.name}`" for a in record_type.vector_attributes)]
    columns = ["creation_timestamp", *vector_columns, "o_timestamp AS `timestamp`"]
    columns += [f"`o_{a.name}` AS `{a.name}`" for a in record_type.attributes]
    selected = newest_versions(
        f"creation_timestamp, {', '.join([*vector_columns, *period_items])}",
        table,
        f"{KEY_FILTER} AND {_selection(table, vintage)}",
        "creation_timestamp",
    )
    return f"SELECT {', '.join(columns)} FROM ({selected})"


def vector_kinds(record_type: RecordType, window: Window) -> list[Kind]:
    """The kind each period attribute is returned as: its own, or its aggregation's result."""
    return _output_periods(record_type, window)[1]


def tariff_sql(table: str, record_type: RecordType, window: Window, limit: int | None, *, columns: bool = False) -> str:
    """The periods in force during [from, to[, ascending, at most `limit` of them (None: all):
    as rendered JSON, or (`columns`) as columns named after the attributes."""
    where = KEY_FILTER
    if window.start is not None:
        # The last period starting at or before `from` is in force at `from`; from it on,
        # every period starting before `to`. Scalar subqueries become constants before
        # index analysis, so both reads are primary-key ranges.
        in_force = (
            f"ifNull((SELECT timestamp FROM {table} WHERE {KEY_FILTER} AND timestamp <= {{start:Int64}}"
            f" ORDER BY timestamp DESC LIMIT 1), {{start:Int64}})"
        )
        where += f" AND timestamp >= {in_force} AND timestamp < {{end:Int64}}"
    members = [Member("timestamp", "timestamp")] + [Member(a.name, f"`{a.name}`", a.kind) for a in record_type.attributes]
    period = select_list(members) if columns else json_object(members)
    return f"{newest_versions(period, table, where, 'timestamp')}{'' if limit is None else f' LIMIT {limit}'}"
