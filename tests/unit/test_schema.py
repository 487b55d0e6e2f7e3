"""DDL rendered from the tables' fields, on a single node and on a cluster, without a server.

chDB checks the statements in memory: only `chdb://memory`, since a process holds
one engine path and these tests share the pytest process.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from clickhouse_connect.driver.client import Client

from services.lib.store.cluster import SHARDING_KEY
from services.lib.store.schema import (
    COMMITMENT_TABLE,
    FORECAST_TABLES,
    PRODUCTION_TABLES,
    ROLLUP_TABLES,
    TARIFF_TABLE,
    Column,
    Table,
    all_tables,
    database_ddl,
)

CLUSTER = "storecast"
ON_CLUSTER = f"ON CLUSTER '{CLUSTER}'"
COLUMNS = "(\n  `site_id` UInt32 CODEC(LZ4),\n  `id` UInt32 CODEC(LZ4),\n  `p` Nullable(Float64) CODEC(ZSTD(1))\n)"
TABLE = Table(
    name="t",
    key_columns=(Column("site_id", "UInt32", "LZ4"), Column("id", "UInt32", "LZ4")),
    value_columns=(Column("p", "Nullable(Float64)"),),
    order_by=("site_id", "id"),
    settings=(("index_granularity", 128), ("min_bytes_for_wide_part", 0)),
)
ADD_P = "ADD COLUMN IF NOT EXISTS `p` Nullable(Float64) CODEC(ZSTD(1))"


def parsed(engine: Client, statement: str) -> str:
    """The statement as ClickHouse's parser formats it (raises if it does not parse)."""
    formatted: str = engine.query("SELECT formatQuery({s:String})", parameters={"s": statement}).result_rows[0][0]
    return formatted


def test_the_single_node_ddl_is_the_table_then_its_value_columns() -> None:
    assert TABLE.ddl("db") == [
        f"CREATE TABLE IF NOT EXISTS db.t {COLUMNS} ENGINE = ReplacingMergeTree ORDER BY (site_id, id)"
        " SETTINGS index_granularity = 128, min_bytes_for_wide_part = 0",
        f"ALTER TABLE db.t {ADD_P}",
    ]


def test_the_cluster_ddl_is_a_replicated_local_table_and_a_distributed_one_of_the_same_name() -> None:
    assert TABLE.ddl("db", CLUSTER) == [
        f"CREATE TABLE IF NOT EXISTS db.t_local {ON_CLUSTER} {COLUMNS}"
        " ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/t_local', '{replica}') ORDER BY (site_id, id)"
        " SETTINGS index_granularity = 128, min_bytes_for_wide_part = 0",
        f"CREATE TABLE IF NOT EXISTS db.t {ON_CLUSTER} {COLUMNS}"
        f" ENGINE = Distributed('{CLUSTER}', 'db', 't_local', {SHARDING_KEY})",
        f"ALTER TABLE db.t_local {ON_CLUSTER} {ADD_P}",
        f"ALTER TABLE db.t {ON_CLUSTER} {ADD_P}",
    ]


def test_the_engine_is_a_field() -> None:
    table = replace(TABLE, engine="MergeTree", settings=())
    assert table.ddl("db")[0].endswith(") ENGINE = MergeTree ORDER BY (site_id, id)")
    replicated = "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db/t_local', '{replica}') ORDER BY (site_id, id)"
    assert replicated in table.ddl("db", CLUSTER)[0]


def test_an_engine_outside_the_merge_tree_family_has_no_cluster_form() -> None:
    with pytest.raises(ValueError, match="no cluster form"):
        replace(TABLE, engine="Log").ddl("db", CLUSTER)


def test_a_table_without_site_id_cannot_be_sharded() -> None:
    with pytest.raises(ValueError, match="site_id"):
        replace(TABLE, key_columns=TABLE.key_columns[1:], order_by=("id",)).ddl("db", CLUSTER)


@pytest.mark.parametrize("name", ["main; DROP DATABASE x", "a'b", ""])
def test_cluster_names_are_checked_before_they_reach_sql(name: str) -> None:
    with pytest.raises(ValueError, match="cluster name"):
        TABLE.ddl("db", name)
    with pytest.raises(ValueError, match="cluster name"):
        database_ddl("db", name)


def test_the_database() -> None:
    assert database_ddl("db") == "CREATE DATABASE IF NOT EXISTS db"
    assert database_ddl("db", CLUSTER) == f"CREATE DATABASE IF NOT EXISTS db {ON_CLUSTER}"


def test_catalog_tables_are_keyed_by_site_id_and_id_and_vector_and_rollup_tables_have_small_granules() -> None:
    assert PRODUCTION_TABLES["meter"].order_by == ("site_id", "id", "timestamp")
    assert TARIFF_TABLE.order_by == ("site_id", "id", "timestamp")
    assert COMMITMENT_TABLE.order_by == ("site_id", "id", "creation_timestamp")
    for table in [*PRODUCTION_TABLES.values(), TARIFF_TABLE]:
        assert " SETTINGS " not in table.ddl("db")[0]
    for table in [*FORECAST_TABLES.values(), COMMITMENT_TABLE]:
        assert table.ddl("db")[0].endswith(" SETTINGS index_granularity = 128")
        assert "`values.timestamp` Array(Int64) CODEC(DoubleDelta, ZSTD(1))" in table.ddl("db")[0]
    for table in ROLLUP_TABLES.values():
        assert table.order_by == ("site_id", "id", "resolution", "bucket")
        assert table.ddl("db")[0].endswith(" SETTINGS index_granularity = 1024")


def test_every_catalog_statement_parses_in_both_modes(engine: Client) -> None:
    for table in all_tables():
        for statement in [*table.ddl("storecast"), *table.ddl("storecast", CLUSTER)]:
            assert parsed(engine, statement).startswith(("CREATE TABLE IF NOT EXISTS", "ALTER TABLE"))


def test_the_single_node_ddl_creates_the_catalog_tables_and_is_idempotent(engine: Client) -> None:
    engine.command(database_ddl("unit_schema"))
    for _ in range(2):
        for table in all_tables():
            for statement in table.ddl("unit_schema"):
                engine.command(statement)
    created = engine.query("SELECT table, name, type FROM system.columns WHERE database = 'unit_schema'").result_rows
    assert sorted(tuple(row) for row in created) == sorted(
        (table.name, column.name, column.type) for table in all_tables() for column in table.columns
    )
