"""The read SQL of production records, vectors and tariffs, without a server.

Snapshots of the parts that matter, and chDB's parser over every variant; the
vector SQL also runs on a few rows. chDB only as `chdb://memory`: a process
holds one engine path and these tests share the pytest process.
"""

from __future__ import annotations

import json
import re

import pytest
from clickhouse_connect.driver.client import Client

from services.lib.reads.plan import CellsPlan, Tile, cells_plan, first_pending_sql, raw_cost_us
from services.lib.reads.rollup import Span, kept_spans, new_token, pending_sql, resolution_for, touched_spans, upkeep_sql
from services.lib.reads.window import Vintage, Window
from services.lib.store.schema import COMMITMENT_TABLE, FORECAST_TABLES, PENDING_TABLE, PRODUCTION_TABLES, ROLLUP_TABLES
from services.query.sql import bucket_cut_sql, production_sql
from services.vector.sql import tariff_sql, vector_sql
from storecast.aggregations import AGGREGATIONS
from storecast.catalog import COMMITMENT, EQUIPMENT_TYPES, FORECAST_TYPES, TARIFF, TIMESTAMP_LIMIT_MS

METER = EQUIPMENT_TYPES["meter"]
WIND = FORECAST_TYPES["wind"]
KEY = "site_id = {site_id:UInt32} AND id = {id:UInt32}"
KEPT = "timestamp >= {horizon:Int64}"
RANGE = "timestamp >= {start:Int64} AND timestamp < {end:Int64}"
NEWEST = "ORDER BY timestamp, _block_number DESC, _part_offset DESC LIMIT 1 BY timestamp"
RAW = Window(None, None, None, None)
IN_RANGE = Window(1000, 9000, None, None)
AVG = AGGREGATIONS["avg"]
AVERAGED = Window(0, 10_000, AVG, 5000)
LATEST = Vintage(None, None, False)
LATEST_IN = Vintage(100, 200, False)
EVERY = Vintage(100, 200, True)
WINDOWS = [RAW, IN_RANGE, AVERAGED, Window(0, 10_000, AGGREGATIONS["max"], 5000)]
VINTAGES = [LATEST, LATEST_IN, EVERY]


def parses(engine: Client, sql: str) -> bool:
    """Whether ClickHouse's parser takes the query (it raises if not)."""
    return bool(engine.query("SELECT formatQuery({s:String})", parameters={"s": sql}).result_rows[0][0])


# ---- production --------------------------------------------------------------


def test_raw_production_is_the_newest_version_of_each_record_in_range() -> None:
    sql = production_sql("db.t", METER, IN_RANGE, 11)
    assert sql.startswith("SELECT concat('{\"timestamp\":', toString(timestamp), ',\"id\":', toString(id),")
    assert sql.endswith(f" FROM db.t WHERE {KEY} AND {KEPT} AND {RANGE} {NEWEST} LIMIT 11")
    assert "[`p`, `q`, `f`, `u`, `i`]" in sql  # the float attributes rendered by one arrayMap


def test_raw_production_without_a_range_reads_the_whole_id() -> None:
    assert production_sql("db.t", METER, RAW, 11).endswith(f" FROM db.t WHERE {KEY} AND {KEPT} {NEWEST} LIMIT 11")


def test_aggregated_production_groups_the_newest_versions_into_epoch_aligned_buckets() -> None:
    sql = production_sql("db.t", METER, AVERAGED, 11)
    assert "SELECT intDiv(timestamp, 5000) * 5000 AS bucket, any(id) AS record_id, avg(`p`) AS `agg_p`," in sql
    assert f"FROM (SELECT timestamp, id, `p`, `q`, `f`, `u`, `i` FROM db.t WHERE {KEY} AND {KEPT} AND {RANGE} {NEWEST})" in sql
    assert sql.endswith(" GROUP BY bucket ORDER BY bucket LIMIT 11) ORDER BY bucket")
    assert "[`agg_p`, `agg_q`, `agg_f`, `agg_u`, `agg_i`]" in sql


def test_the_bucket_cut_reads_one_record_per_bucket_up_to_the_limit() -> None:
    assert bucket_cut_sql("db.t", 1000, 100) == (
        f"SELECT timestamp FROM db.t WHERE {KEY} AND {KEPT} AND {RANGE}"
        " ORDER BY timestamp LIMIT 1 BY intDiv(timestamp, 1000) LIMIT 100, 1"
    )


@pytest.mark.parametrize("window", WINDOWS)
def test_production_sql_parses(engine: Client, window: Window) -> None:
    assert parses(engine, production_sql("db.t", METER, window, 11))
    assert parses(engine, production_sql("db.t", METER, window, 11, rollup="db.r", plan=cells_plan(0, 10_000, 60_000, None)))
    assert parses(engine, bucket_cut_sql("db.t", 1000, 100))


# ---- rollups -----------------------------------------------------------------


def averaged(period_ms: int) -> Window:
    return Window(0, period_ms, AVG, period_ms)


def test_a_period_reads_the_coarsest_rollup_that_divides_it() -> None:
    assert [resolution_for(averaged(p)) for p in (60_000, 300_000, 3_600_000, 7_200_000, 86_400_000, 604_800_000)] == [
        60_000,
        60_000,
        3_600_000,
        3_600_000,
        86_400_000,
        86_400_000,
    ]
    assert resolution_for(averaged(30_000)) is None and resolution_for(averaged(90_000)) is None


def test_a_fitting_aggregation_reads_cells_and_the_edges_records() -> None:
    day, hour, minute = 86_400_000, 3_600_000, 60_000
    window = Window(1_000, 10 * day - 1_000, AVG, day)
    plan = cells_plan(1_000, 10 * day - 1_000, day, None)
    # Day cells in the middle, hour and minute cells towards the edges, records within a minute of them.
    assert plan.tiles == (
        Tile(minute, minute, hour),
        Tile(hour, hour, day),
        Tile(day, day, 9 * day),
        Tile(hour, 9 * day, 10 * day - hour),
        Tile(minute, 10 * day - hour, 10 * day - minute),
    )
    assert plan.records == ((1_000, minute), (10 * day - minute, 10 * day - 1_000))
    sql = production_sql("db.t", METER, window, 11, rollup="db.r", plan=plan)
    assert f"FROM db.r FINAL WHERE {KEY} AND ((resolution = 60000 AND bucket >= 60000 AND bucket < 3600000) OR" in sql
    assert f"FROM db.t WHERE {KEY} AND {KEPT} AND ((timestamp >= 1000 AND timestamp < 60000) OR" in sql
    # Every attribute's result by one arrayMap, rendered from one slice of it.
    assert "arrayMap((l, h, t, c) -> if(c = 0, NULL, t / c), minForEach(mins)" in sql
    assert "arraySlice(results, 1, 5)" in sql and "`agg_" not in sql
    # Without a plan, or for a period no resolution divides, the records alone.
    assert "db.r" not in production_sql("db.t", METER, window, 11, rollup="db.r")


def test_the_cells_plan_takes_records_from_the_first_pending_minute_on() -> None:
    minute = 60_000
    plan = cells_plan(0, 10 * minute, minute, 3 * minute + 5_000)
    assert plan.tiles == (Tile(minute, 0, 3 * minute),) and plan.records == ((3 * minute, 10 * minute),)
    # Pending before the range's first whole minute, or no cell to be trusted (0): all records.
    assert cells_plan(30_000, 10 * minute, minute, 0) == CellsPlan((), ((30_000, 10 * minute),))


def test_a_range_ending_past_the_newest_record_takes_its_last_cells_whole() -> None:
    minute, hour = 60_000, 3_600_000
    end = 2 * hour + 10 * minute + 20_000
    # The newest record is before the end: no record in [end, the next whole minute or hour[.
    assert cells_plan(0, end, minute, None, newest=end - 15_000).tiles == (Tile(minute, 0, 2 * hour + 11 * minute),)
    assert cells_plan(0, end, hour, None, newest=end - 15_000) == CellsPlan((Tile(hour, 0, 3 * hour),), ())
    # A record at or past the end, or anything pending: the records of the partial minute, as before.
    for newest, pending in ((end, None), (end + 5_000, None), (None, None), (end - 15_000, 2 * hour)):
        plan = cells_plan(0, end, minute, pending, newest=newest)
        assert plan.records[-1][1] == end and not plan.takes_cells_past(end), (newest, pending)


def test_the_cheaper_plan_by_size() -> None:
    minute, hour = 60_000, 3_600_000
    attributes = len(EQUIPMENT_TYPES["meter-3p"].attributes)
    # A few minutes with records at the edges: the raw scan; whole minutes, or a day: the cells.
    assert cells_plan(1, 5 * minute - 1, minute, None).cost_us(attributes) > raw_cost_us(1, 5 * minute - 1, attributes)
    assert cells_plan(0, 5 * minute, minute, None).cost_us(attributes) < raw_cost_us(0, 5 * minute, attributes)
    assert cells_plan(0, 24 * hour, minute, None).cost_us(attributes) < raw_cost_us(0, 24 * hour, attributes)
    assert cells_plan(1, 24 * hour - 1, minute, None).cost_us(attributes) < raw_cost_us(1, 24 * hour - 1, attributes)
    # All of it pending: the records, and the lookup on top, cost more than the raw scan.
    assert cells_plan(0, 24 * hour, minute, 0).cost_us(attributes) > raw_cost_us(0, 24 * hour, attributes)


@pytest.mark.parametrize(
    ("name", "from_cells"),
    [("sum", "if(c = 0, NULL, t)"), ("count", "c"), ("first", None), ("last", None)],
)
def test_rollup_cells_answer_the_aggregations_they_hold(name: str, from_cells: str | None) -> None:
    window = Window(0, 10 * 86_400_000, AGGREGATIONS[name], 86_400_000)
    if from_cells is None:
        # Cells keep no order: first and last read the records, by their timestamps.
        assert resolution_for(window) is None
        assert f"{AGGREGATIONS[name].function}(`p`, timestamp) AS `agg_p`" in production_sql("db.t", METER, window, 11)
    else:
        sql = production_sql("db.t", METER, window, 11, rollup="db.r", plan=cells_plan(0, 10 * 86_400_000, 86_400_000, None))
        assert f"arrayMap((l, h, t, c) -> {from_cells}, " in sql


def test_the_upkeep_recomputes_only_the_touched_cells() -> None:
    spans = touched_spans([1, 1, 2], [7, 7, 7], [86_400_000 + 61_000, 86_400_000 + 3_600_000 * 5, 5])
    assert spans == [Span(1, 7, 86_400_000 + 61_000, 86_400_000 + 18_000_000), Span(2, 7, 5, 5)]
    minutes, hours, days = upkeep_sql("db.t", "db.r", METER, spans)
    sql = " ".join((minutes, hours, days))
    assert all(
        s.startswith("INSERT INTO db.r (site_id, id, resolution, bucket, records, mins, maxs, sums, counts, firsts)")
        for s in (minutes, hours, days)
    )
    # The newest version of each record (FINAL), an aggregate per attribute gathered into the cells' arrays.
    assert "FROM db.t FINAL" in minutes
    assert "[min(`p`), min(`q`), min(`f`), min(`u`), min(`i`)] AS mins" in minutes
    # Minutes from the records of the touched minutes; hours and days from the finer cells around them.
    assert "(site_id = 1 AND id = 7 AND timestamp >= 86460000 AND timestamp < 104460000)" in sql
    assert "(site_id = 2 AND id = 7 AND timestamp >= 0 AND timestamp < 60000)" in sql
    assert "resolution = 60000 AND ((site_id = 1 AND id = 7 AND bucket >= 86400000 AND bucket < 108000000" in sql
    assert "resolution = 3600000 AND ((site_id = 1 AND id = 7 AND bucket >= 86400000 AND bucket < 172800000" in sql


def test_a_cell_keeps_the_values_of_the_record_at_its_start(engine: Client) -> None:
    """firsts: per attribute, the record at exactly the cell's start (NULL: none there, or its value null);
    a coarser cell's are its first finer cell's, all null when it has none, and unknown ([]) when those are."""
    engine.command("CREATE DATABASE IF NOT EXISTS unit_firsts")
    for table in (PRODUCTION_TABLES["meter"], ROLLUP_TABLES["meter"]):
        for statement in table.ddl("unit_firsts"):
            engine.command(statement)
    engine.command(
        "INSERT INTO unit_firsts.production_meter (site_id, id, timestamp, p, q) VALUES"
        " (1, 7, 60000, 1.5, NULL), (1, 7, 61000, 9.0, 9.0), (1, 7, 3600000, NULL, 2.5), (1, 7, 3630000, 4.0, 4.0)"
    )
    for statement in upkeep_sql(
        "unit_firsts.production_meter", "unit_firsts.rollup_meter", METER, touched_spans([1, 1], [7, 7], [60_000, 3_630_000])
    ):
        engine.command(statement)
    cells = engine.query(
        "SELECT resolution, bucket, firsts FROM unit_firsts.rollup_meter FINAL ORDER BY resolution, bucket"
    ).result_rows
    assert cells == [
        (60_000, 60_000, [1.5, None, None, None, None]),
        (60_000, 3_600_000, [None, 2.5, None, None, None]),
        (3_600_000, 0, [None] * 5),
        (3_600_000, 3_600_000, [None, 2.5, None, None, None]),
        (86_400_000, 0, [None] * 5),
    ]
    # A minute cell from before the column: its hour's firsts are unknown, not null.
    engine.command(
        "INSERT INTO unit_firsts.rollup_meter (site_id, id, resolution, bucket, records, mins, maxs, sums, counts)"
        " VALUES (1, 8, 60000, 7200000, 1, [1], [1], [1], [1])"
    )
    coarser = upkeep_sql("unit_firsts.production_meter", "unit_firsts.rollup_meter", METER, [Span(1, 8, 7_260_000, 7_260_000)])[
        1:
    ]
    for statement in coarser:
        engine.command(statement)
    hour = "SELECT firsts FROM unit_firsts.rollup_meter FINAL WHERE id = 8 AND resolution = 3600000"
    assert engine.query(hour).result_rows == [([],)]


def test_records_past_the_retention_update_no_cell() -> None:
    spans = [Span(1, 7, 0, 59_999), Span(1, 8, 30_000, 200_000)]
    assert kept_spans(spans, 30_000) == [Span(1, 8, 60_000, 200_000)]


def test_the_rollup_sql_runs(engine: Client) -> None:
    engine.command("CREATE DATABASE IF NOT EXISTS unit_rollup")
    for table in (PRODUCTION_TABLES["meter"], ROLLUP_TABLES["meter"], PENDING_TABLE):
        for statement in table.ddl("unit_rollup"):
            engine.command(statement)
    engine.command(
        "INSERT INTO unit_rollup.production_meter (site_id, id, timestamp, p) VALUES (1, 7, 61000, 1.0), (1, 7, 3700000, 3.0)"
    )
    spans = touched_spans([1, 1], [7, 7], [61_000, 3_700_000])
    for statement in upkeep_sql("unit_rollup.production_meter", "unit_rollup.rollup_meter", METER, spans):
        engine.command(statement)
    cells = engine.query("SELECT resolution, bucket, records, sums[1] FROM unit_rollup.rollup_meter ORDER BY resolution, bucket")
    assert cells.result_rows == [
        (60_000, 60_000, 1, 1.0),
        (60_000, 3_660_000, 1, 3.0),
        (3_600_000, 0, 1, 1.0),
        (3_600_000, 3_600_000, 1, 3.0),
        (86_400_000, 0, 2, 4.0),
    ]
    sql = production_sql(
        "unit_rollup.production_meter",
        METER,
        Window(0, 7_200_000, AVG, 3_600_000),
        11,
        rollup="unit_rollup.rollup_meter",
        plan=cells_plan(0, 7_200_000, 3_600_000, None),
    )
    parameters = {"site_id": 1, "id": 7, "start": 0, "end": 7_200_000, "horizon": 0}
    rendered = engine.raw_query(sql, parameters, fmt="TabSeparatedRaw").decode().split()
    assert [json.loads(r)["p"] for r in rendered] == [1.0, 3.0]
    # Over the day cell (nothing pending).
    day = {"site_id": 1, "id": 7, "start": 0, "end": 86_400_000, "horizon": 0}
    for name, expected in (("count", 2), ("sum", 4.0), ("max", 3.0)):
        window = Window(0, 86_400_000, AGGREGATIONS[name], 86_400_000)
        sql = production_sql(
            "unit_rollup.production_meter",
            METER,
            window,
            11,
            rollup="unit_rollup.rollup_meter",
            plan=cells_plan(0, 86_400_000, 86_400_000, None),
        )
        (record,) = engine.raw_query(sql, day, fmt="TabSeparatedRaw").decode().split()
        assert json.loads(record)["p"] == expected and json.loads(record)["q"] == (0 if name == "count" else None)
    # The pending lookup: the first pending timestamp of the (site, id) within the range.
    pending = f"unit_rollup.{PENDING_TABLE.name}"
    lookup = first_pending_sql(pending, "unit_rollup.production_meter")
    assert engine.raw_query(lookup, day, fmt="TabSeparatedRaw").strip() in (b"\\N", b"")
    engine.command(pending_sql(pending, "unit_rollup.production_meter", [Span(1, 7, 3_700_000, 3_700_000)], new_token()))
    assert engine.raw_query(lookup, day, fmt="TabSeparatedRaw").strip() == b"3700000"
    assert engine.raw_query(lookup, {**day, "id": 8}, fmt="TabSeparatedRaw").strip() in (b"\\N", b"")


# ---- vectors -----------------------------------------------------------------


def test_a_vector_is_read_by_field_names_not_positions() -> None:
    sql = vector_sql("db.t", COMMITMENT, RAW, LATEST, 100)
    assert not re.search(r"\bv\.\d", sql)
    assert not re.search(r"\bx\d", sql)
    assert (
        "groupArray(CAST(tuple(`creation_timestamp`, `quality`, `o_timestamp`, `o_value`) AS Tuple(`creation_timestamp` Int64,"
        " `quality` Nullable(UInt32), `o_timestamp` Array(Int64), `o_value` Array(Nullable(Float64)))))" in sql
    )
    assert "arraySort(v -> tupleElement(v, 'creation_timestamp'), " in sql
    assert "',\"quality\":', ifNull(toString(tupleElement(v, 'quality')), 'null')" in sql
    # The periods before the cut, each passed to the rendering lambda under its attribute's name.
    assert "arrayMap((`timestamp`, `value`) -> concat('{\"timestamp\":', toString(`timestamp`), ',\"value\":'," in sql
    assert (
        "arrayFilter(t -> t < cut, tupleElement(v, 'o_timestamp')),"
        " arrayFilter((x, t) -> t < cut, tupleElement(v, 'o_value'), tupleElement(v, 'o_timestamp'))" in sql
    )


def test_the_latest_vintage_is_read_from_the_end_of_the_key_range() -> None:
    sql = vector_sql("db.t", WIND, RAW, LATEST, 100)
    assert (
        f"WHERE {KEY} AND creation_timestamp IN (SELECT creation_timestamp FROM db.t WHERE {KEY}"
        " ORDER BY creation_timestamp DESC LIMIT 1)"
    ) in sql
    assert "`values.timestamp` AS `o_timestamp`, `values.p` AS `o_p`, `values.quality` AS `o_quality`" in sql
    generated = "creation_timestamp >= {generated_start:Int64} AND creation_timestamp < {generated_end:Int64}"
    latest_in = vector_sql("db.t", WIND, RAW, LATEST_IN, 100)
    assert f"WHERE {KEY} AND {generated} ORDER BY creation_timestamp DESC LIMIT 1)" in latest_in
    every = vector_sql("db.t", WIND, RAW, EVERY, 100)
    assert f"WHERE {KEY} AND {generated} ORDER BY creation_timestamp, _block_number DESC" in every
    assert "DESC LIMIT 1)" not in every


def test_aggregated_vectors_reduce_runs_of_periods_per_bucket() -> None:
    sql = vector_sql("db.t", WIND, AVERAGED, LATEST, 100)
    assert "arrayFilter((x, t) -> t >= {start:Int64} AND t < {end:Int64}, `values.p`, `values.timestamp`) AS `r_p`" in sql
    assert "arrayMap(t -> intDiv(t, 5000) * 5000, r_timestamp) AS r_bucket" in sql
    assert "arrayReduceInRanges('avg', r_ranges, `r_p`) AS `o_p`" in sql
    assert "arrayReduceInRanges('min', r_ranges, `r_quality`) AS `o_quality`" in sql  # quality: the worst period
    assert "`o_p` Array(Nullable(Float64)), `o_quality` Array(Nullable(UInt32))" in sql


def test_the_cut_keeps_the_periods_of_a_timestamp_together() -> None:
    sql = vector_sql("db.t", WIND, RAW, EVERY, 100)
    # Past the limit, the 101st timestamp; or, if the first timestamp alone holds more, the next one.
    assert (
        f"multiIf(length(all_timestamps) <= 100, {TIMESTAMP_LIMIT_MS},"
        " all_timestamps[101] > all_timestamps[1], all_timestamps[101],"
        " ifNull(arrayFirstOrNull(t -> t > all_timestamps[1], all_timestamps)" in sql
    )
    assert sql.startswith(f"SELECT period_count, if(cut < {TIMESTAMP_LIMIT_MS}, toString(cut), ''), results FROM (")


@pytest.mark.parametrize("vintage", VINTAGES)
@pytest.mark.parametrize("window", WINDOWS)
def test_vector_sql_parses(engine: Client, window: Window, vintage: Vintage) -> None:
    assert parses(engine, vector_sql("db.t", COMMITMENT, window, vintage, 100))
    assert parses(engine, vector_sql("db.t", WIND, window, vintage, 100))


@pytest.fixture(scope="module")
def vectors(engine: Client) -> Client:
    """Two vintages of commitment 7 and of wind forecast 7, the first one stored twice."""
    engine.command("CREATE DATABASE IF NOT EXISTS unit_sql")
    for table in (COMMITMENT_TABLE, FORECAST_TABLES["wind"]):
        for statement in table.ddl("unit_sql"):
            engine.command(statement)
    commitment = ["site_id", "id", "creation_timestamp", "quality", "values.timestamp", "values.value"]
    engine.insert("unit_sql.commitment", [[1, 7, 100, 3, [1000, 2000], [0.5, 2.0]]], column_names=commitment)
    engine.insert(
        "unit_sql.commitment",
        [[1, 7, 100, 4_294_967_295, [1000, 2000, 6000], [1.5, None, 3.0]], [1, 7, 150, None, [1000], [-1.0]]],
        column_names=commitment,
    )
    wind = ["site_id", "id", "creation_timestamp", "values.timestamp", "values.p", "values.quality"]
    engine.insert(
        "unit_sql.forecast_wind",
        [[1, 7, 100, [1000, 2000, 6000], [1.0, 2.0, 4.5], [2, 1, None]], [1, 7, 300, [1000], [9.0], [0]]],
        column_names=wind,
    )
    return engine


def read(engine: Client, sql: str, window: Window, vintage: Vintage) -> list[str]:
    """A vector read's line: period count, next_from, the members of `results`."""
    parameters = {"site_id": 1, "id": 7, "start": window.start, "end": window.end}
    parameters |= {"generated_start": vintage.start, "generated_end": vintage.end}
    line = engine.raw_query(sql, parameters, fmt="TabSeparatedRaw")
    return line.decode().rstrip("\n").split("\t", 2)


def test_vectors_render_from_their_named_fields(vectors: Client) -> None:
    sql = vector_sql("unit_sql.commitment", COMMITMENT, IN_RANGE, EVERY, 100)
    assert read(vectors, sql, IN_RANGE, EVERY) == [
        "4",
        "",
        '{"creation_timestamp":100,"id":7,"quality":4294967295,"values":[{"timestamp":1000,"value":1.5},'
        '{"timestamp":2000,"value":null},{"timestamp":6000,"value":3.0}]},'
        '{"creation_timestamp":150,"id":7,"quality":null,"values":[{"timestamp":1000,"value":-1.0}]}',
    ]


def test_aggregated_vectors_render_from_their_named_fields_and_are_cut(vectors: Client) -> None:
    sql = vector_sql("unit_sql.forecast_wind", WIND, AVERAGED, LATEST_IN, 1)
    assert read(vectors, sql, AVERAGED, LATEST_IN) == [
        "1",
        "5000",
        '{"creation_timestamp":100,"id":7,"values":[{"timestamp":0,"p":1.5,"quality":1}]}',
    ]


# ---- tariffs -----------------------------------------------------------------


def test_tariff_periods_start_at_the_one_in_force_at_from() -> None:
    sql = tariff_sql("db.t", TARIFF, IN_RANGE, 11)
    in_force = (
        f"timestamp >= ifNull((SELECT timestamp FROM db.t WHERE {KEY} AND timestamp <= {{start:Int64}}"
        " ORDER BY timestamp DESC LIMIT 1), {start:Int64}) AND timestamp < {end:Int64}"
    )
    assert sql.endswith(f" FROM db.t WHERE {KEY} AND {in_force} {NEWEST} LIMIT 11")
    assert "',\"label\":', ifNull(toJSONString(`label`), 'null')" in sql
    assert tariff_sql("db.t", TARIFF, RAW, 11).endswith(f" FROM db.t WHERE {KEY} {NEWEST} LIMIT 11")


@pytest.mark.parametrize("window", [RAW, IN_RANGE])
def test_tariff_sql_parses(engine: Client, window: Window) -> None:
    assert parses(engine, tariff_sql("db.t", TARIFF, window, 11))


def test_pending_marks_are_deleted_as_patch_parts() -> None:
    """A patch part is visible at once and costs an insert; a lightweight DELETE's mutation took up to a second."""
    statements = PENDING_TABLE.ddl("db")
    patching = "enable_block_number_column = 1, enable_block_offset_column = 1"
    assert statements[0].endswith(f"SETTINGS {patching}")
    assert statements[-1] == f"ALTER TABLE db.rollup_pending MODIFY SETTING {patching}"
    assert "enable_block" not in " ".join(PRODUCTION_TABLES["meter"].ddl("db"))
